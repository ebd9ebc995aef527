"""The ledger (问题台账): filtered case lists with keyset paging, and CSV/XLSX exports."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, any_, func, literal, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from gis import datum as datums
from service.accounts.principal import Principal
from service.accounts.privacy import name_for, phone_for
from service.accounts.scope import case_condition
from service.cases.workflow import LABELS_ZH, OPEN_STATUSES, STATUSES
from service.clock import now
from service.db.engine import session_scope
from service.db.models import Case, Category
from service.errors import BadParameter, InvalidInput
from service.grids.registry import Registry
from service.grids.repository import intersects_bbox
from service.http.tables import csv_chunks, xlsx_sheet
from service.http.timeparse import iso
from service.settings import AppSettings


@dataclass(frozen=True)
class CaseFilter:
    """Which cases a ledger shows."""

    grid: str | None = None
    category: str | None = None
    statuses: tuple[str, ...] = ()
    source: str | None = None
    department: str | None = None
    hotspot: int | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    overdue: bool | None = None
    due_within_hours: float | None = None


COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "案件编号"),
    ("status", "状态"),
    ("category_code", "类别代码"),
    ("category_name", "类别名称"),
    ("source", "来源"),
    ("description", "问题描述"),
    ("address", "地址"),
    ("reporter_name", "上报人"),
    ("reporter_phone", "上报人电话"),
    ("grid_code", "网格编码"),
    ("department", "处置部门"),
    ("reported_at", "上报时间"),
    ("deadline_at", "处置时限"),
    ("closed_at", "结案时间"),
    ("overdue", "是否超期"),
    ("lon", "经度"),
    ("lat", "纬度"),
    ("hotspot_ids", "关联热点"),
    ("duplicate_of", "疑似重复案件"),
    ("recurring_of", "重复发生参照案件"),
)


def encode_cursor(case: Case) -> str:
    """Opaque keyset cursor after ``case`` (newest first order)."""
    raw = f"{case.reported_at.isoformat()}|{case.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Inverse of ``encode_cursor``; ``BadParameter`` if it was tampered with."""
    try:
        stamp, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(stamp), int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadParameter("cursor is not one this API gave out", field="cursor") from exc


class Ledger:
    """Case lists for one city; every read shows only the cases in the caller's scope."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.registry = Registry(session, settings)
        self.city = settings.grids.city

    def _where(self, flt: CaseFilter, by: Principal) -> Select[Case]:
        stmt = select(Case).where(Case.city == self.city)
        scope = case_condition(by)
        if scope is not None:
            stmt = stmt.where(scope)
        if flt.grid:
            prefix = self.registry.subtree_prefix(flt.grid)
            stmt = stmt.where(Case.grid_code.startswith(prefix, autoescape=True))
        if flt.category:
            stmt = stmt.where(Case.category_code.startswith(flt.category, autoescape=True))
        if flt.statuses:
            unknown = set(flt.statuses) - set(STATUSES)
            if unknown:
                raise InvalidInput(
                    f"unknown status {sorted(unknown)[0]!r}; statuses are {', '.join(STATUSES)}",
                    field="status",
                )
            stmt = stmt.where(Case.status.in_(flt.statuses))
        if flt.source:
            stmt = stmt.where(Case.source == flt.source)
        if flt.department:
            stmt = stmt.where(Case.department == flt.department)
        if flt.hotspot is not None:
            stmt = stmt.where(literal(flt.hotspot) == any_(Case.hotspot_ids))
        if flt.reported_from:
            stmt = stmt.where(Case.reported_at >= flt.reported_from)
        if flt.reported_to:
            stmt = stmt.where(Case.reported_at < flt.reported_to)
        if flt.bbox:
            stmt = stmt.where(intersects_bbox(Case.geom, flt.bbox))
        t = now()
        if flt.overdue is not None:
            late = and_(Case.status.in_(OPEN_STATUSES), Case.deadline_at < t)
            stmt = stmt.where(late if flt.overdue else ~late)
        if flt.due_within_hours is not None:
            stmt = stmt.where(
                Case.status.in_(OPEN_STATUSES),
                Case.deadline_at >= t,
                Case.deadline_at < t + timedelta(hours=flt.due_within_hours),
            )
        return stmt

    def counts(
        self, flt: CaseFilter, by: Principal, per: str, level: str = "unit"
    ) -> list[dict[str, Any]]:
        """Cases in ``by``'s scope per grid (at ``level``) or per hotspot (``per``): total,
        open, overdue, recurring and suspected duplicates — the figures behind rankings and
        heat maps."""
        cases = self._where(flt, by).subquery()
        if per == "hotspot":
            # one row per (case, hotspot): a case near two hotspots counts for both
            sub = select(func.unnest(cases.c.hotspot_ids).label("key"), *cases.c).subquery()
            key: Any = sub.c.key
        elif per == "grid":
            sub = cases
            n = self.registry.scheme.prefix_length(level)
            key = func.rpad(func.substr(sub.c.grid_code, 1, n), self.registry.scheme.width, "0")
        else:
            raise InvalidInput("by must be grid or hotspot", field="by")
        is_open = sub.c.status.in_(OPEN_STATUSES)
        suspected = and_(sub.c.duplicate_of.is_not(None), sub.c.status != "merged")
        stmt = (
            select(
                key.label("key"),
                func.count().label("cases"),
                func.count().filter(is_open).label("open"),
                func.count().filter(and_(is_open, sub.c.deadline_at < now())).label("overdue"),
                func.count().filter(sub.c.recurring_of.is_not(None)).label("recurring"),
                func.count().filter(suspected).label("suspected_duplicates"),
            )
            .where(key.is_not(None))
            .group_by(key)
            .order_by(func.count().desc(), key)
        )
        names = ("cases", "open", "overdue", "recurring", "suspected_duplicates")
        return [
            {per: row.key, **{k: int(getattr(row, k)) for k in names}}
            for row in self.session.execute(stmt)
        ]

    def check(self, flt: CaseFilter, by: Principal) -> None:
        """Raise now for a bad filter (a streamed export cannot answer 4xx once it started)."""
        self._where(flt, by)

    def query(self, flt: CaseFilter, by: Principal, limit: int = 100) -> Select[Case]:
        """The statement of a first page (for plans: see the scoping test)."""
        return self._where(flt, by).order_by(Case.reported_at.desc(), Case.id.desc()).limit(limit)

    def page(
        self, flt: CaseFilter, by: Principal, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Case], str | None]:
        """Cases in ``by``'s scope, newest first; ``cursor`` continues after the last case of
        the previous page."""
        stmt = self._where(flt, by)
        if cursor:
            stamp, ident = decode_cursor(cursor)
            stmt = stmt.where(tuple_(Case.reported_at, Case.id) < tuple_(stamp, ident))
        rows = list(
            self.session.scalars(
                stmt.order_by(Case.reported_at.desc(), Case.id.desc()).limit(limit + 1)
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1]) if more and rows else None)

    def iterate(self, flt: CaseFilter, by: Principal, batch: int = 5000) -> Iterator[Case]:
        """Every matching case in ``by``'s scope, newest first, in keyset batches (exports)."""
        cursor = None
        while True:
            rows, cursor = self.page(flt, by, batch, cursor)
            yield from rows
            self.session.expunge_all()
            if cursor is None:
                return

    def category_names(self) -> dict[str, str]:
        """Category code → name for this city."""
        stmt = select(Category.code, Category.name).where(Category.city == self.city)
        return {code: name for code, name in self.session.execute(stmt)}


def row_values(
    case: Case,
    names: dict[str, str],
    lang: str,
    t: datetime,
    by: Principal,
    datum: str = "wgs84",
) -> list[Any]:
    """The export row of one case (timestamps ISO 8601 with offset, lon/lat in ``datum``,
    the first reporter's name and phone as ``by`` may see them)."""
    reporter = case.reporters[0] if case.reporters else {}
    late = case.status in OPEN_STATUSES and case.deadline_at is not None and case.deadline_at < t
    lon, lat = datums.from_wgs84(case.lon, case.lat, datum)
    values = {
        "id": case.id,
        "status": LABELS_ZH[case.status] if lang == "zh" else case.status,
        "category_code": case.category_code,
        "category_name": names.get(case.category_code, ""),
        "source": case.source,
        "description": case.description or "",
        "address": case.address or "",
        "reporter_name": name_for(by, reporter.get("name")) or "",
        "reporter_phone": phone_for(by, reporter.get("phone")) or "",
        "grid_code": case.grid_code or "",
        "department": case.department or "",
        "reported_at": iso(case.reported_at),
        "deadline_at": iso(case.deadline_at) or "",
        "closed_at": iso(case.closed_at) or "",
        "overdue": ("是" if late else "否") if lang == "zh" else late,
        "lon": round(float(lon), 7),
        "lat": round(float(lat), 7),
        "hotspot_ids": ",".join(str(h) for h in case.hotspot_ids),
        "duplicate_of": case.duplicate_of or "",
        "recurring_of": case.recurring_of or "",
    }
    return [values[key] for key, _ in COLUMNS]


def headers(lang: str) -> list[str]:
    """Column headers, Chinese with ``lang='zh'``."""
    return [zh if lang == "zh" else key for key, zh in COLUMNS]


def export_csv(
    ledger: Ledger, flt: CaseFilter, by: Principal, lang: str, datum: str = "wgs84"
) -> Iterator[bytes]:
    """The ledger of ``by``'s scope as CSV (UTF-8 with BOM so Excel reads the Chinese),
    streamed."""
    names, t = ledger.category_names(), now()
    rows = (row_values(case, names, lang, t, by, datum) for case in ledger.iterate(flt, by))
    yield from csv_chunks(headers(lang), rows, every=2000)


def export_csv_stream(
    sessions: sessionmaker[Session],
    settings: AppSettings,
    flt: CaseFilter,
    by: Principal,
    lang: str,
    datum: str,
) -> Iterator[bytes]:
    """:func:`export_csv` on a session of its own: a streamed answer runs after the request's
    session has ended."""
    with session_scope(sessions) as session:
        yield from export_csv(Ledger(session, settings), flt, by, lang, datum)


def export_xlsx(
    ledger: Ledger, flt: CaseFilter, by: Principal, lang: str, datum: str = "wgs84"
) -> bytes:
    """The ledger of ``by``'s scope as an XLSX workbook (openpyxl write-only mode keeps
    memory flat)."""
    names, t = ledger.category_names(), now()
    rows = (row_values(case, names, lang, t, by, datum) for case in ledger.iterate(flt, by))
    return xlsx_sheet("问题台账" if lang == "zh" else "ledger", headers(lang), rows)

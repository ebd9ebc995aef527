"""What the documents say, gathered once per scope and period as plain data.

Every count and rate comes from the indicator engine (:mod:`service.assessment.figures`), so a
brief says what ``/api/assessment/figures`` says for the same grid and period: the scope's
figures are its row in the engine's one-query list of every grid of every level, and that list
is computed once per period for all the scopes of a run (:class:`Inputs` keeps it). What the
indicators do not hold — reports by source and category, hotspots, coverage, cases to name —
is read here with one grouped query each.

The result of :func:`brief_data` / :func:`circular_data` is JSON-safe: its hash is the
document's data version, and both renderings (DOCX, HTML/PDF) draw from the same dict.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from service.accounts.principal import Principal
from service.assessment.figures import GRID_LEVELS, Figures, IndicatorEngine
from service.assessment.inspection import cross_scoring
from service.assessment.lists import ListService
from service.assessment.periods import Period, parse_period
from service.briefs import coverage, sections
from service.clock import now, work_clock
from service.db.models import Case, Grid
from service.errors import InvalidInput, NotFound
from service.grids.registry import Registry
from service.settings import AppSettings

SCOPE_LEVELS = ("city", "district", "street")
PERIOD_KINDS = ("day", "week", "month")
# the counts of the brief's first table, in order, with their Chinese names
HEADLINE: tuple[tuple[str, str], ...] = (
    ("reported", "新发现问题"),
    ("registered", "立案"),
    ("dispatched", "派遣"),
    ("closed", "结案"),
    ("overdue_open", "超期未结"),
)
RATES: tuple[tuple[str, str], ...] = (
    ("close_rate", "结案率"),
    ("on_time_close_rate", "按期结案率"),
    ("rework_rate", "返工率"),
)
# sources as the offices name them; the rest (Open311 apps, imports) is 其他
SOURCES: tuple[tuple[str, str], ...] = (
    ("patrol", "网格巡查"),
    ("citizen", "市民随手拍"),
    ("hotline", "12345热线"),
    ("inspector", "督查发现"),
)
OTHER_SOURCE = "其他渠道"
LEVEL_ZH = {"city": "全市", "district": "区", "street": "街道", "community": "社区", "unit": "网格"}
KIND_ZH = {"brief": "工作简报", "circular": "督查通报", "ledger": "问题台账"}
PERIOD_ZH = {"day": "日", "week": "周", "month": "月"}
CIRCULAR_KINDS: tuple[tuple[str, str], ...] = (
    ("overdue_open", "超期未结"),
    ("reworked", "返工"),
    ("recurring", "重复发生"),
)
TOP_CATEGORIES = 5
TOP_HOTSPOTS = 10
TOP_BLIND = 10
PRAISED = 3
log = logging.getLogger("citygrid.briefs")


@dataclass(frozen=True)
class Request:
    """A checked request for documents: the scope grid, its level and subtree code prefix
    (computed once, in :func:`check_request`; every figure and section of the documents
    selects with it), and the period."""

    scope: str
    scope_name: str
    level: str
    period: Period
    prefix: str

    @property
    def prefix_params(self) -> dict[str, Any]:
        """Bounds of the period, for queries."""
        return {"s": self.period.start, "e": self.period.end}


def period_for(day: date, kind: str, tz: str) -> Period:
    """The period of ``kind`` (day, ISO week, month) holding ``day``."""
    if kind == "day":
        label = day.isoformat()
    elif kind == "week":
        y, w, _ = day.isocalendar()
        label = f"{y}-W{w:02d}"
    elif kind == "month":
        label = f"{day.year}-{day.month:02d}"
    else:
        raise InvalidInput(
            f"unknown period {kind!r}; periods are {', '.join(PERIOD_KINDS)}", field="period"
        )
    return parse_period(label, tz)


def today(settings: AppSettings) -> date:
    """The local date now."""
    return now().astimezone(ZoneInfo(settings.grids.timezone)).date()


def check_request(
    session: Session, settings: AppSettings, scope: str, day: date, kind: str = "day"
) -> Request:
    """The request for grid ``scope`` and the ``kind`` period holding ``day``: ``NotFound``
    naming ``scope`` for an unknown grid, ``InvalidInput`` naming ``scope`` for a community or
    unit grid, naming ``date`` for a day after today and ``period`` for an unknown kind."""
    if day > today(settings):
        raise InvalidInput(
            f"{day.isoformat()} is in the future: documents are made for days that have begun",
            field="date",
        )
    period = period_for(day, kind, settings.grids.timezone)
    registry = Registry(session, settings)
    try:
        grid = registry.get(scope)
    except NotFound as exc:
        raise NotFound(f"no grid {scope!r} to make documents for", field="scope") from exc
    if grid.level not in SCOPE_LEVELS:
        raise InvalidInput(
            f"grid {scope} is a {grid.level}; documents are made for a " + ", ".join(SCOPE_LEVELS),
            field="scope",
        )
    prefix = scope[: settings.scheme.prefix_length(grid.level)]
    return Request(scope, grid.name or scope, grid.level, period, prefix)


def child_level(level: str) -> str:
    """The grid level named in a scope's documents (the one below it)."""
    return GRID_LEVELS[min(GRID_LEVELS.index(level) + 1, len(GRID_LEVELS) - 2)]


@dataclass
class Inputs:
    """The figures shared by every scope of a run, computed once per period: the engine's
    list of every grid of every level, the red/yellow board, the coverage of the period."""

    session: Session
    settings: AppSettings
    pool: Executor | None = None  # worker processes rendering a run's documents
    engine: IndicatorEngine = field(init=False)
    _lists: dict[str, tuple[dict[str, dict[str, Figures]], list[Figures]]] = field(
        default_factory=dict
    )
    _boards: dict[str, dict[str, Any]] = field(default_factory=dict)
    _coverage: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)
    _departments: dict[tuple[str, str], list[Figures]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.engine = IndicatorEngine(self.session, self.settings)

    def on(self, session: Session) -> Inputs:
        """The same figures for work on another session (the next scope of a run)."""
        other = Inputs(session, self.settings, self.pool)
        other._lists, other._boards = self._lists, self._boards
        other._coverage = self._coverage
        return other

    def departments(self, period: Period, scope: str) -> list[Figures]:
        """The departments' figures counting the cases of grid ``scope``'s subtree only."""
        key = (period.label, scope)
        if key not in self._departments:
            self._departments[key] = self.engine.department_figures_in(period, scope)
        return self._departments[key]

    def coverage(self, period: Period) -> list[dict[str, Any]] | None:
        """Coverage of every unit grid in a day or week (the stored run, computed when
        missing) or a month (the union of its days' runs up to today:
        :mod:`service.briefs.coverage`), or ``None`` when there is none: no unit grids, an
        area the coverage raster cannot hold (the brief then says there are no coverage
        data)."""
        from service.accounts.principal import SYSTEM
        from service.patrol.coverage import CoverageService

        if period.label not in self._coverage:
            rows = None
            if period.kind == "month":
                days = self.day_coverage(period)
                rows = coverage.union_of_days(days) if days else None
            elif period.kind in ("day", "week"):
                try:
                    with self.session.begin_nested():
                        _, rows = CoverageService(self.session, self.settings).grid_rows(
                            period.kind, period.start, SYSTEM
                        )
                except (NotFound, ValueError):
                    log.warning("no coverage of %s for the documents", period.label, exc_info=True)
            self._coverage[period.label] = rows
        return self._coverage[period.label]

    def day_coverage(self, period: Period) -> list[list[dict[str, Any]]]:
        """The coverage of each day of ``period`` up to today (days without coverage data
        left out), each day's run read once per run of documents."""
        tz = self.settings.grids.timezone
        last = min(period.last_day, today(self.settings))
        out = []
        for i in range((last - period.first_day).days + 1):
            rows = self.coverage(period_for(period.first_day + timedelta(days=i), "day", tz))
            if rows is not None:
                out.append(rows)
        return out

    def grids(self, period: Period) -> dict[str, dict[str, Figures]]:
        """Level → grid code → figures of ``period`` (one query for the whole city)."""
        if period.label not in self._lists:
            wanted = [("grid", lv) for lv in GRID_LEVELS] + [("department", None)]
            found = self.engine.full_list(period, wanted)
            departments = found[("department", None)]
            by_code = {lv: {f.key: f for f in found[("grid", lv)]} for lv in GRID_LEVELS}
            self._lists[period.label] = (by_code, departments)
        return self._lists[period.label][0]

    def scope(self, period: Period, level: str, code: str) -> Figures:
        """The figures of grid ``code`` (a ``level`` grid) in ``period``."""
        found = self.grids(period)[level].get(code)
        return found or Figures("grid", code, None, level)

    def board(self, period: Period) -> dict[str, Any]:
        """The red/yellow board of ``period`` (its published revision when there is one)."""
        if period.label not in self._boards:
            lists = ListService(
                self.session, self.settings, externals=cross_scoring(self.session, self.settings)
            )
            self._boards[period.label] = lists.board(period)
        return self._boards[period.label]


def _in(code: str | None, prefix: str) -> bool:
    return code is not None and code.startswith(prefix)


def _values(f: Figures) -> dict[str, Any]:
    return f.values()


def _comparisons(period: Period, tz: str) -> list[tuple[str, Period]]:
    """The periods a brief compares with: the day before and the same weekday last week; the
    week before; the month before."""
    first = period.first_day
    if period.kind == "day":
        return [
            ("较前一日", period_for(first - timedelta(days=1), "day", tz)),
            ("较上周同日", period_for(first - timedelta(days=7), "day", tz)),
        ]
    if period.kind == "week":
        return [("较上周", period_for(first - timedelta(days=7), "week", tz))]
    return [("较上月", period_for(first - timedelta(days=1), "month", tz))]


def headline(inputs: Inputs, req: Request) -> dict[str, Any]:
    """The scope's counts and rates, with the change against the comparison periods."""
    tz = inputs.settings.grids.timezone
    now_v = _values(inputs.scope(req.period, req.level, req.scope))
    rows = []
    comps = [
        (name, _values(inputs.scope(p, req.level, req.scope)), p)
        for name, p in _comparisons(req.period, tz)
    ]
    for key, zh in HEADLINE:
        v = int(now_v.get(key) or 0)
        changes = []
        for name, other, p in comps:
            o = int(other.get(key) or 0)
            changes.append({"label": name, "period": p.label, "value": o, "change": v - o})
        rows.append({"key": key, "name": zh, "value": v, "changes": changes})
    rates = [{"key": key, "name": zh, "value": now_v.get(key)} for key, zh in RATES]
    return {
        "rows": rows,
        "rates": rates,
        "comparisons": [{"label": n, "period": p.label} for n, _, p in comps],
        "figures": now_v,
    }


def by_source(session: Session, settings: AppSettings, req: Request, total: int) -> list[dict]:
    """Reports of the period in scope by source (their sum is the ``reported`` indicator)."""
    rows = session.execute(
        text(
            "SELECT source, count(*) FROM cases WHERE city = :city AND grid_code LIKE :p"
            " AND reported_at >= :s AND reported_at < :e GROUP BY source"
        ),
        {"city": settings.grids.city, "p": req.prefix + "%", **req.prefix_params},
    ).all()
    counts = {s: int(n) for s, n in rows}
    found = [(k, zh, counts.pop(k, 0)) for k, zh in SOURCES]
    found.append(("other", OTHER_SOURCE, sum(counts.values())))
    return [
        {"key": k, "name": zh, "count": n, "share": round(n / total, 4) if total else None}
        for k, zh, n in found
    ]


def by_category(session: Session, settings: AppSettings, req: Request, total: int) -> list[dict]:
    """The five minor categories with the most reports of the period in scope, with shares."""
    rows = session.execute(
        text(
            "SELECT c.category_code, k.name, k.major_name, count(*) AS n FROM cases c"
            " LEFT JOIN categories k ON k.city = c.city AND k.code = c.category_code"
            " WHERE c.city = :city AND c.grid_code LIKE :p"
            " AND c.reported_at >= :s AND c.reported_at < :e"
            " GROUP BY 1, 2, 3 ORDER BY n DESC, 1 LIMIT :top"
        ),
        {
            "city": settings.grids.city,
            "p": req.prefix + "%",
            "top": TOP_CATEGORIES,
            **req.prefix_params,
        },
    ).all()
    return [
        {
            "code": code,
            "name": name or code,
            "major": major,
            "count": int(n),
            "share": round(int(n) / total, 4) if total else None,
        }
        for code, name, major, n in rows
    ]


def hotspots(session: Session, settings: AppSettings, req: Request) -> list[dict]:
    """Hotspots with new problems in the period in scope, most first."""
    rows = session.execute(
        text(
            "SELECT h.id, h.name, h.kind, count(*) AS n FROM cases c"
            " CROSS JOIN LATERAL unnest(c.hotspot_ids) AS x(id)"
            " JOIN hotspots h ON h.city = c.city AND h.id = x.id"
            " WHERE c.city = :city AND c.grid_code LIKE :p"
            " AND c.reported_at >= :s AND c.reported_at < :e"
            " GROUP BY 1, 2, 3 ORDER BY n DESC, 1 LIMIT :top"
        ),
        {
            "city": settings.grids.city,
            "p": req.prefix + "%",
            "top": TOP_HOTSPOTS,
            **req.prefix_params,
        },
    ).all()
    return [{"id": i, "name": name, "kind": kind, "count": int(n)} for i, name, kind, n in rows]


def patrol(inputs: Inputs, req: Request) -> dict[str, Any]:
    """Patrol coverage of the scope's unit grids in the period and its blind spots: unit
    grids nobody visited on any day of it, those with new problems first. A day or week reads
    its stored coverage run, a month the union of its days (:mod:`service.briefs.coverage`);
    a week or month adds the daily rate (``days``, ``days_share``)."""
    every = inputs.coverage(req.period)
    prefix = req.prefix
    rows = [r for r in every or () if r["code"].startswith(prefix)]
    if not rows:
        return {"available": False}
    extra: dict[str, Any] = {}
    if req.period.kind != "day":
        days, share = coverage.daily_rate(
            inputs.day_coverage(req.period), {r["code"] for r in rows}
        )
        # a month's area share is the mean of its daily shares (it has no run of its own)
        extra = {
            "days": days,
            "days_share": share,
            "share_is_daily_mean": req.period.kind == "month",
        }
    units = inputs.grids(req.period)["unit"]
    blind = [r for r in rows if not r["visits"]]
    blind.sort(
        key=lambda r: (
            -int(units.get(r["code"], Figures("grid", "", None)).counts.get("reported", 0)),
            r["code"],
        )
    )
    shares = [float(r["covered_share"] or 0) for r in rows]
    return {
        "available": True,
        "grids": len(rows),
        "visited": len(rows) - len(blind),
        "mean_share": round(sum(shares) / len(shares), 4),
        "blind_count": len(blind),
        "blind": [
            {
                "code": r["code"],
                "name": r["name"],
                "new": int(units[r["code"]].counts.get("reported", 0)) if r["code"] in units else 0,
            }
            for r in blind[:TOP_BLIND]
        ],
        **extra,
    }


def standing(inputs: Inputs, req: Request) -> dict[str, Any]:
    """The red and yellow lists of the period among the units below the scope (the board of
    :class:`~service.assessment.lists.ListService`, published or computed now)."""
    board = inputs.board(req.period)
    level = child_level(req.level)
    prefix = req.prefix
    out: dict[str, Any] = {
        "level": level,
        "published": bool(board.get("published")),
        "red": [],
        "yellow": [],
    }
    for sec in board["sections"]:
        if sec["kind"] != "grid" or sec["level"] != level:
            continue
        for s in sec["scores"]:
            if s["list"] in ("red", "yellow") and _in(s["key"], prefix):
                out[s["list"]].append(
                    {
                        "code": s["key"],
                        "name": s["name"],
                        "total": s["total"],
                        "grade": s["grade"],
                        "rank": s["rank"],
                    }
                )
        out["scored"] = sum(1 for s in sec["scores"] if _in(s["key"], prefix) and s["active"])
    return out


def data_stamp(session: Session, settings: AppSettings) -> dict[str, Any]:
    """Marks of the data a document saw: the latest change to a case and the latest step."""
    row = session.execute(
        text(
            "SELECT (SELECT max(updated_at) FROM cases WHERE city = :city) AS cases_at,"
            " (SELECT max(id) FROM case_events) AS last_event"
        ),
        {"city": settings.grids.city},
    ).one()
    return {
        "cases_updated_at": row.cases_at.isoformat() if row.cases_at else None,
        "last_event_id": row.last_event,
    }


def version_of(data: dict[str, Any]) -> str:
    """The data version of a document: sha256 of its data in canonical JSON."""
    raw = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _header(settings: AppSettings, req: Request, kind: str) -> dict[str, Any]:
    p = req.period
    if p.kind == "day":
        when = f"{p.first_day.year}年{p.first_day.month}月{p.first_day.day}日"
    elif p.kind == "week":
        when = (
            f"{p.first_day.year}年第{p.first_day.isocalendar()[1]}周"
            f"（{p.first_day.month}月{p.first_day.day}日—{p.last_day.month}月{p.last_day.day}日）"
        )
    else:
        when = f"{p.first_day.year}年{p.first_day.month}月"
    return {
        **p.as_dict(),
        "period_kind": p.kind,
        "kind": kind,
        "kind_zh": KIND_ZH[kind],
        "title": f"{req.scope_name}城市管理{KIND_ZH[kind]}",
        "subtitle": f"{when}（{PERIOD_ZH[p.kind]}报）",
        "scope": req.scope,
        "scope_name": req.scope_name,
        "level": req.level,
        "unit_level_zh": LEVEL_ZH[child_level(req.level)],
    }


def brief_data(inputs: Inputs, req: Request) -> dict[str, Any]:
    """Everything the 工作简报 of ``req`` says."""
    session, settings = inputs.session, inputs.settings
    head = headline(inputs, req)
    total = int(head["figures"].get("reported") or 0)
    campaigns = sections.section("campaigns", session, settings, req.prefix, req.period)
    return {
        **_header(settings, req, "brief"),
        "headline": head,
        "sources": by_source(session, settings, req, total),
        "categories": by_category(session, settings, req, total),
        "hotspots": hotspots(session, settings, req),
        "patrol": patrol(inputs, req),
        "standing": standing(inputs, req),
        "sections": [campaigns] if campaigns else [],
    }


def _deadline(settings: AppSettings, period: Period, days: int) -> str:
    """The date by which named units must have fixed their cases: the ``days``-th working day
    after the period (the issue day counts as the first when it is a working day)."""
    clock = work_clock(settings)
    day, left = period.last_day + timedelta(days=1), days
    while True:
        if clock.is_workday(day):
            left -= 1
            if left == 0:
                return day.isoformat()
        day += timedelta(days=1)


def _units(inputs: Inputs, req: Request) -> list[dict[str, Any]]:
    """The units below the scope and the departments working in it, with their overdue,
    reworked and recurring counts (only those with any), most first."""
    level = child_level(req.level)
    prefix = req.prefix
    grids = [f for code, f in inputs.grids(req.period)[level].items() if _in(code, prefix)]
    departments = inputs.departments(req.period, req.scope)
    out: list[dict[str, Any]] = []
    for f, kind in [(g, LEVEL_ZH[level]) for g in grids] + [(d, "部门") for d in departments]:
        v = f.values()
        counts = {k: int(v.get(k) or 0) for k, _ in CIRCULAR_KINDS}
        if any(counts.values()):
            out.append({"kind": kind, "key": f.key, "name": f.name or f.key, **counts})
    out.sort(key=lambda u: (-sum(u[k] for k, _ in CIRCULAR_KINDS), u["kind"], u["key"]))
    return out


def _praise(inputs: Inputs, req: Request) -> list[dict[str, Any]]:
    """The best units of the period (通报表扬): the highest on-time closure rate among the
    units below the scope and the departments with cases due, ties by closure rate and
    closed cases."""
    level = child_level(req.level)
    prefix = req.prefix
    cands = [f for code, f in inputs.grids(req.period)[level].items() if _in(code, prefix)]
    cands += inputs.departments(req.period, req.scope)
    rows: list[dict[str, Any]] = []
    for f in cands:
        v = f.values()
        rate = v.get("on_time_close_rate")
        if not v.get("due") or rate is None:
            continue
        rows.append(
            {
                "kind": LEVEL_ZH[level] if f.kind == "grid" else "部门",
                "key": f.key,
                "name": f.name or f.key,
                "due": int(v.get("due") or 0),
                "closed": int(v.get("closed") or 0),
                "on_time_close_rate": float(rate),
                "close_rate": v.get("close_rate"),
            }
        )
    rows.sort(
        key=lambda r: (-r["on_time_close_rate"], -(r["close_rate"] or 0), -r["closed"], r["key"])
    )
    return rows[:PRAISED]


def _cases(inputs: Inputs, req: Request, indicator: str, limit: int) -> list[dict[str, Any]]:
    ids = [
        r["id"] for r in inputs.engine.cases(req.period, "grid", req.scope, indicator, 0, limit)[0]
    ]
    if not ids:
        return []
    names: dict[str, str] = dict(
        inputs.session.execute(
            text("SELECT code, name FROM categories WHERE city = :city"),
            {"city": inputs.settings.grids.city},
        ).all()
    )
    tz = ZoneInfo(inputs.settings.grids.timezone)
    rows = inputs.session.scalars(select(Case).where(Case.id.in_(ids)).order_by(Case.id))
    return [
        {
            "id": c.id,
            "category": names.get(c.category_code, c.category_code),
            "address": c.address or "",
            "grid_code": c.grid_code or "",
            "department": c.department or "",
            "reported_at": c.reported_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "deadline_at": c.deadline_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            if c.deadline_at
            else "",
            "description": c.description or "",
            "photos": [p for p in (c.photos or []) if isinstance(p, str)][:3],
        }
        for c in rows
    ]


def circular_data(inputs: Inputs, req: Request) -> dict[str, Any]:
    """Everything the 督查通报 of ``req`` says."""
    session, settings = inputs.session, inputs.settings
    limit = settings.briefs.circular_cases
    supervision = sections.section("supervision", session, settings, req.prefix, req.period)
    return {
        **_header(settings, req, "circular"),
        "deadline": _deadline(settings, req.period, settings.briefs.circular_days),
        "units": _units(inputs, req),
        "cases": [
            {"key": key, "name": zh, "items": _cases(inputs, req, key, limit)}
            for key, zh in CIRCULAR_KINDS
        ],
        "praise": _praise(inputs, req),
        "sections": [supervision] if supervision else [],
    }


def unit_grids_of(session: Session, settings: AppSettings, req: Request) -> list[Grid]:
    """The current grids one level below the scope (the map's outlines)."""
    level = child_level(req.level)
    prefix = req.prefix
    return list(
        session.scalars(
            select(Grid)
            .where(
                Grid.city == settings.grids.city,
                Grid.level == level,
                Grid.valid_to.is_(None),
                Grid.code.startswith(prefix, autoescape=True),
            )
            .order_by(Grid.code)
        )
    )


def briefs_principal() -> Principal:
    """Who the stored documents are made as: the service itself without ``people.read``, so
    names and phones in the attached ledger are masked for every reader."""
    from service.accounts.permissions import PERMISSIONS

    return Principal(
        "system", None, "简报生成", frozenset(p for p in PERMISSIONS if p != "people.read")
    )


def local_midnight(day: date, tz: str) -> datetime:
    """Local midnight starting ``day``."""
    return datetime.combine(day, time(0), ZoneInfo(tz))

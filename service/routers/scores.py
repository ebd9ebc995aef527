"""``/api/assessment``: scoring schemes, scores, the 红黄榜 with its published revisions, its
export and its map layer.

Reads need ``cases.read`` (the export ``cases.export``, the map layer ``maps.read``) and keep to
the caller's scope like the figures do; adding a scheme version needs ``assessment.schemes``,
publishing and correcting a list ``assessment.publish``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from service.accounts.audit import AuditLog
from service.accounts.principal import Principal
from service.assessment import listexport
from service.assessment.definitions import BY_KEY
from service.assessment.figures import Figures
from service.assessment.lists import ListService, parse_section, revision_json
from service.assessment.maplayer import list_layer
from service.assessment.periods import Period, parse_period
from service.assessment.schemes import SchemeStore, scheme_json
from service.auth import Allow
from service.deps import ListsDep, SessionDep, SettingsDep
from service.errors import InvalidInput, NotFound
from service.http.bodyguard import GuardedRoute
from service.settings import AppSettings

router = APIRouter(prefix="/api/assessment", tags=["assessment"], route_class=GuardedRoute)

PeriodQuery = Annotated[
    str,
    Query(
        description="Local calendar period: 2026-11 (default form), 2026-11-29, 2026-W47, "
        "2026-Q4, 2026 or 2026-11-01..2026-11-15"
    ),
]
SubjectFilter = Annotated[
    str | None,
    Query(description="grid:<level>, department, worker or dispatcher (default: all)"),
]
RevisionQuery = Annotated[
    int | None, Query(ge=1, description="A published revision (default: the latest)")
]


def _period(text: str, settings: AppSettings) -> Period:
    return parse_period(text, settings.grids.timezone)


def _sections(subject: str | None) -> list[tuple[str, str | None]] | None:
    return None if subject is None else [parse_section(subject)]


def _scoped(board: dict[str, Any], principal: Principal, lists: ListService) -> dict[str, Any]:
    """The board with only the subjects ``principal`` may see (ranks are the whole group's)."""
    if principal.city_wide:
        return board
    sees = lists.engine.visibility(principal)
    sections = []
    for sec in board["sections"]:
        scores = [
            s for s in sec["scores"] if sees(Figures(s["kind"], s["key"], s["name"], s["level"]))
        ]
        keys = {s["key"] for s in scores}
        groups = [
            {
                **g,
                "red": [k for k in g["red"] if k in keys],
                "yellow": [k for k in g["yellow"] if k in keys],
            }
            for g in sec["groups"]
            if any(s["group"] == g["key"] for s in scores)
        ]
        sections.append({**sec, "groups": groups, "scores": scores})
    return {**board, "sections": sections}


# -- schemes -----------------------------------------------------------------------------------
@router.get("/schemes", summary="Scoring scheme versions, newest first, and the one in force")
def list_schemes(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: Annotated[str | None, Query(description="Which version is in force then")] = None,
) -> dict[str, Any]:
    store = SchemeStore(session, settings.grids.city)
    at = _period(period, settings).start if period else datetime.now(ZoneInfo("UTC"))
    return {
        "at": at.isoformat(),
        "in_force": store.in_force(at).id,
        "items": [scheme_json(r, with_document=False) for r in store.all()],
    }


@router.get("/schemes/{scheme_id}", summary="One scoring scheme version with its document")
def get_scheme(
    scheme_id: Annotated[int, Path(ge=1)],
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
) -> dict[str, Any]:
    return scheme_json(SchemeStore(session, settings.grids.city).get(scheme_id))


@router.post("/schemes", status_code=201, summary="Add a scoring scheme version (admins)")
def add_scheme(
    session: SessionDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("assessment.schemes")],
    document: Annotated[dict[str, Any], Body(description="The scheme (see the README)")],
    valid_from: Annotated[
        str | None,
        Body(description="Local date (2026-12-01) or ISO time it applies from (default: now)"),
    ] = None,
) -> dict[str, Any]:
    at = _valid_from(valid_from, settings.grids.timezone)
    store = SchemeStore(session, settings.grids.city)
    row = store.add(document, at, by, set(BY_KEY))
    AuditLog(session, settings).record(
        by, "create", "scoring_scheme", str(row.id), None, scheme_json(row)
    )
    return scheme_json(row)


def _valid_from(text: str | None, tz: str) -> datetime:
    if text is None:
        return datetime.now(ZoneInfo("UTC"))
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), ZoneInfo(tz))
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(
            f"valid_from {text!r} is neither a date (2026-12-01) nor an ISO time",
            field="valid_from",
        ) from exc
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(tz))


# -- scores ------------------------------------------------------------------------------------
@router.get("/scores", summary="Every subject's score, grade, rank and list for a period")
def scores(
    lists: ListsDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: PeriodQuery,
    subject: SubjectFilter = None,
    revision: RevisionQuery = None,
) -> dict[str, Any]:
    p = _period(period, settings)
    board = _scoped(lists.board(p, _sections(subject), revision), principal, lists)
    items = [
        {k: v for k, v in s.items() if k not in ("components", "deductions", "bonuses")}
        for sec in board["sections"]
        for s in sec["scores"]
    ]
    return {**_head(board), "items": items}


def _head(board: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in board.items() if k != "sections"}


KeyPath = Annotated[str, Path(min_length=1, max_length=200, description="Subject key")]


@router.get("/scores/{kind}/{key}", summary="One subject's score, explained")
def subject_score(
    kind: str,
    key: KeyPath,
    lists: ListsDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: PeriodQuery,
    revision: RevisionQuery = None,
) -> dict[str, Any]:
    p = _period(period, settings)
    # 422 for an unknown kind, 404 for an unknown grid or worker, 403 outside the scope
    subject = lists.engine.visible_subject(principal, kind, key)
    sections = [(kind, subject.level)] if kind == "grid" else [(kind, None)]
    board = lists.board(p, sections, revision)
    for sec in board["sections"]:
        for s in sec["scores"]:
            if s["key"] == key:
                return {**_head(board), "section": sec["subject"], **s}
    raise NotFound(f"the scheme in force for {p.label} scores no {kind} {key}", field="key")


# -- lists -------------------------------------------------------------------------------------
@router.get("/lists", summary="The red and yellow lists of a period, per peer group")
def get_lists(
    lists: ListsDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: PeriodQuery,
    subject: SubjectFilter = None,
    group: Annotated[
        str | None, Query(max_length=40, description="One peer group: its key (a grid code, all)")
    ] = None,
    revision: RevisionQuery = None,
) -> dict[str, Any]:
    p = _period(period, settings)
    board = _scoped(lists.board(p, _sections(subject), revision), principal, lists)
    sections = []
    for sec in board["sections"]:
        rows = {s["key"]: s for s in sec["scores"]}
        groups = [g for g in sec["groups"] if group is None or g["key"] == group]
        sections.append(
            {
                "subject": sec["subject"],
                "rule": sec["rule"],
                "groups": [
                    {
                        **g,
                        "red": [_brief(rows[k]) for k in g["red"] if k in rows],
                        "yellow": [_brief(rows[k]) for k in g["yellow"] if k in rows],
                    }
                    for g in groups
                ],
            }
        )
    return {**_head(board), "sections": sections}


def _brief(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s[k] for k in ("key", "name", "total", "grade", "rank")}


class PublishIn(BaseModel):
    """Which period to publish."""

    period: str = Field(min_length=1, max_length=40)


class RevisionIn(BaseModel):
    """Why a published list is corrected."""

    reason: str = Field(min_length=1, max_length=2000)


@router.post("/lists/publish", status_code=201, summary="Publish (freeze) a period's lists")
def publish(
    body: PublishIn,
    lists: ListsDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("assessment.publish")],
) -> dict[str, Any]:
    row = lists.publish(_period(body.period, settings), by)
    return revision_json(row)


@router.post(
    "/lists/{list_id}/revisions",
    status_code=201,
    summary="Correct a published list: a new revision with a reason",
)
def revise(
    list_id: Annotated[int, Path(ge=1)],
    body: RevisionIn,
    lists: ListsDep,
    by: Annotated[Principal, Allow("assessment.publish")],
) -> dict[str, Any]:
    return revision_json(lists.revise(list_id, body.reason, by))


_FROZEN = "Published lists are frozen: any edit is a 409 (correct with a revision)"


@router.put("/lists/{list_id}", summary=_FROZEN, operation_id="replace_published_list")
@router.patch("/lists/{list_id}", summary=_FROZEN, operation_id="edit_published_list")
@router.delete("/lists/{list_id}", summary=_FROZEN, operation_id="delete_published_list")
def edit_list(
    list_id: Annotated[int, Path(ge=1)],
    lists: ListsDep,
    by: Annotated[Principal, Allow("assessment.publish")],
) -> dict[str, Any]:
    lists.refuse_edit(list_id)
    raise AssertionError("refuse_edit always raises")  # pragma: no cover


@router.get("/lists/export", summary="The list as CSV or XLSX, one row per unit, Chinese headers")
def export_list(
    lists: ListsDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.export")],
    period: PeriodQuery,
    subject: Annotated[str, Query(description="grid:<level>, department, worker or dispatcher")],
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    revision: RevisionQuery = None,
) -> Response:
    p = _period(period, settings)
    section = parse_section(subject)
    board = _scoped(lists.board(p, [section], revision), principal, lists)
    rows = [s for sec in board["sections"] for s in sec["scores"]]
    name = f"list-{subject.replace(':', '-')}-{p.label.replace('..', '_')}"
    if format == "xlsx":
        return Response(
            listexport.xlsx(rows, f"红黄榜 {p.label}"),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    body: Iterator[bytes] = listexport.csv_stream(rows)
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get(
    "/map",
    summary="The red/yellow map layer: grids of a level coloured by grade or list, GeoJSON",
)
def map_layer(
    lists: ListsDep,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("maps.read")],
    period: PeriodQuery,
    level: Annotated[
        Literal["district", "street", "community", "unit"], Query(description="Grid level")
    ] = "community",
    by: Annotated[Literal["grade", "list"], Query(description="Colour by")] = "grade",
    revision: RevisionQuery = None,
    datum: Annotated[
        Literal["wgs84", "gcj02", "bd09"], Query(description="Coordinates of the answer")
    ] = "wgs84",
) -> dict[str, Any]:
    p = _period(period, settings)
    board = _scoped(lists.board(p, [("grid", level)], revision), principal, lists)
    scores = [s for sec in board["sections"] for s in sec["scores"]]
    return list_layer(session, settings, _head(board), scores, level, by, datum)

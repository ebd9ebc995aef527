"""``/api/assessment``: indicator definitions, figures of every subject of a kind for a
period, one subject's figures with the cases behind each count, and the figures as CSV/XLSX.

Reads need ``cases.read`` (exports ``cases.export``), and answers keep to the caller's scope:
grids in its grid scope, its own department, workers whose grids are all in scope; dispatchers
and other departments city-wide only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from service.accounts.principal import Principal
from service.assessment import exports
from service.assessment.figures import (
    GRID_LEVELS,
    KINDS,
    Figures,
    stamp,
)
from service.assessment.periods import Period, parse_period
from service.assessment.store import definitions_in_force
from service.auth import Allow
from service.deps import EngineDep, SessionDep, SettingsDep
from service.errors import InvalidInput
from service.http.bodyguard import GuardedRoute
from service.settings import AppSettings

router = APIRouter(prefix="/api/assessment", tags=["assessment"], route_class=GuardedRoute)

PeriodQuery = Annotated[
    str,
    Query(
        description="Local calendar period: 2026-11-29, 2026-W47, 2026-11, 2026-Q4, 2026 or "
        "2026-11-01..2026-11-15"
    ),
]
SubjectQuery = Annotated[
    str,
    Query(
        description="grid:<level> (city, district, street, community, unit), department, "
        "worker or dispatcher"
    ),
]


def _period(text: str, settings: AppSettings) -> Period:
    return parse_period(text, settings.grids.timezone)


def _subject(text: str) -> tuple[str, str | None]:
    kind, _, level = text.strip().partition(":")
    if kind == "grid":
        if level not in GRID_LEVELS:
            raise InvalidInput(
                f"subject {text!r}: grid subjects are grid:<level> with a level of "
                + ", ".join(GRID_LEVELS),
                field="subject",
            )
        return kind, level
    if kind not in KINDS or level:
        raise InvalidInput(
            f"unknown subject {text!r}; use grid:<level>, department, worker, dispatcher"
            " or hotspot",
            field="subject",
        )
    return kind, None


@router.get("/indicators", summary="Indicator definitions in force for a period (default: now)")
def indicators(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: Annotated[str | None, Query(description="Definitions in force then")] = None,
) -> dict[str, Any]:
    at = _period(period, settings).start if period else stamp()
    return {"at": at.isoformat(), "indicators": definitions_in_force(session, at)}


@router.get("/figures", summary="Every subject of a kind for a period, one row each")
def figures(
    engine: EngineDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: PeriodQuery,
    subject: SubjectQuery,
) -> dict[str, Any]:
    p = _period(period, settings)
    kind, level = _subject(subject)
    rows = engine.in_scope(principal, engine.figures(p, kind, level))
    return {
        **p.as_dict(),
        "subject": subject,
        "computed_at": stamp().isoformat(),
        "items": [r.as_dict() for r in rows],
    }


@router.get("/figures/export", summary="The figures as CSV (streamed) or XLSX, Chinese headers")
def export_figures(
    engine: EngineDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.export")],
    period: PeriodQuery,
    subject: SubjectQuery,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
) -> Response:
    p = _period(period, settings)
    kind, level = _subject(subject)
    rows = engine.in_scope(principal, engine.figures(p, kind, level))
    name = f"figures-{kind}{'-' + level if level else ''}-{p.label.replace('..', '_')}"
    if format == "xlsx":
        return Response(
            exports.xlsx(rows, f"考核指标 {p.label}"),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return StreamingResponse(
        exports.csv_stream(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


KeyPath = Annotated[str, Path(min_length=1, max_length=200, description="Subject key")]


@router.get("/figures/{kind}/{key}", summary="One subject's figures with their components")
def subject_figures(
    kind: str,
    key: KeyPath,
    engine: EngineDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: PeriodQuery,
) -> dict[str, Any]:
    p = _period(period, settings)
    engine.visible_subject(principal, kind, key)  # before anything is computed
    one = engine.subject(p, kind, key)
    return {
        **p.as_dict(),
        "computed_at": stamp().isoformat(),
        **one.as_dict(),
        "components": _components(one),
    }


def _components(one: Figures) -> dict[str, dict[str, Any]]:
    """Each quotient with its numerator and denominator (keys and values)."""
    from service.assessment.definitions import DEFINITIONS

    values = one.values()
    return {
        d.key: {
            "value": values.get(d.key),
            "numerator": {"key": d.numerator, "value": values.get(d.numerator or "")},
            "denominator": {"key": d.denominator, "value": values.get(d.denominator or "")},
        }
        for d in DEFINITIONS
        if d.kind != "count" and one.kind in d.subjects
    }


@router.get("/figures/{kind}/{key}/cases", summary="The cases behind one count (paged by id)")
def subject_cases(
    kind: str,
    key: KeyPath,
    engine: EngineDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: PeriodQuery,
    indicator: Annotated[str, Query(description="A count indicator, e.g. overdue_open")],
    after: Annotated[int, Query(ge=0, description="next_after of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    p = _period(period, settings)
    engine.visible_subject(principal, kind, key)
    rows, nxt = engine.cases(p, kind, key, indicator, after, limit)
    return {
        **p.as_dict(),
        "kind": kind,
        "key": key,
        "indicator": indicator,
        "items": rows,
        "next_after": nxt,
    }


@router.get(
    "/figures/worker/{key}/unpatrolled-grids",
    summary="The worker's assigned unit grids no track of theirs passed in the period",
)
def worker_unpatrolled_grids(
    key: KeyPath,
    engine: EngineDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Allow("cases.read")],
    period: PeriodQuery,
) -> dict[str, Any]:
    """The drill-down of ``patrol_grid_share`` (grids, not cases): assigned unit grids not
    within the coverage radius of the worker's tracks inside the period, by code."""
    p = _period(period, settings)
    engine.visible_subject(principal, "worker", key)
    return {**p.as_dict(), "kind": "worker", "key": key, "items": engine.unpatrolled_grids(p, key)}

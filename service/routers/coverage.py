"""``/api/coverage``: patrol coverage per unit grid and hotspot, blind spots, problems per
patrol hour — as JSON, GeoJSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from geoalchemy2.shape import to_shape

from service.db.models import CoverageRun
from service.deps import SessionDep, SettingsDep
from service.geojson import geometry_json
from service.http.bodyguard import GuardedRoute
from service.http.params import DatumQuery
from service.http.timeparse import aware, iso
from service.patrol.coverage import CoverageService

router = APIRouter(prefix="/api/coverage", tags=["coverage"], route_class=GuardedRoute)

Period = Literal["hour", "day", "week"]
Format = Literal["json", "geojson", "csv"]


async def _coverage(session: SessionDep, settings: SettingsDep) -> CoverageService:
    return CoverageService(session, settings)


CoverageDep = Annotated[CoverageService, Depends(_coverage)]
StartQuery = Annotated[
    datetime,
    Query(
        description="Start of the period (local time without offset): on the hour, at "
        "midnight, or a Monday at midnight"
    ),
]
GridQuery = Annotated[str | None, Query(description="Grid code: only its subtree")]


def _run_json(run: CoverageRun) -> dict[str, Any]:
    return {
        "period": run.period,
        "from": iso(run.period_start),
        "to": iso(run.period_end),
        "computed_at": iso(run.computed_at),
        "radius_m": run.radius_m,
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        "\ufeff" + buf.getvalue(),  # BOM: Excel opens UTF-8 (Chinese names) correctly
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/grids", summary="Coverage of each unit grid in a period")
def grid_coverage(
    cov: CoverageDep,
    settings: SettingsDep,
    start: StartQuery,
    period: Period = "day",
    grid: GridQuery = None,
    format: Format = "json",
    datum: DatumQuery = "wgs84",  # of the boundaries with format=geojson
) -> Any:
    run, rows = cov.grid_rows(period, aware(start, settings.grids.timezone), grid)
    rows = [_plain(r) for r in rows]
    if format == "csv":
        return _csv(rows, f"coverage-{run.period}-{run.period_start:%Y%m%d%H}")
    if format == "geojson":
        geoms = _geometries(cov, [r["code"] for r in rows], run.period_start, datum)
        features = [
            {"type": "Feature", "id": r["code"], "geometry": geoms.get(r["code"]), "properties": r}
            for r in rows
        ]
        body = {"type": "FeatureCollection", **_run_json(run), "features": features}
        return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")
    return {**_run_json(run), "grids": rows}


def _geometries(cov: CoverageService, codes: list[str], at: datetime, datum: str) -> dict[str, Any]:
    wanted = set(codes)
    return {
        g.code: geometry_json(to_shape(g.geom), datum)
        for g in cov.unit_grids(at)
        if g.code in wanted
    }


@router.get("/hotspots", summary="Coverage of each active hotspot against its patrol quota")
def hotspot_coverage(
    cov: CoverageDep,
    settings: SettingsDep,
    start: StartQuery,
    period: Period = "week",
    format: Literal["json", "csv"] = "json",
) -> Any:
    run, rows = cov.hotspot_rows(period, aware(start, settings.grids.timezone))
    rows = [_plain(r) for r in rows]
    if format == "csv":
        return _csv(rows, f"hotspot-coverage-{run.period}-{run.period_start:%Y%m%d%H}")
    return {**_run_json(run), "hotspots": rows}


@router.get("/blind-spots", summary="Unit grids and hotspots nobody visited in the last N hours")
def blind_spots(
    cov: CoverageDep,
    settings: SettingsDep,
    hours: Annotated[float, Query(gt=0, le=744, description="Look back this many hours")] = 24,
    at: Annotated[datetime | None, Query(description="End of the window (default now)")] = None,
    grid: GridQuery = None,
) -> dict[str, Any]:
    result = cov.blind_spots(hours, aware(at, settings.grids.timezone), grid)
    return _plain(result)


@router.get(
    "/problems",
    summary="Cases per patrol hour per unit grid ('high problems, low patrol' first)",
)
def problems_per_patrol_hour(
    cov: CoverageDep,
    settings: SettingsDep,
    start: StartQuery,
    period: Period = "week",
    grid: GridQuery = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    run, rows = cov.problems_per_patrol_hour(period, aware(start, settings.grids.timezone), grid)
    if format == "csv":
        return _csv(rows, f"problems-per-patrol-hour-{run.period}-{run.period_start:%Y%m%d%H}")
    return {**_run_json(run), "grids": rows}

"""``/api/coverage``: patrol coverage per unit grid and hotspot, blind spots, problems per
patrol hour — as JSON, GeoJSON or CSV."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from service.accounts.principal import Principal
from service.auth import Allow
from service.deps import CoverageDep, SettingsDep
from service.http.bodyguard import GuardedRoute
from service.http.params import DatumQuery
from service.http.timeparse import aware
from service.patrol.render import coverage_geometries, csv_response, plain_row, run_json

router = APIRouter(prefix="/api/coverage", tags=["coverage"], route_class=GuardedRoute)


Period = Literal["hour", "day", "week"]


Format = Literal["json", "geojson", "csv"]


StartQuery = Annotated[
    datetime,
    Query(
        description="Start of the period (local time without offset): on the hour, at "
        "midnight, or a Monday at midnight"
    ),
]


GridQuery = Annotated[str | None, Query(description="Grid code: only its subtree")]

# every answer covers the grids (and hotspots touching them) in the caller's grid scope
Reader = Annotated[Principal, Allow("patrol.read")]


@router.get("/grids", summary="Coverage of each unit grid in a period")
def grid_coverage(
    cov: CoverageDep,
    by: Reader,
    settings: SettingsDep,
    start: StartQuery,
    period: Period = "day",
    grid: GridQuery = None,
    format: Format = "json",
    datum: DatumQuery = "wgs84",  # of the boundaries with format=geojson
) -> Any:
    run, rows = cov.grid_rows(period, aware(start, settings.grids.timezone), by, grid)
    rows = [plain_row(r) for r in rows]
    if format == "csv":
        return csv_response(rows, f"coverage-{run.period}-{run.period_start:%Y%m%d%H}")
    if format == "geojson":
        geoms = coverage_geometries(cov, [r["code"] for r in rows], run.period_start, datum)
        features = [
            {"type": "Feature", "id": r["code"], "geometry": geoms.get(r["code"]), "properties": r}
            for r in rows
        ]
        body = {"type": "FeatureCollection", **run_json(run), "features": features}
        return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")
    return {**run_json(run), "grids": rows}


@router.get(
    "/hotspots",
    summary="Coverage of each active hotspot against its patrol quota",
)
def hotspot_coverage(
    cov: CoverageDep,
    by: Reader,
    settings: SettingsDep,
    start: StartQuery,
    period: Period = "week",
    format: Literal["json", "csv"] = "json",
) -> Any:
    run, rows = cov.hotspot_rows(period, aware(start, settings.grids.timezone), by)
    rows = [plain_row(r) for r in rows]
    if format == "csv":
        return csv_response(rows, f"hotspot-coverage-{run.period}-{run.period_start:%Y%m%d%H}")
    return {**run_json(run), "hotspots": rows}


@router.get(
    "/blind-spots",
    summary="Unit grids and hotspots nobody visited in the last N hours",
)
def blind_spots(
    cov: CoverageDep,
    by: Reader,
    settings: SettingsDep,
    hours: Annotated[float, Query(gt=0, le=744, description="Look back this many hours")] = 24,
    at: Annotated[datetime | None, Query(description="End of the window (default now)")] = None,
    grid: GridQuery = None,
) -> dict[str, Any]:
    result = cov.blind_spots(hours, by, aware(at, settings.grids.timezone), grid)
    return plain_row(result)


@router.get(
    "/problems",
    summary="Cases per patrol hour per unit grid ('high problems, low patrol' first)",
)
def problems_per_patrol_hour(
    cov: CoverageDep,
    by: Reader,
    settings: SettingsDep,
    start: StartQuery,
    period: Period = "week",
    grid: GridQuery = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    start_at = aware(start, settings.grids.timezone)
    run, rows = cov.problems_per_patrol_hour(period, start_at, by, grid)
    if format == "csv":
        return csv_response(
            rows, f"problems-per-patrol-hour-{run.period}-{run.period_start:%Y%m%d%H}"
        )
    return {**run_json(run), "grids": rows}

"""``/api/heat/{layer}``: server-side aggregates for the dispatcher's heat maps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from service.accounts.principal import Principal
from service.auth import Allow
from service.deps import HeatServiceDep, SettingsDep
from service.http.bodyguard import GuardedRoute
from service.http.timeparse import aware
from service.maps.heat import LAYERS

router = APIRouter(prefix="/api/heat", tags=["heat maps"], route_class=GuardedRoute)


@router.get(
    "/{layer}",
    summary="A heat-map layer: GeoJSON with fill colours and a legend, or a PNG overlay",
    description="Layers: " + ", ".join(LAYERS) + ". Cases and patrols of [from, to) "
    "(default: the last 30 days), optionally one category (prefix) and one grid's subtree. "
    "Only the cases, grids and patrols in your scope.",
)
def heat_layer(
    layer: str,
    heat: HeatServiceDep,
    by: Annotated[Principal, Allow("maps.read")],
    settings: SettingsDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    category: Annotated[str | None, Query(max_length=8)] = None,
    grid: Annotated[str | None, Query(max_length=15)] = None,
    per: Annotated[Literal["km2", "grid", "patrol_hour"], Query()] = "km2",
    size_m: Annotated[float, Query(description="hexbins: flat-to-flat size")] = 250.0,
    bandwidth_m: Annotated[float | None, Query(description="kde/tracks: kernel sd")] = None,
    permutations: Annotated[int, Query(description="gi: permutations")] = 999,
    metric: Annotated[Literal["share", "since"], Query(description="coverage")] = "share",
    min_cases: Annotated[int, Query(description="blind: least cases")] = 3,
    datum: Annotated[
        Literal["wgs84", "gcj02", "bd09"], Query(description="Coordinates of the answer")
    ] = "wgs84",
) -> dict[str, Any]:
    tz = settings.grids.timezone
    flt = heat.checked(aware(start, tz), aware(end, tz), category, grid, by=by)
    by_layer: dict[str, dict[str, Any]] = {
        "grids": {"per": per},
        "hexbins": {"size_m": size_m},
        "kde": {} if bandwidth_m is None else {"bandwidth_m": bandwidth_m},
        "gi": {"per": per, "permutations": permutations},
        "coverage": {"metric": metric},
        "tracks": {} if bandwidth_m is None else {"bandwidth_m": bandwidth_m},
        "blind": {"min_cases": min_cases},
    }
    options = by_layer.get(layer, {})
    return heat.layer(layer, flt, datum, **options)

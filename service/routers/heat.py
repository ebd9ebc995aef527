"""``/api/heat/{layer}``: server-side aggregates for the dispatcher's heat maps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request

from service.accounts.principal import Principal
from service.auth import Allow
from service.deps import HeatServiceDep, SettingsDep
from service.http.bodyguard import GuardedRoute
from service.http.timeparse import aware
from service.maps.heat import LAYERS
from service.maps.heattiles import (
    TILED_LAYERS,
    HeatStore,
    layer_options,
    whole_days,
)

router = APIRouter(prefix="/api/heat", tags=["heat maps"], route_class=GuardedRoute)


@router.get(
    "/{layer}",
    summary="A heat-map layer: GeoJSON with fill colours and a legend, or a PNG overlay",
    description="Layers: " + ", ".join(LAYERS) + ". Cases and patrols of [from, to) "
    "(default: the last 30 days), optionally one category (prefix) and one grid's subtree. "
    "Only the cases, grids and patrols in your scope.",
)
def heat_layer(
    request: Request,
    background: BackgroundTasks,
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
    features: Annotated[
        bool,
        Query(
            description="false: the legend and window only, no features (the tiled layers "
            + ", ".join(TILED_LAYERS)
            + " are drawn from /tiles/heat/{layer}/{z}/{x}/{y}.mvt; without 'to' the window "
            "then ends at the next local midnight)"
        ),
    ] = True,
    code: Annotated[
        str | None,
        Query(
            max_length=15,
            description="with features=false on a tiled layer: also the stored properties of "
            "this unit grid ('properties'; the popup of a tile, whose features carry only "
            "code and fill)",
        ),
    ] = None,
) -> dict[str, Any]:
    tz = settings.grids.timezone
    start, end = aware(start, tz), aware(end, tz)
    options = layer_options(
        layer,
        per=per,
        size_m=size_m,
        bandwidth_m=bandwidth_m,
        permutations=permutations,
        metric=metric,
        min_cases=min_cases,
    )
    if not features and layer in TILED_LAYERS:
        # the stored layer's legend: computed once per filter and data version, kept across
        # restarts, the same one its tiles are coloured by
        start, end = whole_days(start, end, tz)
        flt = heat.checked(start, end, category, grid, by=by)
        store = HeatStore(heat.session, settings, heat)
        stored = store.serve(layer, flt, options, background.add_task, request.app.state.sessions)
        answer = {
            "type": "FeatureCollection",
            "legend": stored.legend,
            **stored.window,
            **stored.about(),
            "count": stored.features,
            "features": [],
        }
        if code is not None:
            answer["properties"] = store.properties(stored, code)
        return answer
    flt = heat.checked(start, end, category, grid, by=by)
    body = heat.layer(layer, flt, datum, **options)
    return body if features or "features" not in body else {**body, "features": []}

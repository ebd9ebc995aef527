"""``/tiles``: Mapbox vector tiles of grids and open cases for the dispatcher map."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.accounts.principal import Principal
from service.auth import Allow, public_grids
from service.db.engine import session_scope
from service.deps import HeatServiceDep, SessionsDep, SettingsDep, TileCacheDep
from service.http.bodyguard import GuardedRoute
from service.http.timeparse import aware
from service.maps.heattiles import (
    TILED_LAYERS,
    HeatStore,
    check_layer,
    layer_key,
    layer_options,
    whole_days,
)
from service.maps.tiles import (
    MVT_MEDIA_TYPE,
    TILE_DATUMS,
    Tile,
    TileCache,
    TileRequest,
    TileService,
    cached_tile,
    make_tile,
    tile_request,
)
from service.settings import AppSettings

# checked by tile_request (422 naming the field); the enum documents the choices
DatumQuery = Annotated[
    str,
    Query(
        description="wgs84, or gcj02 to line up with AMap/Tencent base maps",
        json_schema_extra={"enum": list(TILE_DATUMS)},
    ),
]

router = APIRouter(prefix="/tiles", tags=["tiles"], route_class=GuardedRoute)

# grids change rarely: browsers may reuse a tile for a minute; cases are revalidated every time
CACHE_CONTROL = {"grids": "public, max-age=60", "cases": "no-cache"}


def _tile_in_session(
    sessions: sessionmaker[Session],
    settings: AppSettings,
    req: TileRequest,
    cache: TileCache,
    by: Principal,
) -> Tile:
    with session_scope(sessions) as session:
        return TileService(session, settings).tile(req, cache, by)


def _tile_response(request: Request, tile: Tile, cache_control: str) -> Response:
    """The tile, gzipped when the client takes it (compressed once, when rendered: the app's
    gzip middleware leaves an answer with a Content-Encoding alone), or 304."""
    body, etag, encoding = tile.data, tile.etag, {}
    if tile.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        # another representation, another strong ETag
        body, etag, encoding = tile.gzipped, tile.etag[:-1] + '-gzip"', {"Content-Encoding": "gzip"}
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=MVT_MEDIA_TYPE, headers={**headers, **encoding})


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    summary="A vector tile (grids, or the open cases in your scope: maps.read)",
    response_class=Response,
    responses={
        200: {"content": {MVT_MEDIA_TYPE: {}}, "description": "Mapbox vector tile"},
        304: {"description": "The tile matches If-None-Match"},
    },
)
async def get_tile(
    request: Request,
    # grids follow the public_grids setting; the case layer needs maps.read (the tile
    # service checks it) and shows only the caller's cases
    by: Annotated[Principal, Allow("grids.read", public=public_grids)],
    sessions: SessionsDep,
    settings: SettingsDep,
    cache: TileCacheDep,
    layer: Annotated[str, Path(description="grids | cases")],
    z: Annotated[int, Path(description="Zoom, 0-22")],
    x: Annotated[int, Path(description="Column, 0..2^z-1 (west to east)")],
    y: Annotated[int, Path(description="Row, 0..2^z-1 (north to south)")],
    level: Annotated[
        Literal["city", "district", "street", "community", "unit"] | None,
        Query(description="grids: draw only this level, whatever the zoom"),
    ] = None,
    category: Annotated[
        str | None, Query(description="cases: category code or prefix ('05')")
    ] = None,
    grid: Annotated[str | None, Query(description="cases: a grid code (its whole subtree)")] = None,
    campaign: Annotated[
        int | None, Query(description="cases: only the cases tagged by this campaign (id)")
    ] = None,
    datum: DatumQuery = "wgs84",
) -> Response:
    req = tile_request(
        layer, z, x, y, level=level, category=category, grid=grid, datum=datum, campaign=campaign
    )
    # async: a cached tile known fresh is answered on the event loop, with no session at all
    tile = cached_tile(settings.grids.city, req, cache, by)
    if tile is None:
        tile = await run_in_threadpool(_tile_in_session, sessions, settings, req, cache, by)
    return _tile_response(request, tile, CACHE_CONTROL[req.layer])


@router.get(
    "/heat/{layer}/{z}/{x}/{y}.mvt",
    summary="A heat-layer vector tile: unit grids with the layer's values (maps.read)",
    description="Layers: " + ", ".join(TILED_LAYERS) + ". The unit grids in your scope meeting "
    "the tile (MVT layer 'heat') with the properties and fill colour of /api/heat/{layer} for "
    "the same filter; its legend is /api/heat/{layer}?features=false. Without 'to' the window "
    "ends at the next local midnight, without 'from' it is 30 days long.",
    response_class=Response,
    responses={
        200: {"content": {MVT_MEDIA_TYPE: {}}, "description": "Mapbox vector tile"},
        304: {"description": "The tile matches If-None-Match"},
    },
)
def get_heat_tile(
    request: Request,
    background: BackgroundTasks,
    by: Annotated[Principal, Allow("maps.read")],
    heat: HeatServiceDep,
    settings: SettingsDep,
    cache: TileCacheDep,
    layer: Annotated[str, Path(description=" | ".join(TILED_LAYERS))],
    z: Annotated[int, Path(description="Zoom, 0-22")],
    x: Annotated[int, Path(description="Column, 0..2^z-1 (west to east)")],
    y: Annotated[int, Path(description="Row, 0..2^z-1 (north to south)")],
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    category: Annotated[str | None, Query(max_length=8)] = None,
    grid: Annotated[str | None, Query(max_length=15)] = None,
    per: Annotated[Literal["km2", "grid", "patrol_hour"], Query()] = "km2",
    permutations: Annotated[int, Query(description="gi: permutations")] = 999,
    metric: Annotated[Literal["share", "since"], Query(description="coverage")] = "share",
    min_cases: Annotated[int, Query(description="blind: least cases")] = 3,
    datum: DatumQuery = "wgs84",
) -> Response:
    req = tile_request("grids", z, x, y, datum=datum)
    store = HeatStore(heat.session, settings, heat)
    check_layer(layer)
    tz = settings.grids.timezone
    start_at, end_at = whole_days(aware(start, tz), aware(end, tz), tz)
    flt = heat.checked(start_at, end_at, category, grid, by=by)
    options = layer_options(
        layer, per=per, permutations=permutations, metric=metric, min_cases=min_cases
    )
    city = settings.grids.city
    key = layer_key(city, layer, flt, options)
    version = cache.version((city, "heat", key), lambda: store.version(flt))
    tile_key = (city, "heat", key, version, z, x, y, datum)
    tile = cache.get(tile_key)
    if tile is None:
        # values of an earlier data version are drawn while the current ones are computed
        # after the answer (stale-while-revalidate); only current tiles are kept in memory
        stored = store.serve(
            layer, flt, options, background.add_task, request.app.state.sessions, str(version)
        )
        tile = make_tile(store.tile(stored, req, flt.end))
        if not stored.stale:
            cache.put(tile_key, tile)
    return _tile_response(request, tile, "no-cache")

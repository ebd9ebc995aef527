"""``/``: the dispatcher's map page, and ``/static`` (Leaflet and the page's scripts).

The page is built by :func:`layers.page.dispatcher_page` from plain data read here; the layers
fetch their data from ``/api/heat``, ``/api/hotspots`` and ``/tiles`` in the browser. A filter
that cannot be shown (a date that is no date, an unknown category or grid, a period longer than
the heat layers allow) answers a 4xx HTML page that says why, never an empty map.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session

from gis.datum import from_wgs84
from layers.assets import STATIC_DIR, STATIC_URL
from layers.page import (
    BaseMap,
    CategoryOption,
    FilterError,
    PageFilter,
    PageOptions,
    dispatcher_page,
    error_page,
)
from service.cases.catalogue import Catalogue
from service.cases.workflow import LABELS_ZH, OPEN_STATUSES
from service.clock import now
from service.deps import SessionDep, SettingsDep
from service.errors import CitygridError, NotFound, status_for
from service.grids.registry import Registry
from service.grids.repository import GridFilter
from service.hotspots.hotspots import HotspotService
from service.http.bodyguard import GuardedRoute
from service.maps.heat import HeatService
from service.settings import AppSettings

router = APIRouter(tags=["pages"], route_class=GuardedRoute)


def mount_static(app: FastAPI) -> None:
    """Serve the vendored Leaflet files and the page's own scripts at ``/static``."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")


@router.get(
    "/",
    summary="The dispatcher's map page (HTML)",
    description="Heat layers of cases reported from `from` to `to` (dates, both included; "
    "default the last 30 days), optionally one `category` (code or prefix) and one `grid` "
    "(its subtree); grid boundaries, hotspots and open cases on top.",
    response_class=HTMLResponse,
    responses={404: {"content": {"text/html": {}}}, 422: {"content": {"text/html": {}}}},
)
def dispatcher_map(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    first: Annotated[str | None, Query(alias="from", description="First day, YYYY-MM-DD")] = None,
    last: Annotated[str | None, Query(alias="to", description="Last day, YYYY-MM-DD")] = None,
    category: Annotated[str | None, Query(description="Category code or prefix")] = None,
    grid: Annotated[str | None, Query(description="Grid code (any level)")] = None,
) -> HTMLResponse:
    base = request.scope.get("root_path", "")
    try:
        flt = PageFilter.parse(
            first,
            last,
            category,
            grid,
            today=datetime.now(ZoneInfo(settings.grids.timezone)).date(),
        )
        options = page_options(session, settings, flt, base)
    except FilterError as exc:
        return _refused(422, exc.message, exc.field, base)
    except CitygridError as exc:
        return _refused(status_for(exc), exc.message, exc.field, base)
    return HTMLResponse(dispatcher_page(options))


def page_options(
    session: Session, settings: AppSettings, flt: PageFilter, base: str = ""
) -> PageOptions:
    """Everything the page shows, checked against the data (``CitygridError`` when a part of
    the filter does not exist or the period is not allowed)."""
    city = settings.grids.city
    start, end = flt.window(settings.grids.timezone)
    HeatService(session, settings).checked(start, end, flt.category, flt.grid)
    registry = Registry(session, settings.scheme, city)
    grid_name = registry.get(flt.grid).name if flt.grid else None
    basemap = BaseMap(settings.map.basemap, settings.map.tile_url, settings.map.tianditu_key)
    categories = [
        CategoryOption(c.code, c.name, c.major_code, c.major_name, c.family)
        for c in Catalogue(session, city).categories()
    ]
    kinds = [(k.key, k.name) for k in HotspotService(session, city).kinds()]
    return PageOptions(
        bounds=_bounds(registry, flt.grid, basemap.datum),
        filter=flt,
        categories=categories,
        hotspot_kinds=kinds,
        status_labels={s: LABELS_ZH[s] for s in OPEN_STATUSES},
        grid_name=grid_name,
        basemap=basemap,
        heat_url=f"{base}/api/heat",
        tiles_url=f"{base}/tiles",
        hotspots_url=f"{base}/api/hotspots",
        page_url=f"{base}/",
    )


def _bounds(registry: Registry, grid: str | None, datum: str) -> tuple[float, float, float, float]:
    """The filter grid's extent, else the current city-level grid's (else every grid's)."""
    at = now()
    if grid:
        flt = GridFilter(registry.city, at, subtree_prefix=registry.subtree_prefix(grid))
    else:
        flt = GridFilter(registry.city, at, level="city")
    box = registry.repo.extent(flt) or registry.repo.extent(GridFilter(registry.city, at))
    if box is None:
        raise NotFound(
            "this city has no grids yet: import them (POST /api/grids/import or "
            "`citygrid import`) before opening the map"
        )
    if datum == "wgs84":
        return box
    lon, lat = from_wgs84(np.array([box[0], box[2]]), np.array([box[1], box[3]]), datum)
    return float(lon[0]), float(lat[0]), float(lon[1]), float(lat[1])


def _refused(status: int, message: str, field: str | None, base: str) -> HTMLResponse:
    return HTMLResponse(error_page(status, message, field, back=f"{base}/"), status_code=status)

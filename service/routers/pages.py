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

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from layers.assets import STATIC_DIR, STATIC_URL
from layers.page import (
    FilterError,
    PageFilter,
    dispatcher_page,
    error_page,
)
from service.auth import Allow
from service.deps import SessionDep, SettingsDep
from service.errors import CitygridError, status_for
from service.http.bodyguard import GuardedRoute
from service.maps.page import page_options

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
    dependencies=[Allow("maps.read")],
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


def _refused(status: int, message: str, field: str | None, base: str) -> HTMLResponse:
    return HTMLResponse(error_page(status, message, field, back=f"{base}/"), status_code=status)

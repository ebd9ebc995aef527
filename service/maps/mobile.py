"""What the grid worker's phone page (``/m/``) shows: read from the data and the caller."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from layers.login import Lang
from layers.mobile import MobilePage
from layers.page import BaseMap
from service.accounts.permissions import ACTION_PERMISSIONS
from service.accounts.principal import Principal
from service.clock import now
from service.errors import NotFound
from service.grids.registry import Registry
from service.grids.repository import GridFilter
from service.settings import AppSettings

CASE_ACTIONS = ("verify", "rework", "feedback")  # what a worker does to a case in the field


def mobile_options(
    session: Session,
    settings: AppSettings,
    principal: Principal,
    *,
    csrf_token: str,
    csrf_field: str,
    lang: Lang,
    base: str = "",
    logout_action: str | None = None,
) -> MobilePage:
    """The page for ``principal``: the extent of their grids (the city's without a grid
    scope), the base map and its datum, and the parts their permissions open. No case or
    patrol data: the page's script reads those with the worker's own credentials."""
    basemap = BaseMap(settings.map.basemap, settings.map.tile_url, settings.map.tianditu_key)
    scope = principal.grid_prefixes
    return MobilePage(
        who=principal.label,
        csrf_token=csrf_token,
        csrf_field=csrf_field,
        bounds=_scope_extent(Registry(session, settings), scope),
        scope=scope,
        lang=lang,
        timezone=settings.grids.timezone,
        datum=basemap.datum,
        tile_layers=[_leaflet_tiles(layer) for layer in basemap.tile_layers()],
        actions=tuple(a for a in CASE_ACTIONS if principal.can(ACTION_PERMISSIONS[a])),
        report=principal.can("cases.report"),
        patrol=principal.can("patrol.fixes"),
        orders=principal.can("orders.answer") or principal.can("orders.issue"),
        base=base,
        page_url=f"{base}/m/",
        worker_url=f"{base}/m/sw.js",
        logout_action=logout_action,
    )


def _scope_extent(
    registry: Registry, scope: tuple[str, ...] | None
) -> tuple[float, float, float, float]:
    """WGS 84 extent of the grids under ``scope``'s prefixes (the city-level grid's without
    a scope, or when the scope holds no valid grid)."""
    at = now()
    boxes = [
        box
        for prefix in scope or ()
        if (box := registry.extent(GridFilter(registry.city, at, subtree_prefix=prefix)))
    ]
    if not boxes:
        city = registry.extent(GridFilter(registry.city, at, level="city"))
        boxes = [b for b in (city or registry.extent(GridFilter(registry.city, at)),) if b]
    if not boxes:
        raise NotFound(
            "this city has no grids yet: import them (POST /api/grids/import or "
            "`citygrid import`) before opening the phone page"
        )
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _leaflet_tiles(layer: dict[str, Any]) -> dict[str, Any]:
    """folium's TileLayer arguments → Leaflet's ``L.tileLayer(url, options)``."""
    options: dict[str, Any] = {"attribution": layer["attr"], "maxZoom": layer["max_zoom"]}
    if "subdomains" in layer:
        options["subdomains"] = layer["subdomains"]
    return {"url": layer["tiles"], "options": options}

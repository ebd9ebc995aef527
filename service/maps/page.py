"""What the dispatcher's map page shows, read and checked against the data."""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from gis.datum import from_wgs84
from layers.page import (
    BaseMap,
    CategoryOption,
    PageFilter,
    PageOptions,
)
from service.accounts.principal import SYSTEM
from service.campaigns.campaigns import CampaignService
from service.cases.catalogue import Catalogue
from service.clock import now
from service.errors import NotFound
from service.grids.registry import Registry
from service.grids.repository import GridFilter
from service.hotspots.hotspots import HotspotService
from service.maps.heat import HeatService
from service.settings import AppSettings


def page_options(
    session: Session, settings: AppSettings, flt: PageFilter, base: str = ""
) -> PageOptions:
    """Everything the page shows, checked against the data (``CitygridError`` when a part of
    the filter does not exist or the period is not allowed). The page itself holds no case
    or patrol data: its layers load them with the viewer's credentials, in their scope."""
    start, end = flt.window(settings.grids.timezone)
    HeatService(session, settings).checked(start, end, flt.category, flt.grid, by=SYSTEM)
    registry = Registry(session, settings)
    grid_name = registry.get(flt.grid).name if flt.grid else None
    # the tiles check the viewer may read it; here only that it exists
    campaign = (
        CampaignService(session, settings).get(flt.campaign) if flt.campaign is not None else None
    )
    basemap = BaseMap(settings.map.basemap, settings.map.tile_url, settings.map.tianditu_key)
    categories = [
        CategoryOption(c.code, c.name, c.major_code, c.major_name, c.family)
        for c in Catalogue(session, settings).categories()
    ]
    kinds = [(k.key, k.name) for k in HotspotService(session, settings).kinds()]
    return PageOptions(
        bounds=_bounds(registry, flt.grid, basemap.datum),
        filter=flt,
        categories=categories,
        hotspot_kinds=kinds,
        grid_name=grid_name,
        campaign_name=campaign.name if campaign else None,
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
    box = registry.extent(flt) or registry.extent(GridFilter(registry.city, at))
    if box is None:
        raise NotFound(
            "this city has no grids yet: import them (POST /api/grids/import or "
            "`citygrid import`) before opening the map"
        )
    if datum == "wgs84":
        return box
    lon, lat = from_wgs84(np.array([box[0], box[2]]), np.array([box[1], box[3]]), datum)
    return float(lon[0]), float(lat[0]), float(lon[1]), float(lat[1])

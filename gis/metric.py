"""Metric coordinate reference systems: lengths, areas and buffers are computed in metres.

Geometry is stored in EPSG:4326; anything measured is first projected to the UTM zone of the
place (WGS 84 / UTM north or south), never measured in degrees.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Proj, Transformer

WGS84 = CRS.from_epsg(4326)


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM CRS whose zone contains ``(lon, lat)``."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"coordinates out of range: lon={lon}, lat={lat}")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def utm_crs_for_geometries(geoms: np.ndarray | shapely.Geometry) -> CRS:
    """The UTM CRS for the centre of the bounding box of ``geoms`` (lon/lat)."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    if not np.isfinite([minx, miny, maxx, maxy]).all():
        raise ValueError("cannot choose a metric CRS for empty geometries")
    return utm_crs_for((minx + maxx) / 2.0, (miny + maxy) / 2.0)


@lru_cache(maxsize=64)
def _transformer(src: CRS, dst: CRS) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def transform(geoms, src: CRS, dst: CRS):
    """Reproject shapely geometries (scalar or array) from ``src`` to ``dst``."""
    if src == dst:
        return geoms
    tr = _transformer(src, dst)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def to_metric(geoms, crs: CRS):
    """Project lon/lat geometries to the metric ``crs``."""
    return transform(geoms, WGS84, crs)


def to_metric_xy(lon, lat, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Project coordinate arrays (no geometries built: points are the hot path of bulk work)."""
    x, y = _transformer(WGS84, crs).transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x), np.asarray(y)


def from_metric_xy(x, y, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Coordinate arrays in metric ``crs`` back to lon/lat."""
    lon, lat = _transformer(crs, WGS84).transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)


@lru_cache(maxsize=64)
def _proj(crs: CRS) -> Proj:
    return Proj(crs)


def scale_factor(lon: float, lat: float, crs: CRS) -> float:
    """Point scale of the conformal metric ``crs`` at a lon/lat: a short projected distance
    divided by this is the distance on the WGS 84 ellipsoid (UTM: 0.9996 on the central
    meridian, up to ~1.001 at a zone's edge)."""
    return float(_proj(crs).get_factors(lon, lat).meridional_scale)


def utm_crs_for_xy(lon: np.ndarray, lat: np.ndarray) -> CRS:
    """The UTM CRS for the centre of the bounding box of coordinate arrays."""
    return utm_crs_for(
        (np.nanmin(lon) + np.nanmax(lon)) / 2.0, (np.nanmin(lat) + np.nanmax(lat)) / 2.0
    )


def to_wgs84(geoms, crs: CRS):
    """Project geometries in metric ``crs`` back to lon/lat."""
    return transform(geoms, crs, WGS84)


def area_m2(geoms) -> np.ndarray | float:
    """Area in square metres of lon/lat geometries, measured in their UTM zone."""
    crs = utm_crs_for_geometries(geoms)
    return shapely.area(to_metric(geoms, crs))

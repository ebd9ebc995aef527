"""Coarsened positions for what the public sees: a point becomes the centre of its cell.

Each point is projected to the UTM zone that contains it, moved to the centre of the square
cell of ``size_m`` metres (cells aligned on the zone's metre grid) that holds it, and projected
back. The answer depends on the point alone — never on which other points are coarsened with
it — so a position cannot be narrowed down by comparing answers; the true point lies at most
``size_m`` × √2 / 2 from the one shown.
"""

from __future__ import annotations

import numpy as np

from gis.metric import from_metric_xy, to_metric_xy, utm_crs_for

__all__ = ["cell_centres"]


def cell_centres(lon, lat, size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The centres (lon, lat) of the ``size_m`` metre cells holding the points ``lon, lat``.

    Parameters
    ----------
    lon, lat : array-like
        WGS 84 degrees.
    size_m : float
        Side of a cell in metres (positive).

    Returns
    -------
    tuple of numpy.ndarray
        The coarsened longitudes and latitudes, in the input's order.
    """
    if not size_m > 0:
        raise ValueError(f"size_m must be positive, got {size_m}")
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    if lon.shape != lat.shape:
        raise ValueError("lon and lat must have the same length")
    out_lon, out_lat = np.empty_like(lon), np.empty_like(lat)
    zones = _zone_keys(lon, lat)
    for zone in np.unique(zones):
        rows = zones == zone
        crs = utm_crs_for(float(lon[rows][0]), float(lat[rows][0]))
        x, y = to_metric_xy(lon[rows], lat[rows], crs)
        cx = (np.floor(x / size_m) + 0.5) * size_m
        cy = (np.floor(y / size_m) + 0.5) * size_m
        out_lon[rows], out_lat[rows] = from_metric_xy(cx, cy, crs)
    return out_lon, out_lat


def _zone_keys(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """A UTM zone number per point, negative in the southern hemisphere (as utm_crs_for)."""
    if not (np.all(np.abs(lon) <= 180.0) and np.all(np.abs(lat) <= 90.0)):
        raise ValueError("coordinates out of range")
    zone = np.minimum(((lon + 180.0) // 6.0).astype(int) + 1, 60)
    return np.where(lat >= 0, zone, -zone)

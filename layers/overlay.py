"""Heat-map image: a kernel density raster coloured as a transparent PNG for Leaflet.

Presentation of :func:`gis.density.kernel_density`'s surface: the raster (square cells in UTM
metres) is resampled onto a regular Web-Mercator pixel grid, coloured with a matplotlib colour
ramp whose opacity grows with the density, and encoded as PNG with its ``((south, west),
(north, east))`` bounds, ready for ``L.imageOverlay`` / folium's ``ImageOverlay``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from pyproj import CRS, Transformer
from scipy import ndimage

from gis import metric
from gis.density import DensityRaster

__all__ = ["Overlay", "raster_to_png"]

WEB_MERCATOR = CRS.from_epsg(3857)


@dataclass(frozen=True)
class Overlay:
    """A transparent PNG for a Leaflet ``ImageOverlay`` and where to put it.

    ``bounds`` is ``((south, west), (north, east))`` in degrees, the order Leaflet's
    ``L.imageOverlay(url, bounds)`` and folium's ``ImageOverlay(bounds=...)`` take.
    ``vmax`` is the density (points per km²) drawn with the top colour, for the legend.
    """

    png: bytes
    bounds: tuple[tuple[float, float], tuple[float, float]]
    width: int
    height: int
    vmax: float
    cmap: str


def raster_to_png(
    raster: DensityRaster,
    *,
    cmap: str = "YlOrRd",
    vmax: float | None = None,
    max_alpha: float = 0.8,
    min_fraction: float = 0.02,
    max_pixels: int = 4_000_000,
) -> Overlay:
    """Render a density raster as a transparent PNG aligned for a Web-Mercator map.

    Parameters
    ----------
    raster : DensityRaster
        From :func:`gis.density.kernel_density`.
    cmap : str, default "YlOrRd"
        A matplotlib colormap name.
    vmax : float, optional
        Density (points per km²) at the top of the colour ramp; higher values saturate.
        Default: the raster's maximum. With a few extreme spots a percentile of the non-zero
        cells (e.g. the 99th) shows the rest of the city better.
    max_alpha : float, default 0.8
        Opacity at ``vmax``; opacity grows as the square root of ``value / vmax`` so that
        moderate densities stay visible.
    min_fraction : float, default 0.02
        Pixels below this fraction of ``vmax`` are fully transparent (the base map shows).
    max_pixels : int, default 4_000_000
        Larger images are rendered at a coarser pixel.

    Returns
    -------
    Overlay
        The PNG and its ``((south, west), (north, east))`` bounds.

    Raises
    ------
    ValueError
        For an unknown colormap, or ``vmax``/``max_alpha``/``min_fraction`` out of range.

    Notes
    -----
    Leaflet stretches an image overlay linearly between its corner coordinates in the map's
    projection, EPSG:3857. The raster's cells are square in UTM metres, which is neither
    lon/lat nor Mercator, so the image is resampled: its pixels form a regular grid in
    EPSG:3857 over the raster's lon/lat footprint (pixel size ≈ one raster cell on the ground,
    i.e. ``cell_m`` times the Mercator scale factor ``1 / cos(latitude)``), each pixel centre
    is projected into the raster's CRS and the density there is interpolated bilinearly.
    Pixels outside the raster are transparent.
    """
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise ValueError(f"unknown colormap {cmap!r}")
    if not (0.0 < max_alpha <= 1.0 and 0.0 <= min_fraction < 1.0):
        raise ValueError("max_alpha must lie in (0, 1] and min_fraction in [0, 1)")
    top = float(np.max(raster.values, initial=0.0)) if vmax is None else float(vmax)
    if not (math.isfinite(top) and top >= 0.0):
        raise ValueError(f"vmax must be a finite density >= 0, got {vmax}")
    west, south, east, north = raster.bounds_wgs84
    grid = _mercator_pixels(raster, (west, south, east, north), max_pixels)
    density = _sample_at_mercator(raster, grid)
    rgba = _colourise(density, top, matplotlib.colormaps[cmap], max_alpha, min_fraction)
    to_lonlat = Transformer.from_crs(WEB_MERCATOR, metric.WGS84, always_xy=True)
    lon0, lat0 = to_lonlat.transform(grid.x0, grid.y1)
    lon1, lat1 = to_lonlat.transform(grid.x1, grid.y0)
    height, width = density.shape
    return Overlay(
        png=_png_bytes(rgba),
        bounds=((float(lat0), float(lon0)), (float(lat1), float(lon1))),
        width=width,
        height=height,
        vmax=top,
        cmap=cmap,
    )


@dataclass(frozen=True)
class _MercatorGrid:
    x0: float  # west
    y0: float  # north
    x1: float  # east
    y1: float  # south
    pixel: float
    cols: int
    rows: int


def _mercator_pixels(
    raster: DensityRaster, lonlat: tuple[float, float, float, float], max_pixels: int
) -> _MercatorGrid:
    west, south, east, north = lonlat
    to_merc = Transformer.from_crs(metric.WGS84, WEB_MERCATOR, always_xy=True)
    (mx0, mx1), (my0, my1) = to_merc.transform([west, east], [south, north])
    scale = 1.0 / math.cos(math.radians((south + north) / 2.0))  # Mercator scale factor
    pixel = raster.cell_m * scale
    cols, rows = math.ceil((mx1 - mx0) / pixel), math.ceil((my1 - my0) / pixel)
    if cols * rows > max_pixels:
        pixel *= math.sqrt(cols * rows / max_pixels)
        cols, rows = math.ceil((mx1 - mx0) / pixel), math.ceil((my1 - my0) / pixel)
    cols, rows = max(cols, 1), max(rows, 1)
    return _MercatorGrid(mx0, my1, mx0 + cols * pixel, my1 - rows * pixel, pixel, cols, rows)


def _sample_at_mercator(raster: DensityRaster, grid: _MercatorGrid) -> np.ndarray:
    """Density at every Mercator pixel centre, bilinear, 0 outside the raster."""
    xs = grid.x0 + (np.arange(grid.cols) + 0.5) * grid.pixel
    ys = grid.y0 - (np.arange(grid.rows) + 0.5) * grid.pixel
    px, py = np.meshgrid(xs, ys)
    to_raster = Transformer.from_crs(WEB_MERCATOR, raster.crs, always_xy=True)
    rx, ry = to_raster.transform(px.ravel(), py.ravel())
    col = (np.asarray(rx) - raster.x0) / raster.cell_m - 0.5
    row = (raster.y0 - np.asarray(ry)) / raster.cell_m - 0.5
    sampled = ndimage.map_coordinates(
        raster.values, [row, col], order=1, mode="constant", cval=0.0, prefilter=False
    )
    return sampled.reshape(grid.rows, grid.cols)


def _colourise(
    density: np.ndarray, vmax: float, colormap, max_alpha: float, min_fraction: float
) -> np.ndarray:
    level = np.clip(density / vmax, 0.0, 1.0) if vmax > 0 else np.zeros_like(density)
    rgba = colormap(level)  # floats in [0, 1], shape (rows, cols, 4)
    rgba[..., 3] = np.where(level >= max(min_fraction, 1e-12), max_alpha * np.sqrt(level), 0.0)
    return np.round(rgba * 255.0).astype(np.uint8)


def _png_bytes(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()

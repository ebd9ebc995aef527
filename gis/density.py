"""Case density for the dispatcher's heat map: per unit grid, hexagon bins, kernel density.

Inputs are WGS 84 lon/lat (points, and grids as shapely geometries in EPSG:4326 with their
codes); every distance and area is measured in metres in a local UTM zone (:mod:`gis.metric`).
Outputs are plain tables, GeoDataFrames and arrays: the map layers are built elsewhere (the
kernel density's PNG in :mod:`layers.overlay`). Gi* hot spots over these densities are in
:mod:`gis.gi_star`.

Choices a user relies on
------------------------
* **Units.** Densities are cases per km² (``per_km2``); areas are m² with holes excluded and
  every part of a multipolygon included; rates per patrol hour divide by the grid's patrol
  hours.
* **No patrol, no rate.** A grid with 0 patrol hours (or none listed) has ``per_patrol_hour``
  NaN, never ``inf``: a rate without exposure is undefined. Its cases still show in ``count``.
* **Hexagons** are pointy-top (as :mod:`gis.gridgen` lays them), ``size_m`` is the
  **flat-to-flat width** (the distance between opposite edges, equal to the distance between
  neighbouring centres); the edge length is ``size_m / √3``. The lattice is anchored at the
  origin of the metric CRS, so a place falls in the same hexagon on every call with the same
  CRS and size. A point belongs to the hexagon with the nearest centre; a point on a shared
  edge or vertex is counted once, in one of the hexagons that touch it.
* **Kernel density** is a Gaussian with standard deviation ``bandwidth_m`` (39 % of a point's
  mass lies within ``bandwidth_m``, 95 % within 2.45 × ``bandwidth_m``), cut at 4 standard
  deviations. Points are spread onto cell centres by linear binning, then smoothed with a
  separable Gaussian filter; the raster integrates to the (weighted) number of points whose
  kernel falls inside it.
* **Empty input.** Aggregations of no points are empty or zero (a quiet day is not an error):
  :func:`grid_density` gives zero counts, :func:`hexbin_counts` an empty frame,
  :func:`kernel_density` a zero raster when ``bounds`` are given. A ``ValueError`` is raised
  where no answer exists: a kernel density of no points without ``bounds`` (no extent).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy import ndimage

from gis import metric
from gis.grid_inputs import validated_grids
from gis.points import validated_points

__all__ = ["DensityRaster", "grid_density", "hexbin_counts", "kernel_density"]

# The kernel is cut where it has fallen to e^-8 of its peak (scipy's default truncation).
_TRUNCATE_SIGMAS = 4.0
_M2_PER_KM2 = 1e6
_SQRT3 = math.sqrt(3.0)


# -- density per unit grid ---------------------------------------------------------------------


def grid_density(
    grid_codes: Sequence[str],
    grid_geoms: Sequence[shapely.Geometry],
    point_codes: Sequence[str | None] | np.ndarray | None = None,
    *,
    counts: Mapping[str, float] | pd.Series | None = None,
    per: Literal["km2", "grid", "patrol_hour"] = "km2",
    patrol_hours: Mapping[str, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """Cases per unit grid: count, area, density per km² and rate per patrol hour.

    Parameters
    ----------
    grid_codes : sequence of str
        Unique grid codes.
    grid_geoms : sequence of shapely Polygon or MultiPolygon
        The grids in EPSG:4326, same order as ``grid_codes``. Holes are not area; every part
        of a multipolygon is.
    point_codes : array_like, optional
        One entry per case: its grid code (``None``/NaN for a case outside every grid, as
        :meth:`gis.locate.GridIndex.codes_for` returns), or integer positions into
        ``grid_codes`` (``-1`` outside, as :meth:`gis.locate.GridIndex.locate` returns).
        Cases outside every grid are not counted.
    counts : mapping or pandas.Series, optional
        Instead of ``point_codes``: a count (or any non-negative total) per code; codes not
        listed count 0.
    per : {"km2", "grid", "patrol_hour"}, default "km2"
        What the ``value`` column holds (what a heat map colours and
        :func:`gis.gi_star.gi_star` takes): cases per km², cases per grid, or cases per patrol
        hour (needs ``patrol_hours``).
    patrol_hours : mapping or pandas.Series, optional
        Patrol hours per code; codes not listed have 0 hours.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``code`` in the order given, columns ``count``, ``area_m2``, ``per_km2``,
        and with ``patrol_hours`` given, ``patrol_hours`` and ``per_patrol_hour`` (NaN where
        the grid has 0 patrol hours: a rate without exposure is undefined, never ``inf``);
        last ``value``. No grids give an empty table.

    Raises
    ------
    ValueError
        If both or neither of ``point_codes`` and ``counts`` are given, a case or count names
        a code that is not a grid (grids of another version?), counts or hours are negative
        or not finite, ``per="patrol_hour"`` comes without ``patrol_hours``, or the grids are
        refused by :func:`gis.grid_inputs.validated_grids` (codes not unique, a geometry not a
        valid, non-empty lon/lat (Multi)Polygon).

    Examples
    --------
    >>> from shapely import box
    >>> table = grid_density(["A", "B"], [box(113.65, 34.75, 113.651, 34.751),
    ...                                  box(113.651, 34.75, 113.652, 34.751)], ["A", "A", None])
    >>> table["count"].tolist()
    [2, 0]
    """
    codes, geoms = validated_grids(grid_codes, grid_geoms)
    if per not in ("km2", "grid", "patrol_hour"):
        raise ValueError(f"per must be 'km2', 'grid' or 'patrol_hour', got {per!r}")
    if per == "patrol_hour" and patrol_hours is None:
        raise ValueError("per='patrol_hour' needs patrol_hours")
    count = _counts_per_grid(codes, point_codes, counts)
    area = _areas_m2(geoms)
    table = pd.DataFrame(
        {"count": count, "area_m2": area, "per_km2": count / area * _M2_PER_KM2},
        index=pd.Index(codes, name="code", dtype=object),
    )
    if patrol_hours is not None:
        hours = _per_code(codes, patrol_hours, "patrol_hours")
        table["patrol_hours"] = hours
        with np.errstate(divide="ignore", invalid="ignore"):
            table["per_patrol_hour"] = np.where(hours > 0, count / hours, np.nan)
    table["value"] = table[
        {"km2": "per_km2", "grid": "count", "patrol_hour": "per_patrol_hour"}[per]
    ]
    return table


def _counts_per_grid(
    codes: list[str],
    point_codes: Sequence[str | None] | np.ndarray | None,
    counts: Mapping[str, float] | pd.Series | None,
) -> np.ndarray:
    if (point_codes is None) == (counts is None):
        raise ValueError("give exactly one of point_codes (one entry per case) or counts")
    if counts is not None:
        return _per_code(codes, counts, "counts")
    values = np.asarray(point_codes)
    if values.dtype.kind in "iu":
        # Positions from GridIndex.locate: -1 is "outside every grid".
        bad = (values < -1) | (values >= len(codes))
        if bad.any():
            raise ValueError(
                f"grid positions must lie in [-1, {len(codes) - 1}], got {values[bad][0]}"
            )
        return np.bincount(values[values >= 0], minlength=len(codes)).astype(np.int64)
    labels = pd.Index(values.ravel(), dtype=object)
    missing = labels.isna()
    position = pd.Index(codes).get_indexer(labels)
    unknown = (position < 0) & ~missing
    if unknown.any():
        raise ValueError(
            f"{int(unknown.sum())} case(s) name a code that is not among the grids (first: "
            f"{labels[np.flatnonzero(unknown)[0]]!r}); use the grids the cases were located in"
        )
    return np.bincount(position[position >= 0], minlength=len(codes)).astype(np.int64)


def _per_code(codes: list[str], given: Mapping[str, float] | pd.Series, what: str) -> np.ndarray:
    """A non-negative finite number per code from a mapping; unlisted codes get 0."""
    series = pd.Series(given, dtype=object) if not isinstance(given, pd.Series) else given
    unknown = series.index.difference(pd.Index(codes))
    if len(unknown):
        raise ValueError(
            f"{what} names {len(unknown)} code(s) that are not among the grids "
            f"(first: {unknown[0]!r})"
        )
    numbers = pd.to_numeric(series, errors="coerce").astype(np.float64)
    bad = ~(numbers >= 0) | ~np.isfinite(numbers)
    if bad.any():
        first = numbers.index[np.flatnonzero(bad.to_numpy())[0]]
        raise ValueError(f"{what} must be finite numbers >= 0; {first!r} has {series[first]!r}")
    return numbers.reindex(pd.Index(codes), fill_value=0.0).to_numpy(dtype=np.float64)


def _areas_m2(geoms: np.ndarray) -> np.ndarray:
    if not len(geoms):
        return np.empty(0, dtype=np.float64)
    return np.asarray(metric.area_m2(geoms), dtype=np.float64)


# -- hexagon bins ------------------------------------------------------------------------------


def hexbin_counts(
    lon: np.ndarray,
    lat: np.ndarray,
    size_m: float,
    weights: np.ndarray | None = None,
    *,
    crs: CRS | None = None,
) -> gpd.GeoDataFrame:
    """Count points in pointy-top hexagons of a metric size; only non-empty hexagons.

    Parameters
    ----------
    lon, lat : array_like of float
        WGS 84 points in degrees, same shape.
    size_m : float
        Flat-to-flat width of a hexagon in metres (distance between opposite edges and
        between neighbouring centres); edge length is ``size_m / √3``, area
        ``√3 / 2 * size_m²``.
    weights : array_like of float, optional
        A non-negative weight per point (e.g. severity); summed in the ``weight`` column.
    crs : pyproj.CRS, optional
        Metric CRS of the lattice. Default: the UTM zone of the points' bounding-box centre.
        Pass the city's zone to keep hexagons identical between calls on different points.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per hexagon holding at least one point, sorted by ``row`` then
        ``col``: ``col``, ``row`` (lattice indices: the centre is at
        ``((col + row % 2 / 2) * size_m, row * √3 / 2 * size_m)`` in ``crs``), ``count``
        (int64), ``weight`` (only with ``weights``), ``geometry``. ``attrs`` carries
        ``metric_crs`` (e.g. ``"EPSG:32649"``) and ``size_m``. No points give an empty frame
        with these columns.

    Raises
    ------
    ValueError
        If ``size_m`` is not a positive finite number, the coordinates are invalid, or
        ``weights`` do not match the points or are negative / not finite.

    Notes
    -----
    Each point goes to the hexagon with the nearest centre (the hexagons are exactly the
    nearest-centre cells of the lattice), found by rounding in the two rectangular
    sub-lattices of even and odd rows; no geometry is built per point. A point on a shared
    edge or vertex is counted once, in one of the hexagons that touch it.
    """
    x, y = validated_points(lon, lat)
    x, y = x.ravel(), y.ravel()
    if not (math.isfinite(size_m) and size_m > 0):
        raise ValueError(f"size_m must be a positive width in metres, got {size_m}")
    w = _checked_weights(weights, x.size)
    if crs is None and x.size:
        crs = metric.utm_crs_for_xy(x, y)
    attrs = {"metric_crs": None if crs is None else crs.to_string(), "size_m": float(size_m)}
    if crs is None:  # no points and no CRS: nothing to place
        return _hex_frame(
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            None if w is None else np.empty(0),
            np.empty(0, object),
            attrs,
        )
    mx, my = metric.to_metric_xy(x, y, crs)
    col, row = _hex_cells(mx, my, size_m)
    cells, count, weight = _aggregate_cells(col, row, w)
    polygons = metric.to_wgs84(_hex_polygons(cells[:, 0], cells[:, 1], size_m), crs)
    return _hex_frame(cells[:, 0], cells[:, 1], count, weight, polygons, attrs)


def _hex_cells(x: np.ndarray, y: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Lattice ``(col, row)`` of the nearest hexagon centre to each metric point.

    Even rows form a rectangular lattice of spacing ``(width, 2h)``, odd rows the same lattice
    shifted by ``(width / 2, h)``; the nearest centre overall is the nearer of the nearest
    centre in each, and the nearest centre in a rectangular lattice is found by rounding.
    """
    h = width * _SQRT3 / 2.0  # row spacing
    # Even rows: centres (i * width, 2j * h).
    ie = np.floor(x / width + 0.5)
    je = np.floor(y / (2.0 * h) + 0.5)
    de = (x - ie * width) ** 2 + (y - 2.0 * je * h) ** 2
    # Odd rows: centres ((i + 0.5) * width, (2j + 1) * h).
    io_ = np.floor(x / width)
    jo = np.floor((y - h) / (2.0 * h) + 0.5)
    do = (x - (io_ + 0.5) * width) ** 2 + (y - (2.0 * jo + 1.0) * h) ** 2
    even = de <= do  # equal distance = on the shared edge: either hexagon covers it
    col = np.where(even, ie, io_).astype(np.int64)
    row = np.where(even, 2.0 * je, 2.0 * jo + 1.0).astype(np.int64)
    return col, row


def _aggregate_cells(
    col: np.ndarray, row: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Distinct ``(col, row)`` pairs sorted by row then col, their point counts and weights."""
    c0, r0 = col.min(), row.min()
    span = int(col.max() - c0) + 1
    key = (row - r0) * span + (col - c0)
    keys, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
    cells = np.column_stack([keys % span + c0, keys // span + r0])
    weight = None if weights is None else np.bincount(inverse, weights=weights, minlength=keys.size)
    return cells, count.astype(np.int64), weight


def _hex_polygons(col: np.ndarray, row: np.ndarray, width: float) -> np.ndarray:
    """Pointy-top hexagon polygons (metric) of lattice cells, vertices counter-clockwise."""
    r = width / _SQRT3  # circumradius = edge length
    cx = (col + (row % 2) / 2.0) * width
    cy = row * (width * _SQRT3 / 2.0)
    # Vertices from east-north-east round to south-south-east, closing where they start.
    dx = np.array([0.5, 0.0, -0.5, -0.5, 0.0, 0.5, 0.5]) * width
    dy = np.array([0.5, 1.0, 0.5, -0.5, -1.0, -0.5, 0.5]) * r
    coords = np.stack([cx[:, None] + dx, cy[:, None] + dy], axis=-1)
    return np.asarray(shapely.polygons(coords))


def _hex_frame(
    col: np.ndarray,
    row: np.ndarray,
    count: np.ndarray,
    weight: np.ndarray | None,
    polygons: np.ndarray,
    attrs: Mapping[str, object],
) -> gpd.GeoDataFrame:
    data: dict[str, np.ndarray] = {"col": col, "row": row, "count": count}
    if weight is not None:
        data["weight"] = weight
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(polygons, crs=4326), crs=4326)
    frame.attrs.update(attrs)
    return frame


def _checked_weights(weights: np.ndarray | None, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size != n:
        raise ValueError(f"weights must have one value per point ({n}), got {w.size}")
    if not (np.isfinite(w) & (w >= 0)).all():
        raise ValueError("weights must be finite numbers >= 0")
    return w


# -- kernel density ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DensityRaster:
    """A kernel density surface on a north-up raster in a metric CRS.

    ``values[r, c]`` is the density in points per km² at the centre of the cell whose
    west edge is ``x0 + c * cell_m`` and north edge ``y0 - r * cell_m`` (row 0 is north).
    """

    values: np.ndarray
    crs: CRS
    x0: float
    y0: float
    cell_m: float
    bandwidth_m: float

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL geotransform ``(x0, cell, 0, y0, 0, -cell)`` in :attr:`crs` metres."""
        return (self.x0, self.cell_m, 0.0, self.y0, 0.0, -self.cell_m)

    @property
    def bounds_m(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of the raster in :attr:`crs` metres."""
        rows, cols = self.values.shape
        return (self.x0, self.y0 - rows * self.cell_m, self.x0 + cols * self.cell_m, self.y0)

    @property
    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in degrees enclosing the raster's footprint.

        The raster is a rectangle in metres, so in lon/lat it is slightly rotated and curved:
        these bounds enclose it (edges followed at one-cell steps).
        """
        footprint = shapely.segmentize(shapely.box(*self.bounds_m), self.cell_m)
        return tuple(shapely.bounds(metric.to_wgs84(footprint, self.crs)).tolist())

    @property
    def total(self) -> float:
        """Integral of the surface: the (weighted) number of points it holds."""
        return float(self.values.sum() * self.cell_m**2 / _M2_PER_KM2)


def kernel_density(
    lon: np.ndarray,
    lat: np.ndarray,
    bandwidth_m: float,
    cell_m: float,
    bounds: tuple[float, float, float, float] | None = None,
    weights: np.ndarray | None = None,
    *,
    crs: CRS | None = None,
    max_cells: int = 25_000_000,
) -> DensityRaster:
    """Gaussian kernel density of points in points per km², on a metric raster.

    Parameters
    ----------
    lon, lat : array_like of float
        WGS 84 points in degrees.
    bandwidth_m : float
        Standard deviation of the Gaussian kernel in metres (the kernel is cut at 4 of them).
    cell_m : float
        Raster cell edge in metres; a cell of at most half the bandwidth keeps the surface
        smooth.
    bounds : (west, south, east, north), optional
        Area to cover, in degrees; the raster is the smallest cell-aligned rectangle in
        metres enclosing it. Points outside still contribute the part of their kernel that
        reaches inside. Default: the points' extent plus four bandwidths, so that the
        raster holds all the points' mass.
    weights : array_like of float, optional
        Non-negative weight per point; the surface is then weight per km².
    crs : pyproj.CRS, optional
        Metric CRS. Default: the UTM zone of the centre of ``bounds`` (or of the points).
    max_cells : int, default 25_000_000
        Refuse larger work rasters (requested area plus four bandwidths of padding; 8 bytes
        a cell, a few copies).

    Returns
    -------
    DensityRaster
        Values in points per km²; ``total`` is its integral in points. Cells are aligned to
        multiples of ``cell_m`` in ``crs``.

    Raises
    ------
    ValueError
        For no points without ``bounds`` (no extent to cover), a non-positive bandwidth or
        cell, invalid coordinates, bounds or weights, or a raster above ``max_cells``.

    Notes
    -----
    Each point's weight is spread onto the four nearest cell centres by linear binning (this
    keeps its mass and its mean position), then the grid is smoothed with
    ``scipy.ndimage.gaussian_filter`` (separable, kernel normalised to sum 1). The work
    raster is padded by four bandwidths beyond the requested area so that mass is not lost
    at the edges, then cropped.
    """
    x, y = validated_points(lon, lat)
    x, y = x.ravel(), y.ravel()
    for name, value in (("bandwidth_m", bandwidth_m), ("cell_m", cell_m)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive distance in metres, got {value}")
    w = _checked_weights(weights, x.size)
    if bounds is None and not x.size:
        raise ValueError("no points and no bounds: give bounds to get an all-zero raster")
    if bounds is not None:
        bounds = _checked_bounds(bounds)
    if crs is None:
        crs = (
            metric.utm_crs_for((bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0)
            if bounds is not None
            else metric.utm_crs_for_xy(x, y)
        )
    mx, my = metric.to_metric_xy(x, y, crs)
    extent = _raster_extent(mx, my, bounds, crs, bandwidth_m, cell_m)
    pad = int(math.ceil(_TRUNCATE_SIGMAS * bandwidth_m / cell_m)) + 1
    x0, y0, cols, rows = _aligned_grid(extent, cell_m, pad)
    if rows * cols > max_cells:
        raise ValueError(
            f"the raster needs {rows * cols:,} cells (max_cells={max_cells:,}); use a larger "
            "cell_m or smaller bounds"
        )
    mass = _linear_binning(mx, my, w, x0, y0, cell_m, rows, cols)
    smooth = ndimage.gaussian_filter(
        mass, sigma=bandwidth_m / cell_m, mode="constant", cval=0.0, truncate=_TRUNCATE_SIGMAS
    )
    values = smooth[pad : rows - pad, pad : cols - pad] * (_M2_PER_KM2 / cell_m**2)
    return DensityRaster(
        values=np.ascontiguousarray(values),
        crs=crs,
        x0=x0 + pad * cell_m,
        y0=y0 - pad * cell_m,
        cell_m=float(cell_m),
        bandwidth_m=float(bandwidth_m),
    )


def _checked_bounds(bounds: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    west, south, east, north = (float(v) for v in bounds)
    validated_points(np.array([west, east]), np.array([south, north]))
    if not (west < east and south < north):
        raise ValueError(
            f"bounds must be (west, south, east, north) with west < east and "
            f"south < north, got {bounds}"
        )
    return west, south, east, north


def _raster_extent(
    mx: np.ndarray,
    my: np.ndarray,
    bounds: tuple[float, float, float, float] | None,
    crs: CRS,
    bandwidth_m: float,
    cell_m: float,
) -> tuple[float, float, float, float]:
    """Metric ``(minx, miny, maxx, maxy)`` the caller asked for (before the work padding)."""
    if bounds is not None:
        # Follow the edges: a lon/lat box is curved in metres.
        step = min(bounds[2] - bounds[0], bounds[3] - bounds[1]) / 64.0
        outline = shapely.segmentize(shapely.box(*bounds), step)
        minx, miny, maxx, maxy = shapely.bounds(metric.to_metric(outline, crs)).tolist()
        return minx, miny, maxx, maxy
    reach = _TRUNCATE_SIGMAS * bandwidth_m + cell_m
    return mx.min() - reach, my.min() - reach, mx.max() + reach, my.max() + reach


def _aligned_grid(
    extent: tuple[float, float, float, float], cell: float, pad: int
) -> tuple[float, float, int, int]:
    """West edge, north edge, columns and rows of the padded, cell-aligned work raster."""
    minx, miny, maxx, maxy = extent
    c0, c1 = math.floor(minx / cell) - pad, math.ceil(maxx / cell) + pad
    r0, r1 = math.floor(miny / cell) - pad, math.ceil(maxy / cell) + pad
    return c0 * cell, r1 * cell, c1 - c0, r1 - r0


def _linear_binning(
    mx: np.ndarray,
    my: np.ndarray,
    weights: np.ndarray | None,
    x0: float,
    y0: float,
    cell: float,
    rows: int,
    cols: int,
) -> np.ndarray:
    """Each point's weight shared among the four surrounding cell centres, bilinearly."""
    mass = np.zeros(rows * cols, dtype=np.float64)
    if not mx.size:
        return mass.reshape(rows, cols)
    w = np.ones(mx.size) if weights is None else weights
    fc = (mx - x0) / cell - 0.5  # fractional column of the cell centres
    fr = (y0 - my) / cell - 0.5  # fractional row, counted southwards
    c, r = np.floor(fc), np.floor(fr)
    tc, tr = fc - c, fr - r
    c, r = c.astype(np.int64), r.astype(np.int64)
    for dr, wr in ((0, 1.0 - tr), (1, tr)):
        for dc, wc in ((0, 1.0 - tc), (1, tc)):
            rr, cc = r + dr, c + dc
            # Points beyond the padded raster lie four bandwidths outside the area: dropped.
            inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
            mass += np.bincount(
                rr[inside] * cols + cc[inside],
                weights=(w * wr * wc)[inside],
                minlength=rows * cols,
            )
    return mass.reshape(rows, cols)

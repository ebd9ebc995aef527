"""Case density for the dispatcher's heat map: per unit grid, hexagon bins, kernel density, Gi*.

Inputs are WGS 84 lon/lat (points, and grids as shapely geometries in EPSG:4326 with their
codes); every distance and area is measured in metres in a local UTM zone (:mod:`gis.metric`).
Outputs are plain tables, GeoDataFrames and arrays: the map layers are built elsewhere.

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
  where no answer exists: a kernel density of no points without ``bounds`` (no extent), and
  Gi* on fewer than three grids.
* **Hot spots** (:func:`hot_spots`): Getis-Ord Gi* with binary queen contiguity plus the
  self-weight, computed by ``esda``; grids whose boundaries come within ``tolerance_m`` of
  each other are neighbours. A grid with no neighbour (an island) is joined to its nearest
  grid(s) by default, or left unclassified (``islands="exclude"``). Pseudo p-values are two-sided
  and count ties with the observed value as "at least as extreme", so a sea of zeros is not
  called a cold spot just because many random neighbourhoods are zero too.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import ndimage

from gis import metric
from gis.grid_inputs import validated_grids
from gis.points import validated_points

__all__ = [
    "HOT_SPOT_CLASSES",
    "DensityRaster",
    "Overlay",
    "grid_density",
    "hexbin_counts",
    "hot_spots",
    "kernel_density",
    "raster_to_png",
]

WEB_MERCATOR = CRS.from_epsg(3857)
# The kernel is cut where it has fallen to e^-8 of its peak (scipy's default truncation).
_TRUNCATE_SIGMAS = 4.0
_M2_PER_KM2 = 1e6
_SQRT3 = math.sqrt(3.0)

HOT_SPOT_CLASSES: tuple[str, ...] = (
    "hot_99",
    "hot_95",
    "hot_90",
    "not_significant",
    "cold_90",
    "cold_95",
    "cold_99",
    "island",
)
"""Classes of :func:`hot_spots`, hottest first; ``island`` = not tested (no neighbour)."""
_LEVELS = ((0.01, "99"), (0.05, "95"), (0.10, "90"))


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
        What the ``value`` column holds (what a heat map colours and :func:`hot_spots` takes):
        cases per km², cases per grid, or cases per patrol hour (needs ``patrol_hours``).
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


# -- heat-map image ----------------------------------------------------------------------------


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
        From :func:`kernel_density`.
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


# -- Getis-Ord Gi* hot spots -------------------------------------------------------------------


def hot_spots(
    grid_codes: Sequence[str],
    grid_geoms: Sequence[shapely.Geometry],
    values: Sequence[float] | np.ndarray | pd.Series,
    *,
    permutations: int = 999,
    seed: int = 12345,
    islands: Literal["nearest", "exclude"] = "nearest",
    tolerance_m: float = 0.05,
) -> pd.DataFrame:
    """Getis-Ord Gi* hot and cold spots among unit grids, with permutation inference.

    Parameters
    ----------
    grid_codes : sequence of str
        Unique grid codes.
    grid_geoms : sequence of shapely Polygon or MultiPolygon
        The grids in EPSG:4326, same order.
    values : array_like or pandas.Series
        A non-negative value per grid, in the order of ``grid_codes``, or a Series indexed by
        code (e.g. ``grid_density(...)["value"]``, normalised per km² or per patrol hour).
    permutations : int, default 999
        Conditional random permutations per grid (at least 99); the smallest attainable
        two-sided pseudo p-value is ``2 / (permutations + 1)``.
    seed : int, default 12345
        Seed of the permutations: the same input gives the same classes.
    islands : {"nearest", "exclude"}, default "nearest"
        "nearest": a grid with no contiguous neighbour is joined, both ways, to its nearest
        grid (to each of them when several are equally near; distances in metres).
        "exclude": it is left out of the test with class ``island`` and NaN statistics (its
        value still counts in the global mean and variance).
    tolerance_m : float, default 0.05
        Grids whose boundaries come within this many metres are neighbours (queen contiguity
        that survives rounding gaps, slivers and T-junctions of imported boundaries).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``code``: ``value``, ``neighbours`` (excluding the grid itself),
        ``island`` (had no contiguous neighbour), ``z`` (Gi* z-score under the normality
        assumption), ``p_value`` (two-sided pseudo p-value from the permutations) and
        ``class`` (categorical, :data:`HOT_SPOT_CLASSES`): ``hot_99`` for p ≤ 0.01 with the
        observed Gi* in the upper tail, ``hot_95`` for p ≤ 0.05, ``hot_90`` for p ≤ 0.10,
        ``cold_*`` likewise in the lower tail, else ``not_significant``. Where Gi* is
        undefined — all values equal, or a neighbourhood that spans every grid — ``z`` is NaN,
        ``p_value`` 1 and the class ``not_significant``.

    Raises
    ------
    ValueError
        For fewer than 3 grids, values that are negative, not finite, missing or misaligned,
        ``permutations < 99``, or grids refused by :func:`gis.grid_inputs.validated_grids`.

    Notes
    -----
    Weights are binary queen contiguity with a self-weight of 1 (Gi* includes the grid
    itself); ``esda.G_Local(transform="B", star=True)`` computes the statistic, its z-score
    and the permutation distribution. The pseudo p-value is computed here from that
    distribution: ``min(1, 2 * min(p_upper, p_lower))`` with ``p_upper = (#{sim >= obs} + 1) /
    (permutations + 1)`` and ``p_lower`` likewise, ties counted on both sides. No correction
    for multiple testing is applied (as in the classic Gi* map); expect ~10 % of grids in a
    90 % class by chance alone.
    """
    codes, geoms = validated_grids(grid_codes, grid_geoms)
    y = _hot_spot_values(codes, values)
    if len(codes) < 3:
        raise ValueError(f"Gi* hot spots need at least 3 grids, got {len(codes)}")
    if permutations < 99:
        raise ValueError(f"permutations must be at least 99, got {permutations}")
    if islands not in ("nearest", "exclude"):
        raise ValueError(f"islands must be 'nearest' or 'exclude', got {islands!r}")
    if not (math.isfinite(tolerance_m) and tolerance_m >= 0):
        raise ValueError(f"tolerance_m must be a finite distance >= 0, got {tolerance_m}")
    graph, isolated = _contiguity(geoms, tolerance_m, attach_islands=islands == "nearest")
    z, p, upper = _gi_star(y, graph, permutations, seed)
    classes = _classify(p, upper)
    neighbours = np.asarray(graph.cardinalities, dtype=np.int64) - 1  # less the self-weight
    if islands == "exclude":
        z[isolated], p[isolated], classes[isolated] = np.nan, np.nan, "island"
    return pd.DataFrame(
        {
            "value": y,
            "neighbours": neighbours,
            "island": isolated,
            "z": z,
            "p_value": p,
            "class": pd.Categorical(classes, categories=HOT_SPOT_CLASSES),
        },
        index=pd.Index(codes, name="code", dtype=object),
    )


def _hot_spot_values(
    codes: list[str], values: Sequence[float] | np.ndarray | pd.Series
) -> np.ndarray:
    if isinstance(values, pd.Series):
        missing = pd.Index(codes).difference(values.index)
        if len(missing):
            raise ValueError(f"values has no entry for {len(missing)} grid(s), e.g. {missing[0]!r}")
        y = values.reindex(pd.Index(codes)).to_numpy(dtype=np.float64)
    else:
        y = np.asarray(values, dtype=np.float64).ravel()
        if y.size != len(codes):
            raise ValueError(f"values must have one entry per grid ({len(codes)}), got {y.size}")
    bad = ~(np.isfinite(y) & (y >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Gi* needs finite values >= 0; grid {codes[i]!r} has {y[i]} ({int(bad.sum())} bad "
            "in total; a NaN rate per patrol hour means 0 patrol hours: drop or fill those)"
        )
    return y


def _contiguity(geoms: np.ndarray, tolerance_m: float, *, attach_islands: bool):
    """Binary queen contiguity with self-weight 1 (a libpysal Graph) and the island mask."""
    from libpysal.graph import Graph

    crs = metric.utm_crs_for_geometries(geoms)
    metric_geoms = np.asarray(metric.to_metric(geoms, crs))
    tree = shapely.STRtree(metric_geoms)
    # Boundaries within tolerance_m: exact touching, rounding gaps and T-junctions alike.
    heads, tails = tree.query(metric_geoms, predicate="dwithin", distance=tolerance_m)
    keep = heads != tails
    heads, tails = heads[keep], tails[keep]
    n = len(geoms)
    isolated = np.bincount(heads, minlength=n) == 0
    if attach_islands and isolated.any():
        lonely = np.flatnonzero(isolated)
        src, nearest = tree.query_nearest(metric_geoms[lonely], exclusive=True, all_matches=True)
        pairs = np.column_stack([lonely[src], nearest])
        heads = np.concatenate([heads, pairs[:, 0], pairs[:, 1]])
        tails = np.concatenate([tails, pairs[:, 1], pairs[:, 0]])
    # The self-loop carries Gi*'s self-weight and keeps every grid (an unattached island too)
    # in the graph; sorting keeps the graph's order that of the grids.
    edges = np.unique(
        np.column_stack(
            [np.concatenate([heads, np.arange(n)]), np.concatenate([tails, np.arange(n)])]
        ),
        axis=0,
    )
    graph = Graph.from_arrays(edges[:, 0], edges[:, 1], np.ones(len(edges)))
    if not np.array_equal(np.asarray(graph.unique_ids), np.arange(n)):
        raise RuntimeError("contiguity graph lost the order of the grids")
    return graph, isolated


def _gi_star(
    y: np.ndarray, graph, permutations: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gi* z-scores, two-sided pseudo p-values and whether each lies in the upper tail."""
    n = len(y)
    if np.ptp(y) == 0:
        # All values equal: no grid stands out and Gi* is 0/0.
        return np.full(n, np.nan), np.ones(n), np.zeros(n, dtype=bool)
    from esda.getisord import G_Local

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # esda announces a future change of its own p-value; the p-value is computed below.
        warnings.filterwarnings(
            "ignore", message="The alternative hypothesis", category=DeprecationWarning
        )
        gi = G_Local(
            y,
            graph,
            transform="B",
            star=True,
            permutations=permutations,
            keep_simulations=True,
            n_jobs=1,
            seed=seed,
        )
    observed, sims = np.asarray(gi.Gs), np.asarray(gi.rGs)
    # Floating sums in another order differ in the last bits: within 1e-10 is a tie.
    tol = 1e-10 * np.abs(observed)[:, None]
    above = (sims >= observed[:, None] - tol).sum(axis=1)
    below = (sims <= observed[:, None] + tol).sum(axis=1)
    p_upper = (above + 1.0) / (permutations + 1.0)
    p_lower = (below + 1.0) / (permutations + 1.0)
    p = np.minimum(1.0, 2.0 * np.minimum(p_upper, p_lower))
    z = np.asarray(gi.Zs, dtype=np.float64).copy()
    z[~np.isfinite(z)] = np.nan
    return z, p, p_upper < p_lower


def _classify(p: np.ndarray, upper: np.ndarray) -> np.ndarray:
    classes = np.full(p.shape, "not_significant", dtype=object)
    for alpha, level in reversed(_LEVELS):  # widest first, so the strictest level wins
        hit = p <= alpha
        classes[hit & upper] = f"hot_{level}"
        classes[hit & ~upper] = f"cold_{level}"
    return classes

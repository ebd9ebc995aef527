"""Fast point → unit-grid assignment that agrees with PostGIS ``ST_Covers(geom, point)``.

Containment is decided in planar EPSG:4326 lon/lat coordinates, exactly as the database does
it; only distances (:meth:`GridIndex.candidates`, :meth:`GridIndex.nearest`) are measured in
metres, in the UTM zone of the grids (:mod:`gis.metric`).

Rules a user relies on
----------------------
* **Covers semantics**: a point on a grid's outer boundary or on the boundary of one of its
  holes is covered by that grid; a point strictly inside a hole is not.
* **Ties go to the lowest code**: a point on an edge or vertex shared by several grids (or inside
  overlapping grids) is assigned to the grid whose code sorts first as a string. For the
  full-width numeric codes of :mod:`gis.codes` this is numeric order, and since unit codes are
  numbered west→east, north→south, a point on a shared edge belongs to the north/west grid of
  its community.
* Points must already be WGS 84 (convert GCJ-02/BD-09 with :func:`gis.datum.to_wgs84` first).

How it is fast
--------------
A lookup raster is laid over the grids' bounding box. Each raster cell stores either the grid
that covers the whole cell (``>= 0``), ``-1`` when no grid touches the cell, or a reference to a
short candidate list when some grid boundary passes within a hair (1e-9°) of the cell. Locating
a million points is then a vectorised table look-up; only the points falling in boundary cells
(typically a few percent) are tested exactly, with GEOS prepared point-in-polygon
(``shapely.intersects_xy``, identical to ``covers`` for a point) against the candidates in
ascending code order, so the first hit is the lowest code.

Cells are classified without testing every cell: cells touched by a boundary are marked from
the ring segments, and each horizontal run of unmarked cells lies inside a single face of the
grid arrangement, so one exact point-in-polygon test of the run's first cell centre classifies
the whole run. The 1e-9° margin (about 0.1 mm, five orders of magnitude above the rounding
error of the cell arithmetic) guarantees that a point whose cell index is rounded into a
neighbouring cell still gets that neighbour's correct answer.

Agreement with PostGIS
----------------------
GEOS decides on-the-line exactly; PostGIS's point-in-polygon short cut for ``ST_Covers``
evaluates the same orientation determinant in plain double precision and treats exactly zero as
"on the boundary". Both are exact for points that lie exactly on an edge (vertices, axis-aligned
edges, representable midpoints) and for every point farther than about 1e-18° from an edge;
they could differ only for a point within that distance of an edge yet not on it, which no
measured coordinate produces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import cast

import numpy as np
import shapely
from pyproj import CRS

from gis import metric
from gis.grid_inputs import validated_grids
from gis.points import validated_point, validated_points

__all__ = ["GridIndex"]

# Boundary-cell margin in degrees: far above the ~1e-14° rounding of the cell arithmetic, far
# below any cell size the raster will choose.
_MARGIN = 1e-9
# Smallest cell edge in degrees (~1 cm), so the margin stays negligible against the cell.
_MIN_CELL = 1e-7
# Median grid is split into about this many cells: boundary cells are then ~10 % of all.
_TARGET_CELLS_PER_GRID = 1024
# Work arrays are processed in chunks of this many elements to bound peak memory.
_CHUNK = 2_000_000
_UNSET = np.iinfo(np.int32).max


@dataclass(frozen=True)
class _Raster:
    """Lookup raster: ``table`` holds, per cell (row-major from the south-west corner), the
    covering grid (>= 0), -1 (no grid), or ``-2 - k`` for boundary cell ``k`` whose candidate
    grids are ``candidates[indptr[k]:indptr[k + 1]]`` in ascending order."""

    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int
    table: np.ndarray
    indptr: np.ndarray
    candidates: np.ndarray


class GridIndex:
    """Point → grid index over the unit grids valid at one moment.

    Parameters
    ----------
    codes : sequence of str
        Grid codes, unique. Ties between grids covering the same point go to the lowest code.
    geoms : sequence of shapely Polygon or MultiPolygon
        The grids' geometries in EPSG:4326 lon/lat, valid and non-empty, same order as ``codes``.
    max_cells : int, default 8_000_000
        Upper bound on lookup-raster cells (4 bytes each). More cells mean fewer points that
        need an exact test.

    Raises
    ------
    ValueError
        If the codes are not unique strings, the lengths differ, or a geometry is not a valid,
        non-empty lon/lat (Multi)Polygon.

    Examples
    --------
    >>> from shapely import box
    >>> west, east = box(113.650, 34.75, 113.651, 34.751), box(113.651, 34.75, 113.652, 34.751)
    >>> index = GridIndex(["41010200100102", "41010200100101"], [east, west])
    >>> index.codes_for(np.array([113.6505, 113.651, 113.7]), np.array([34.7505] * 3))
    array(['41010200100101', '41010200100101', None], dtype=object)
    """

    def __init__(
        self,
        codes: Sequence[str],
        geoms: Sequence[shapely.Geometry],
        *,
        max_cells: int = 8_000_000,
    ) -> None:
        if max_cells < 1:
            raise ValueError(f"max_cells must be a positive number of cells, got {max_cells}")
        codes_list, geom_arr = validated_grids(codes, geoms, names=("codes", "geoms"))
        self._codes = tuple(codes_list)
        # Internal order is ascending code, so "lowest internal index" == "lowest code".
        self._order = np.array(
            sorted(range(len(codes_list)), key=codes_list.__getitem__), dtype=np.int64
        )
        self._geoms = geom_arr[self._order]
        shapely.prepare(self._geoms)
        # GEOS builds a prepared polygon's point locator on first use; doing it now means
        # concurrent locate() calls only ever read it.
        corners = shapely.bounds(self._geoms)
        shapely.intersects_xy(self._geoms, corners[:, 0], corners[:, 1])
        self._tree = shapely.STRtree(self._geoms)
        self._bounds = tuple(shapely.total_bounds(self._geoms)) if len(self._geoms) else None
        self._raster = _build_raster(self._geoms, self._tree, max_cells) if self._bounds else None

    @property
    def codes(self) -> tuple[str, ...]:
        """The grid codes in the order given at construction (what indices refer to)."""
        return self._codes

    def __len__(self) -> int:
        return len(self._codes)

    @property
    def raster_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the lookup raster (``(0, 0)`` for an empty index)."""
        return (self._raster.ny, self._raster.nx) if self._raster else (0, 0)

    @property
    def boundary_cell_fraction(self) -> float:
        """Share of raster cells whose points are resolved by an exact test."""
        if self._raster is None:
            return 0.0
        return float((len(self._raster.indptr) - 1) / self._raster.table.size)

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index into :attr:`codes` of the grid covering each point, -1 where none does.

        Parameters
        ----------
        lon, lat : array_like of float
            WGS 84 coordinates in degrees, same shape.

        Returns
        -------
        numpy.ndarray of int64
            Same shape as ``lon``. Points on shared edges/vertices go to the lowest code;
            points on any boundary (outer or hole) are covered.

        Raises
        ------
        ValueError
            If the arrays differ in shape or hold non-finite or out-of-range coordinates.
        """
        x, y = validated_points(lon, lat)
        found = self._locate_internal(x.ravel(), y.ravel())
        if not len(self):
            return found.reshape(x.shape)
        return np.where(found >= 0, self._order[np.maximum(found, 0)], -1).reshape(x.shape)

    def codes_for(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Code of the grid covering each point (``None`` where none does); see :meth:`locate`.

        Returns
        -------
        numpy.ndarray of object
            Same shape as ``lon``.
        """
        found = self.locate(lon, lat)
        table = np.array([*self._codes, None], dtype=object)
        return table[found]

    def covering(self, lon: float, lat: float) -> list[int]:
        """Every grid covering a point (indices into :attr:`codes`), lowest code first.

        More than one only on a shared edge or vertex; :meth:`locate` picks the first.
        """
        x, y = validated_point(lon, lat)
        if not len(self):
            return []
        return [int(i) for i in self._order[self._covering_internal(x, y)]]

    def candidates(self, lon: float, lat: float, radius_m: float) -> list[tuple[int, float]]:
        """Every grid within ``radius_m`` metres of a point, nearest first.

        Parameters
        ----------
        lon, lat : float
            WGS 84 point in degrees.
        radius_m : float
            Search radius in metres (>= 0), inclusive.

        Returns
        -------
        list of (int, float)
            ``(index into codes, distance in metres)`` sorted by distance then code. Grids
            covering the point (decided in lon/lat, as :meth:`locate`) have distance 0; other
            distances are measured in the grids' UTM zone, where a point within projection error
            (sub-millimetre) of an edge may also measure 0.

        Raises
        ------
        ValueError
            If the point or radius is not finite or out of range.
        """
        x, y = validated_point(lon, lat)
        if not (math.isfinite(radius_m) and radius_m >= 0):
            raise ValueError(f"radius_m must be a finite distance >= 0 in metres, got {radius_m}")
        if not len(self):
            return []
        point_m = self._point_metric(x, y)
        near = self._metric_tree.query(point_m, predicate="dwithin", distance=radius_m)
        covering = self._covering_internal(x, y)
        idx = np.union1d(near, covering).astype(np.int64)
        dist = shapely.distance(self._metric_geoms[idx], point_m)
        dist[np.isin(idx, covering)] = 0.0
        keep = dist <= radius_m
        return self._ranked(idx[keep], dist[keep])

    def candidates_many(
        self, lon: np.ndarray, lat: np.ndarray, radius_m: float, located: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`candidates` for many points at once (bulk intake).

        Parameters
        ----------
        lon, lat : array_like
            WGS 84 points in degrees.
        radius_m : float
            Search radius in metres.
        located : np.ndarray
            The result of :meth:`locate` for the same points; that grid is listed at distance 0.

        Returns
        -------
        (point, grid, distance_m) : tuple of np.ndarray
            One row per (point, grid within ``radius_m``) pair, sorted by point, then distance,
            then code; ``grid`` indexes ``codes``.
        """
        x, y = validated_points(lon, lat)
        if not (math.isfinite(radius_m) and radius_m >= 0):
            raise ValueError(f"radius_m must be a finite distance >= 0 in metres, got {radius_m}")
        empty = np.empty(0, dtype=np.int64)
        if not len(self) or not x.size:
            return empty, empty, np.empty(0)
        located = np.asarray(located)
        # Points whose raster cell lies farther than the radius from every boundary cell have
        # only their own grid in reach: answer them without building geometries.
        near = np.ones(x.shape, dtype=bool)
        if self._raster is not None:
            assert self._bounds is not None  # a raster is only built for a non-empty index
            minx, miny, maxx, maxy = self._bounds
            inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
            cells = _cell_of(self._raster, x[inside], y[inside])
            near[inside] = self._edge_distance_m[cells] <= radius_m
        far = np.flatnonzero(~near & (located >= 0))
        near_idx = np.flatnonzero(near)
        # Arrays in, array out; the stubs cannot tell an array from a scalar here.
        points_m = cast(
            np.ndarray,
            shapely.points(*metric.to_metric_xy(x[near_idx], y[near_idx], self._metric_crs)),
        )
        local, internal = self._metric_tree.query(points_m, predicate="dwithin", distance=radius_m)
        point = near_idx[local]
        grid = self._order[internal]
        dist = shapely.distance(self._metric_geoms[internal], points_m[local])
        own = located[point] == grid
        dist[own] = 0.0
        keep = own | (dist <= radius_m)
        point, grid, dist = point[keep], grid[keep], dist[keep]
        internal = internal[keep]
        point = np.concatenate([point, far])
        grid = np.concatenate([grid, located[far]])
        dist = np.concatenate([dist, np.zeros(far.size)])
        internal = np.concatenate([internal, self._internal_of[located[far]]])
        order = np.lexsort((internal, dist, point))
        return point[order], grid[order], dist[order]

    def nearest(self, lon: float, lat: float) -> tuple[int, float] | None:
        """The grid nearest to a point and its distance in metres.

        Parameters
        ----------
        lon, lat : float
            WGS 84 point in degrees.

        Returns
        -------
        (int, float) or None
            ``(index into codes, metres)``; the covering grid with distance 0 when the point is
            covered (same grid as :meth:`locate`), otherwise the nearest grid measured in the
            grids' UTM zone, ties to the lowest code. ``None`` only for an empty index.

        Raises
        ------
        ValueError
            If the point is not finite or out of range.
        """
        x, y = validated_point(lon, lat)
        if not len(self):
            return None
        covering = self._covering_internal(x, y)
        if covering.size:
            return int(self._order[covering.min()]), 0.0
        point_m = self._point_metric(x, y)
        idx, dist = self._metric_tree.query_nearest(point_m, return_distance=True, all_matches=True)
        return self._ranked(idx, dist)[0]

    # -- internals -----------------------------------------------------------------------------

    def _locate_internal(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Internal (code-sorted) index per point, -1 where uncovered."""
        out = np.full(x.shape, -1, dtype=np.int64)
        if self._raster is None:
            return out
        assert self._bounds is not None  # a raster is only built for a non-empty index
        minx, miny, maxx, maxy = self._bounds
        # Outside the grids' total bounds nothing can cover the point.
        inside = np.flatnonzero((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
        xs, ys = x[inside], y[inside]
        value = self._raster.table[_cell_of(self._raster, xs, ys)]
        fast = value >= -1
        out[inside[fast]] = value[fast]
        slow = ~fast
        out[inside[slow]] = _resolve_exact(
            self._raster, self._geoms, -2 - value[slow], xs[slow], ys[slow]
        )
        return out

    def _covering_internal(self, x: float, y: float) -> np.ndarray:
        """Internal indices of all grids covering one point (exact GEOS test)."""
        env = self._tree.query(shapely.points(x, y))
        hit = shapely.intersects_xy(self._geoms[env], x, y)
        return np.sort(env[hit])

    def _ranked(self, internal: np.ndarray, dist: np.ndarray) -> list[tuple[int, float]]:
        # Internal indices ascend with the code, so (distance, internal) is (distance, code).
        order = np.lexsort((internal, dist))
        return [(int(self._order[internal[i]]), float(dist[i])) for i in order]

    @cached_property
    def _internal_of(self) -> np.ndarray:
        """Internal (code-sorted) position of each external index."""
        inverse = np.empty(len(self._order), dtype=np.int64)
        inverse[self._order] = np.arange(len(self._order))
        return inverse

    @cached_property
    def _edge_distance_m(self) -> np.ndarray:
        """Per raster cell, a lower bound of the metres from any point in it to any boundary.

        Distance transform of the boundary-cell mask (centre to centre, in metres at the
        raster's widest latitude), less one cell diagonal for the spread of both cells.
        """
        from scipy.ndimage import distance_transform_edt

        r = self._raster
        assert r is not None  # only called once a raster exists (see candidates_many)
        lat = max(abs(r.y0), abs(r.y0 + r.ny * r.dy))
        mx = r.dx * 111_320.0 * math.cos(math.radians(min(lat, 89.0))) * 0.999
        my = r.dy * 110_574.0 * 0.999
        boundary = (r.table < -1).reshape(r.ny, r.nx)
        if not boundary.any():
            return np.full(r.nx * r.ny, np.inf)
        edt = distance_transform_edt(~boundary, sampling=(my, mx)).ravel()
        return edt - math.hypot(mx, my)

    @property
    def metric_crs(self) -> CRS:
        """The UTM CRS in which :meth:`candidates` and :meth:`nearest` measure."""
        return self._metric_crs

    @cached_property
    def _metric_crs(self) -> CRS:
        return metric.utm_crs_for_geometries(self._geoms)

    @cached_property
    def _metric_geoms(self) -> np.ndarray:
        # Projected lazily: only candidates()/nearest() need metres.
        return np.asarray(metric.to_metric(self._geoms, self._metric_crs))

    @cached_property
    def _metric_tree(self) -> shapely.STRtree:
        return shapely.STRtree(self._metric_geoms)

    def _point_metric(self, x: float, y: float) -> shapely.Point:
        # coordinates through the cached transformer: 20x cheaper than transforming a Point
        mx, my = metric.to_metric_xy(x, y, self._metric_crs)
        return shapely.Point(float(mx), float(my))


# -- lookup raster ------------------------------------------------------------------------------


def _build_raster(geoms: np.ndarray, tree: shapely.STRtree, max_cells: int) -> _Raster:
    """Classify every raster cell: covering grid, no grid, or boundary with candidates."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    dx, dy = _cell_size(geoms, maxx - minx, maxy - miny, (miny + maxy) / 2.0, max_cells)
    nx = int((maxx - minx) // dx) + 1
    ny = int((maxy - miny) // dy) + 1
    grid = (float(minx), float(miny), dx, dy, nx, ny)
    boundary = _boundary_mask(geoms, grid)
    table = np.empty(nx * ny, dtype=np.int32)
    _fill_interior_runs(table, boundary, grid, tree)
    boundary_cells = np.flatnonzero(boundary)
    n_boundary = boundary_cells.size
    table[boundary_cells] = -2 - np.arange(n_boundary, dtype=np.int32)
    indptr, candidates = _boundary_candidates(geoms, table, boundary, grid, n_boundary)
    return _Raster(*grid, table=table, indptr=indptr, candidates=candidates)


def _cell_size(
    geoms: np.ndarray, width: float, height: float, mid_lat: float, max_cells: int
) -> tuple[float, float]:
    """Cell edges (dx, dy) in degrees: roughly square on the ground, ~1,024 cells per median
    grid, at most ``max_cells`` cells over the bounding box."""
    # Planar degree² areas are fine here: they only size the raster, they measure nothing.
    median_area = float(np.median(shapely.area(geoms)))
    aspect = max(math.cos(math.radians(mid_lat)), 0.05)  # dx = dy / aspect is square in metres
    cell_area = max(median_area / _TARGET_CELLS_PER_GRID, width * height / max_cells)
    dy = max(math.sqrt(cell_area * aspect), _MIN_CELL)
    dx = max(dy / aspect, _MIN_CELL)
    while (int(width // dx) + 1) * (int(height // dy) + 1) > max_cells:
        dx, dy = dx * 1.05, dy * 1.05
    return dx, dy


def _boundary_mask(geoms: np.ndarray, grid: tuple) -> np.ndarray:
    """Cells within the margin of any ring segment of any grid (outer rings and holes)."""
    x0, y0, dx, dy, nx, ny = grid
    rings = shapely.get_rings(shapely.get_parts(geoms))
    coords, ring_id = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_id[1:] == ring_id[:-1]
    a, b = coords[:-1][same_ring], coords[1:][same_ring]
    # Split segments into pieces no longer than one cell per axis, so each piece's bounding
    # box touches at most 3 x 3 cells and over-marking stays local.
    pieces = np.maximum(
        np.ceil(np.maximum(np.abs(b[:, 0] - a[:, 0]) / dx, np.abs(b[:, 1] - a[:, 1]) / dy)), 1
    ).astype(np.int64)
    mask = np.zeros(nx * ny, dtype=bool)
    for sl in _chunks_by_weight(pieces, _CHUNK):
        _mark_pieces(mask, a[sl], b[sl], pieces[sl], grid)
    return mask


def _mark_pieces(
    mask: np.ndarray, a: np.ndarray, b: np.ndarray, pieces: np.ndarray, grid: tuple
) -> None:
    x0, y0, dx, dy, nx, ny = grid
    seg = np.repeat(np.arange(len(pieces)), pieces)
    k = np.arange(seg.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    t0, t1 = k / pieces[seg], (k + 1) / pieces[seg]
    d = (b - a)[seg]
    p0 = a[seg] + d * t0[:, None]
    p1 = a[seg] + d * t1[:, None]
    # Twice the margin: covers the margin itself plus the rounding of the interpolated pieces.
    lo = np.minimum(p0, p1) - 2 * _MARGIN
    hi = np.maximum(p0, p1) + 2 * _MARGIN
    ix0 = np.clip(np.floor((lo[:, 0] - x0) / dx), 0, nx - 1).astype(np.int64)
    ix1 = np.clip(np.floor((hi[:, 0] - x0) / dx), 0, nx - 1).astype(np.int64)
    iy0 = np.clip(np.floor((lo[:, 1] - y0) / dy), 0, ny - 1).astype(np.int64)
    iy1 = np.clip(np.floor((hi[:, 1] - y0) / dy), 0, ny - 1).astype(np.int64)
    for ox in range(3):
        for oy in range(3):
            sel = (ix0 + ox <= ix1) & (iy0 + oy <= iy1)
            mask[(iy0[sel] + oy) * nx + ix0[sel] + ox] = True


def _fill_interior_runs(
    table: np.ndarray, boundary: np.ndarray, grid: tuple, tree: shapely.STRtree
) -> None:
    """Fill the non-boundary cells of ``table`` with their grid or -1.

    A horizontal run of non-boundary cells contains no grid boundary (even with the margin),
    so it lies in one face of the arrangement: one exact test at the centre of its first cell
    gives the covering grid (lowest index if grids overlap) or -1 for the whole run.
    """
    x0, y0, dx, dy, nx, ny = grid
    inner = ~boundary.reshape(ny, nx)
    starts: np.ndarray = inner.copy()
    starts[:, 1:] &= ~inner[:, :-1]
    starts = starts.ravel()
    first = np.flatnonzero(starts)
    cx = x0 + (first % nx + 0.5) * dx
    cy = y0 + (first // nx + 0.5) * dy
    rep, hit = tree.query(shapely.points(cx, cy), predicate="intersects")
    value = np.full(first.size, _UNSET, dtype=np.int64)
    np.minimum.at(value, rep, hit)
    value[value == _UNSET] = -1
    run_of_cell = np.cumsum(starts) - 1
    inner_flat = inner.ravel()
    table[inner_flat] = value[run_of_cell[inner_flat]]


def _boundary_candidates(
    geoms: np.ndarray, table: np.ndarray, boundary: np.ndarray, grid: tuple, n_boundary: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per boundary cell, the grids whose bounding box reaches the cell, ascending (CSR).

    Bounding boxes (not the boundary marks) are used so that a grid containing the whole cell
    while another grid's edge crosses it (overlapping data) is still a candidate.
    """
    x0, y0, dx, dy, nx, ny = grid
    b = shapely.bounds(geoms)
    ix0 = np.clip(np.floor((b[:, 0] - 2 * _MARGIN - x0) / dx), 0, nx - 1).astype(np.int64)
    ix1 = np.clip(np.floor((b[:, 2] + 2 * _MARGIN - x0) / dx), 0, nx - 1).astype(np.int64)
    iy0 = np.clip(np.floor((b[:, 1] - 2 * _MARGIN - y0) / dy), 0, ny - 1).astype(np.int64)
    iy1 = np.clip(np.floor((b[:, 3] + 2 * _MARGIN - y0) / dy), 0, ny - 1).astype(np.int64)
    width = ix1 - ix0 + 1
    sizes = width * (iy1 - iy0 + 1)
    cells_parts, grid_parts = [], []
    for sl in _chunks_by_weight(sizes, _CHUNK):
        ids = np.arange(sl.start, sl.stop)
        g = np.repeat(ids, sizes[sl])
        k = np.arange(g.size) - np.repeat(np.cumsum(sizes[sl]) - sizes[sl], sizes[sl])
        flat = (iy0[g] + k // width[g]) * nx + ix0[g] + k % width[g]
        on_boundary = boundary[flat]
        cells_parts.append(-2 - table[flat[on_boundary]].astype(np.int64))
        grid_parts.append(g[on_boundary].astype(np.int32))
    cells = np.concatenate(cells_parts)
    grids = np.concatenate(grid_parts)
    # Grids were visited in ascending order, so a stable sort by cell keeps them ascending.
    order = np.argsort(cells, kind="stable")
    indptr = np.zeros(n_boundary + 1, dtype=np.int64)
    np.cumsum(np.bincount(cells, minlength=n_boundary), out=indptr[1:])
    return indptr, grids[order]


def _chunks_by_weight(weights: np.ndarray, budget: int) -> list[slice]:
    """Consecutive slices of ``weights`` whose sums stay near ``budget`` (at least one item)."""
    ends = np.cumsum(weights)
    slices, start = [], 0
    while start < len(weights):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + budget, side="right")), start + 1)
        slices.append(slice(start, stop))
        start = stop
    return slices


def _cell_of(raster: _Raster, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Points are inside the total bounds, so the quotients are >= 0 and truncation is floor;
    # clipping only absorbs rounding at the far edge.
    ix = np.minimum(((x - raster.x0) / raster.dx).astype(np.int64), raster.nx - 1)
    iy = np.minimum(((y - raster.y0) / raster.dy).astype(np.int64), raster.ny - 1)
    return iy * raster.nx + ix


def _resolve_exact(
    raster: _Raster, geoms: np.ndarray, cell: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Lowest candidate grid covering each point of a boundary cell, -1 if none.

    Candidates are tried in ascending order and a point leaves the loop at its first hit, so
    the hit is the lowest code and most points need one or two tests.
    """
    out = np.full(x.shape, -1, dtype=np.int64)
    start = raster.indptr[cell]
    count = raster.indptr[cell + 1] - start
    active = np.arange(x.size)
    k = 0
    while active.size:
        active = active[count[active] > k]
        if not active.size:
            break
        g = raster.candidates[start[active] + k]
        hit = shapely.intersects_xy(geoms[g], x[active], y[active])
        out[active[hit]] = g[hit]
        active = active[~hit]
        k += 1
    return out

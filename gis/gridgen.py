"""Unit-grid generation: lay a square or hexagonal lattice over a parent polygon and clip it.

The lattice is laid out in the parent's UTM zone (see :mod:`gis.metric`), so every whole cell
has the requested area in square metres. It is anchored at the north-west corner of the parent's
bounding box. Hexagons are *pointy-top*: each lattice row is a horizontal line of hexagons and
odd rows are shifted east by half a hexagon width, so "row" means the same thing for both shapes.

Cells are clipped to the parent; pieces smaller than ``sliver_ratio * target_area_m2`` are merged
into the neighbour with which they share the longest boundary. The cells tile the parent exactly:
their union is the parent and they do not overlap.

All overlay work uses a fixed precision grid of :data:`GRID_SIZE_M` (one micrometre), so
neighbouring cells have bit-identical shared edges and merges do not leave slivers of float noise.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import cast

import numpy as np
import shapely
from shapely import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gis.metric import to_metric, to_wgs84, utm_crs_for_geometries

SHAPES: tuple[str, ...] = ("square", "hexagon")
MIN_TARGET_AREA_M2 = 100.0
MAX_CELLS = 100_000
GRID_SIZE_M = 1e-6

_POLYGON_TYPE_ID = 3  # shapely.get_type_id of a Polygon


def generate_cells(
    parent: Polygon | MultiPolygon,
    target_area_m2: float = 10_000.0,
    shape: str = "square",
    sliver_ratio: float = 0.25,
) -> list[Polygon | MultiPolygon]:
    """Cut a parent polygon into unit cells of about ``target_area_m2``, in coding order.

    Parameters
    ----------
    parent : shapely.Polygon or shapely.MultiPolygon
        The area to cut, in lon/lat (EPSG:4326). Holes and several parts are allowed.
    target_area_m2 : float, default 10_000.0
        Area of one whole lattice cell in square metres; at least :data:`MIN_TARGET_AREA_M2`.
    shape : {"square", "hexagon"}, default "square"
        Lattice shape. Hexagons are pointy-top, odd rows shifted east by half a width.
    sliver_ratio : float, default 0.25
        A clipped piece smaller than ``sliver_ratio * target_area_m2`` is merged into the
        neighbour it shares the longest boundary with; 0 disables merging. Between 0 and 1.

    Returns
    -------
    list of shapely.Polygon or shapely.MultiPolygon
        Cells in lon/lat that tile the parent, ordered north→south by lattice row (for a
        merged cell, the row of the piece the slivers joined) and west→east by representative
        point inside a row. A sliver that shares no boundary with
        any other cell (e.g. a small island) is kept as a cell of its own. A cell is a
        MultiPolygon only when the parent itself forces it (practically never).

    Raises
    ------
    ValueError
        If the parent is not a non-empty valid polygon in lon/lat, ``shape`` is unknown,
        ``target_area_m2`` is below :data:`MIN_TARGET_AREA_M2`, ``sliver_ratio`` is outside
        [0, 1], or the parent would produce more than :data:`MAX_CELLS` cells.
    """
    _check_parent(parent)
    _check_options(target_area_m2, shape, sliver_ratio)
    crs = utm_crs_for_geometries(parent)
    parent_m = to_metric(parent, crs)
    _check_cell_count(parent_m.area / target_area_m2, target_area_m2)
    cells, rows = _lattice(parent_m, target_area_m2, shape)
    pieces, piece_rows = _clip(cells, rows, parent_m)
    roots = _merge_slivers(pieces, sliver_ratio * target_area_m2)
    merged, merged_rows = _dissolve(pieces, piece_rows, roots)
    order = _row_major_order(merged, merged_rows)
    return list(to_wgs84(merged[order], crs))


def order_west_east_north_south(
    polygons: Sequence[shapely.Geometry] | np.ndarray, row_height_m: float
) -> list[int]:
    """Indices that put lon/lat polygons into coding order: rows north→south, then west→east.

    Each polygon is represented by its representative point (always inside it), projected to
    the UTM zone of all the polygons. Rows are ``row_height_m`` tall and centred on the
    northernmost representative point, so a point belongs to row
    ``round((y_north - y) / row_height_m)``. Inside a row, polygons go west→east by x (ties:
    north first, then input order).

    Parameters
    ----------
    polygons : sequence of shapely geometries
        Non-empty polygons in lon/lat (EPSG:4326).
    row_height_m : float
        Height of a row in metres, usually the height of one grid cell.

    Returns
    -------
    list of int
        ``order`` such that ``[polygons[i] for i in order]`` is in coding order.

    Raises
    ------
    ValueError
        If ``row_height_m`` is not a positive number or a geometry is missing or empty.
    """
    if not (math.isfinite(row_height_m) and row_height_m > 0):
        raise ValueError(f"row_height_m must be a positive number of metres, got {row_height_m}")
    geoms = np.asarray(polygons, dtype=object)
    if geoms.size == 0:
        return []
    missing = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if missing.size:
        raise ValueError(
            f"geometries at positions {missing.tolist()} are missing or empty; "
            "drop them before ordering"
        )
    crs = utm_crs_for_geometries(geoms)
    points = to_metric(shapely.point_on_surface(geoms), crs)
    x, y = shapely.get_x(points), shapely.get_y(points)
    rows = np.floor((y.max() - y) / row_height_m + 0.5)
    return np.lexsort((np.arange(len(geoms)), -y, x, rows)).tolist()


def _check_parent(parent: object) -> None:
    if not isinstance(parent, Polygon | MultiPolygon):
        raise ValueError(
            f"parent must be a shapely Polygon or MultiPolygon, got {type(parent).__name__}"
        )
    if parent.is_empty:
        raise ValueError("parent polygon is empty; there is nothing to cut into cells")
    if not parent.is_valid:
        raise ValueError(
            f"parent polygon is invalid ({shapely.is_valid_reason(parent)}); "
            "repair it first, e.g. with shapely.make_valid"
        )
    minx, miny, maxx, maxy = parent.bounds
    if not (-180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0):
        raise ValueError(
            f"parent bounds {parent.bounds} are not lon/lat degrees; "
            "reproject the parent to EPSG:4326 first"
        )


def _check_options(target_area_m2: float, shape: str, sliver_ratio: float) -> None:
    if shape not in SHAPES:
        raise ValueError(f"unknown cell shape {shape!r}; use one of {', '.join(SHAPES)}")
    if not (math.isfinite(target_area_m2) and target_area_m2 > 0):
        raise ValueError(
            f"target_area_m2 must be a positive number of square metres, got {target_area_m2}"
        )
    if target_area_m2 < MIN_TARGET_AREA_M2:
        raise ValueError(
            f"target_area_m2={target_area_m2} m² is too small for a grid cell; "
            f"use at least {MIN_TARGET_AREA_M2:g} m² (unit grids are ~10,000 m²)"
        )
    if not (math.isfinite(sliver_ratio) and 0.0 <= sliver_ratio <= 1.0):
        raise ValueError(f"sliver_ratio must be between 0 and 1, got {sliver_ratio}")


def _check_cell_count(count: float, target_area_m2: float) -> None:
    if count > MAX_CELLS:
        raise ValueError(
            f"the parent would produce about {count:,.0f} cells of "
            f"{target_area_m2:g} m², more than the limit of {MAX_CELLS:,}; "
            "use a larger target_area_m2 or cut a smaller parent"
        )


def _lattice(parent_m: BaseGeometry, area: float, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Lattice cells (metric) that intersect the parent, with their lattice row numbers."""
    layout = _SquareLayout(parent_m, area) if shape == "square" else _HexLayout(parent_m, area)
    rows, cols = _candidate_cells(parent_m, layout)
    # Round vertices exactly as the clipping overlay will, so whole cells and clipped cells
    # agree on shared vertices; pointwise mode skips the (slow, here needless) validity repair.
    cells = shapely.set_precision(layout.polygons(rows, cols), GRID_SIZE_M, mode="pointwise")
    hits = shapely.intersects(parent_m, cells)
    _check_cell_count(int(hits.sum()), area)
    return cells[hits], rows[hits]


class _SquareLayout:
    """Squares of side sqrt(area); row r spans y in [top - (r+1)s, top - r s]."""

    def __init__(self, parent_m: BaseGeometry, area: float) -> None:
        self.minx, miny, _, self.maxy = parent_m.bounds
        self.side = math.sqrt(area)
        # One spare row: float rounding must never leave the southern edge uncovered.
        self.nrows = math.floor((self.maxy - miny) / self.side) + 1
        self.col_width = self.side

    def row_extent(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._y(rows + 1), self._y(rows)

    def col_offset(self, rows: np.ndarray) -> np.ndarray:
        return np.zeros_like(rows, dtype=float)

    def polygons(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        # Vertices come from integer multiples of the side so that shared edges are identical.
        x0, x1 = self._x(cols), self._x(cols + 1)
        y0, y1 = self._y(rows + 1), self._y(rows)
        ring = np.stack(
            [
                np.column_stack([x0, y0]),
                np.column_stack([x1, y0]),
                np.column_stack([x1, y1]),
                np.column_stack([x0, y1]),
                np.column_stack([x0, y0]),
            ],
            axis=1,
        )
        # An array of rings gives an array of polygons; the stubs also allow a single Polygon.
        return cast(np.ndarray, shapely.polygons(ring))

    def _x(self, k: np.ndarray) -> np.ndarray:
        return self.minx + k * self.side

    def _y(self, m: np.ndarray) -> np.ndarray:
        return self.maxy - m * self.side


class _HexLayout:
    """Pointy-top hexagons of circumradius R; row r is centred at y = top - 1.5 R r.

    Vertex x are integer multiples of half a width and vertex y integer multiples of R / 2 from
    the anchor, so neighbouring hexagons share bit-identical vertices.
    """

    def __init__(self, parent_m: BaseGeometry, area: float) -> None:
        self.minx, miny, _, self.maxy = parent_m.bounds
        radius = math.sqrt(2.0 * area / (3.0 * math.sqrt(3.0)))
        self.half_w, self.half_r = math.sqrt(3.0) * radius / 2.0, radius / 2.0
        self.col_width = 2.0 * self.half_w
        # Rows 0..N cover everything above their lower vertex level 3N + 1 (in units of R/2).
        height = (self.maxy - miny) / self.half_r
        self.nrows = max(1, math.ceil((height - 1.0) / 3.0) + 1) + 1  # + 1 spare, as above

    def row_extent(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._y(3 * rows + 2), self._y(3 * rows - 2)

    def col_offset(self, rows: np.ndarray) -> np.ndarray:
        return (rows % 2) * self.half_w

    def polygons(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        k = 2 * cols + rows % 2  # centre, in half widths
        m = 3 * rows  # centre, in half radii
        xs = [self._x(k + dk) for dk in (0, 1, 1, 0, -1, -1, 0)]
        ys = [self._y(m + dm) for dm in (-2, -1, 1, 2, 1, -1, -2)]
        ring = np.stack([np.column_stack([x, y]) for x, y in zip(xs, ys, strict=True)], axis=1)
        # An array of rings gives an array of polygons; the stubs also allow a single Polygon.
        return cast(np.ndarray, shapely.polygons(ring))

    def _x(self, k: np.ndarray) -> np.ndarray:
        return self.minx + k * self.half_w

    def _y(self, m: np.ndarray) -> np.ndarray:
        return self.maxy - m * self.half_r


def _candidate_cells(
    parent_m: BaseGeometry, layout: _SquareLayout | _HexLayout
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of lattice cells near the parent, row band by row band.

    Only the x-extent of each part of (row band ∩ parent) is filled, so long diagonal or
    ring-shaped parents do not generate their whole bounding box.
    """
    minx, _, maxx, _ = parent_m.bounds
    rows = np.arange(layout.nrows)
    bottom, top = layout.row_extent(rows)
    # shapely broadcasts scalar x bounds against the row arrays; its stubs want all of one kind.
    bands = shapely.box(minx, bottom, maxx, top)  # type: ignore[call-overload]
    parts, band_index = shapely.get_parts(shapely.intersection(bands, parent_m), return_index=True)
    present = ~shapely.is_empty(parts)
    parts, band_index = parts[present], band_index[present]
    parts_bounds = shapely.bounds(parts)
    offsets = layout.col_offset(rows[band_index])
    first = np.floor((parts_bounds[:, 0] - minx - offsets) / layout.col_width).astype(int) - 1
    last = np.ceil((parts_bounds[:, 2] - minx - offsets) / layout.col_width).astype(int) + 1
    pairs = {
        (int(r), c)
        for r, a, b in zip(band_index, first, last, strict=True)
        for c in range(a, b + 1)
    }
    if not pairs:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    rc = np.array(sorted(pairs), dtype=int)
    return rc[:, 0], rc[:, 1]


def _clip(
    cells: np.ndarray, rows: np.ndarray, parent_m: BaseGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """Clip cells to the parent; every polygon piece of a clipped cell becomes its own piece."""
    # Cells within a few grid units of the parent boundary are clipped too: snap rounding may
    # move a boundary vertex onto their edge, and both neighbours must get that vertex.
    near = shapely.boundary(parent_m)
    shapely.prepare(near)
    inside = ~shapely.dwithin(near, cells, 10.0 * GRID_SIZE_M)
    clipped = cells.copy()
    clipped[~inside] = shapely.intersection(cells[~inside], parent_m, grid_size=GRID_SIZE_M)
    pieces, index = _polygon_parts(clipped)
    keep = shapely.area(pieces) > 0.0
    return pieces[keep], rows[index[keep]]


def _polygon_parts(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygon parts of (possibly nested collections of) geometries, with source indices."""
    index = np.arange(len(geoms))
    while True:
        nested = shapely.get_num_geometries(geoms) != 1
        nested |= shapely.get_type_id(geoms) != _POLYGON_TYPE_ID
        if not nested.any():
            return geoms, index
        parts, sub = shapely.get_parts(geoms, return_index=True)
        geoms, index = parts, index[sub]
        # Lines and points of a collection are not area; drop them to let the loop finish.
        droppable = np.isin(shapely.get_type_id(geoms), (0, 1, 2))
        geoms, index = geoms[~droppable], index[~droppable]


def _merge_slivers(pieces: np.ndarray, threshold: float) -> np.ndarray:
    """For each piece, the index of the piece it ends up merged into (itself if not merged).

    Smallest sliver first, each goes to the neighbour with the longest shared boundary (ties:
    larger neighbour, then lower index). Areas and shared lengths are summed rather than
    recomputed, which is exact because merged pieces never overlap.
    """
    areas = shapely.area(pieces)
    neighbours = _shared_boundaries(pieces, np.flatnonzero(areas < threshold))
    merged_into = np.arange(len(pieces))
    heap = [(areas[i], int(i)) for i in np.flatnonzero(areas < threshold)]
    heapq.heapify(heap)
    while heap:
        area, i = heapq.heappop(heap)
        if merged_into[i] != i or area != areas[i] or not neighbours.get(i):
            continue  # absorbed, stale entry, or isolated (kept as its own cell)
        near = neighbours.pop(i)
        j = max(near, key=lambda k: (near[k], areas[k], -k))
        merged_into[i], areas[j] = j, areas[j] + area
        _move_boundaries(neighbours, near, i, j)
        if areas[j] < threshold:
            heapq.heappush(heap, (areas[j], j))
    return _resolve(merged_into)


def _shared_boundaries(pieces: np.ndarray, slivers: np.ndarray) -> dict[int, dict[int, float]]:
    """Shared boundary lengths between each sliver and the pieces it borders (both ways).

    Pairs of non-slivers are never needed: a non-sliver is never merged away.
    """
    neighbours: dict[int, dict[int, float]] = {}
    if slivers.size == 0:
        return neighbours
    tree = shapely.STRtree(pieces)
    src, dst = tree.query(pieces[slivers], predicate="intersects")
    a, b = slivers[src], dst
    keep = a != b
    a, b = a[keep], b[keep]
    boundaries = shapely.boundary(pieces)
    lengths = shapely.length(shapely.intersection(boundaries[a], boundaries[b]))
    for i, j, length in zip(a.tolist(), b.tolist(), lengths.tolist(), strict=True):
        if length > 0.0:
            neighbours.setdefault(i, {})[j] = length
            neighbours.setdefault(j, {})[i] = length
    return neighbours


def _move_boundaries(
    neighbours: dict[int, dict[int, float]], near: dict[int, float], i: int, j: int
) -> None:
    """Hand the shared boundaries of piece ``i`` over to ``j`` after ``i`` merged into ``j``."""
    target = neighbours.setdefault(j, {})
    target.pop(i, None)
    for k, length in near.items():
        if k == j:
            continue
        other = neighbours.setdefault(k, {})
        other.pop(i, None)
        other[j] = other.get(j, 0.0) + length
        target[k] = target.get(k, 0.0) + length


def _resolve(merged_into: np.ndarray) -> np.ndarray:
    roots = merged_into.copy()
    while True:
        nxt = roots[roots]
        if np.array_equal(nxt, roots):
            return roots
        roots = nxt


def _dissolve(
    pieces: np.ndarray, rows: np.ndarray, roots: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One geometry per merge group; the group takes the lattice row of the piece it grew from."""
    unique_roots = np.unique(roots)
    merged = pieces[unique_roots].copy()
    members: dict[int, list[int]] = {}
    for piece in np.flatnonzero(roots != np.arange(len(roots))).tolist():
        members.setdefault(int(roots[piece]), [int(roots[piece])]).append(piece)
    for root, group in members.items():
        position = np.searchsorted(unique_roots, root)
        merged[position] = _single(shapely.union_all(pieces[group], grid_size=GRID_SIZE_M))
    return merged, rows[unique_roots]


def _single(geom: shapely.Geometry) -> shapely.Geometry:
    """A Polygon when the union is one part, otherwise the polygonal MultiPolygon."""
    parts, _ = _polygon_parts(np.array([geom], dtype=object))
    return parts[0] if len(parts) == 1 else MultiPolygon(list(parts))


def _row_major_order(cells: np.ndarray, rows: np.ndarray) -> np.ndarray:
    points = shapely.point_on_surface(cells)
    x, y = shapely.get_x(points), shapely.get_y(points)
    return np.lexsort((-y, x, rows))

"""Hotspots (热点): places that breed city-management problems, and the problems near them.

A hotspot is a farmer market, a rail corridor, a construction site, a school gate... Each has its
own geometry (Point, LineString, Polygon or their Multi variants, EPSG:4326 lon/lat) and an
influence buffer in metres. Its *influence zone* is the geometry grown by the buffer; a problem
(case) belongs to every hotspot whose zone covers it, nearest hotspot first.

Rules a user relies on
----------------------
* **Buffers are metric.** Zones are grown in the UTM zone (:mod:`gis.metric`) of the centre of
  the whole hotspot set's bounding box, one CRS for the set, and returned in lon/lat.
* **A point or line hotspot needs a buffer > 0 m**: its zone would otherwise have no area and
  could never cover a case, so a zero buffer is rejected rather than silently matching nothing.
  A polygon hotspot with buffer 0 is its own zone (unchanged, no reprojection round trip).
* **Zones approximate circles with 64-gons** (``quad_segs=16``, :data:`QUAD_SEGS`). The polygon's
  vertices lie on the true circle, so a zone is never larger than the exact buffer: its area is
  0.16 % smaller than pi*r**2 around a point, and between vertices the edge lies at most
  ``r * (1 - cos(pi/64))`` = 0.12 % of ``r`` inside (6 cm for 50 m). A case that far from the
  exact buffer edge may therefore miss a zone. Straight edges of lines and polygons are offset
  exactly; only their corners and ends are rounded this way.
* **UTM metres are not ground metres**: the UTM scale factor is 0.9996 on the central meridian
  and grows to about 1.001 at the zone edge, so buffers and distances carry up to ~0.1 % scale
  error; this is far below what matters for a 50 m buffer.
* **Covers semantics in lon/lat**: whether a case lies in a zone is decided on the lon/lat zone
  (as PostGIS ``ST_Covers`` on stored 4326 geometry would), boundary included. A case exactly on
  a zone edge or vertex is matched.
* **Distances are to the hotspot's own geometry**, in metres in the set's UTM zone: the
  distance to the ring for a case in a hole (a courtyard), to the track for a rail corridor.
  A case on the own geometry in lon/lat (inside or on the edge of a polygon, on a line) is
  exactly 0 m away, although a lon/lat edge may lie ~0.1 mm off its straight UTM image. For a
  matched case the distance is at most the hotspot's buffer (to well under a millimetre).
* **Order**: matches are sorted by case, then distance, then hotspot id.
* **Grid shares**: :func:`share_in_grids` and :func:`length_in_grids` intersect in lon/lat (so
  a grid that only touches along an edge or at a corner gets exactly zero and is left out) and
  measure the pieces in metres. A stretch of line lying exactly on an edge shared by two grids
  is counted once, for the lowest code, like :mod:`gis.locate` assigns points on shared edges.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import cast

import numpy as np
import shapely
from pyproj import CRS

from gis import metric
from gis.grid_inputs import POLYGONAL, check_lonlat, geometry_array, validated_grids
from gis.points import validated_point, validated_points

__all__ = ["QUAD_SEGS", "HotspotIndex", "influence_zones", "length_in_grids", "share_in_grids"]

QUAD_SEGS = 16
"""Segments per quarter circle of a buffer: 64-gon circles, area 0.16 % below pi*r**2."""

_POINTS_OR_LINES = (shapely.Point, shapely.MultiPoint, shapely.LineString, shapely.MultiLineString)
_LINEAR = (shapely.LineString, shapely.MultiLineString)
# Longest zone edge before reprojecting to lon/lat. A straight UTM edge maps to a slightly curved
# lon/lat line, so a long edge left whole would let the lon/lat zone bulge past the buffer
# (~2 mm for a 1 km corridor edge); at 25 m the gap is micrometres.
_MAX_EDGE_M = 25.0
# Cases are turned into GEOS points this many at a time, to bound peak memory on 1M cases.
_FEW_ZONES = 256  # up to this many zones a numpy bbox scan finds candidate pairs
_CHUNK = 250_000


def influence_zones(
    geoms: Sequence[shapely.Geometry], buffer_m: float | Sequence[float]
) -> np.ndarray:
    """Influence zone of each hotspot: its geometry grown by its buffer in metres.

    Parameters
    ----------
    geoms : sequence of shapely geometry
        Point, LineString, Polygon or their Multi variants in EPSG:4326 lon/lat; valid and
        non-empty.
    buffer_m : float or sequence of float
        Buffer in metres (>= 0), one per geometry or one for all. Points and lines need > 0.

    Returns
    -------
    numpy.ndarray of shapely Polygon or MultiPolygon
        The zones in lon/lat, same order. Grown in the UTM zone of the centre of the whole
        set's bounding box with :data:`QUAD_SEGS` segments per quarter circle (a point's zone
        is 0.16 % smaller than the exact circle). Polygons with buffer 0 are returned as given.

    Raises
    ------
    ValueError
        If the lengths differ, a geometry is empty, invalid, of another type or not lon/lat, a
        buffer is negative or not finite, or a point or line hotspot has buffer 0.

    Examples
    --------
    >>> zone = influence_zones([shapely.Point(113.65, 34.75)], 50.0)[0]
    >>> round(float(metric.area_m2(zone)))
    7841
    """
    geom_arr = geometry_array(geoms)
    labels = [f"at position {i}" for i in range(len(geom_arr))]
    geom_arr, buffers = _validated_hotspots(geom_arr, buffer_m, labels)
    if not len(geom_arr):
        return geom_arr
    crs = metric.utm_crs_for_geometries(geom_arr)
    return _zones(geom_arr, np.asarray(metric.to_metric(geom_arr, crs)), buffers, crs)


class HotspotIndex:
    """Match cases (points) to the hotspots whose influence zone covers them.

    Parameters
    ----------
    ids : sequence of int
        Hotspot ids, unique. Ties in distance are broken by ascending id.
    geoms : sequence of shapely geometry
        Each hotspot's own geometry (Point, LineString, Polygon or Multi variants) in EPSG:4326
        lon/lat, valid and non-empty, same order as ``ids``.
    buffer_m : float or sequence of float
        Influence buffer in metres (>= 0; > 0 for points and lines), per hotspot or one for all.

    Raises
    ------
    ValueError
        If the ids are not unique integers, the lengths differ, or a geometry or buffer is
        rejected as by :func:`influence_zones`.

    Examples
    --------
    >>> gate = shapely.Point(113.65, 34.75)
    >>> market = shapely.box(113.6502, 34.7499, 113.6504, 34.7501)
    >>> index = HotspotIndex([7, 3], [gate, market], [50.0, 30.0])
    >>> [(i, round(d, 1)) for i, d in index.matches_for(113.6502, 34.75)]
    [(3, 0.0), (7, 18.3)]
    """

    def __init__(
        self,
        ids: Sequence[int],
        geoms: Sequence[shapely.Geometry],
        buffer_m: float | Sequence[float],
    ) -> None:
        geom_arr = geometry_array(geoms)
        self._ids = _validated_ids(ids, len(geom_arr))
        geom_arr, buffers = _validated_hotspots(geom_arr, buffer_m, [f"id {i}" for i in self._ids])
        self._geoms = geom_arr
        self._buffers = buffers
        self._crs: CRS | None = None
        self._zones = np.empty(0, dtype=object)
        self._bounds = (0.0, 0.0, 0.0, 0.0)
        if len(geom_arr):
            self._crs = metric.utm_crs_for_geometries(geom_arr)
            self._metric_geoms = np.asarray(metric.to_metric(geom_arr, self._crs))
            self._zones = _zones(geom_arr, self._metric_geoms, buffers, self._crs)
            self._bounds = tuple(shapely.total_bounds(self._zones))
            # Prepared now so that concurrent match() calls only ever read the GEOS structures.
            for prepared in (self._zones, self._geoms):
                shapely.prepare(prepared)
                corners = shapely.bounds(prepared)
                shapely.intersects_xy(prepared, corners[:, 0], corners[:, 1])
            self._zone_tree = shapely.STRtree(self._zones)
            self._own_tree = shapely.STRtree(self._metric_geoms)

    @property
    def ids(self) -> np.ndarray:
        """Hotspot ids in construction order (what ``hotspot_pos`` indexes), int64."""
        return self._ids.copy()

    @property
    def zones(self) -> np.ndarray:
        """Influence zones in lon/lat, same order as :attr:`ids` (see :func:`influence_zones`)."""
        return self._zones.copy()

    @property
    def crs(self) -> CRS | None:
        """The UTM CRS in which buffers and distances are measured (``None`` when empty)."""
        return self._crs

    def __len__(self) -> int:
        return len(self._ids)

    def match(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (case, hotspot) pair where the hotspot's influence zone covers the case.

        Parameters
        ----------
        lon, lat : array_like of float
            WGS 84 case coordinates in degrees, same shape (flattened if not 1-D).

        Returns
        -------
        point_idx : numpy.ndarray of int64
            Position of the case in the (flattened) input.
        hotspot_pos : numpy.ndarray of int64
            Position of the hotspot in :attr:`ids`.
        distance_m : numpy.ndarray of float64
            Metres from the case to the hotspot's own geometry, measured in :attr:`crs`;
            exactly 0 for a case on it in lon/lat (inside or on the edge of a polygon).

        Pairs are sorted by case, then distance, then hotspot id. Cases covered by no zone do
        not appear. Coverage includes the zone boundary and is decided in lon/lat.

        Raises
        ------
        ValueError
            If the arrays differ in shape or hold non-finite or out-of-range coordinates.
        """
        x, y = validated_points(lon, lat)
        x, y = x.ravel(), y.ravel()
        parts = [self._match_chunk(x, y, c) for c in self._candidate_chunks(x, y)]
        if not parts:
            return _no_matches()
        point_idx, hotspot_pos, distance_m = (np.concatenate(p) for p in zip(*parts, strict=True))
        order = np.lexsort((self._ids[hotspot_pos], distance_m, point_idx))
        return point_idx[order], hotspot_pos[order], distance_m[order]

    def matches_for(self, lon: float, lat: float) -> list[tuple[int, float]]:
        """Hotspots whose influence zone covers one case, nearest first (see :meth:`match`).

        Parameters
        ----------
        lon, lat : float
            WGS 84 case in degrees.

        Returns
        -------
        list of (int, float)
            ``(hotspot id, distance in metres to its own geometry)``, by distance then id.

        Raises
        ------
        ValueError
            If the point is not finite or out of range.
        """
        x, y = validated_point(lon, lat)
        _, pos, dist = self.match(np.array([x]), np.array([y]))
        return [(int(self._ids[p]), float(d)) for p, d in zip(pos, dist, strict=True)]

    def near(self, lon: float, lat: float, radius_m: float) -> list[tuple[int, float]]:
        """Hotspots whose own geometry lies within ``radius_m`` of a point, whatever their buffer.

        Parameters
        ----------
        lon, lat : float
            WGS 84 point in degrees.
        radius_m : float
            Search radius in metres (>= 0), inclusive.

        Returns
        -------
        list of (int, float)
            ``(hotspot id, distance in metres)`` sorted by distance then id; distances are
            measured in :attr:`crs`, exactly 0 for a point on the own geometry in lon/lat
            (inside or on the edge of a polygon), which is therefore found even at radius 0.

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
        # A non-empty index always has its CRS (set in __init__).
        point_m = metric.to_metric(shapely.Point(x, y), cast(CRS, self._crs))
        near = self._own_tree.query(point_m, predicate="dwithin", distance=radius_m)
        # As in match(): on the own geometry in lon/lat means 0 m, even for radius 0.
        on_own = np.flatnonzero(shapely.intersects_xy(self._geoms, x, y))
        pos = np.union1d(near, on_own).astype(np.int64)
        dist = shapely.distance(self._metric_geoms[pos], point_m)
        dist[np.isin(pos, on_own)] = 0.0
        keep = dist <= radius_m
        pos, dist = pos[keep], dist[keep]
        order = np.lexsort((self._ids[pos], dist))
        return [(int(self._ids[pos[i]]), float(dist[i])) for i in order]

    # -- internals -----------------------------------------------------------------------------

    def _candidate_chunks(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """Positions of the cases inside the zones' total bounds, in chunks of :data:`_CHUNK`."""
        if not len(self) or not x.size:
            return []
        minx, miny, maxx, maxy = self._bounds
        # Cheap numpy cut first: only cases near some zone become GEOS points.
        inside = np.flatnonzero((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
        return [inside[i : i + _CHUNK] for i in range(0, inside.size, _CHUNK)]

    def _zone_pairs_by_bbox(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(point, zone) pairs whose zone bounding box holds the point, found with numpy.

        For a city's few dozen hotspots this beats building a GEOS point per case for the tree.
        """
        box = shapely.bounds(self._zones)
        local, zone = [], []
        for k, (minx, miny, maxx, maxy) in enumerate(box):
            hit = np.flatnonzero((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
            local.append(hit)
            zone.append(np.full(hit.size, k, dtype=np.int64))
        return np.concatenate(local), np.concatenate(zone)

    def _match_chunk(
        self, x: np.ndarray, y: np.ndarray, chunk: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self._zones) <= _FEW_ZONES:
            local, hotspot_pos = self._zone_pairs_by_bbox(x[chunk], y[chunk])
        else:
            points = shapely.points(x[chunk], y[chunk])
            # The tree answers bounding boxes only: its own predicate test does not use the
            # prepared zones (measured 3x slower on 800 m zones), intersects_xy below does.
            local, hotspot_pos = self._zone_tree.query(points)
        # For a point, "intersects" is exactly "covered by" (boundary included).
        inside = shapely.intersects_xy(self._zones[hotspot_pos], x[chunk[local]], y[chunk[local]])
        local, hotspot_pos = local[inside], hotspot_pos[inside]
        # Project each matched case once, even when it lies in several zones.
        unique, inverse = np.unique(local, return_inverse=True)
        mx, my = metric.to_metric_xy(x[chunk[unique]], y[chunk[unique]], cast(CRS, self._crs))
        # Arrays in, array out; the stubs cannot tell an array from a scalar here.
        points_m = cast(np.ndarray, shapely.points(mx, my))[inverse]
        distance_m = shapely.distance(points_m, self._metric_geoms[hotspot_pos])
        # A case on the hotspot's own geometry in lon/lat (inside a polygon, on a line) is 0 m
        # away exactly, whatever the sub-millimetre gap between lon/lat and UTM edges says.
        on_own = shapely.intersects_xy(self._geoms[hotspot_pos], x[chunk[local]], y[chunk[local]])
        distance_m[on_own] = 0.0
        return chunk[local].astype(np.int64), hotspot_pos.astype(np.int64), distance_m


def share_in_grids(
    zone_or_geom: shapely.Geometry,
    grid_codes: Sequence[str],
    grid_geoms: Sequence[shapely.Geometry],
    min_area_m2: float = 0.01,
) -> list[dict]:
    """Area of a polygonal zone inside each grid it overlaps, and the share of the zone.

    Parameters
    ----------
    zone_or_geom : shapely Polygon or MultiPolygon
        A polygon hotspot or an influence zone (pass the zone from :func:`influence_zones` for
        a point or line hotspot), EPSG:4326 lon/lat.
    grid_codes : sequence of str
        Grid codes, unique.
    grid_geoms : sequence of shapely Polygon or MultiPolygon
        The grids in lon/lat, same order as ``grid_codes``.
    min_area_m2 : float
        Pieces smaller than this are dropped: a zone drawn along a grid edge meets the
        neighbour in rounding slivers (a zone and a grid edge converted from metres
        separately differ by micrometres), which are not a real share.

    Returns
    -------
    list of dict
        ``{"code", "area_m2", "share"}`` for each grid sharing area with the zone, ``share``
        being ``area_m2`` over the zone's area; sorted by share descending, then code. Grids
        touching the zone only along an edge or at a point are left out. Areas are measured in
        the UTM zone of the zone's centre; shares sum to 1 when the grids tile the zone.

    Raises
    ------
    ValueError
        If the zone is not a valid, non-empty lon/lat (Multi)Polygon, or the grids are rejected
        (lengths differ, duplicate codes, invalid or non-polygonal geometry).
    """
    zone = _validated_single(zone_or_geom, POLYGONAL, "zone", "pass its influence zone instead")
    codes, grids = validated_grids(grid_codes, grid_geoms)
    crs = metric.utm_crs_for_geometries(zone)
    total = float(shapely.area(metric.to_metric(zone, crs)))
    hit = _overlapping(zone, grids)
    # Intersect in lon/lat, so an edge-only contact gives exactly zero area; measure in metres.
    areas = shapely.area(metric.to_metric(shapely.intersection(grids[hit], zone), crs))
    rows = [
        {"code": codes[i], "area_m2": float(a), "share": float(a) / total}
        for i, a in zip(hit, areas, strict=True)
        if a > max(min_area_m2, 0.0)
    ]
    return sorted(rows, key=lambda r: (-r["share"], r["code"]))


def length_in_grids(
    line: shapely.Geometry,
    grid_codes: Sequence[str],
    grid_geoms: Sequence[shapely.Geometry],
) -> list[dict]:
    """Length of a line hotspot inside each grid it runs through, and the share of its length.

    Parameters
    ----------
    line : shapely LineString or MultiLineString
        The hotspot's own line (e.g. a rail track) in EPSG:4326 lon/lat.
    grid_codes : sequence of str
        Grid codes, unique.
    grid_geoms : sequence of shapely Polygon or MultiPolygon
        The grids in lon/lat, same order as ``grid_codes``.

    Returns
    -------
    list of dict
        ``{"code", "length_m", "share"}`` for each grid holding a positive length of the line,
        ``share`` being ``length_m`` over the line's length; sorted by share descending, then
        code. A stretch lying exactly on an edge shared by several grids counts once, for the
        lowest code, so shares sum to 1 when the line lies inside the grids' union. Lengths are
        measured in the UTM zone of the line's centre.

    Raises
    ------
    ValueError
        If the line is not a valid, non-empty lon/lat (Multi)LineString of positive length, or
        the grids are rejected (lengths differ, duplicate codes, invalid geometry).
    """
    line = _validated_single(line, _LINEAR, "line", "use share_in_grids for polygonal zones")
    codes, grids = validated_grids(grid_codes, grid_geoms)
    crs = metric.utm_crs_for_geometries(line)
    total = float(shapely.length(metric.to_metric(line, crs)))
    if total <= 0:
        raise ValueError("line has zero length; a line hotspot needs at least two distinct points")
    rows = []
    rest = line
    # Lowest code first, each grid taking what is left: a stretch on a shared edge counts once.
    for i in sorted(_overlapping(line, grids), key=codes.__getitem__):
        piece = shapely.intersection(rest, grids[i])
        rest = shapely.difference(rest, grids[i])
        length = float(shapely.length(metric.to_metric(piece, crs)))
        if length > 0:
            rows.append({"code": codes[i], "length_m": length, "share": length / total})
    return sorted(rows, key=lambda r: (-r["share"], r["code"]))


# -- zones --------------------------------------------------------------------------------------


def _zones(
    geoms: np.ndarray, metric_geoms: np.ndarray, buffers: np.ndarray, crs: CRS
) -> np.ndarray:
    """Lon/lat zones: buffered in ``crs`` where buffer > 0, the geometry itself otherwise."""
    zones = geoms.copy()
    grow = np.flatnonzero(buffers > 0)
    if grow.size:
        grown = shapely.buffer(metric_geoms[grow], buffers[grow], quad_segs=QUAD_SEGS)
        zones[grow] = metric.to_wgs84(grown, crs, max_segment_m=_MAX_EDGE_M)
        # Reprojection moves vertices independently; should two nearly touching parts cross by
        # a hair, a zero buffer in lon/lat rebuilds a valid polygon with the same area.
        bad = grow[~shapely.is_valid(zones[grow])]
        zones[bad] = shapely.buffer(zones[bad], 0)
    return zones


def _overlapping(geom: shapely.Geometry, grids: np.ndarray) -> np.ndarray:
    """Positions of the grids that intersect ``geom`` (bounding-box cut, then exact test)."""
    minx, miny, maxx, maxy = shapely.bounds(geom)
    b = shapely.bounds(grids).reshape(-1, 4)
    near = np.flatnonzero(
        (b[:, 0] <= maxx) & (b[:, 2] >= minx) & (b[:, 1] <= maxy) & (b[:, 3] >= miny)
    )
    return near[shapely.intersects(grids[near], geom)]


def _no_matches() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)


# -- validation ---------------------------------------------------------------------------------


def _validated_ids(ids: Sequence[int], n: int) -> np.ndarray:
    ids_list = list(ids)
    if len(ids_list) != n:
        raise ValueError(
            f"ids and geoms must have the same length, got {len(ids_list)} ids and {n} geometries"
        )
    bad = [i for i in ids_list if not isinstance(i, numbers.Integral) or isinstance(i, bool)]
    if bad:
        raise ValueError(f"hotspot ids must be integers, got {bad[0]!r}")
    arr = np.asarray(ids_list, dtype=np.int64)
    values, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"hotspot ids must be unique; {values[counts > 1][0]} appears more than once"
        )
    return arr


def _validated_hotspots(
    geom_arr: np.ndarray, buffer_m: float | Sequence[float], labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    buffers = _validated_buffers(buffer_m, len(geom_arr))
    allowed = _POINTS_OR_LINES + POLYGONAL
    for label, geom in zip(labels, geom_arr, strict=True):
        if not isinstance(geom, allowed):
            raise ValueError(
                f"hotspot {label}: geometry must be a Point, LineString, Polygon or a Multi "
                f"variant, got {type(geom).__name__}"
            )
    check_lonlat(geom_arr, labels, "hotspot")
    bare = [isinstance(g, _POINTS_OR_LINES) for g in geom_arr]
    zero = np.flatnonzero(np.array(bare, dtype=bool) & (buffers == 0))
    if zero.size:
        raise ValueError(
            f"hotspot {labels[zero[0]]}: a point or line hotspot needs a buffer > 0 m (its zone "
            "would have no area and match nothing); give it an influence buffer in metres"
        )
    return geom_arr, buffers


def _validated_buffers(buffer_m: float | Sequence[float], n: int) -> np.ndarray:
    try:
        raw = np.asarray(buffer_m, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"buffer_m must be metres (numbers), got {buffer_m!r}") from None
    if raw.ndim == 0:
        raw = np.full(n, float(raw))
    if raw.shape != (n,):
        raise ValueError(
            f"buffer_m must be one number or one per geometry, got {raw.size} buffers for "
            f"{n} geometries"
        )
    bad = np.flatnonzero(~(np.isfinite(raw) & (raw >= 0)))
    if bad.size:
        raise ValueError(
            f"buffer_m must be finite and >= 0 metres; position {bad[0]} has {raw[bad[0]]}"
        )
    return raw


def _validated_single(
    geom: shapely.Geometry, kinds: tuple, name: str, hint: str
) -> shapely.Geometry:
    if not isinstance(geom, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{name} must be a {wanted}, got {type(geom).__name__}; {hint}")
    check_lonlat(np.array([geom], dtype=object), [""], name)
    return geom

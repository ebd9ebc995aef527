"""Metric coordinate reference systems: lengths, areas and buffers are computed in metres.

Geometry is stored in EPSG:4326; anything measured is first projected to the UTM zone of the
place (WGS 84 / UTM north or south), never measured in degrees.

Two rules keep comparisons between separately stored geometries honest:

* **Decide in lon/lat, measure in metres.** Whether one grid sticks out of another, or two
  overlap, is decided by overlaying them as stored (lon/lat, edges straight in degrees, as
  PostGIS and every GIS read them); only the pieces that result are projected to be measured
  (:func:`outside_area_m2`, :func:`shared_area_m2`). A child that shares its parent's edges
  exactly then leaves nothing outside, however long the edges are.
* **Project edges, not only vertices.** A straight lon/lat edge is a curve in UTM (a 1.4 km
  east-west edge bows ~2 cm at lat 35°). :func:`to_metric` densifies every edge to at most
  :data:`MAX_SEGMENT_M` before projecting, so a long parent edge and the short child edges along
  it land on the same curve (within a fraction of a millimetre) rather than on different chords.
  Everything that projects lon/lat geometry uses it. The other way round, shapes drawn in a
  projected CRS (buffers, imported Gauss-Krüger files) are densified there before they become
  lon/lat (``to_wgs84(..., max_segment_m=...)``), so their straight edges stay straight.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Proj, Transformer
from shapely.geometry.base import BaseGeometry

WGS84 = CRS.from_epsg(4326)

# Longest edge (metres) projected as a straight chord. A lon/lat edge of 100 m bows at most
# ~0.6 mm off its chord in UTM (lat 53°, diagonal edge), ~0.3 mm at lat 35°.
MAX_SEGMENT_M = 100.0
# Metres in one degree of latitude (or of longitude at the equator): the most a degree of either
# axis spans, so a step of ``m / M_PER_DEGREE`` degrees is never longer than ``m`` metres.
M_PER_DEGREE = 111_320.0


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


def densify(geoms, crs: CRS = WGS84, max_segment_m: float = MAX_SEGMENT_M):
    """Geometries (scalar or array) with extra vertices on their edges so that no edge is longer
    than ``max_segment_m`` metres.

    Edges are split along straight lines of ``crs``, the CRS the geometries are in: degrees for
    lon/lat, the CRS's own unit otherwise. The shape in ``crs`` is unchanged; invalid polygons
    stay exactly as they were (GEOS's densifier would quietly repair them), so the area their
    rings describe can still be judged.
    """
    if crs.is_geographic:
        step = max_segment_m / M_PER_DEGREE
    else:
        step = max_segment_m / crs.axis_info[0].unit_conversion_factor
    if geoms is None or isinstance(geoms, BaseGeometry):
        return _densify_one(geoms, step)
    arr = np.asarray(geoms, dtype=object)
    out = shapely.segmentize(arr, step)
    broken = np.flatnonzero(~shapely.is_missing(arr) & ~shapely.is_valid(arr))
    for i in broken.tolist():
        out[i] = _densify_one(arr[i], step)
    return out


def _densify_one(geom: BaseGeometry | None, step: float) -> BaseGeometry | None:
    if isinstance(geom, shapely.Polygon) and not geom.is_valid:
        polygons = [geom]
    elif isinstance(geom, shapely.MultiPolygon) and not geom.is_valid:
        polygons = list(geom.geoms)
    else:
        return shapely.segmentize(geom, step)
    # Ring by ring, as lines: segmentize on an invalid polygon would return a repaired one.
    rebuilt = [
        shapely.Polygon(_ring(p.exterior, step), [_ring(hole, step) for hole in p.interiors])
        for p in polygons
    ]
    return rebuilt[0] if isinstance(geom, shapely.Polygon) else shapely.MultiPolygon(rebuilt)


def _ring(ring: shapely.LinearRing, step: float) -> np.ndarray:
    return shapely.get_coordinates(shapely.segmentize(shapely.LineString(ring.coords), step))


def to_metric(geoms, crs: CRS):
    """Project lon/lat geometries to the metric ``crs``, edges densified first.

    This is the one projection for anything measured or compared in metres: each edge lands
    on its true (curved) path, not on the chord between its projected end points, so a long
    edge and the short edges that run along it agree to within a millimetre.
    """
    return transform(densify(geoms), WGS84, crs)


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


def to_wgs84(geoms, crs: CRS, max_segment_m: float | None = None):
    """Project geometries in ``crs`` (metric, or any other) to lon/lat.

    Vertex by vertex by default: the result's edges are straight in lon/lat. With
    ``max_segment_m`` the edges are first densified in ``crs`` to that length, so that a shape
    *drawn* in a projected CRS (a buffer, a file digitised in Gauss-Krüger) keeps its straight
    edges in lon/lat (to within a millimetre at :data:`MAX_SEGMENT_M`): a child drawn along its
    parent's long edge then stays inside it.
    """
    if max_segment_m is not None:
        geoms = densify(geoms, crs, max_segment_m)
    return transform(geoms, crs, WGS84)


def area_m2(geoms, crs: CRS | None = None) -> np.ndarray | float:
    """Area in square metres of lon/lat geometries, measured in ``crs`` (default: their UTM
    zone). Empty geometries measure 0."""
    if crs is None:
        present = np.asarray(geoms, dtype=object).ravel()
        present = present[~shapely.is_missing(present) & ~shapely.is_empty(present)]
        if not present.size:
            return shapely.area(geoms)
        crs = utm_crs_for_geometries(present)
    return shapely.area(to_metric(geoms, crs))


def outside_area_m2(inner, outer, crs: CRS | None = None) -> np.ndarray | float:
    """Area in m² of ``inner`` not covered by ``outer`` (lon/lat, scalars or arrays).

    Decided in lon/lat, measured in metres: an ``inner`` that shares ``outer``'s edges exactly
    measures 0, however long the edges. ``crs`` defaults to the UTM zone of ``inner``.
    """
    return area_m2(shapely.difference(inner, outer), crs or utm_crs_for_geometries(inner))


def shared_area_m2(a, b, crs: CRS | None = None) -> np.ndarray | float:
    """Area in m² that lon/lat geometries ``a`` and ``b`` share (scalars or arrays).

    Decided in lon/lat, measured in metres: neighbours that share an edge measure 0.
    ``crs`` defaults to the UTM zone of ``a``.
    """
    return area_m2(shapely.intersection(a, b), crs or utm_crs_for_geometries(a))

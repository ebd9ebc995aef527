"""Metric CRS choice and areas in square metres."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod

from gis.metric import (
    WGS84,
    area_m2,
    densify,
    outside_area_m2,
    shared_area_m2,
    to_metric,
    to_wgs84,
    transform,
    utm_crs_for,
)


def test_zhengzhou_is_in_utm_zone_49_north() -> None:
    assert utm_crs_for(113.65, 34.75).to_epsg() == 32649
    assert utm_crs_for(-70.6, -33.4).to_epsg() == 32719


def test_area_matches_geodesic_area() -> None:
    poly = shapely.Polygon([(113.64, 34.74), (113.66, 34.74), (113.66, 34.76), (113.64, 34.75)])
    geodesic, _ = Geod(ellps="WGS84").geometry_area_perimeter(poly)
    assert area_m2(poly) == pytest.approx(abs(geodesic), rel=1e-3)


def test_projection_round_trip_keeps_the_shape() -> None:
    poly = shapely.box(113.64, 34.74, 113.66, 34.76)
    crs = utm_crs_for(113.65, 34.75)
    back = to_wgs84(to_metric(poly, crs), crs)
    # the edges come back with the vertices they were densified with, on the same lines
    assert shapely.hausdorff_distance(back, poly) < 1e-12
    assert shapely.area(shapely.symmetric_difference(back, poly)) < 1e-14  # deg², ~0.1 mm²


def test_out_of_range_coordinates_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        utm_crs_for(190.0, 0.0)


# -- comparing separately stored geometries ------------------------------------------------------

GEOD = Geod(ellps="WGS84")


def geodesic_area(geom) -> float:
    """Area on the ellipsoid, independent of gis.metric (edges split every ~1 m first, so the
    geodesics follow the lon/lat-straight edges)."""
    area, _ = GEOD.geometry_area_perimeter(shapely.segmentize(geom, 1e-5))
    return abs(area)


def split_west_to_east(parent_box, cuts):
    """Children of a lon/lat box cut along meridians at ``cuts``, sharing the parent's edges."""
    minx, miny, maxx, maxy = parent_box
    xs = [minx, *cuts, maxx]
    return [shapely.box(a, miny, b, maxy) for a, b in zip(xs[:-1], xs[1:], strict=False)]


NESTED_CASES = {
    # the issue: a 1.3 km street, three communities sharing its edges exactly
    "issue-1.3km": ((113.700, 34.800, 113.714, 34.808), [113.706, 113.712]),
    # 18 km long edges, cut unevenly
    "long-18km": ((113.60, 34.80, 113.80, 34.83), [113.613, 113.7, 113.7777]),
    # straddling the UTM zone 49/50 boundary at 114°E, cut on it
    "zone-boundary": ((113.95, 34.80, 114.05, 34.83), [113.98, 114.0]),
    # far north (Harbin): edges bow more
    "harbin": ((126.50, 45.70, 126.62, 45.76), [126.51, 126.6]),
}


@pytest.mark.parametrize("name", list(NESTED_CASES))
def test_children_sharing_their_parents_edges_lie_wholly_inside(name) -> None:
    parent_box, cuts = NESTED_CASES[name]
    parent = shapely.box(*parent_box)
    children = split_west_to_east(parent_box, cuts)
    assert all(c.within(parent) for c in children)  # shapely agrees they are nested
    assert outside_area_m2(np.array(children, dtype=object), parent).tolist() == [0.0] * len(
        children
    )
    for a, b in zip(children[:-1], children[1:], strict=True):
        assert shared_area_m2(a, b) == 0.0


def test_vertex_by_vertex_projection_would_have_refused_the_issue_case() -> None:
    # The bug this guards against: projecting only the vertices turns the parent's 1.3 km edge
    # into one chord and the children's edges into shorter chords of the same curve.
    parent = shapely.box(113.700, 34.800, 113.714, 34.808)
    child = shapely.box(113.706, 34.800, 113.712, 34.808)
    crs = utm_crs_for(113.707, 34.804)
    chords = shapely.difference(transform(child, WGS84, crs), transform(parent, WGS84, crs))
    assert chords.area > 1.0  # ~9 m² "outside", the 422 of the issue
    # Densified, both land on the same curve to within a fraction of a millimetre: what is
    # left is far under the 1 m² tolerance (the registry decides in lon/lat, where it is 0).
    assert shapely.difference(to_metric(child, crs), to_metric(parent, crs)).area < 0.05


def test_child_sticking_out_five_metres_is_measured_as_the_geodesic_strip() -> None:
    parent = shapely.box(113.700, 34.800, 113.714, 34.808)
    five_m = 5.0 / (111_320.0 * np.cos(np.radians(34.804)))  # degrees of longitude
    child = shapely.box(113.706, 34.800, 113.714 + five_m, 34.808)
    strip = shapely.box(113.714, 34.800, 113.714 + five_m, 34.808)
    outside = outside_area_m2(child, parent)
    assert outside == pytest.approx(geodesic_area(strip), rel=2e-3)  # ~4,440 m²
    assert outside > 4_000


def test_siblings_overlapping_are_measured_as_the_geodesic_overlap() -> None:
    a = shapely.box(113.60, 34.80, 113.70, 34.83)
    b = shapely.box(113.69998, 34.80, 113.80, 34.83)  # ~1.8 m over a 3.3 km edge
    overlap = shapely.box(113.69998, 34.80, 113.70, 34.83)
    assert shared_area_m2(a, b) == pytest.approx(geodesic_area(overlap), rel=2e-3)
    assert shared_area_m2(a, b) > 1_000


def test_child_sharing_a_hole_edge_is_inside_and_one_filling_the_hole_is_not() -> None:
    lake = shapely.box(113.70, 34.80, 113.71, 34.805)
    parent = shapely.Polygon(
        shapely.box(113.69, 34.79, 113.72, 34.815).exterior.coords, [lake.exterior.coords]
    )
    ring_child = shapely.difference(shapely.box(113.695, 34.795, 113.715, 34.81), lake)
    assert outside_area_m2(ring_child, parent) == 0.0
    assert outside_area_m2(lake, parent) == pytest.approx(geodesic_area(lake), rel=2e-3)


def test_multipolygon_parent_holds_children_in_each_part() -> None:
    west, east = (
        shapely.box(113.60, 34.80, 113.65, 34.82),
        shapely.box(113.70, 34.80, 113.76, 34.82),
    )
    parent = shapely.MultiPolygon([west, east])
    children = [
        *split_west_to_east(west.bounds, [113.62]),
        *split_west_to_east(east.bounds, [113.73]),
    ]
    assert outside_area_m2(np.array(children, dtype=object), parent).tolist() == [0.0] * 4
    between = shapely.box(113.65, 34.80, 113.70, 34.82)
    assert outside_area_m2(between, parent) == pytest.approx(geodesic_area(between), rel=2e-3)


def test_densify_follows_edges_and_leaves_invalid_rings_invalid() -> None:
    box = shapely.box(113.60, 34.80, 113.70, 34.83)  # 9 km by 3.3 km
    dense = densify(box)
    assert shapely.get_num_coordinates(dense) > 200
    assert shapely.hausdorff_distance(dense, box) < 1e-12
    assert shapely.equals(dense, box)
    bow_tie = shapely.Polygon([(113.6, 34.8), (113.7, 34.83), (113.7, 34.8), (113.6, 34.83)])
    dense_bow_tie = densify(bow_tie)
    assert not dense_bow_tie.is_valid  # GEOS's densifier would have repaired it
    assert shapely.get_num_coordinates(dense_bow_tie) > 200
    in_metres = densify(to_metric(bow_tie, utm_crs_for(113.65, 34.815)), utm_crs_for(113.65, 34.8))
    assert not in_metres.is_valid

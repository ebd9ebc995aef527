"""Behaviour of gis.repair.repair_polygons, checked against plain shapely / geopandas areas."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely import affinity, from_wkt

from gis.repair import RepairResult, repair_polygons

# Shapes are drawn in metres in UTM zone 49N near Zhengzhou, then converted to lon/lat, so their
# intended areas are known exactly; areas are checked by geopandas in the same UTM zone.
_UTM = "EPSG:32649"
_TO_LONLAT = Transformer.from_crs(_UTM, "EPSG:4326", always_xy=True)
_ORIGIN = (750_000.0, 3_850_000.0)


def lonlat(wkt: str):
    """A geometry given in metres relative to _ORIGIN, as lon/lat."""
    geom = affinity.translate(from_wkt(wkt), *_ORIGIN)
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_LONLAT.transform(*xy.T)))


def area_m2(geom) -> float:
    return float(gpd.GeoSeries([geom], crs=4326).to_crs(_UTM).area.iloc[0])


def location(message: str) -> tuple[float, float]:
    x, y = re.search(r"at \(([-\d.]+) ([-\d.]+)\)", message).groups()
    return float(x), float(y)


SQUARE = "POLYGON((0 0, 100 0, 100 100, 0 100, 0 0))"


def test_valid_polygons_are_returned_unchanged_without_messages():
    square = lonlat(SQUARE)
    holed = lonlat(
        "POLYGON((0 0, 100 0, 100 100, 0 100, 0 0), (40 40, 60 40, 60 60, 40 60, 40 40))"
    )
    multi = lonlat(
        "MULTIPOLYGON(((0 0, 100 0, 100 100, 0 100, 0 0)), "
        "((200 0, 300 0, 300 100, 200 100, 200 0)))"
    )
    result = repair_polygons([square, holed, multi])
    assert isinstance(result, RepairResult)
    assert result.changes == [] and result.errors == []
    for got, expected in zip(result.geometries, [square, holed, multi], strict=True):
        assert got is expected


def test_duplicate_consecutive_and_closing_vertices_are_accepted_with_their_area():
    # A repeated corner and a last vertex repeating the first one before the ring is closed
    # (a common CAD export) are valid in GEOS and enclose the plain square.
    repeated = lonlat("POLYGON((0 0, 100 0, 100 0, 100 100, 0 100, 0 100, 0 0))")
    closed_twice = lonlat("POLYGON((0 0, 100 0, 100 100, 0 100, 0 0, 0 0))")
    result = repair_polygons([repeated, closed_twice])
    assert result.errors == []
    for geom in result.geometries:
        assert shapely.is_valid(geom)
        assert area_m2(geom) == pytest.approx(10_000.0, rel=1e-6)


def test_ring_that_overshoots_its_start_is_repaired_to_the_closed_ring():
    # Drawn round and then on along the first edge before returning: closed "too far".
    overshoot = lonlat("POLYGON((0 0, 100 0, 100 100, 0 100, 0 0, 30 0, 0 0))")
    assert not shapely.is_valid(overshoot)
    result = repair_polygons([overshoot])
    assert result.errors == []
    fixed = result.geometries[0]
    assert shapely.is_valid(fixed) and shapely.equals(fixed, lonlat(SQUARE))
    assert area_m2(fixed) == pytest.approx(10_000.0, rel=1e-6)
    ((_, message),) = result.changes
    assert "repaired; area change 0.00%" in message


def test_spike_is_removed_and_reported_with_its_location():
    spiked = lonlat("POLYGON((0 0, 100 0, 100 100, 50 100, 50 180, 50 100, 0 100, 0 0))")
    result = repair_polygons([spiked])
    assert result.errors == []
    ((index, message),) = result.changes
    assert index == 0 and "repaired" in message and "area change 0.00%" in message
    fixed = result.geometries[0]
    assert shapely.is_valid(fixed) and fixed.geom_type == "Polygon"
    # the spike is gone: the repaired polygon is the ring without its out-and-back tip
    assert shapely.equals(fixed, lonlat("POLYGON((0 0, 100 0, 100 100, 50 100, 0 100, 0 0))"))
    assert area_m2(fixed) == pytest.approx(10_000.0, rel=1e-6)
    spike_tip = lonlat("POINT(50 180)")
    assert location(message) == pytest.approx((spike_tip.x, spike_tip.y), abs=1e-6)


def test_ring_touching_itself_at_a_point_becomes_a_polygon_with_a_hole():
    # The shell dents inwards to a triangle whose apex touches the shell at (50 100): an
    # "inverted hole", invalid under OGC rules but enclosing a well-defined area.
    touching = lonlat("POLYGON((0 0, 100 0, 100 100, 50 100, 70 50, 30 50, 50 100, 0 100, 0 0))")
    assert not shapely.is_valid(touching)
    result = repair_polygons([touching])
    assert result.errors == []
    fixed = result.geometries[0]
    assert shapely.is_valid(fixed)
    # the dent becomes a hole touching the shell at one point, which OGC allows
    expected = lonlat(
        "POLYGON((0 0, 100 0, 100 100, 50 100, 0 100, 0 0), (50 100, 70 50, 30 50, 50 100))"
    )
    assert shapely.is_valid(expected) and shapely.equals(fixed, expected)
    assert area_m2(fixed) == pytest.approx(10_000.0 - 0.5 * 40 * 50, rel=1e-6)
    ((_, message),) = result.changes
    touch = lonlat("POINT(50 100)")
    assert location(message) == pytest.approx((touch.x, touch.y), abs=1e-6)


def test_bow_tie_is_rejected_with_location_and_area_change():
    bow_tie = lonlat("POLYGON((0 0, 100 100, 100 0, 0 100, 0 0))")
    result = repair_polygons([bow_tie])
    assert result.geometries == [None] and result.changes == []
    ((index, message),) = result.errors
    assert index == 0
    assert message.startswith("self-intersecting ring at (")
    assert "repair would change the area by" in message and message.endswith("fix the ring")
    crossing = lonlat("POINT(50 50)")
    assert location(message) == pytest.approx((crossing.x, crossing.y), abs=1e-6)


def test_lopsided_bow_tie_reports_drawn_and_repaired_areas():
    # The edges cross at (56.25 37.5): lobes of 1,687.5 m² and 4,687.5 m² wound in opposite
    # directions, so the ring as drawn encloses 3,000 m²; make_valid keeps both (6,375 m²).
    bow_tie = lonlat("POLYGON((0 0, 150 100, 150 0, 0 60, 0 0))")
    assert area_m2(shapely.make_valid(bow_tie)) == pytest.approx(6_375.0, rel=1e-6)
    result = repair_polygons([bow_tie])
    ((_, message),) = result.errors
    # 3,375 / 3,000 = 112.5 %: a micrometre of projection decides which way it rounds
    assert re.search(r"repair would change the area by 11[23]%", message)
    assert "(3,000.0 m² drawn, 6,375.0 m² repaired)" in message
    crossing = lonlat("POINT(56.25 37.5)")
    assert location(message) == pytest.approx((crossing.x, crossing.y), abs=1e-6)


def test_hole_outside_shell_is_rejected_unless_it_is_negligible():
    far_hole = lonlat(f"POLYGON({SQUARE[8:-1]}, (200 200, 220 200, 220 220, 200 220, 200 200))")
    tiny_far_hole = lonlat(
        f"POLYGON({SQUARE[8:-1]}, (200 200, 201 200, 201 201, 200 201, 200 200))"
    )
    result = repair_polygons([far_hole, tiny_far_hole])
    assert result.geometries[0] is None
    ((index, message),) = result.errors
    assert index == 0 and message.startswith("hole lies outside shell at (")
    # drawn: 10,000 - 400 = 9,600 m²; make_valid keeps the hole as a part: 10,400 m² (+8 %)
    assert "by 8%" in message
    # the 1 m² hole changes the area by 2 / 9,999 = 0.02 %, under the 0.1 % default
    fixed = result.geometries[1]
    assert shapely.is_valid(fixed)
    assert area_m2(fixed) == pytest.approx(10_001.0, rel=1e-6)
    assert [i for i, _ in result.changes] == [1]
    # with a looser tolerance the big one is accepted too
    loose = repair_polygons([far_hole], max_area_change=0.1)
    assert loose.errors == [] and area_m2(loose.geometries[0]) == pytest.approx(10_400.0, rel=1e-6)


def test_multipolygon_with_overlapping_parts_is_rejected_when_the_union_loses_area():
    overlapping = lonlat(
        "MULTIPOLYGON(((0 0, 100 0, 100 100, 0 100, 0 0)), "
        "((50 50, 150 50, 150 150, 50 150, 50 50)))"
    )
    result = repair_polygons([overlapping])
    ((_, message),) = result.errors
    assert message.startswith("overlapping or touching parts at (")
    # drawn 20,000 m² (the overlap counted twice), union 17,500 m²
    assert "(20,000.0 m² drawn, 17,500.0 m² repaired)" in message
    assert message.endswith("merge or separate the parts")


def test_multipolygon_with_parts_sharing_an_edge_is_merged():
    touching = lonlat(
        "MULTIPOLYGON(((0 0, 100 0, 100 100, 0 100, 0 0)), "
        "((100 0, 200 0, 200 100, 100 100, 100 0)))"
    )
    result = repair_polygons([touching])
    assert result.errors == []
    fixed = result.geometries[0]
    union = shapely.union_all(shapely.get_parts(touching))
    assert shapely.is_valid(fixed)
    assert area_m2(fixed) == pytest.approx(area_m2(union), rel=1e-9)
    assert area_m2(fixed) == pytest.approx(20_000.0, rel=1e-6)


def test_sliver_overlap_within_tolerance_is_repaired_to_the_union():
    sliver = lonlat(
        "MULTIPOLYGON(((0 0, 100 0, 100 100, 0 100, 0 0)), "
        "((99.9 0, 200 0, 200 100, 99.9 100, 99.9 0)))"
    )
    result = repair_polygons([sliver])
    assert result.errors == []
    union = shapely.union_all(shapely.get_parts(sliver))
    assert area_m2(result.geometries[0]) == pytest.approx(area_m2(union), rel=1e-9)
    ((_, message),) = result.changes
    assert "repaired; area change 0.05%" in message


def test_points_lines_collections_empty_and_missing_are_rejected():
    inputs = [
        lonlat("POINT(0 0)"),
        lonlat("LINESTRING(0 0, 100 0, 100 100)"),
        lonlat("GEOMETRYCOLLECTION(POINT(0 0))"),
        shapely.Polygon(),
        shapely.MultiPolygon(),
        None,
        lonlat(SQUARE),
    ]
    result = repair_polygons(inputs)
    assert result.geometries[:6] == [None] * 6
    assert result.geometries[6] is inputs[6]
    errors = dict(result.errors)
    assert sorted(errors) == [0, 1, 2, 3, 4, 5]
    assert "Point is not a polygon" in errors[0]
    assert "LineString is not a polygon" in errors[1]
    assert "empty" in errors[3] and "empty" in errors[4]
    assert "missing" in errors[5]


def test_ring_with_too_few_distinct_corners_is_rejected():
    degenerate = from_wkt("POLYGON((113.65 34.75, 113.66 34.76, 113.66 34.76, 113.65 34.75))")
    result = repair_polygons([degenerate])
    ((_, message),) = result.errors
    assert "2 distinct corners" in message and "at least 3 corners" in message


def test_collinear_ring_enclosing_nothing_is_rejected():
    flat = from_wkt("POLYGON((113.65 34.75, 113.655 34.75, 113.66 34.75, 113.65 34.75))")
    result = repair_polygons([flat])
    ((_, message),) = result.errors
    assert "enclose no area" in message


def test_z_coordinates_are_dropped_and_reported():
    square = lonlat(SQUARE)
    with_z = shapely.force_3d(square, 42.0)
    result = repair_polygons([with_z])
    assert result.errors == []
    assert not shapely.has_z(result.geometries[0])
    assert shapely.equals_exact(result.geometries[0], square, tolerance=0)
    assert result.changes == [(0, "Z coordinates dropped")]


def test_accepts_geoseries_and_keeps_indices_aligned():
    series = gpd.GeoSeries(
        [lonlat("POLYGON((0 0, 100 100, 100 0, 0 100, 0 0))"), lonlat(SQUARE)], crs=4326
    )
    result = repair_polygons(series)
    assert len(result.geometries) == 2
    assert result.geometries[0] is None and result.geometries[1] is not None
    assert [i for i, _ in result.errors] == [0]


def test_negative_tolerance_is_refused():
    with pytest.raises(ValueError, match="max_area_change"):
        repair_polygons([], max_area_change=-1)

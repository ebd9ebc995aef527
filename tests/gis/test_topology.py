"""Topology check: invalid rings, duplicate codes, overlaps, gaps and parts outside the parent.

Fixtures are drawn in metres around lon 113.65 lat 34.75 (UTM 49N) and projected to lon/lat;
expected areas and locations are computed independently with plain shapely on the metre
drawings.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely import MultiPolygon, Point, Polygon, box

from gis.metric import WGS84, to_metric, to_wgs84, transform, utm_crs_for
from gis.topology import Finding, check_topology

CRS = utm_crs_for(113.65, 34.75)
ORIGIN = to_metric(Point(113.65, 34.75), CRS)


def lonlat(geom_m):
    """A geometry drawn in metres relative to ORIGIN, as lon/lat (edges densified to 1 m
    first, so that they stay the drawing's straight lines)."""
    return to_wgs84(shapely.affinity.translate(geom_m, ORIGIN.x, ORIGIN.y), CRS, max_segment_m=1.0)


def metres(geom_ll):
    """A lon/lat geometry back in metres relative to ORIGIN."""
    # vertex by vertex: the exact inverse of lonlat()
    return shapely.affinity.translate(transform(geom_ll, WGS84, CRS), -ORIGIN.x, -ORIGIN.y)


def grids(cells_m: dict[str, shapely.Geometry]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": list(cells_m)}, geometry=[lonlat(g) for g in cells_m.values()], crs=4326
    )


def grid_rows(rows: list[tuple[str, shapely.Geometry]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [c for c, _ in rows]}, geometry=[lonlat(g) for _, g in rows], crs=4326
    )


def same_place(found_ll, expected_m, rel=1e-6):
    """The finding's lon/lat location covers the expected metre geometry."""
    diff = shapely.symmetric_difference(metres(found_ll), expected_m).area
    return diff <= rel * max(expected_m.area, 1.0)


PARENT = box(0, 0, 200, 200)
TILING = {
    "01": box(0, 100, 100, 200),
    "02": box(100, 100, 200, 200),
    "03": box(0, 0, 100, 100),
    "04": box(100, 0, 200, 100),
}


def of_kind(findings, kind):
    return [f for f in findings if f.kind == kind]


def test_clean_two_by_two_tiling_has_no_findings():
    assert check_topology(grids(TILING), lonlat(PARENT)) == []


def test_overlap_reports_both_codes_and_intersection_area():
    cells = dict(TILING, **{"02": box(80, 100, 200, 200)})
    findings = check_topology(grids(cells), lonlat(PARENT))
    expected = box(0, 100, 100, 200).intersection(box(80, 100, 200, 200))
    assert [f.kind for f in findings] == ["overlap"]
    assert findings[0].codes == ("01", "02")
    assert findings[0].area_m2 == pytest.approx(expected.area, rel=1e-6)  # 2,000 m²
    assert same_place(findings[0].geometry, expected)


def test_grid_inside_another_grid_is_an_overlap():
    cells = dict(TILING, **{"05": box(20, 20, 50, 50)})
    overlaps = of_kind(check_topology(grids(cells), lonlat(PARENT)), "overlap")
    assert [f.codes for f in overlaps] == [("03", "05")]
    assert overlaps[0].area_m2 == pytest.approx(900.0, rel=1e-6)


def test_overlap_at_or_below_tolerance_is_ignored():
    # 0.5 m x 100 m = 50 m² overlap: reported at the default 1 m², not at a 60 m² tolerance.
    cells = dict(TILING, **{"02": box(99.5, 100, 200, 200)})
    assert len(of_kind(check_topology(grids(cells), lonlat(PARENT)), "overlap")) == 1
    assert check_topology(grids(cells), lonlat(PARENT), tolerance_m2=60.0) == []


def test_gap_reports_uncovered_area_and_touching_grids():
    cells = dict(TILING, **{"04": box(130, 0, 200, 100)})
    findings = check_topology(grids(cells), lonlat(PARENT))
    expected = PARENT.difference(shapely.union_all(list(cells.values())))
    assert [f.kind for f in findings] == ["gap"]
    assert findings[0].area_m2 == pytest.approx(expected.area, rel=1e-6)  # 3,000 m²
    # 02, 03 and 04 share an edge with the gap, 01 touches its corner at (100, 100).
    touching = {c for c, g in cells.items() if g.intersects(expected)}
    assert set(findings[0].codes) == touching == {"01", "02", "03", "04"}
    assert same_place(findings[0].geometry, expected)


def test_each_separate_gap_is_its_own_finding():
    cells = {"01": box(0, 0, 90, 200), "02": box(100, 0, 190, 200)}
    gaps = of_kind(check_topology(grids(cells), lonlat(PARENT)), "gap")
    assert sorted(round(f.area_m2) for f in gaps) == [2000, 2000]


def test_cell_sticking_out_of_parent_reports_outside_part():
    cells = dict(TILING, **{"02": box(100, 100, 230, 200)})
    findings = check_topology(grids(cells), lonlat(PARENT))
    expected = box(100, 100, 230, 200).difference(PARENT)
    assert [f.kind for f in findings] == ["outside_parent"]
    assert findings[0].codes == ("02",)
    assert findings[0].area_m2 == pytest.approx(expected.area, rel=1e-6)  # 3,000 m²
    assert same_place(findings[0].geometry, expected)


def test_duplicate_code_is_reported_once_at_union_of_its_grids():
    rows = [("01", TILING["01"]), ("02", TILING["02"]), ("03", TILING["03"]), ("03", TILING["04"])]
    findings = check_topology(grid_rows(rows), lonlat(PARENT))
    assert [f.kind for f in findings] == ["duplicate_code"]
    assert findings[0].codes == ("03",)
    assert findings[0].area_m2 is None
    assert same_place(findings[0].geometry, box(0, 0, 200, 100))


def test_bow_tie_is_invalid_and_located_at_the_self_intersection():
    bow_tie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    cells = dict(TILING, **{"03": bow_tie})
    frame = grids(cells)
    findings = of_kind(check_topology(frame, lonlat(PARENT)), "invalid")
    assert len(findings) == 1 and findings[0].codes == ("03",)
    assert "Self-intersection" in findings[0].message
    # Independent: where the two crossing edges of the lon/lat ring meet.
    crossing = shapely.intersection(
        lonlat(shapely.LineString([(0, 0), (100, 100)])),
        lonlat(shapely.LineString([(100, 0), (0, 100)])),
    )
    assert findings[0].geometry.distance(crossing) < 1e-9


def test_invalid_grid_is_repaired_for_the_other_checks():
    # Repaired, the bow-tie is its west and east triangles; its north and south triangles
    # are uncovered except where cell 04, widened west to x = 50, covers them (and overlaps
    # the east triangle).
    bow_tie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    wide = box(50, 0, 200, 100)
    cells = dict(TILING, **{"03": bow_tie, "04": wide})
    findings = check_topology(grids(cells), lonlat(PARENT))
    repaired = shapely.make_valid(bow_tie)
    expected_overlap = repaired.intersection(wide)
    expected_gaps = PARENT.difference(
        shapely.union_all([TILING["01"], TILING["02"], repaired, wide])
    )
    assert [f.kind for f in findings].count("invalid") == 1
    overlaps = of_kind(findings, "overlap")
    assert [f.codes for f in overlaps] == [("03", "04")]
    assert overlaps[0].area_m2 == pytest.approx(expected_overlap.area, rel=1e-6)  # 1,250 m²
    gaps = of_kind(findings, "gap")
    assert len(gaps) == len(shapely.get_parts(expected_gaps))
    assert sum(f.area_m2 for f in gaps) == pytest.approx(expected_gaps.area, rel=1e-6)
    assert not of_kind(findings, "outside_parent")


def test_missing_and_non_polygon_geometries_are_invalid():
    frame = grids(TILING)
    frame.loc[len(frame)] = ["05", None]
    frame.loc[len(frame)] = ["06", lonlat(Point(50, 50))]
    invalid = of_kind(check_topology(frame, lonlat(PARENT)), "invalid")
    assert [f.codes for f in invalid] == [("05",), ("06",)]
    assert "missing" in invalid[0].message and "Point" in invalid[1].message


HOLE = box(60, 60, 140, 140)
PARENT_WITH_HOLE = Polygon(PARENT.exterior.coords, [HOLE.exterior.coords])


def test_parent_hole_left_uncovered_is_not_a_gap():
    cells = {code: g.difference(HOLE) for code, g in TILING.items()}
    assert check_topology(grids(cells), lonlat(PARENT_WITH_HOLE)) == []


def test_cell_covering_parent_hole_is_outside_parent():
    cells = {code: g.difference(HOLE) for code, g in TILING.items()}
    cells["05"] = HOLE
    findings = check_topology(grids(cells), lonlat(PARENT_WITH_HOLE))
    assert [f.kind for f in findings] == ["outside_parent"]
    assert findings[0].codes == ("05",)
    assert findings[0].area_m2 == pytest.approx(HOLE.difference(PARENT_WITH_HOLE).area, rel=1e-6)


def test_multipolygon_parent_tiled_in_both_parts_is_clean_and_gaps_per_part():
    parent = MultiPolygon([PARENT, box(300, 0, 400, 100)])
    cells = dict(TILING, **{"05": box(300, 0, 400, 100)})
    assert check_topology(grids(cells), lonlat(parent)) == []
    del cells["05"]
    gaps = of_kind(check_topology(grids(cells), lonlat(parent)), "gap")
    assert len(gaps) == 1 and gaps[0].codes == ()
    assert gaps[0].area_m2 == pytest.approx(10_000.0, rel=1e-6)
    assert same_place(gaps[0].geometry, box(300, 0, 400, 100))


def test_without_parent_only_grid_checks_run():
    cells = dict(TILING, **{"02": box(80, 100, 260, 200)})
    del cells["04"]
    assert [f.kind for f in check_topology(grids(cells), None)] == ["overlap"]


def test_empty_grid_set_leaves_the_whole_parent_as_gap():
    frame = gpd.GeoDataFrame({"code": []}, geometry=[], crs=4326)
    findings = check_topology(frame, lonlat(PARENT))
    assert [f.kind for f in findings] == ["gap"]
    assert findings[0].area_m2 == pytest.approx(PARENT.area, rel=1e-6)
    assert check_topology(frame, None) == []


def test_finding_serialises_as_geojson_feature():
    cells = dict(TILING, **{"02": box(80, 100, 200, 200)})
    feature = check_topology(grids(cells), lonlat(PARENT))[0].to_geojson_feature()
    restored = json.loads(json.dumps(feature))
    assert restored["type"] == "Feature"
    assert restored["properties"]["kind"] == "overlap"
    assert restored["properties"]["codes"] == ["01", "02"]
    assert restored["properties"]["area_m2"] == pytest.approx(2000.0, rel=1e-6)
    assert shapely.geometry.shape(restored["geometry"]).equals_exact(
        check_topology(grids(cells), lonlat(PARENT))[0].geometry, tolerance=1e-12
    )


def test_finding_without_location_has_null_geojson_geometry():
    finding = Finding("invalid", ("05",), None, "geometry is missing", shapely.Point())
    assert finding.to_geojson_feature()["geometry"] is None


def test_rejects_frame_not_in_lonlat():
    frame = grids(TILING).to_crs(CRS)
    with pytest.raises(ValueError, match="to_crs"):
        check_topology(frame, lonlat(PARENT))


def test_rejects_frame_without_code_column():
    frame = grids(TILING).rename(columns={"code": "grid_code"})
    with pytest.raises(ValueError, match="'code' column"):
        check_topology(frame, lonlat(PARENT))


def test_rejects_negative_tolerance():
    with pytest.raises(ValueError, match="tolerance_m2"):
        check_topology(grids(TILING), lonlat(PARENT), tolerance_m2=-1.0)


@pytest.mark.parametrize("parent", [Point(113.65, 34.75), Polygon()])
def test_rejects_parent_that_is_not_a_polygon(parent):
    with pytest.raises(ValueError, match="parent must be"):
        check_topology(grids(TILING), parent)


# -- grids stored in lon/lat with long straight edges ---------------------------------------------
# Drawn directly in lon/lat (as the file was): edges straight in degrees, several km
# long, children sharing the parent's edges exactly but with their own vertices along them.

GEOD = Geod(ellps="WGS84")


def geodesic_area(geom) -> float:
    """Area on the ellipsoid (edges split every ~1 m so geodesics follow the lon/lat lines)."""
    area, _ = GEOD.geometry_area_perimeter(shapely.segmentize(geom, 1e-5))
    return abs(area)


def strips(bounds, cuts) -> gpd.GeoDataFrame:
    """A lon/lat box cut along meridians at ``cuts``, coded 01, 02 … west to east."""
    minx, miny, maxx, maxy = bounds
    xs = [minx, *cuts, maxx]
    cells = [box(a, miny, b, maxy) for a, b in zip(xs[:-1], xs[1:], strict=False)]
    return gpd.GeoDataFrame(
        {"code": [f"{i:02d}" for i in range(1, len(cells) + 1)]}, geometry=cells, crs=4326
    )


@pytest.mark.parametrize(
    "bounds, cuts",
    [
        ((113.700, 34.800, 113.714, 34.808), [113.706, 113.712]),  # the street
        ((113.60, 34.80, 113.80, 34.83), [113.613, 113.7, 113.7777]),  # 18 km edges
        ((113.95, 34.80, 114.05, 34.83), [113.98, 114.0]),  # across the UTM zone boundary
    ],
    ids=["issue", "long-edges", "zone-boundary"],
)
def test_children_sharing_long_lonlat_edges_have_no_findings(bounds, cuts):
    assert check_topology(strips(bounds, cuts), box(*bounds)) == []


def test_child_five_metres_outside_is_reported_with_its_geodesic_area():
    bounds = (113.700, 34.800, 113.714, 34.808)
    five_m = 5.0 / (111_320.0 * np.cos(np.radians(34.804)))
    frame = strips(bounds, [113.706, 113.712])
    frame.loc[2, "geometry"] = box(113.712, 34.800, 113.714 + five_m, 34.808)
    findings = check_topology(frame, box(*bounds))
    assert [f.kind for f in findings] == ["outside_parent"]
    expected = box(113.714, 34.800, 113.714 + five_m, 34.808)
    assert findings[0].codes == ("03",)
    assert findings[0].area_m2 == pytest.approx(geodesic_area(expected), rel=2e-3)
    assert shapely.equals_exact(findings[0].geometry.normalize(), expected.normalize(), 1e-9)


def test_siblings_overlapping_along_a_long_edge_are_reported():
    bounds = (113.60, 34.80, 113.80, 34.83)
    frame = strips(bounds, [113.7])
    frame.loc[1, "geometry"] = box(113.69998, 34.80, 113.80, 34.83)  # ~1.8 m over 3.3 km
    findings = check_topology(frame, box(*bounds))
    assert [f.kind for f in findings] == ["overlap"]
    expected = box(113.69998, 34.80, 113.7, 34.83)
    assert findings[0].area_m2 == pytest.approx(geodesic_area(expected), rel=2e-3)

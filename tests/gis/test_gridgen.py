"""Unit-grid generation: cells tile the parent, slivers merge, coding order, input checks.

Fixtures are drawn in metres around lon 113.65 lat 34.75 (Zhengzhou, UTM 49N) and projected to
lon/lat; results are measured back in the same UTM zone with plain shapely.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely import MultiPolygon, Point, Polygon, box

from gis.gridgen import generate_cells, order_west_east_north_south
from gis.metric import WGS84, to_metric, to_wgs84, transform, utm_crs_for

CRS = utm_crs_for(113.65, 34.75)
ORIGIN = to_metric(Point(113.65, 34.75), CRS)
TARGET = 10_000.0
SLIVER = 0.25 * TARGET


def lonlat(geom_m):
    """A geometry drawn in metres relative to ORIGIN, as lon/lat (edges densified to 1 m
    first, so that they stay the drawing's straight lines)."""
    return to_wgs84(shapely.affinity.translate(geom_m, ORIGIN.x, ORIGIN.y), CRS, max_segment_m=1.0)


def metres(geoms_ll):
    """Lon/lat geometries back in metres relative to ORIGIN."""
    projected = transform(np.asarray(geoms_ll, dtype=object), WGS84, CRS)  # vertex by vertex
    return shapely.transform(projected, lambda xy: xy - [ORIGIN.x, ORIGIN.y])


HOLE = box(300, 300, 555, 620)
PARENTS_M = {
    "rectangle": box(0, 0, 1020, 630),
    "disc": Point(0, 0).buffer(700, quad_segs=32),
    "hole": Polygon(box(0, 0, 1000, 1000).exterior.coords, [HOLE.exterior.coords]),
    "multipolygon": MultiPolygon(
        [box(0, 0, 1000, 500), box(1100, 0, 1130, 30), box(1500, -300, 2000, 200)]
    ),
}


def shared_boundary_length(cell, others):
    return sum(shapely.length(shapely.intersection(cell.boundary, o.boundary)) for o in others)


@pytest.fixture(
    scope="module",
    params=[(p, s) for p in PARENTS_M for s in ("square", "hexagon")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def generated(request):
    name, shape = request.param
    parent_m = PARENTS_M[name]
    cells = generate_cells(lonlat(parent_m), target_area_m2=TARGET, shape=shape)
    return parent_m, shape, cells, metres(cells)


def test_cells_union_equals_parent(generated):
    parent_m, _, _, cells_m = generated
    union = shapely.union_all(cells_m)
    assert shapely.symmetric_difference(union, parent_m).area / parent_m.area < 1e-6


def test_cells_do_not_overlap(generated):
    _, _, _, cells_m = generated
    first, second = shapely.STRtree(cells_m).query(cells_m, predicate="intersects")
    pairs = first < second
    overlaps = shapely.area(shapely.intersection(cells_m[first[pairs]], cells_m[second[pairs]]))
    assert pairs.any()  # neighbours do touch
    assert overlaps.max() < 1e-6


def test_cells_are_valid_polygons(generated):
    _, _, cells, _ = generated
    assert all(isinstance(c, Polygon) and c.is_valid and not c.is_empty for c in cells)


def test_cells_form_a_valid_coverage_with_matching_edges(generated):
    # GEOS coverage validation: no overlaps and shared edges match vertex for vertex.
    _, _, cells, _ = generated
    assert shapely.coverage_is_valid(np.asarray(cells, dtype=object))


def test_every_cell_reaches_sliver_threshold_unless_isolated(generated):
    _, _, _, cells_m = generated
    areas = shapely.area(cells_m)
    for i in np.flatnonzero(areas < SLIVER):
        others = np.delete(cells_m, i)
        assert shared_boundary_length(cells_m[i], others) == pytest.approx(0.0, abs=1e-6)


def test_interior_cells_have_target_area(generated):
    parent_m, _, _, cells_m = generated
    interior = shapely.distance(cells_m, parent_m.boundary) > 1e-3
    assert interior.sum() >= 10
    assert shapely.area(cells_m[interior]) == pytest.approx(TARGET, rel=1e-6)


@pytest.mark.parametrize("name", list(PARENTS_M))
def test_unclipped_hexagons_are_pointy_top_with_six_sides(name):
    parent_m = PARENTS_M[name]
    cells_m = metres(generate_cells(lonlat(parent_m), shape="hexagon"))
    interior = cells_m[shapely.distance(cells_m, parent_m.boundary) > 1e-3]
    radius = math.sqrt(2 * TARGET / (3 * math.sqrt(3)))
    assert len(interior) >= 10
    for cell in interior:
        ring = np.asarray(cell.exterior.coords)[:-1]
        assert len(ring) == 6
        top = ring[np.argmax(ring[:, 1])]
        assert top[0] == pytest.approx(cell.centroid.x, abs=1e-3)
        assert top[1] - cell.centroid.y == pytest.approx(radius, rel=1e-6)


def test_no_cell_covers_the_parent_hole():
    for shape in ("square", "hexagon"):
        cells_m = metres(generate_cells(lonlat(PARENTS_M["hole"]), shape=shape))
        # Only projection round-trip noise (well under a micrometre) may touch the hole.
        assert shapely.area(shapely.intersection(cells_m, HOLE)).sum() < 1e-6 * HOLE.area


def test_small_island_of_multipolygon_parent_is_its_own_cell():
    island = box(1100, 0, 1130, 30)
    for shape in ("square", "hexagon"):
        cells_m = metres(generate_cells(lonlat(PARENTS_M["multipolygon"]), shape=shape))
        matches = [c for c in cells_m if shapely.symmetric_difference(c, island).area < 1e-3]
        assert len(matches) == 1
        assert matches[0].area == pytest.approx(900.0, rel=1e-6)


def test_narrow_last_column_merges_into_west_neighbour():
    # 1020 m wide: the last 20 m column (2,000 m² < 2,500 m²) joins the column west of it.
    cells_m = metres(generate_cells(lonlat(box(0, 0, 1020, 600))))
    assert len(cells_m) == 60
    east = [c for c in cells_m if c.bounds[2] > 1019]
    assert len(east) == 6
    for cell in east:
        assert cell.area == pytest.approx(12_000.0, rel=1e-6)
        assert cell.bounds[0] == pytest.approx(900.0, abs=1e-3)


def test_sliver_joins_the_neighbour_with_the_longest_shared_edge():
    # A 20 x 40 m tab east of a 2 x 2 block is cut by the row line y = 100 into a 20 x 10 m
    # piece (shares 10 m with the north-east cell, 20 m with the lower piece) and a 20 x 30 m
    # piece (shares 30 m with the south-east cell). Longest edge first: top piece -> lower
    # piece, then the 800 m² tab -> south-east cell. The north-east cell stays whole.
    parent_m = shapely.union(box(0, 0, 200, 200), box(200, 70, 220, 110))
    cells_m = metres(generate_cells(lonlat(parent_m)))
    assert len(cells_m) == 4
    south_east = [c for c in cells_m if c.contains(Point(150, 50))][0]
    north_east = [c for c in cells_m if c.contains(Point(150, 150))][0]
    assert (
        shapely.symmetric_difference(
            south_east, shapely.union(box(100, 0, 200, 100), box(200, 70, 220, 110))
        ).area
        < 1e-3
    )
    assert north_east.area == pytest.approx(10_000.0, rel=1e-6)


def test_parent_smaller_than_one_cell_is_a_single_cell():
    parent_m = box(0, 0, 40, 30)
    cells_m = metres(generate_cells(lonlat(parent_m), shape="hexagon"))
    assert len(cells_m) == 1
    assert shapely.symmetric_difference(cells_m[0], parent_m).area < 1e-6 * parent_m.area


def test_pieces_of_one_lattice_cell_split_by_a_channel_are_separate_cells():
    # A 10 m channel at x = 450..460 cuts the cell 400..500 into pieces of 5,000 and 4,000 m²;
    # both are above the sliver threshold, so the row has 11 cells.
    parent = box(0, 0, 1000, 100).difference(box(450, -1, 460, 101))
    cells_m = metres(generate_cells(lonlat(parent)))
    assert len(cells_m) == 11
    assert sorted(shapely.area(cells_m))[:2] == pytest.approx([4_000.0, 5_000.0], rel=1e-6)


def test_square_cells_come_north_to_south_then_west_to_east():
    cells_m = metres(generate_cells(lonlat(box(0, 0, 1000, 600))))
    centres = shapely.centroid(cells_m)
    x, y = shapely.get_x(centres), shapely.get_y(centres)
    expected = sorted(range(len(cells_m)), key=lambda i: (-round(y[i]), x[i]))
    assert list(range(len(cells_m))) == expected
    assert y[0] == pytest.approx(550.0) and x[0] == pytest.approx(50.0)  # north-west first
    assert y[-1] == pytest.approx(50.0) and x[-1] == pytest.approx(950.0)  # south-east last


def test_hexagon_rows_come_north_to_south_then_west_to_east():
    cells_m = metres(generate_cells(lonlat(box(0, 0, 1000, 600)), shape="hexagon"))
    radius = math.sqrt(2 * TARGET / (3 * math.sqrt(3)))
    interior = shapely.distance(cells_m, box(0, 0, 1000, 600).boundary) > 1e-3
    centres = shapely.centroid(cells_m[interior])
    # Whole hexagons sit on lattice rows 1.5 R apart, counted from the top edge.
    rows = np.round((600 - shapely.get_y(centres)) / (1.5 * radius))
    x = shapely.get_x(centres)
    assert np.all(np.diff(rows) >= 0)
    same_row = np.diff(rows) == 0
    assert np.all(np.diff(x)[same_row] > 0)


def test_order_helper_recovers_coding_order_of_shuffled_jittered_grid():
    rng = np.random.default_rng(7)
    cells_m = [
        box(x, y, x + 100, y + 100) for y in range(500, -1, -100) for x in range(0, 1000, 100)
    ]
    # Wobbly digitising: each cell is shifted up to 15 m each way, less than half a row.
    wobbly = [shapely.affinity.translate(c, *rng.uniform(-15, 15, 2)) for c in cells_m]
    shuffle = rng.permutation(len(wobbly))
    polygons = [lonlat(wobbly[i]) for i in shuffle]
    order = order_west_east_north_south(polygons, row_height_m=100.0)
    assert [int(shuffle[i]) for i in order] == list(range(len(cells_m)))


def test_order_helper_on_empty_input_is_empty():
    assert order_west_east_north_south([], row_height_m=100.0) == []


@pytest.mark.parametrize("row_height", [0.0, -5.0, float("nan")])
def test_order_helper_rejects_bad_row_height(row_height):
    with pytest.raises(ValueError, match="row_height_m"):
        order_west_east_north_south([lonlat(box(0, 0, 1, 1))], row_height_m=row_height)


def test_order_helper_rejects_empty_geometry():
    with pytest.raises(ValueError, match="missing or empty"):
        order_west_east_north_south([lonlat(box(0, 0, 1, 1)), Polygon()], row_height_m=100.0)


@pytest.mark.parametrize(
    ("parent", "kwargs", "message"),
    [
        (Point(113.65, 34.75), {}, "Polygon or MultiPolygon"),
        (Polygon(), {}, "empty"),
        (
            Polygon([(113.65, 34.75), (113.66, 34.76), (113.66, 34.75), (113.65, 34.76)]),
            {},
            "invalid",
        ),
        (box(500_000, 3_800_000, 501_000, 3_801_000), {}, "lon/lat"),
        (None, {"target_area_m2": 0.0}, "positive"),
        (None, {"target_area_m2": -10.0}, "positive"),
        (None, {"target_area_m2": 50.0}, "too small"),
        (None, {"shape": "triangle"}, "unknown cell shape"),
        (None, {"sliver_ratio": 1.5}, "sliver_ratio"),
    ],
)
def test_bad_inputs_raise_value_error(parent, kwargs, message):
    parent = lonlat(box(0, 0, 1000, 1000)) if parent is None else parent
    with pytest.raises(ValueError, match=message):
        generate_cells(parent, **kwargs)


def test_too_many_cells_raises_before_generating():
    with pytest.raises(ValueError, match="more than the limit"):
        generate_cells(lonlat(box(0, 0, 20_000, 20_000)), target_area_m2=100.0)


@pytest.mark.parametrize(
    "bounds",
    [(113.60, 34.80, 113.66, 34.815), (113.97, 34.80, 114.03, 34.815)],
    ids=["long-edges", "zone-boundary"],
)
@pytest.mark.parametrize("shape", ["square", "hexagon"])
def test_cells_inside_a_parent_with_long_lonlat_edges_pass_the_containment_rule(bounds, shape):
    # A 5.5 km lon/lat box: its edges are curves in UTM. The lattice is clipped along the curve
    # (not the chord), so every cell stays inside the stored parent and the cells tile it.
    from gis.topology import check_topology

    parent = box(*bounds)
    cells = generate_cells(parent, target_area_m2=250_000.0, shape=shape)
    frame = gpd.GeoDataFrame(
        {"code": [f"{i:03d}" for i in range(len(cells))]}, geometry=cells, crs=4326
    )
    assert check_topology(frame, parent) == []
    # independently, on the ellipsoid (edges split every ~1 m so that geodesics follow the
    # lon/lat lines): what sticks out or is left uncovered is far below a square metre
    union = shapely.union_all(cells)
    for piece in (shapely.difference(union, parent), shapely.difference(parent, union)):
        area, _ = Geod(ellps="WGS84").geometry_area_perimeter(shapely.segmentize(piece, 1e-5))
        assert abs(area) < 0.1

"""Point → grid assignment: agreement with plain shapely ``covers`` and the lowest-code rule.

Every expectation is computed independently of :mod:`gis.locate`: containment by looping
``shapely.covers`` over all grids (lowest code wins), distances by projecting with geopandas to
UTM zone 49N (EPSG:32649, the zone of Zhengzhou) and ``shapely.distance``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis.locate import GridIndex

UTM_49N = 32649
STEP = 2.0**-10  # ~0.001° (~90-110 m): exactly representable, so are its halves and quarters
WEST, NORTH = 113.625, 34.75  # exactly representable corner near Zhengzhou
DEG_PER_M_LON = 1.0 / (111_320.0 * np.cos(np.radians(34.75)))


def brute_locate(codes: list[str], geoms: list, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Index of the lowest-code grid that covers each point, by plain ``shapely.covers``."""
    points = shapely.points(lon, lat)
    out = np.full(len(points), -1)
    # Highest code first, so the lowest code is written last and wins.
    for i in sorted(range(len(codes)), key=codes.__getitem__, reverse=True):
        out[shapely.covers(geoms[i], points)] = i
    return out


def square_tiling(rows: int = 3, cols: int = 3) -> tuple[list[str], list[shapely.Polygon]]:
    """Axis-aligned squares numbered west→east, north→south, returned in shuffled order."""
    cells = []
    for r in range(rows):
        for c in range(cols):
            x, y = WEST + c * STEP, NORTH - (r + 1) * STEP
            cells.append(
                (f"410102001001{r * cols + c + 1:02d}", shapely.box(x, y, x + STEP, y + STEP))
            )
    order = np.random.default_rng(5).permutation(len(cells))
    return [cells[i][0] for i in order], [cells[i][1] for i in order]


@pytest.fixture(scope="module")
def squares() -> tuple[list[str], list[shapely.Polygon], GridIndex]:
    codes, geoms = square_tiling()
    return codes, geoms, GridIndex(codes, geoms)


@pytest.fixture(scope="module")
def voronoi() -> tuple[list[str], list[shapely.Polygon], GridIndex]:
    """Irregular tiling: Voronoi cells of 120 seeded points in a ~2 x 2 km box."""
    rng = np.random.default_rng(42)
    seeds = rng.uniform([113.64, 34.74], [113.662, 34.758], size=(120, 2))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds)))
    centre = shapely.centroid(cells)
    order = np.lexsort((shapely.get_x(centre), -shapely.get_y(centre)))
    codes = [f"41010200100{1 + i // 99}{1 + i % 99:02d}" for i in range(len(cells))]
    # Hand the grids over in an order unrelated to their codes.
    shuffled = rng.permutation(len(cells))
    codes = [codes[i] for i in shuffled]
    geoms = list(cells[order][shuffled])
    return codes, geoms, GridIndex(codes, geoms)


def polygon_vertices(geoms: list) -> np.ndarray:
    return np.unique(shapely.get_coordinates(geoms), axis=0)


# -- containment -----------------------------------------------------------------------------


def test_random_points_match_shapely_covers_on_irregular_grids(voronoi) -> None:
    codes, geoms, index = voronoi
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    rng = np.random.default_rng(1)
    lon = rng.uniform(minx - 0.002, maxx + 0.002, 20_000)
    lat = rng.uniform(miny - 0.002, maxy + 0.002, 20_000)
    expected = brute_locate(codes, geoms, lon, lat)
    assert (expected == -1).any() and (expected >= 0).any()
    np.testing.assert_array_equal(index.locate(lon, lat), expected)


def test_shared_voronoi_vertices_go_to_lowest_covering_code(voronoi) -> None:
    codes, geoms, index = voronoi
    vertices = polygon_vertices(geoms)
    expected = brute_locate(codes, geoms, vertices[:, 0], vertices[:, 1])
    covering = shapely.covers(np.array(geoms)[:, None], shapely.points(vertices)[None, :]).sum(0)
    assert (covering >= 3).sum() > 50  # real triple points are being tested
    np.testing.assert_array_equal(index.locate(vertices[:, 0], vertices[:, 1]), expected)


def test_points_on_and_next_to_irregular_edges_match_shapely(voronoi) -> None:
    codes, geoms, index = voronoi
    edges = shapely.get_parts(shapely.boundary(np.array(geoms)))
    fractions = np.linspace(0.05, 0.95, 7)
    on_edge = shapely.line_interpolate_point(edges[:, None], fractions[None, :], normalized=True)
    xy = shapely.get_coordinates(on_edge.ravel())
    # Offsets far below the raster cells (and below the 1e-9° boundary-cell margin) put
    # every point in a boundary cell, on either side of the edge.
    offsets = np.array([0.0, 1e-12, -1e-12, 1e-10, -1e-10, 3e-9, -3e-9])
    lon = (xy[:, 0, None] + offsets[None, :]).ravel()
    lat = (xy[:, 1, None] - offsets[None, :]).ravel()
    np.testing.assert_array_equal(index.locate(lon, lat), brute_locate(codes, geoms, lon, lat))


@pytest.mark.parametrize("max_cells", [1, 50, 5_000, 2_000_000])
def test_result_does_not_depend_on_raster_resolution(voronoi, max_cells) -> None:
    codes, geoms, _ = voronoi
    index = GridIndex(codes, geoms, max_cells=max_cells)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    rng = np.random.default_rng(max_cells)
    lon = np.concatenate([rng.uniform(minx, maxx, 3_000), polygon_vertices(geoms)[:, 0]])
    lat = np.concatenate([rng.uniform(miny, maxy, 3_000), polygon_vertices(geoms)[:, 1]])
    np.testing.assert_array_equal(index.locate(lon, lat), brute_locate(codes, geoms, lon, lat))


def test_point_on_shared_edge_goes_to_lowest_code(squares) -> None:
    codes, geoms, index = squares
    # Midpoint of the vertical edge between unit 01 (west) and 02 (east), and of the horizontal
    # edge between 01 (north) and 04 (south): both exactly representable, exactly on the line.
    lon = np.array([WEST + STEP, WEST + STEP / 2])
    lat = np.array([NORTH - STEP / 2, NORTH - STEP])
    got = index.codes_for(lon, lat)
    assert list(got) == ["41010200100101", "41010200100101"]
    assert shapely.covers(geoms[codes.index("41010200100102")], shapely.Point(lon[0], lat[0]))
    assert shapely.covers(geoms[codes.index("41010200100104")], shapely.Point(lon[1], lat[1]))


def test_point_on_four_grid_corner_goes_to_lowest_code(squares) -> None:
    _, _, index = squares
    # The corner shared by units 05, 06, 08 and 09 (centre square's south-east corner).
    got = index.codes_for(np.array([WEST + 2 * STEP]), np.array([NORTH - 2 * STEP]))
    assert list(got) == ["41010200100105"]


def test_all_shared_edge_midpoints_and_corners_match_shapely(squares) -> None:
    codes, geoms, index = squares
    ticks = np.arange(0, 3 * 4 + 1) * (STEP / 4)  # quarters of every edge, all exact
    lon, lat = np.meshgrid(WEST + ticks, NORTH - ticks)
    lon, lat = lon.ravel(), lat.ravel()
    np.testing.assert_array_equal(index.locate(lon, lat), brute_locate(codes, geoms, lon, lat))


def test_outer_boundary_of_tiling_is_covered(squares) -> None:
    _, _, index = squares
    east, south = WEST + 3 * STEP, NORTH - 3 * STEP
    got = index.codes_for(np.array([east, WEST, east]), np.array([NORTH, south, south]))
    assert list(got) == ["41010200100103", "41010200100107", "41010200100109"]


def test_points_outside_all_grids_are_minus_one(squares) -> None:
    _, _, index = squares
    eps = 1e-12
    lon = np.array([WEST - eps, WEST + 3 * STEP + eps, 0.0, -179.0, WEST + STEP])
    lat = np.array([NORTH - STEP, NORTH - STEP, 0.0, -89.0, NORTH + eps])
    np.testing.assert_array_equal(index.locate(lon, lat), [-1, -1, -1, -1, -1])
    assert list(index.codes_for(lon[:1], lat[:1])) == [None]


def test_hole_boundary_is_covered_and_hole_interior_is_not() -> None:
    outer = shapely.box(WEST, NORTH - 4 * STEP, WEST + 4 * STEP, NORTH)
    hole = shapely.box(WEST + STEP, NORTH - 3 * STEP, WEST + 3 * STEP, NORTH - STEP)
    ring = shapely.Polygon(outer.exterior, [hole.exterior])
    codes, geoms = ["41010200100102"], [ring]
    index = GridIndex(codes, geoms)
    lon = np.array([WEST + STEP, WEST + 2 * STEP, WEST + 2 * STEP, WEST + STEP / 2])
    lat = np.array([NORTH - 2 * STEP, NORTH - STEP, NORTH - 2 * STEP, NORTH - STEP / 2])
    # hole edge midpoint, hole edge midpoint, hole centre, inside the ring
    np.testing.assert_array_equal(index.locate(lon, lat), [0, 0, -1, 0])
    np.testing.assert_array_equal(index.locate(lon, lat), brute_locate(codes, geoms, lon, lat))


def test_hole_boundary_shared_with_filling_grid_goes_to_lowest_code() -> None:
    outer = shapely.box(WEST, NORTH - 4 * STEP, WEST + 4 * STEP, NORTH)
    hole = shapely.box(WEST + STEP, NORTH - 3 * STEP, WEST + 3 * STEP, NORTH - STEP)
    ring = shapely.Polygon(outer.exterior, [hole.exterior])
    lon = np.array([WEST + STEP, WEST + 2 * STEP, WEST + STEP / 2])
    lat = np.array([NORTH - 2 * STEP, NORTH - 2 * STEP, NORTH - STEP / 2])
    for ring_code, filler_code in [("41010200100101", "41010200100102"), ("02", "01")]:
        index = GridIndex([ring_code, filler_code], [ring, hole])
        lowest = min(ring_code, filler_code)
        assert list(index.codes_for(lon, lat)) == [lowest, filler_code, ring_code]


def test_multipolygon_grid_covers_both_parts_and_not_the_gap() -> None:
    west_part = shapely.box(WEST, NORTH - STEP, WEST + STEP, NORTH)
    east_part = shapely.box(WEST + 2 * STEP, NORTH - STEP, WEST + 3 * STEP, NORTH)
    middle = shapely.box(WEST + STEP, NORTH - STEP / 2, WEST + 2 * STEP, NORTH)
    codes = ["41010200100102", "41010200100101"]
    geoms = [shapely.MultiPolygon([west_part, east_part]), middle]
    index = GridIndex(codes, geoms)
    lon = WEST + np.array([0.5, 2.5, 1.5, 1.5, 1.0, 2.0]) * STEP
    lat = NORTH - np.array([0.5, 0.5, 0.25, 0.75, 0.75, 0.25]) * STEP
    # parts, middle grid, gap below it, part edge (only the multipolygon), shared edge (lowest)
    np.testing.assert_array_equal(index.locate(lon, lat), [0, 0, 1, -1, 0, 1])
    np.testing.assert_array_equal(index.locate(lon, lat), brute_locate(codes, geoms, lon, lat))


def test_overlapping_grids_resolve_to_lowest_code() -> None:
    a = shapely.box(WEST, NORTH - 2 * STEP, WEST + 2 * STEP, NORTH)
    b = shapely.box(WEST + STEP, NORTH - 3 * STEP, WEST + 3 * STEP, NORTH - STEP)
    index = GridIndex(["41010200100109", "41010200100103"], [a, b])
    lon = WEST + np.array([0.5, 1.5, 2.5]) * STEP
    lat = NORTH - np.array([0.5, 1.5, 2.5]) * STEP
    np.testing.assert_array_equal(index.locate(lon, lat), [0, 1, 1])


def test_locate_keeps_the_input_shape(squares) -> None:
    _, _, index = squares
    lon = np.full((2, 3), WEST + STEP / 2)
    lat = np.full((2, 3), NORTH - STEP / 2)
    assert index.locate(lon, lat).shape == (2, 3)
    assert index.locate(np.array([]), np.array([])).shape == (0,)


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        ([113.6, 113.7], [34.7], "same shape"),
        ([np.nan], [34.7], "lon value"),
        ([113.6], [np.inf], "lat value"),
        ([190.0], [34.7], "outside \\[-180, 180\\]"),
        ([113.6], [-91.0], "outside \\[-90, 90\\]"),
    ],
)
def test_bad_points_are_refused_with_the_problem_named(squares, lon, lat, message) -> None:
    _, _, index = squares
    with pytest.raises(ValueError, match=message):
        index.locate(np.array(lon), np.array(lat))


def test_bad_grids_are_refused_with_the_problem_named() -> None:
    square = shapely.box(WEST, NORTH - STEP, WEST + STEP, NORTH)
    bowtie = shapely.Polygon(
        [(WEST, NORTH), (WEST + STEP, NORTH - STEP), (WEST + STEP, NORTH), (WEST, NORTH - STEP)]
    )
    cases = [
        (["a", "b"], [square], "same length"),
        (["a", "a"], [square, square], "unique"),
        (["a"], [shapely.LineString([(0, 0), (1, 1)])], "Polygon or MultiPolygon"),
        (["a"], [shapely.Polygon()], "empty"),
        (["a"], [bowtie], "invalid geometry .*Self-intersection"),
        (["a"], [shapely.box(500_000, 3_800_000, 500_100, 3_800_100)], "lon/lat"),
        ([""], [square], "non-empty strings"),
    ]
    for codes, geoms, message in cases:
        with pytest.raises(ValueError, match=message):
            GridIndex(codes, geoms)


def test_empty_index_covers_nothing() -> None:
    index = GridIndex([], [])
    np.testing.assert_array_equal(index.locate(np.array([113.6]), np.array([34.7])), [-1])
    assert index.nearest(113.6, 34.7) is None
    assert index.candidates(113.6, 34.7, 100.0) == []


# -- distances -----------------------------------------------------------------------------------


# A grid edge is straight in degrees, so a slight curve in UTM: the brute force follows it in
# ~1 m steps, gis.metric in 100 m steps (a fraction of a millimetre off). Distances agree to this.
EDGE_PATH_ABS_M = 1e-3


def utm_distances(geoms: list, lon: float, lat: float) -> np.ndarray:
    grids = gpd.GeoSeries(geoms, crs=4326).segmentize(1e-5).to_crs(UTM_49N)
    point = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(UTM_49N).iloc[0]
    return grids.distance(point).to_numpy().copy()


def test_candidates_match_utm_distances_sorted_by_distance_then_code(voronoi) -> None:
    codes, geoms, index = voronoi
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    for lon, lat in rng.uniform([minx, miny], [maxx, maxy], size=(5, 2)):
        dist = utm_distances(geoms, lon, lat)
        dist[shapely.covers(np.array(geoms), shapely.Point(lon, lat))] = 0.0
        got = index.candidates(lon, lat, 150.0)
        expected = sorted((d, codes[i], i) for i, d in enumerate(dist) if d <= 150.0)
        assert [i for i, _ in got] == [i for _, _, i in expected]
        np.testing.assert_allclose(
            [d for _, d in got], [d for d, _, _ in expected], atol=EDGE_PATH_ABS_M
        )


def test_point_ten_metres_inside_lists_both_neighbours_not_a_far_grid(squares) -> None:
    codes, geoms, index = squares
    # 10 m west of the edge between unit 01 and unit 02, in the middle of the edge.
    lon, lat = WEST + STEP - 10 * DEG_PER_M_LON, NORTH - STEP / 2
    got = index.candidates(lon, lat, 15.0)
    assert [codes[i] for i, _ in got] == ["41010200100101", "41010200100102"]
    assert got[0][1] == 0.0
    expected = utm_distances(geoms, lon, lat)[got[1][0]]
    assert got[1][1] == pytest.approx(expected, abs=EDGE_PATH_ABS_M)
    assert 9.9 < got[1][1] < 10.1


def test_candidates_on_shared_edge_lists_both_at_zero_lowest_code_first(squares) -> None:
    codes, _, index = squares
    got = index.candidates(WEST + STEP, NORTH - STEP / 2, 1.0)
    assert [(codes[i], d) for i, d in got] == [("41010200100101", 0.0), ("41010200100102", 0.0)]


def test_nearest_matches_brute_force_utm_distance(voronoi) -> None:
    codes, geoms, index = voronoi
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    rng = np.random.default_rng(9)
    outside = rng.uniform([minx - 0.02, miny - 0.02], [maxx + 0.02, maxy + 0.02], size=(40, 2))
    for lon, lat in outside:
        dist = utm_distances(geoms, lon, lat)
        covering = brute_locate(codes, geoms, np.array([lon]), np.array([lat]))[0]
        if covering >= 0:
            assert index.nearest(lon, lat) == (covering, 0.0)
            continue
        best = min(range(len(codes)), key=lambda i: (dist[i], codes[i]))
        i, d = index.nearest(lon, lat)
        assert i == best
        assert d == pytest.approx(dist[best], abs=EDGE_PATH_ABS_M)


def test_nearest_outside_a_square_tiling_is_measured_in_metres(squares) -> None:
    codes, _, index = squares
    i, d = index.nearest(WEST + 3 * STEP + 50 * DEG_PER_M_LON, NORTH - STEP / 2)
    assert codes[i] == "41010200100103"
    assert d == pytest.approx(50.0, rel=2e-3)


def test_distance_queries_refuse_bad_input(squares) -> None:
    _, _, index = squares
    with pytest.raises(ValueError, match="radius_m"):
        index.candidates(WEST, NORTH, -1.0)
    with pytest.raises(ValueError, match="lat value"):
        index.nearest(WEST, 95.0)


def test_candidates_many_equals_candidates_point_by_point() -> None:
    import numpy as np
    import shapely

    from gis.locate import GridIndex

    rng = np.random.default_rng(9)
    seeds = shapely.multipoints(
        np.column_stack([rng.uniform(113.64, 113.66, 60), rng.uniform(34.74, 34.76, 60)])
    )
    cells = shapely.get_parts(
        shapely.voronoi_polygons(seeds, extend_to=shapely.box(113.64, 34.74, 113.66, 34.76))
    )
    cells = shapely.intersection(cells, shapely.box(113.64, 34.74, 113.66, 34.76))
    codes = [f"4101050010010{i:02d}"[-14:] for i in range(len(cells))]
    index = GridIndex(codes, list(cells))
    lon, lat = rng.uniform(113.639, 113.661, 800), rng.uniform(34.739, 34.761, 800)
    located = index.locate(lon, lat)
    point, grid, dist = index.candidates_many(lon, lat, 15.0, located)
    for i in range(len(lon)):
        expected = index.candidates(lon[i], lat[i], 15.0)
        got = [(int(g), float(d)) for g, d in zip(grid[point == i], dist[point == i], strict=True)]
        assert [g for g, _ in got] == [g for g, _ in expected]
        assert np.allclose([d for _, d in got], [d for _, d in expected], atol=1e-6)

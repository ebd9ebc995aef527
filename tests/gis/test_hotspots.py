"""Hotspot influence zones, case matching and grid shares, against independent computations.

Every expectation is computed without :mod:`gis.hotspots` or :mod:`gis.metric`: geometries are
projected with a plain pyproj transformer to UTM zone 49N (EPSG:32649, the zone of Zhengzhou),
buffered there with shapely (same 16 segments per quarter circle), and tested with plain
``shapely.covers`` / ``shapely.distance`` / ``shapely.intersection``. Buffer areas are also
checked geodesically on the WGS 84 ellipsoid with ``pyproj.Geod``.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from gis.hotspots import HotspotIndex, influence_zones, length_in_grids, share_in_grids
from tests.gis import grid_helpers

UTM_49N = 32649
LON0, LAT0 = 113.65, 34.75  # Zhengzhou
M_LON = 1.0 / (111_320.0 * math.cos(math.radians(LAT0)))  # degrees of lon per metre (approx.)
M_LAT = 1.0 / 110_950.0  # degrees of lat per metre (approx.)
STEP = 2.0**-10  # grid edge in degrees: exactly representable, so are its multiples
WEST, NORTH = 113.625, 34.75
GEOD = Geod(ellps="WGS84")
# The module cuts zones and lines by grids in lon/lat (edges straight in degrees, as stored); the
# brute force cuts in UTM (edges straight in metres). Over a ~100 m grid edge the two lines are
# under a millimetre apart, so cut areas and lengths agree to these tolerances.
CUT_AREA_REL = 1e-5
CUT_LENGTH_ABS_M = 5e-3
# gis.metric follows a lon/lat edge in 100 m steps (a fraction of a millimetre off its true
# path); the brute force follows it in ~1 m steps. Distances agree to this.
EDGE_PATH_ABS_M = 1e-3

_TO_UTM = Transformer.from_crs(4326, UTM_49N, always_xy=True)
# Unit grids numbered west→east, north→south from (WEST, NORTH), handed over shuffled.
square_grids = partial(
    grid_helpers.square_grids,
    step=STEP,
    west=WEST,
    north=NORTH,
    code="410102001001{number:02d}",
    shuffle=3,
)


def utm(geoms):
    """Project lon/lat geometries to UTM 49N (independent of gis.metric)."""
    return shapely.transform(geoms, lambda xy: np.column_stack(_TO_UTM.transform(*xy.T)))


def utm_along_edges(geoms):
    """Project lon/lat hotspots to UTM 49N with each edge split every ~1 m first: a stored edge
    is straight in degrees, so in metres it is a slight curve (0.5 mm off the chord over
    200 m), which is what the zone must follow."""
    return utm(shapely.segmentize(geoms, 1e-5))


def at(east_m: float, north_m: float) -> tuple[float, float]:
    """Lon/lat roughly ``east_m``/``north_m`` metres from the reference point."""
    return LON0 + east_m * M_LON, LAT0 + north_m * M_LAT


def square(east_m: float, north_m: float, size_m: float) -> shapely.Polygon:
    x0, y0 = at(east_m, north_m)
    return shapely.box(x0, y0, x0 + size_m * M_LON, y0 + size_m * M_LAT)


def brute_zones_utm(geoms: list, buffers: list[float]) -> np.ndarray:
    own = utm_along_edges(np.array(geoms, dtype=object))
    return np.array(
        [
            g if b == 0 else shapely.buffer(g, b, quad_segs=16)
            for g, b in zip(own, buffers, strict=True)
        ],
        dtype=object,
    )


def brute_match(ids, geoms, buffers, lon, lat) -> list[tuple[int, int, float]]:
    """(point, hotspot position, metres) for every zone covering a point, by plain shapely."""
    own = utm_along_edges(np.array(geoms, dtype=object))
    zones = brute_zones_utm(geoms, buffers)
    points = utm(shapely.points(lon, lat))
    rows = []
    for pos in range(len(ids)):
        hit = np.flatnonzero(shapely.covers(zones[pos], points))
        dist = shapely.distance(own[pos], points[hit])
        rows += [(int(p), pos, float(d)) for p, d in zip(hit, dist, strict=True)]
    return sorted(rows, key=lambda r: (r[0], r[2], ids[r[1]]))


# -- influence zones -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lon, lat", [(113.65, 34.75), (126.63, 45.75), (109.51, 18.25), (87.6, 43.8)]
)
def test_point_buffer_area_is_a_geodesic_circle_within_half_a_percent(lon, lat) -> None:
    # Zhengzhou, Harbin, Sanya, Urumqi (the last 1.4° from its UTM zone's central meridian).
    zone = influence_zones([shapely.Point(lon, lat)], 50.0)[0]
    area, _ = GEOD.geometry_area_perimeter(zone)
    assert abs(abs(area) / (math.pi * 50.0**2) - 1) < 0.005


def test_point_buffer_is_the_documented_64_gon() -> None:
    zone = influence_zones([shapely.Point(LON0, LAT0)], 50.0)[0]
    # A 64-gon inscribed in the circle: every vertex at 50 m, area 0.16 % below pi r^2.
    centre = utm(shapely.Point(LON0, LAT0))
    ring = utm(shapely.get_exterior_ring(zone))
    radii = shapely.distance(centre, shapely.points(shapely.get_coordinates(ring)))
    np.testing.assert_allclose(radii, 50.0, atol=1e-6)
    expected = 50.0**2 * 64 / 2 * math.sin(2 * math.pi / 64)
    assert shapely.area(utm(zone)) == pytest.approx(expected, rel=1e-6)


def test_line_zone_is_the_metric_corridor_around_the_track() -> None:
    track = shapely.LineString([at(0, 0), at(400, 150), at(900, 100)])
    zone = influence_zones([track], 50.0)[0]
    expected = shapely.buffer(utm_along_edges(track), 50.0, quad_segs=16)
    # Same shape to well under a millimetre, after the lon/lat round trip.
    assert shapely.hausdorff_distance(utm(zone), expected) < 1e-3
    assert shapely.area(utm(zone)) == pytest.approx(shapely.area(expected), rel=1e-7)


def test_polygon_with_zero_buffer_is_its_own_zone() -> None:
    market = square(0, 0, 80)
    multi = shapely.MultiPolygon([square(200, 0, 30), square(300, 0, 30)])
    zones = influence_zones([market, multi], [0.0, 0.0])
    assert shapely.equals_exact(zones[0], market, tolerance=0)
    assert shapely.equals_exact(zones[1], multi, tolerance=0)


def test_polygon_zone_grows_by_the_buffer_and_shrinks_its_hole() -> None:
    shell = square(0, 0, 100)
    courtyard = square(30, 30, 40)
    market = shapely.Polygon(shell.exterior.coords, [courtyard.exterior.coords])
    zone = influence_zones([market], 10.0)[0]
    expected = shapely.buffer(utm(market), 10.0, quad_segs=16)
    assert shapely.get_num_interior_rings(zone) == 1
    assert shapely.area(utm(zone)) == pytest.approx(shapely.area(expected), rel=1e-7)


def test_zones_of_a_set_are_all_grown_in_one_utm_zone() -> None:
    # 113.0°E lies in zone 49N, 115.5°E in 50N; the set's bbox centre (114.25°E) is in 50N.
    # Grown in its own zone, the western buffer would come out ~6 cm wider (scale factor).
    west, east = shapely.Point(113.0, 34.75), shapely.Point(115.5, 34.75)
    index = HotspotIndex([1, 2], [west, east], 50.0)
    assert index.crs.to_epsg() == 32650
    to_50n = Transformer.from_crs(4326, 32650, always_xy=True)

    def project(g):
        return shapely.transform(g, lambda xy: np.column_stack(to_50n.transform(*xy.T)))

    for zone, point in zip(index.zones, (west, east), strict=True):
        expected = shapely.buffer(project(point), 50.0, quad_segs=16)
        assert shapely.hausdorff_distance(project(zone), expected) < 1e-3


@pytest.mark.parametrize(
    "geom",
    [
        shapely.Point(LON0, LAT0),
        shapely.MultiPoint([(LON0, LAT0), (LON0 + 0.001, LAT0)]),
        shapely.LineString([(LON0, LAT0), (LON0 + 0.001, LAT0)]),
        shapely.MultiLineString([[(LON0, LAT0), (LON0 + 0.001, LAT0)]]),
    ],
)
def test_point_or_line_with_zero_buffer_is_rejected(geom) -> None:
    with pytest.raises(ValueError, match="a point or line hotspot needs a buffer > 0 m"):
        influence_zones([geom], 0.0)
    with pytest.raises(ValueError, match="id 9: a point or line hotspot needs a buffer > 0 m"):
        HotspotIndex([9], [geom], [0.0])


# -- input validation ----------------------------------------------------------------------------

with np.errstate(invalid="ignore"):  # shapely warns when it builds a NaN coordinate
    NAN_LINE = shapely.LineString([at(0, 0), (float("nan"), LAT0)])
BOWTIE = shapely.Polygon([at(0, 0), at(50, 50), at(50, 0), at(0, 50)])


@pytest.mark.parametrize(
    "ids, geoms, buffers, message",
    [
        ([1, 2], [shapely.Point(LON0, LAT0)], 50.0, "same length"),
        ([1], [shapely.Point(LON0, LAT0)], [50.0, 20.0], "one per geometry"),
        ([1], [shapely.Point(LON0, LAT0)], -1.0, "finite and >= 0"),
        ([1], [shapely.Point(LON0, LAT0)], float("nan"), "finite and >= 0"),
        ([1], [shapely.Point(LON0, LAT0)], float("inf"), "finite and >= 0"),
        ([1], [shapely.Point()], 50.0, "id 1: geometry is empty"),
        ([1], [shapely.Polygon()], 0.0, "geometry is empty"),
        ([1], [None], 50.0, "got NoneType"),
        ([1], [shapely.GeometryCollection([shapely.Point(LON0, LAT0)])], 5.0, "Multi variant"),
        ([1], [BOWTIE], 0.0, "id 1: invalid geometry .*Self-intersection"),
        ([1], [shapely.LineString([at(0, 0), at(0, 0)])], 5.0, "invalid geometry"),
        ([1], [NAN_LINE], 5.0, "not finite lon/lat"),
        ([1], [shapely.Point(500_000.0, 3_845_000.0)], 5.0, "reproject to EPSG:4326"),
        ([1, 1], [shapely.Point(LON0, LAT0)] * 2, 5.0, "unique; 1 appears more than once"),
        (["a"], [shapely.Point(LON0, LAT0)], 5.0, "ids must be integers"),
    ],
)
def test_bad_hotspots_are_rejected_with_a_clear_message(ids, geoms, buffers, message) -> None:
    with pytest.raises(ValueError, match=message):
        HotspotIndex(ids, geoms, buffers)


def test_influence_zones_names_the_position_of_a_bad_geometry() -> None:
    with pytest.raises(ValueError, match="hotspot at position 1: invalid geometry"):
        influence_zones([square(0, 0, 10), BOWTIE], 0.0)


@pytest.mark.parametrize(
    "lon, lat, message",
    [
        ([LON0, np.nan], [LAT0, LAT0], "lon value.*not finite"),
        ([LON0], [np.inf], "lat value.*not finite"),
        ([LON0, 200.0], [LAT0, LAT0], "outside"),
        ([LON0, LON0], [LAT0], "same shape"),
    ],
)
def test_bad_case_coordinates_are_rejected(lon, lat, message) -> None:
    index = HotspotIndex([1], [shapely.Point(LON0, LAT0)], 50.0)
    with pytest.raises(ValueError, match=message):
        index.match(np.array(lon), np.array(lat))


def test_bad_near_radius_is_rejected() -> None:
    index = HotspotIndex([1], [shapely.Point(LON0, LAT0)], 50.0)
    for radius in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="radius_m"):
            index.near(LON0, LAT0, radius)


# -- matching ------------------------------------------------------------------------------------


def test_points_on_zone_boundaries_are_matched() -> None:
    gate = shapely.Point(LON0, LAT0)
    # A market aligned on exactly representable degrees, so edge midpoints lie exactly on it.
    market = shapely.box(113.65625, 34.75, 113.65625 + STEP, 34.75 + STEP)
    index = HotspotIndex([1, 2], [gate, market], [50.0, 0.0])
    zones = index.zones
    vertices = shapely.get_coordinates(zones[0])
    edge_mid = np.array([[113.65625 + STEP / 2, 34.75], [113.65625, 34.75 + STEP / 4]])
    lon = np.concatenate([vertices[:, 0], edge_mid[:, 0]])
    lat = np.concatenate([vertices[:, 1], edge_mid[:, 1]])
    # The independent judge: plain covers on the lon/lat zones.
    assert shapely.covers(zones[0], shapely.points(vertices)).all()
    assert shapely.covers(market, shapely.points(edge_mid)).all()
    point_idx, pos, dist = index.match(lon, lat)
    np.testing.assert_array_equal(point_idx, np.arange(len(lon)))
    np.testing.assert_array_equal(pos, [0] * len(vertices) + [1, 1])
    np.testing.assert_allclose(dist[: len(vertices)], 50.0, atol=1e-6)
    np.testing.assert_allclose(dist[len(vertices) :], 0.0, atol=1e-6)


def test_point_in_two_zones_gets_both_nearest_first() -> None:
    school_gate = shapely.Point(at(0, 0))
    market = square(60, -20, 40)
    ids = [5, 4]
    index = HotspotIndex(ids, [market, school_gate], [50.0, 80.0])
    case = at(30, 0)  # ~30 m from the gate, ~30 m west of the market
    expected = sorted(
        [
            (5, float(shapely.distance(utm(market), utm(shapely.Point(case))))),
            (4, float(shapely.distance(utm(school_gate), utm(shapely.Point(case))))),
        ],
        key=lambda r: r[1],
    )
    got = index.matches_for(*case)
    assert [i for i, _ in got] == [i for i, _ in expected]
    np.testing.assert_allclose([d for _, d in got], [d for _, d in expected], atol=1e-6)


def test_equal_distances_are_ordered_by_id() -> None:
    # Two overlapping sites; a case inside both is 0 m from each.
    site_a, site_b = square(0, 0, 100), square(50, 50, 100)
    index = HotspotIndex([30, 10, 20], [site_a, site_b, shapely.Point(at(300, 300))], 20.0)
    assert index.matches_for(*at(75, 75)) == [(10, 0.0), (30, 0.0)]


def test_case_in_courtyard_within_buffer_is_matched_at_distance_to_ring() -> None:
    shell, courtyard = square(0, 0, 100), square(30, 30, 40)
    market = shapely.Polygon(shell.exterior.coords, [courtyard.exterior.coords])
    index = HotspotIndex([1], [market], [10.0])
    near_ring, hole_centre = at(36, 50), at(50, 50)  # ~6 m and ~20 m from the courtyard ring
    inner_ring = utm(shapely.LinearRing(courtyard.exterior.coords))
    expected = float(shapely.distance(inner_ring, utm(shapely.Point(near_ring))))
    assert 5 < expected < 7
    got = index.matches_for(*near_ring)
    assert [i for i, _ in got] == [1]
    assert got[0][1] == pytest.approx(expected, abs=1e-6)
    assert index.matches_for(*hole_centre) == []
    assert index.matches_for(*at(10, 10)) == [(1, 0.0)]  # in the market itself


def test_match_equals_brute_force_on_random_points() -> None:
    rng = np.random.default_rng(11)
    geoms, buffers = [], []
    for _ in range(12):
        geoms.append(shapely.Point(at(*rng.uniform(0, 2000, 2))))
        buffers.append(float(rng.uniform(30, 150)))
    for _ in range(6):
        geoms.append(shapely.LineString([at(*rng.uniform(0, 2000, 2)) for _ in range(3)]))
        buffers.append(float(rng.uniform(20, 80)))
    for k in range(6):
        geoms.append(square(*rng.uniform(0, 1800, 2), rng.uniform(30, 200)))
        buffers.append(0.0 if k % 2 else float(rng.uniform(10, 50)))
    shell, hole = square(800, 800, 300), square(880, 880, 140)
    geoms += [
        shapely.Polygon(shell.exterior.coords, [hole.exterior.coords]),
        shapely.MultiPolygon([square(100, 1500, 80), square(400, 1600, 60)]),
        shapely.MultiPoint([at(1500, 200), at(1600, 260)]),
        shapely.MultiLineString([[at(0, 1000), at(700, 1100)], [at(1200, 0), at(1300, 900)]]),
    ]
    buffers += [25.0, 15.0, 60.0, 30.0]
    ids = [int(i) for i in rng.permutation(1000)[: len(geoms)]]
    index = HotspotIndex(ids, geoms, buffers)

    lon0, lat0 = at(-200, -200)
    lon1, lat1 = at(2200, 2200)
    lon, lat = rng.uniform(lon0, lon1, 20_000), rng.uniform(lat0, lat1, 20_000)
    point_idx, pos, dist = index.match(lon, lat)
    expected = brute_match(ids, geoms, buffers, lon, lat)

    assert len(expected) > 2_000 and len({p for p, _, _ in expected}) < 20_000
    assert len({p for p, _, _ in expected}) < len(expected)  # some cases are in several zones
    np.testing.assert_array_equal(point_idx, [r[0] for r in expected])
    np.testing.assert_array_equal(pos, [r[1] for r in expected])
    np.testing.assert_allclose(dist, [r[2] for r in expected], atol=EDGE_PATH_ABS_M)
    assert (dist <= np.array(buffers)[pos] + 1e-6).all()


def test_matches_for_agrees_with_match_and_accepts_multidimensional_input() -> None:
    index = HotspotIndex([1, 2], [shapely.Point(at(0, 0)), square(20, 0, 50)], [40.0, 10.0])
    lon = np.array([[at(15, 5)[0], at(200, 0)[0]], [at(30, 10)[0], at(-35, 0)[0]]])
    lat = np.full((2, 2), at(0, 5)[1])
    point_idx, pos, dist = index.match(lon, lat)
    flat = list(zip(lon.ravel(), lat.ravel(), strict=True))
    rebuilt = [
        [
            (int(index.ids[p]), float(d))
            for i, p, d in zip(point_idx, pos, dist, strict=True)
            if i == k
        ]
        for k in range(4)
    ]
    assert rebuilt == [index.matches_for(x, y) for x, y in flat]
    assert rebuilt[1] == [] and len(rebuilt[0]) == 2


def test_near_measures_own_geometry_regardless_of_buffer() -> None:
    geoms = [
        shapely.Point(at(0, 0)),
        shapely.LineString([at(-100, 80), at(100, 80)]),
        square(150, -20, 40),
    ]
    index = HotspotIndex([1, 2, 3], geoms, [5.0, 5.0, 0.0])
    case = shapely.Point(at(0, 10))
    dist = shapely.distance(utm_along_edges(np.array(geoms, dtype=object)), utm(case))
    for radius in (5.0, 75.0, 200.0):
        expected = sorted((i + 1, float(d)) for i, d in enumerate(dist) if d <= radius)
        expected.sort(key=lambda r: (r[1], r[0]))
        got = index.near(case.x, case.y, radius)
        assert [i for i, _ in got] == [i for i, _ in expected]
        np.testing.assert_allclose(
            [d for _, d in got], [d for _, d in expected], atol=EDGE_PATH_ABS_M
        )
    assert index.matches_for(case.x, case.y) == []  # outside every 5 m zone


def test_near_with_zero_radius_finds_the_polygon_the_point_is_on() -> None:
    # Exactly on the edge of a lon/lat box: covered in lon/lat, yet ~0.1 mm off the box's
    # straight UTM edge. The point is on the site, so it is 0 m away and found at radius 0.
    site = shapely.box(113.65625, 34.75, 113.65625 + STEP, 34.75 + STEP)
    edge_mid = shapely.Point(113.65625 + STEP / 2, 34.75)
    assert shapely.covers(site, edge_mid)
    index = HotspotIndex([4], [site], 0.0)
    assert index.near(edge_mid.x, edge_mid.y, 0.0) == [(4, 0.0)]
    assert index.near(113.65625 + STEP / 2, 34.75 + STEP / 2, 0.0) == [(4, 0.0)]
    assert index.near(113.65625 - STEP, 34.75, 0.0) == []


def test_empty_index_matches_nothing() -> None:
    index = HotspotIndex([], [], [])
    point_idx, pos, dist = index.match(np.array([LON0]), np.array([LAT0]))
    assert point_idx.size == pos.size == dist.size == 0
    assert index.near(LON0, LAT0, 1000.0) == [] and index.crs is None


# -- grid shares ---------------------------------------------------------------------------------


def brute_areas(zone, codes, grids) -> dict[str, float]:
    z = utm(zone)
    areas = {
        c: float(shapely.area(shapely.intersection(utm(g), z)))
        for c, g in zip(codes, grids, strict=True)
    }
    return {c: a for c, a in areas.items() if a > 1e-6}


def test_rail_corridor_area_shares_across_grids_match_brute_force() -> None:
    codes, grids = square_grids(3, 4)
    track = shapely.LineString(
        [(WEST + 0.4 * STEP, NORTH - 2.6 * STEP), (WEST + 3.6 * STEP, NORTH - 0.4 * STEP)]
    )
    zone = influence_zones([track], 20.0)[0]
    union = utm(shapely.union_all(grids))
    assert shapely.covers(union, utm(zone))  # so the shares must add up to 1
    rows = share_in_grids(zone, codes, grids)
    expected = brute_areas(zone, codes, grids)
    assert len(rows) >= 5
    assert {r["code"] for r in rows} == set(expected)
    for r in rows:
        assert r["area_m2"] == pytest.approx(expected[r["code"]], rel=CUT_AREA_REL)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-9)
    shares = [r["share"] for r in rows]
    assert shares == sorted(shares, reverse=True)


def test_grids_touching_the_zone_only_along_an_edge_are_excluded() -> None:
    codes, grids = square_grids(3, 3)
    # A construction site filling exactly unit 05 (the centre grid); 02, 04, 06, 08 share an
    # edge with it and 01, 03, 07, 09 a corner.
    site = shapely.box(WEST + STEP, NORTH - 2 * STEP, WEST + 2 * STEP, NORTH - STEP)
    assert sum(shapely.touches(g, site) for g in grids) == 8
    rows = share_in_grids(site, codes, grids)
    assert [r["code"] for r in rows] == ["41010200100105"]
    assert rows[0]["share"] == pytest.approx(1.0, abs=1e-12)


def test_zone_partly_outside_the_grids_has_shares_below_one() -> None:
    codes, grids = square_grids(2, 2)
    # A point zone centred on the grids' north-west corner: a quarter of it is inside.
    zone = influence_zones([shapely.Point(WEST, NORTH)], 30.0)[0]
    rows = share_in_grids(zone, codes, grids)
    assert [r["code"] for r in rows] == ["41010200100101"]
    inside = shapely.area(shapely.intersection(utm(zone), utm(grids[codes.index(rows[0]["code"])])))
    assert rows[0]["area_m2"] == pytest.approx(inside, rel=CUT_AREA_REL)
    assert rows[0]["share"] == pytest.approx(0.25, abs=1e-3)


def test_rail_line_length_shares_sum_to_one_inside_the_grids() -> None:
    codes, grids = square_grids(3, 4)
    track = shapely.LineString(
        [
            (WEST + 0.1 * STEP, NORTH - 2.9 * STEP),
            (WEST + 1.7 * STEP, NORTH - 1.2 * STEP),
            (WEST + 3.9 * STEP, NORTH - 0.3 * STEP),
        ]
    )
    rows = length_in_grids(track, codes, grids)
    t = utm(track)
    expected = {
        c: float(shapely.length(shapely.intersection(t, utm(g))))
        for c, g in zip(codes, grids, strict=True)
    }
    expected = {c: v for c, v in expected.items() if v > 0}
    assert len(rows) >= 5 and {r["code"] for r in rows} == set(expected)
    for r in rows:
        assert r["length_m"] == pytest.approx(expected[r["code"]], abs=CUT_LENGTH_ABS_M)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-9)


def test_line_along_a_shared_edge_counts_once_for_the_lowest_code() -> None:
    codes, grids = square_grids(2, 2)
    # Along the edge between 01 (west) and 02 (east) for its whole length, then across 04.
    track = shapely.LineString(
        [(WEST + STEP, NORTH), (WEST + STEP, NORTH - STEP), (WEST + 2 * STEP, NORTH - 1.5 * STEP)]
    )
    rows = length_in_grids(track, codes, grids)
    t = utm(track)
    along = float(shapely.length(utm(shapely.LineString(track.coords[:2]))))
    assert sorted(r["code"] for r in rows) == ["41010200100101", "41010200100104"]
    assert [r["share"] for r in rows] == sorted((r["share"] for r in rows), reverse=True)
    by_code = {r["code"]: r for r in rows}
    assert by_code["41010200100101"]["length_m"] == pytest.approx(along, rel=1e-9)
    assert sum(r["length_m"] for r in rows) == pytest.approx(shapely.length(t), rel=1e-9)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-9)


def test_line_crossing_only_a_grid_corner_gets_no_length_there() -> None:
    codes, grids = square_grids(2, 2)
    # Diagonal through the shared centre corner: 01 and 04 get length, 02 and 03 only a point.
    track = shapely.LineString(
        [(WEST + 0.5 * STEP, NORTH - 0.5 * STEP), (WEST + 1.5 * STEP, NORTH - 1.5 * STEP)]
    )
    rows = length_in_grids(track, codes, grids)
    assert sorted(r["code"] for r in rows) == ["41010200100101", "41010200100104"]
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "func, geom, message",
    [
        (share_in_grids, shapely.Point(LON0, LAT0), "pass its influence zone"),
        (share_in_grids, shapely.LineString([(LON0, LAT0), (LON0 + 0.001, LAT0)]), "zone must"),
        (share_in_grids, BOWTIE, "zone: invalid geometry"),
        (share_in_grids, shapely.Polygon(), "zone: geometry is empty"),
        (length_in_grids, square(0, 0, 10), "use share_in_grids"),
        (length_in_grids, shapely.LineString([at(0, 0), at(0, 0)]), "invalid geometry"),
    ],
)
def test_bad_share_inputs_are_rejected(func, geom, message) -> None:
    codes, grids = square_grids(2, 2)
    with pytest.raises(ValueError, match=message):
        func(geom, codes, grids)


def test_bad_grids_are_rejected() -> None:
    codes, grids = square_grids(2, 2)
    zone = square(0, 0, 10)
    with pytest.raises(ValueError, match="same length"):
        share_in_grids(zone, codes[:3], grids)
    with pytest.raises(ValueError, match="unique"):
        share_in_grids(zone, [codes[0]] * 4, grids)
    with pytest.raises(ValueError, match="grid 41010200100199: invalid geometry"):
        share_in_grids(zone, [*codes[:3], "41010200100199"], [*grids[:3], BOWTIE])
    with pytest.raises(ValueError, match="Polygon or MultiPolygon, got Point"):
        length_in_grids(
            shapely.LineString([at(0, 0), at(5, 5)]), codes, [*grids[:3], shapely.Point(LON0, LAT0)]
        )


def test_bbox_scan_and_tree_paths_agree(monkeypatch) -> None:
    import numpy as np
    import shapely

    import gis.hotspots as hs

    rng = np.random.default_rng(12)
    n = 300  # more than the bbox-scan threshold, so the default takes the tree path
    geoms = list(shapely.points(rng.uniform(113.64, 113.66, n), rng.uniform(34.74, 34.76, n)))
    index = hs.HotspotIndex(list(range(1, n + 1)), geoms, rng.uniform(20, 120, n))
    lon, lat = rng.uniform(113.639, 113.661, 5000), rng.uniform(34.739, 34.761, 5000)
    tree = index.match(lon, lat)
    monkeypatch.setattr(hs, "_FEW_ZONES", 10_000)
    scan = index.match(lon, lat)
    for a, b in zip(tree, scan, strict=True):
        assert np.array_equal(a, b)
    assert len(tree[0]) > 1000


def test_shares_of_a_long_polygon_zone_over_grids_that_split_it_sum_to_one() -> None:
    # A 9 km wedge-shaped rail yard (no buffer) cut into ten grids along meridians: its long
    # edges bow in UTM, and the zone and its pieces must bow alike for the shares to add up
    # (projected vertex by vertex they missed by 2e-5).
    west, south, east, north = 113.60, 34.80, 113.70, 34.802
    xs = np.linspace(west, east, 11)
    codes = [f"410102001001{i:02d}" for i in range(1, 11)]
    grids = [shapely.box(a, south, b, north) for a, b in zip(xs[:-1], xs[1:], strict=True)]
    yard = shapely.Polygon([(west, south), (east, south), (east, north)])
    rows = share_in_grids(yard, codes, grids)
    assert len(rows) == 10
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-9)
    total = abs(GEOD.geometry_area_perimeter(shapely.segmentize(yard, 1e-5))[0])
    for r in rows:
        piece = shapely.intersection(grids[codes.index(r["code"])], yard)
        area = abs(GEOD.geometry_area_perimeter(shapely.segmentize(piece, 1e-5))[0])
        assert r["area_m2"] == pytest.approx(area, rel=2e-3)
        assert r["share"] == pytest.approx(area / total, rel=1e-4)

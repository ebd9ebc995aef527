"""Density aggregates for the heat map, checked against independent computations.

Counts are checked against plain shapely point-in-polygon tests, areas against pyproj's
geodesic area, the kernel density against a direct sum of Gaussians, the image placement
against Leaflet's linear-in-Web-Mercator rule, and Gi* z-scores against the Getis-Ord formula
evaluated with numpy on neighbours found by index arithmetic.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
import shapely
from PIL import Image
from pyproj import CRS, Geod, Transformer

from gis.density import (
    HOT_SPOT_CLASSES,
    grid_density,
    hexbin_counts,
    hot_spots,
    kernel_density,
    raster_to_png,
)
from gis.locate import GridIndex

UTM_49N = CRS.from_epsg(32649)
TO_M = Transformer.from_crs(4326, UTM_49N, always_xy=True)
TO_LONLAT = Transformer.from_crs(UTM_49N, 4326, always_xy=True)
TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)
WEST, SOUTH = 113.64, 34.74
STEP = 0.001  # ~90 x 110 m unit grids


def square_grids(rows: int, cols: int, step: float = STEP) -> tuple[list[str], list]:
    """Squares numbered west→east, north→south; code 'rRRcCC'."""
    codes, geoms = [], []
    for r in range(rows):
        for c in range(cols):
            x, y = WEST + c * step, SOUTH + (rows - 1 - r) * step
            codes.append(f"r{r:02d}c{c:02d}")
            geoms.append(shapely.box(x, y, x + step, y + step))
    return codes, geoms


# -- grid_density ------------------------------------------------------------------------------


def test_counts_per_grid_match_shapely_point_in_polygon() -> None:
    codes, geoms = square_grids(5, 6)
    rng = np.random.default_rng(3)
    lon = rng.uniform(WEST - 0.001, WEST + 0.007, 5_000)  # some points fall outside every grid
    lat = rng.uniform(SOUTH - 0.001, SOUTH + 0.006, 5_000)
    located = GridIndex(codes, geoms).codes_for(lon, lat)

    table = grid_density(codes, geoms, located)

    points = shapely.points(lon, lat)
    expected = [int(shapely.contains(g, points).sum()) for g in geoms]
    assert table.index.tolist() == codes
    assert table["count"].tolist() == expected
    assert table["count"].sum() < len(lon)  # the outside points are not counted anywhere


def test_positions_from_grid_index_locate_count_like_codes() -> None:
    codes, geoms = square_grids(3, 3)
    rng = np.random.default_rng(4)
    lon, lat = rng.uniform(WEST, WEST + 0.004, 800), rng.uniform(SOUTH, SOUTH + 0.004, 800)
    index = GridIndex(codes, geoms)
    by_position = grid_density(codes, geoms, index.locate(lon, lat))
    by_code = grid_density(codes, geoms, index.codes_for(lon, lat))
    pd.testing.assert_frame_equal(by_position, by_code)


def test_area_excludes_holes_and_sums_multipolygon_parts() -> None:
    outer = shapely.box(WEST, SOUTH, WEST + 0.004, SOUTH + 0.004)
    hole = shapely.box(WEST + 0.001, SOUTH + 0.001, WEST + 0.003, SOUTH + 0.003)
    with_hole = shapely.Polygon(outer.exterior.coords, [hole.exterior.coords])
    two_parts = shapely.MultiPolygon(
        [
            shapely.box(WEST + 0.005, SOUTH, WEST + 0.006, SOUTH + 0.001),
            shapely.box(WEST + 0.008, SOUTH, WEST + 0.009, SOUTH + 0.002),
        ]
    )
    codes = ["holed", "multi"]
    # Two cases in the hole (outside the grid), three in the grids.
    lon = np.array([WEST + 0.002, WEST + 0.0021, WEST + 0.0005, WEST + 0.0055, WEST + 0.0085])
    lat = np.array([SOUTH + 0.002, SOUTH + 0.002, SOUTH + 0.0005, SOUTH + 0.0005, SOUTH + 0.001])
    located = GridIndex(codes, [with_hole, two_parts]).codes_for(lon, lat)

    table = grid_density(codes, [with_hole, two_parts], located)

    geod = Geod(ellps="WGS84")
    for code, geom in zip(codes, [with_hole, two_parts], strict=True):
        # pyproj signs each ring by its orientation: holes must run clockwise to subtract.
        geodesic = geod.geometry_area_perimeter(shapely.orient_polygons(geom))[0]
        assert table.loc[code, "area_m2"] == pytest.approx(geodesic, rel=3e-3)
    assert table["count"].tolist() == [1, 2]
    expected = table["count"] / table["area_m2"] * 1e6
    np.testing.assert_allclose(table["per_km2"], expected)
    np.testing.assert_allclose(table["value"], expected)  # per="km2" is the default


def test_counts_mapping_leaves_unlisted_grids_at_zero() -> None:
    codes, geoms = square_grids(1, 3)
    table = grid_density(codes, geoms, counts={codes[1]: 7}, per="grid")
    assert table["count"].tolist() == [0.0, 7.0, 0.0]
    assert table["value"].tolist() == [0.0, 7.0, 0.0]


def test_zero_patrol_hours_give_nan_rate_not_infinity() -> None:
    codes, geoms = square_grids(1, 3)
    hours = {codes[0]: 4.0, codes[1]: 0.0}  # codes[2] not listed: 0 hours
    table = grid_density(
        codes, geoms, [codes[0]] * 2 + [codes[1]] * 3, per="patrol_hour", patrol_hours=hours
    )
    assert table["patrol_hours"].tolist() == [4.0, 0.0, 0.0]
    assert table.loc[codes[0], "per_patrol_hour"] == 0.5
    assert np.isnan(table.loc[codes[1], "per_patrol_hour"])  # 3 cases, no patrol: undefined
    assert np.isnan(table.loc[codes[2], "per_patrol_hour"])
    assert not np.isinf(table["value"]).any()
    assert table.loc[codes[1], "count"] == 3  # the cases are still shown


def test_no_points_give_zero_counts_and_no_grids_an_empty_table() -> None:
    codes, geoms = square_grids(2, 2)
    assert grid_density(codes, geoms, []).loc[:, "count"].tolist() == [0, 0, 0, 0]
    empty = grid_density([], [], [])
    assert empty.empty and list(empty.columns) == ["count", "area_m2", "per_km2", "value"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"point_codes": ["r00c00", "nope"]}, "not among the grids"),
        ({"point_codes": np.array([0, 9])}, "positions"),
        ({"counts": {"nope": 1}}, "not among the grids"),
        ({"counts": {"r00c00": -1}}, ">= 0"),
        ({}, "exactly one"),
        ({"point_codes": [], "counts": {}}, "exactly one"),
        ({"point_codes": [], "per": "patrol_hour"}, "needs patrol_hours"),
        ({"point_codes": [], "patrol_hours": {"r00c00": float("inf")}}, ">= 0"),
    ],
)
def test_bad_density_input_is_refused(kwargs: dict, message: str) -> None:
    codes, geoms = square_grids(1, 2)
    with pytest.raises(ValueError, match=message):
        grid_density(codes, geoms, **kwargs)


def test_invalid_grids_are_refused() -> None:
    bowtie = shapely.Polygon([(WEST, SOUTH), (WEST + 0.001, SOUTH + 0.001),
                              (WEST + 0.001, SOUTH), (WEST, SOUTH + 0.001)])  # fmt: skip
    with pytest.raises(ValueError, match="invalid geometry"):
        grid_density(["a"], [bowtie], [])
    with pytest.raises(ValueError, match="unique"):
        grid_density(["a", "a"], square_grids(1, 2)[1], [])


# -- hexbin_counts -----------------------------------------------------------------------------


def reference_hexagons(col: np.ndarray, row: np.ndarray, size: float) -> np.ndarray:
    """Pointy-top hexagons as documented: centre ((col + row % 2 / 2) w, row √3/2 w),
    circumradius w / √3, built vertex by vertex with trigonometry."""
    r = size / math.sqrt(3.0)
    out = []
    for c, w in zip(col, row, strict=True):
        cx, cy = (c + (w % 2) / 2.0) * size, w * size * math.sqrt(3.0) / 2.0
        angles = np.radians(30.0 + 60.0 * np.arange(6))
        out.append(
            shapely.Polygon(np.column_stack([cx + r * np.cos(angles), cy + r * np.sin(angles)]))
        )
    return np.array(out, dtype=object)


def metric_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = TO_M.transform(lon, lat)
    return np.asarray(x), np.asarray(y)


def test_hexbin_counts_equal_shapely_point_in_polygon() -> None:
    rng = np.random.default_rng(8)
    lon, lat = rng.uniform(113.64, 113.66, 20_000), rng.uniform(34.74, 34.755, 20_000)
    size = 150.0

    hexes = hexbin_counts(lon, lat, size, crs=UTM_49N)

    assert hexes.crs.to_epsg() == 4326
    reference = reference_hexagons(hexes["col"].to_numpy(), hexes["row"].to_numpy(), size)
    # The returned lon/lat polygons are the documented metric hexagons.
    returned_m = shapely.transform(
        hexes.geometry.to_numpy(), lambda xy: np.column_stack(TO_M.transform(xy[:, 0], xy[:, 1]))
    )
    assert (shapely.hausdorff_distance(returned_m, reference) < 1e-6).all()
    # Counts: every point in exactly one hexagon, and that count is shapely's.
    points = shapely.points(*metric_xy(lon, lat))
    tree = shapely.STRtree(points)
    expected = [len(tree.query(h, predicate="contains")) for h in reference]
    assert hexes["count"].tolist() == expected
    assert hexes["count"].sum() == len(lon)
    assert (hexes["count"] > 0).all()


def test_points_on_hexagon_edges_and_vertices_are_counted_exactly_once() -> None:
    size = 100.0
    cols, rows = np.meshgrid(np.arange(2300, 2306), np.arange(42700, 42706))
    reference = reference_hexagons(cols.ravel(), rows.ravel(), size)
    # Every vertex, every edge midpoint and a point a third along every edge.
    ring = np.stack([np.asarray(h.exterior.coords) for h in reference])
    starts, ends = ring[:, :-1].reshape(-1, 2), ring[:, 1:].reshape(-1, 2)
    xy = np.unique(
        np.round(np.concatenate([starts, (starts + ends) / 2, starts + (ends - starts) / 3]), 6),
        axis=0,
    )
    lon, lat = TO_LONLAT.transform(xy[:, 0], xy[:, 1])
    lon, lat = np.asarray(lon), np.asarray(lat)
    points = shapely.points(*metric_xy(lon, lat))
    # They really are on shared boundaries: inner ones touch two or three hexagons.
    touching = np.array([shapely.dwithin(reference, p, 1e-6).sum() for p in points])
    assert (touching >= 2).sum() > len(points) / 2

    hexes = hexbin_counts(lon, lat, size, crs=UTM_49N)

    assert hexes["count"].sum() == len(points)  # each point exactly once
    found = reference_hexagons(hexes["col"].to_numpy(), hexes["row"].to_numpy(), size)
    for hexagon, count in zip(found, hexes["count"], strict=True):
        inside = int(shapely.contains(hexagon, points).sum())  # none: all on boundaries
        on_or_in = int(shapely.dwithin(hexagon, points, 1e-6).sum())
        assert inside <= count <= on_or_in


def test_hexagon_size_is_the_flat_to_flat_width() -> None:
    hexes = hexbin_counts(np.array([113.65]), np.array([34.75]), 200.0, crs=UTM_49N)
    hexagon = shapely.transform(
        hexes.geometry.iloc[0], lambda xy: np.column_stack(TO_M.transform(xy[:, 0], xy[:, 1]))
    )
    minx, _, maxx, _ = hexagon.bounds  # pointy-top: the flat sides face east and west
    assert maxx - minx == pytest.approx(200.0, abs=1e-6)
    assert hexagon.area == pytest.approx(math.sqrt(3) / 2 * 200.0**2, rel=1e-9)
    assert shapely.contains_xy(hexagon, *metric_xy(np.array([113.65]), np.array([34.75])))


def test_hexagons_are_the_same_between_calls_with_the_same_crs() -> None:
    rng = np.random.default_rng(2)
    lon, lat = rng.uniform(113.64, 113.66, 2_000), rng.uniform(34.74, 34.76, 2_000)
    whole = hexbin_counts(lon, lat, 250.0, crs=UTM_49N).set_index(["col", "row"])
    part = hexbin_counts(lon[:100], lat[:100], 250.0, crs=UTM_49N).set_index(["col", "row"])
    assert part.index.isin(whole.index).all()
    same = whole.loc[part.index]
    assert shapely.equals_exact(same.geometry.to_numpy(), part.geometry.to_numpy(), 1e-12).all()


def test_hexbin_weights_are_summed_per_hexagon() -> None:
    lon = np.array([113.65, 113.65001, 113.70])
    lat = np.array([34.75, 34.75001, 34.75])
    hexes = hexbin_counts(lon, lat, 100.0, np.array([1.5, 2.0, 4.0]), crs=UTM_49N)
    assert sorted(zip(hexes["count"], hexes["weight"], strict=True)) == [(1, 4.0), (2, 3.5)]


def test_hexbin_of_no_points_is_an_empty_frame() -> None:
    empty = hexbin_counts(np.array([]), np.array([]), 100.0)
    assert empty.empty and {"col", "row", "count", "geometry"} <= set(empty.columns)


@pytest.mark.parametrize("size", [0.0, -5.0, float("nan")])
def test_hexbin_refuses_a_size_that_is_not_positive(size: float) -> None:
    with pytest.raises(ValueError, match="size_m"):
        hexbin_counts(np.array([113.65]), np.array([34.75]), size)


# -- kernel_density ----------------------------------------------------------------------------


def test_kernel_density_integrates_to_the_number_of_points() -> None:
    rng = np.random.default_rng(5)
    lon, lat = rng.normal(113.65, 0.01, 10_000), rng.normal(34.75, 0.008, 10_000)
    raster = kernel_density(lon, lat, bandwidth_m=150.0, cell_m=30.0)
    assert raster.total == pytest.approx(10_000, rel=1e-9)
    weights = rng.uniform(0, 3, 10_000)
    weighted = kernel_density(lon, lat, 150.0, 30.0, weights=weights)
    assert weighted.total == pytest.approx(weights.sum(), rel=1e-9)


def test_kernel_density_matches_a_direct_sum_of_gaussians() -> None:
    rng = np.random.default_rng(6)
    lon, lat = rng.normal(113.65, 0.004, 60), rng.normal(34.75, 0.004, 60)
    sigma = 200.0
    raster = kernel_density(lon, lat, bandwidth_m=sigma, cell_m=20.0, crs=UTM_49N)
    px, py = metric_xy(lon, lat)
    rows, cols = raster.values.shape
    for r, c in [(rows // 2, cols // 2), (rows // 3, cols // 2), (rows // 2, cols // 4)]:
        cx = raster.x0 + (c + 0.5) * raster.cell_m
        cy = raster.y0 - (r + 0.5) * raster.cell_m
        d2 = (px - cx) ** 2 + (py - cy) ** 2
        direct = np.exp(-d2 / (2 * sigma**2)).sum() / (2 * math.pi * sigma**2) * 1e6  # per km²
        assert raster.values[r, c] == pytest.approx(direct, rel=0.01)


def test_kernel_density_covers_the_bounds_and_is_zero_without_points() -> None:
    bounds = (113.64, 34.74, 113.66, 34.76)
    raster = kernel_density(np.array([]), np.array([]), 100.0, 50.0, bounds=bounds)
    assert raster.total == 0.0 and raster.values.shape[0] > 0
    west, south, east, north = raster.bounds_wgs84
    assert west <= bounds[0] and south <= bounds[1] and east >= bounds[2] and north >= bounds[3]
    assert east - bounds[2] < 0.001 and north - bounds[3] < 0.001  # no more than a cell or so
    assert raster.transform == (raster.x0, 50.0, 0.0, raster.y0, 0.0, -50.0)
    with pytest.raises(ValueError, match="no points and no bounds"):
        kernel_density(np.array([]), np.array([]), 100.0, 50.0)


def test_kernel_density_refuses_a_huge_raster() -> None:
    with pytest.raises(ValueError, match="max_cells"):
        kernel_density(np.array([113.0, 114.0]), np.array([34.0, 35.0]), 100.0, 1.0)


def leaflet_lonlat(overlay, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where Leaflet draws image pixels (px, py): linear in Web Mercator between the bounds."""
    (south, west), (north, east) = overlay.bounds
    (x0, x1), (y0, y1) = TO_MERC.transform([west, east], [north, south])
    x = x0 + (np.asarray(px) + 0.5) / overlay.width * (x1 - x0)
    y = y0 + (np.asarray(py) + 0.5) / overlay.height * (y1 - y0)
    lon, lat = Transformer.from_crs(3857, 4326, always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def test_png_overlay_puts_each_hot_spot_where_it_is_on_the_map() -> None:
    # Near the east edge of UTM zone 49, where UTM north is ~1.6° off true north: an image
    # of the UTM raster stretched over its lon/lat box would put these spots 130-250 m off.
    spots = [(113.75, 34.75), (113.85, 34.75), (113.80, 34.80)]
    lon = np.repeat([s[0] for s in spots], 50)
    lat = np.repeat([s[1] for s in spots], 50)
    raster = kernel_density(lon, lat, bandwidth_m=60.0, cell_m=20.0)
    overlay = raster_to_png(raster)

    image = np.asarray(Image.open(io.BytesIO(overlay.png)))
    assert image.shape == (overlay.height, overlay.width, 4)
    assert image[0, 0, 3] == 0 and image[-1, -1, 3] == 0  # empty corners let the map show
    alpha = image[..., 3].astype(float)
    rows, cols = np.indices(alpha.shape)
    pixel_lon, pixel_lat = leaflet_lonlat(overlay, cols.ravel(), rows.ravel())
    geod = Geod(ellps="WGS84")
    for slon, slat in spots:
        _, _, dist = geod.inv(
            np.full(alpha.size, slon), np.full(alpha.size, slat), pixel_lon, pixel_lat
        )
        brightest = np.argmax(np.where(dist < 1_000, alpha.ravel(), -1))  # within 1 km
        assert dist[brightest] < 25.0  # about a pixel (20 m)
    assert overlay.vmax == pytest.approx(raster.values.max())


def test_png_overlay_refuses_an_unknown_colormap() -> None:
    raster = kernel_density(np.array([113.65]), np.array([34.75]), 100.0, 50.0)
    with pytest.raises(ValueError, match="colormap"):
        raster_to_png(raster, cmap="no-such-ramp")


# -- hot_spots ---------------------------------------------------------------------------------


def lattice_neighbours(rows: int, cols: int) -> np.ndarray:
    """Queen adjacency with self-loops of a rows x cols lattice, from index arithmetic."""
    n = rows * cols
    w = np.zeros((n, n))
    for r in range(rows):
        for c in range(cols):
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < rows and 0 <= cc < cols:
                        w[r * cols + c, rr * cols + cc] = 1.0
    return w


def gi_star_z(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Getis & Ord (1992) / Ord & Getis (1995) Gi* z-score, weights including w_ii."""
    n = len(x)
    mean = x.mean()
    s = math.sqrt((x**2).mean() - mean**2)
    wsum = w.sum(axis=1)
    num = w @ x - mean * wsum
    den = s * np.sqrt((n * (w**2).sum(axis=1) - wsum**2) / (n - 1))
    return num / den


@pytest.fixture(scope="module")
def planted() -> tuple[list[str], list, np.ndarray]:
    """A 30 x 30 tiling with a 4 x 4 cluster of busy grids and an empty 6 x 6 corner."""
    codes, geoms = square_grids(30, 30)
    values = np.random.default_rng(11).poisson(2.0, (30, 30)).astype(float)
    values[6:10, 6:10] = 12.0
    values[22:, 22:] = 0.0
    return codes, geoms, values.ravel()


def test_planted_cluster_is_hot_and_the_far_empty_corner_is_not(planted) -> None:
    codes, geoms, values = planted
    result = hot_spots(codes, geoms, values)
    grid = result["class"].to_numpy().reshape(30, 30)
    assert (grid[7:9, 7:9] == "hot_99").all()  # the cluster's core
    assert np.isin(grid[6:10, 6:10], ["hot_99", "hot_95"]).all()
    assert not np.char.startswith(grid[22:, 22:].astype(str), "hot").any()
    assert np.isin(grid[24:28, 24:28], ["cold_99", "cold_95", "cold_90", "not_significant"]).all()
    assert (grid[24:28, 24:28] != "not_significant").any()  # the empty corner stands out cold
    assert set(result["class"].cat.categories) == set(HOT_SPOT_CLASSES)


def test_gi_star_z_matches_the_formula_computed_directly(planted) -> None:
    codes, geoms, values = planted
    order = np.random.default_rng(1).permutation(len(codes))  # input order must not matter
    result = hot_spots([codes[i] for i in order], [geoms[i] for i in order], values[order])
    expected = gi_star_z(values, lattice_neighbours(30, 30))
    np.testing.assert_allclose(result.loc[codes, "z"].to_numpy(), expected, rtol=1e-9)
    corner, edge, inner = codes[0], codes[5], codes[31]
    assert result.loc[[corner, edge, inner], "neighbours"].tolist() == [3, 5, 8]


def test_hot_spot_classes_follow_the_two_sided_p_value(planted) -> None:
    codes, geoms, values = planted
    result = hot_spots(codes, geoms, values, permutations=199, seed=3)
    p, cls = result["p_value"], result["class"].astype(str)
    assert (p >= 2 / 200).all() and (p <= 1).all()
    assert ((p <= 0.01) == cls.isin(["hot_99", "cold_99"])).all()
    assert (((p > 0.01) & (p <= 0.05)) == cls.isin(["hot_95", "cold_95"])).all()
    assert (cls.str.startswith("hot") <= (result["z"] > 0)).all()
    again = hot_spots(codes, geoms, values, permutations=199, seed=3)
    pd.testing.assert_frame_equal(result, again)  # seeded: the map does not flicker


def test_a_sea_of_zeros_is_not_called_cold() -> None:
    # Scattered single cases among mostly empty grids: an all-zero neighbourhood is common
    # under randomness, so it must not be significant just because it ties the permutations.
    codes, geoms = square_grids(20, 20)
    values = np.zeros(400)
    values[np.random.default_rng(4).choice(400, 40, replace=False)] = 1.0
    result = hot_spots(codes, geoms, values)
    zero_hood = (lattice_neighbours(20, 20) @ values) == 0
    assert zero_hood.sum() > 50
    assert (result["class"].to_numpy()[zero_hood] == "not_significant").all()


def test_contiguity_finds_t_junctions_corners_and_rounding_gaps() -> None:
    # Staggered bricks share edges without sharing a vertex; a 1 cm gap is a rounding gap.
    brick_w, brick_h = 0.002, 0.001
    geoms, codes = [], []
    for r in range(4):
        shift = (r % 2) * brick_w / 2
        for c in range(4):
            x, y = WEST + shift + c * brick_w, SOUTH + r * brick_h
            geoms.append(shapely.box(x, y, x + brick_w, y + brick_h))
            codes.append(f"b{r}{c}")
    gap = 0.01 / 111_000  # ~1 cm north of the top row
    geoms.append(shapely.box(WEST, SOUTH + 4 * brick_h + gap, WEST + 0.008, SOUTH + 0.005))
    codes.append("top")
    values = np.arange(len(codes), dtype=float)

    result = hot_spots(codes, geoms, values, permutations=99)

    metric_geoms = shapely.transform(
        np.array(geoms), lambda xy: np.column_stack(TO_M.transform(xy[:, 0], xy[:, 1]))
    )
    expected = [int(shapely.dwithin(metric_geoms, g, 0.05).sum()) - 1 for g in metric_geoms]
    assert result["neighbours"].tolist() == expected
    assert result.loc["b11", "neighbours"] == 6  # two in its row, two above, two below
    assert result.loc["top", "neighbours"] == 4  # across the 1 cm gap


def test_an_island_is_joined_to_its_nearest_grid_or_excluded() -> None:
    codes, geoms = square_grids(4, 4)
    codes.append("island")
    # Two cells east of the south-east grid, half a cell lower: that grid is the nearest.
    geoms.append(shapely.box(WEST + 0.006, SOUTH - 0.0005, WEST + 0.007, SOUTH + 0.0005))
    values = np.append(np.arange(16.0), 50.0)

    joined = hot_spots(codes, geoms, values)
    assert joined.loc["island", "island"] and joined.loc["island", "neighbours"] == 1
    assert np.isfinite(joined.loc["island", "z"])
    assert joined.loc["r03c03", "neighbours"] == 4  # its 3 lattice neighbours + the island
    # Gi* of the island is its own value plus the nearest grid's, as the formula says.
    w = np.zeros((17, 17))
    w[:16, :16] = lattice_neighbours(4, 4)
    w[16, 16] = w[16, 15] = w[15, 16] = 1.0  # r03c03 is index 15
    np.testing.assert_allclose(joined["z"].to_numpy(), gi_star_z(values, w), rtol=1e-9)

    excluded = hot_spots(codes, geoms, values, islands="exclude")
    assert excluded.loc["island", "class"] == "island"
    assert np.isnan(excluded.loc["island", "z"]) and np.isnan(excluded.loc["island", "p_value"])
    assert excluded.loc["island", "neighbours"] == 0
    assert (excluded["class"].drop("island") != "island").all()


def test_a_multipolygon_grid_neighbours_both_of_its_parts_surroundings() -> None:
    codes, geoms = square_grids(1, 5)
    both_ends = shapely.MultiPolygon([geoms[0], geoms[4]])
    codes, geoms = ["ends", "m1", "m2", "m3"], [both_ends, geoms[1], geoms[2], geoms[3]]
    result = hot_spots(codes, geoms, [1.0, 2.0, 3.0, 4.0], permutations=99)
    assert result["neighbours"].tolist() == [2, 2, 2, 2]


def test_too_few_grids_are_refused() -> None:
    codes, geoms = square_grids(1, 2)
    with pytest.raises(ValueError, match="at least 3 grids"):
        hot_spots(codes[:1], geoms[:1], [3.0])
    with pytest.raises(ValueError, match="at least 3 grids"):
        hot_spots(codes, geoms, [3.0, 1.0])


def test_equal_values_are_not_significant_anywhere() -> None:
    codes, geoms = square_grids(5, 5)
    result = hot_spots(codes, geoms, np.full(25, 4.0))
    assert (result["class"] == "not_significant").all()
    assert result["z"].isna().all() and (result["p_value"] == 1.0).all()


def test_values_by_code_come_from_the_density_table() -> None:
    codes, geoms = square_grids(6, 6)
    rng = np.random.default_rng(9)
    cases = rng.choice(codes, 500, p=np.linspace(1, 3, 36) / np.linspace(1, 3, 36).sum())
    table = grid_density(codes, geoms, cases)
    shuffled = table["value"].sample(frac=1.0, random_state=1)
    result = hot_spots(codes, geoms, shuffled, permutations=99)
    np.testing.assert_allclose(result["value"], table["value"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, -1.0, 2.0], ">= 0"),
        ([1.0, float("nan"), 2.0], "patrol hours"),
        ([1.0, 2.0], "one entry per grid"),
        (pd.Series({"r00c00": 1.0}), "no entry"),
    ],
)
def test_bad_hot_spot_values_are_refused(values, message: str) -> None:
    codes, geoms = square_grids(1, 3)
    with pytest.raises(ValueError, match=message):
        hot_spots(codes, geoms, values)

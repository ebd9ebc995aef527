"""Density aggregates for the heat map, checked against independent computations.

Counts are checked against plain shapely point-in-polygon tests, areas against pyproj's
geodesic area and the kernel density against a direct sum of Gaussians.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS, Geod, Transformer

from gis.density import grid_density, hexbin_counts, kernel_density
from gis.locate import GridIndex
from tests.gis.grid_helpers import SOUTH, WEST, square_grids

UTM_49N = CRS.from_epsg(32649)
TO_M = Transformer.from_crs(4326, UTM_49N, always_xy=True)
TO_LONLAT = Transformer.from_crs(UTM_49N, 4326, always_xy=True)


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

"""Getis-Ord Gi* hot and cold spots among unit grids, checked against independent computations.

Gi* z-scores are checked against the Getis-Ord formula evaluated with numpy on neighbours found
by index arithmetic, neighbour counts against plain shapely distances in UTM metres.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS, Transformer

from gis.density import grid_density
from gis.gi_star import HOT_SPOT_CLASSES, gi_star
from tests.gis.grid_helpers import SOUTH, WEST, square_grids

TO_M = Transformer.from_crs(4326, CRS.from_epsg(32649), always_xy=True)


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
    result = gi_star(codes, geoms, values)
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
    result = gi_star([codes[i] for i in order], [geoms[i] for i in order], values[order])
    expected = gi_star_z(values, lattice_neighbours(30, 30))
    np.testing.assert_allclose(result.loc[codes, "z"].to_numpy(), expected, rtol=1e-9)
    corner, edge, inner = codes[0], codes[5], codes[31]
    assert result.loc[[corner, edge, inner], "neighbours"].tolist() == [3, 5, 8]


def test_hot_spot_classes_follow_the_two_sided_p_value(planted) -> None:
    codes, geoms, values = planted
    result = gi_star(codes, geoms, values, permutations=199, seed=3)
    p, cls = result["p_value"], result["class"].astype(str)
    assert (p >= 2 / 200).all() and (p <= 1).all()
    assert ((p <= 0.01) == cls.isin(["hot_99", "cold_99"])).all()
    assert (((p > 0.01) & (p <= 0.05)) == cls.isin(["hot_95", "cold_95"])).all()
    assert (cls.str.startswith("hot") <= (result["z"] > 0)).all()
    again = gi_star(codes, geoms, values, permutations=199, seed=3)
    pd.testing.assert_frame_equal(result, again)  # seeded: the map does not flicker


def test_a_sea_of_zeros_is_not_called_cold() -> None:
    # Scattered single cases among mostly empty grids: an all-zero neighbourhood is common
    # under randomness, so it must not be significant just because it ties the permutations.
    codes, geoms = square_grids(20, 20)
    values = np.zeros(400)
    values[np.random.default_rng(4).choice(400, 40, replace=False)] = 1.0
    result = gi_star(codes, geoms, values)
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

    result = gi_star(codes, geoms, values, permutations=99)

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

    joined = gi_star(codes, geoms, values)
    assert joined.loc["island", "island"] and joined.loc["island", "neighbours"] == 1
    assert np.isfinite(joined.loc["island", "z"])
    assert joined.loc["r03c03", "neighbours"] == 4  # its 3 lattice neighbours + the island
    # Gi* of the island is its own value plus the nearest grid's, as the formula says.
    w = np.zeros((17, 17))
    w[:16, :16] = lattice_neighbours(4, 4)
    w[16, 16] = w[16, 15] = w[15, 16] = 1.0  # r03c03 is index 15
    np.testing.assert_allclose(joined["z"].to_numpy(), gi_star_z(values, w), rtol=1e-9)

    excluded = gi_star(codes, geoms, values, islands="exclude")
    assert excluded.loc["island", "class"] == "island"
    assert np.isnan(excluded.loc["island", "z"]) and np.isnan(excluded.loc["island", "p_value"])
    assert excluded.loc["island", "neighbours"] == 0
    assert (excluded["class"].drop("island") != "island").all()


def test_a_multipolygon_grid_neighbours_both_of_its_parts_surroundings() -> None:
    codes, geoms = square_grids(1, 5)
    both_ends = shapely.MultiPolygon([geoms[0], geoms[4]])
    codes, geoms = ["ends", "m1", "m2", "m3"], [both_ends, geoms[1], geoms[2], geoms[3]]
    result = gi_star(codes, geoms, [1.0, 2.0, 3.0, 4.0], permutations=99)
    assert result["neighbours"].tolist() == [2, 2, 2, 2]


def test_too_few_grids_are_refused() -> None:
    codes, geoms = square_grids(1, 2)
    with pytest.raises(ValueError, match="at least 3 grids"):
        gi_star(codes[:1], geoms[:1], [3.0])
    with pytest.raises(ValueError, match="at least 3 grids"):
        gi_star(codes, geoms, [3.0, 1.0])


def test_equal_values_are_not_significant_anywhere() -> None:
    codes, geoms = square_grids(5, 5)
    result = gi_star(codes, geoms, np.full(25, 4.0))
    assert (result["class"] == "not_significant").all()
    assert result["z"].isna().all() and (result["p_value"] == 1.0).all()


def test_values_by_code_come_from_the_density_table() -> None:
    codes, geoms = square_grids(6, 6)
    rng = np.random.default_rng(9)
    cases = rng.choice(codes, 500, p=np.linspace(1, 3, 36) / np.linspace(1, 3, 36).sum())
    table = grid_density(codes, geoms, cases)
    shuffled = table["value"].sample(frac=1.0, random_state=1)
    result = gi_star(codes, geoms, shuffled, permutations=99)
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
        gi_star(codes, geoms, values)

"""The one validator of grid inputs, and that every grid function refuses alike through it."""

from __future__ import annotations

import pytest
import shapely

from gis.density import grid_density
from gis.gi_star import gi_star
from gis.grid_inputs import validated_grids
from gis.hotspots import share_in_grids
from gis.locate import GridIndex

WEST, NORTH, STEP = 113.64, 34.75, 0.001
SQUARE = shapely.box(WEST, NORTH - STEP, WEST + STEP, NORTH)
EAST = shapely.box(WEST + STEP, NORTH - STEP, WEST + 2 * STEP, NORTH)
BOWTIE = shapely.Polygon(
    [(WEST, NORTH), (WEST + STEP, NORTH - STEP), (WEST + STEP, NORTH), (WEST, NORTH - STEP)]
)


def test_good_grids_come_back_in_the_order_given() -> None:
    codes, geoms = validated_grids(("b", "a"), [EAST, shapely.MultiPolygon([SQUARE])])
    assert codes == ["b", "a"]
    assert geoms.dtype == object and geoms.shape == (2,)
    assert geoms[0].equals(EAST) and geoms[1].geom_type == "MultiPolygon"
    assert validated_grids([], [])[0] == []


@pytest.mark.parametrize(
    ("codes", "geoms", "message"),
    [
        (["a", "b"], [SQUARE], "grid_codes and grid_geoms must have the same length, got 2 codes"),
        (["a"], SQUARE, "expected a sequence of geometries, got Polygon"),
        ([""], [SQUARE], "non-empty strings, got ''"),
        ([7], [SQUARE], "non-empty strings, got 7"),
        (["a", "a"], [SQUARE, EAST], "unique; 'a' appears more than once"),
        (["a"], [shapely.Point(WEST, NORTH)], "grid a: geometry must be a Polygon or MultiPolygon"),
        (["a"], [shapely.Polygon()], "grid a: geometry is empty"),
        (["a"], [shapely.box(500_000, 3_800_000, 500_100, 3_800_100)], "grid a: .* lon/lat"),
        (["a"], [shapely.Polygon([(WEST, NORTH), (WEST, -91), (0, 0)])], r"\(113.64, -91.0\)"),
        (["a"], [BOWTIE], r"grid a: invalid geometry \(Self-intersection"),
        (["a", "b"], [BOWTIE, BOWTIE], r"repair it .* first \(2 invalid in total\)"),
    ],
)
def test_each_problem_is_refused_naming_the_first_offender(codes, geoms, message) -> None:
    with pytest.raises(ValueError, match=message):
        validated_grids(codes, geoms)


def test_the_caller_names_its_arguments_in_the_length_message() -> None:
    with pytest.raises(ValueError, match="^codes and geoms must have the same length"):
        validated_grids(["a"], [], names=("codes", "geoms"))


@pytest.mark.parametrize(
    ("codes", "geoms"),
    [
        (["a", "a"], [SQUARE, EAST]),
        (["a", "b"], [SQUARE, BOWTIE]),
        (["a", "b"], [SQUARE, shapely.LineString([(WEST, NORTH), (WEST + STEP, NORTH)])]),
        (["a", "b"], [SQUARE, shapely.box(500_000, 3_800_000, 500_100, 3_800_100)]),
    ],
)
def test_density_gi_star_locate_and_hotspot_shares_refuse_bad_grids_alike(codes, geoms):
    with pytest.raises(ValueError) as expected:
        validated_grids(codes, geoms)
    calls = [
        lambda: GridIndex(codes, geoms),
        lambda: grid_density(codes, geoms, counts={}),
        lambda: gi_star(codes, geoms, [1.0] * len(codes)),
        lambda: share_in_grids(SQUARE, codes, geoms),
    ]
    for call in calls:
        with pytest.raises(ValueError) as refused:
            call()
        assert str(refused.value) == str(expected.value)

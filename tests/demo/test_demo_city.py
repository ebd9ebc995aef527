"""Demo city generator: determinism, hierarchy, exact tiling, coding order, attributes, roads.

Geometry checks use plain shapely predicates on the lon/lat output and areas measured after
geopandas reprojects to the UTM zone it estimates (independent of gis.metric).
"""

import re

import geopandas as gpd
import numpy as np
import pytest
import shapely

from demo.city import (
    LAND_USES,
    MANAGEMENT_GRADES,
    ROAD_KINDS,
    DemoParams,
    build_demo_city,
    build_demo_roads,
)
from gis.codes import LEVELS, CodeError, CodeScheme

PHONE = re.compile(r"^1[358]\d{9}$")
CJK_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")


@pytest.fixture(scope="module")
def metric(city) -> gpd.GeoDataFrame:
    return city.to_crs(city.estimate_utm_crs())


def _level(frame: gpd.GeoDataFrame, level: str) -> gpd.GeoDataFrame:
    return frame[frame["level"] == level]


def _family(frame: gpd.GeoDataFrame):
    """(parent row, children rows) for every grid that has children."""
    for child_level in LEVELS[1:]:
        children = _level(frame, child_level)
        for parent_code, kids in children.groupby("parent_code", sort=True):
            yield frame[frame["code"] == parent_code].iloc[0], kids


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_codes_geometry_and_attributes(city):
    again = build_demo_city(seed=7)
    assert list(again["code"]) == list(city["code"])
    assert list(shapely.to_wkb(again.geometry.values)) == list(shapely.to_wkb(city.geometry.values))
    for column in ("name", "parent_code", "responsible_unit", "land_use", "management_grade"):
        assert list(again[column]) == list(city[column])
    assert list(again["responsible_persons"]) == list(city["responsible_persons"])


def test_other_seed_gives_other_geometry(city):
    other = build_demo_city(seed=8)
    district = _level(city, "district").geometry.iloc[0]
    other_district = _level(other, "district").geometry.iloc[0]
    assert not shapely.equals(district, other_district)
    units = set(shapely.to_wkb(_level(city, "unit").geometry.values))
    assert not units & set(shapely.to_wkb(_level(other, "unit").geometry.values))


# --- counts, validity, codes ----------------------------------------------------------------------


def test_counts_match_requested_streets_and_communities_and_unit_target(city):
    counts = city["level"].value_counts()
    assert counts["city"] == 1 and counts["district"] == 1
    assert counts["street"] == 5
    assert counts["community"] == 25
    assert 1300 <= counts["unit"] <= 1700
    assert list(city["level"]) == sorted(city["level"], key=LEVELS.index)


def test_smaller_parameters_give_exactly_the_requested_street_and_community_counts():
    small = build_demo_city(seed=3, n_streets=2, n_communities=6, n_units=400)
    counts = small["level"].value_counts()
    assert (counts["street"], counts["community"]) == (2, 6)
    assert 300 <= counts["unit"] <= 500
    assert shapely.is_valid(small.geometry.values).all()


def test_every_geometry_is_a_valid_non_empty_polygon_in_wgs84(city):
    assert city.crs.to_epsg() == 4326
    assert set(city.geom_type) <= {"Polygon", "MultiPolygon"}
    assert shapely.is_valid(city.geometry.values).all()
    assert not shapely.is_empty(city.geometry.values).any()
    minx, miny, maxx, maxy = city.total_bounds
    assert minx < 113.65 < maxx and miny < 34.75 < maxy


def test_codes_are_unique_and_valid_for_their_level_and_parent(city):
    scheme = CodeScheme(14)
    assert city["code"].is_unique
    for code, level, parent in zip(city["code"], city["level"], city["parent_code"], strict=True):
        scheme.validate(code, level, parent)
    assert _level(city, "city")["code"].iloc[0] == "41010000000000"
    assert _level(city, "district")["code"].iloc[0] == "41010500000000"
    assert city["parent_code"].iloc[0] is None
    assert city["code"].iloc[1:].str.startswith("410105").all()


def test_parent_code_names_a_grid_one_level_up(city):
    level_of = dict(zip(city["code"], city["level"], strict=True))
    for level, parent in zip(city["level"].iloc[1:], city["parent_code"].iloc[1:], strict=True):
        assert LEVELS.index(level_of[parent]) == LEVELS.index(level) - 1


def test_children_are_numbered_from_one_without_gaps(city):
    scheme = CodeScheme(14)
    for parent, kids in _family(city):
        level = kids["level"].iloc[0]
        if level == "district":
            continue  # a district code is its GB/T 2260 county code, not a sequence
        start = scheme.prefix_length(parent["level"])
        end = scheme.prefix_length(level)
        sequences = sorted(int(code[start:end]) for code in kids["code"])
        assert sequences == list(range(1, len(kids) + 1)), parent["code"]


def test_every_community_fits_in_two_digit_unit_sequences(city):
    assert _level(city, "unit").groupby("parent_code").size().max() <= 99


# --- tiling ---------------------------------------------------------------------------------------


def test_children_are_covered_by_their_parent_exactly_in_lonlat(city, metric):
    for parent, kids in _family(city):
        assert shapely.covered_by(kids.geometry.values, parent.geometry).all(), parent["code"]
    # and in metres: nothing of a child sticks out of its parent
    by_code = dict(zip(metric["code"], metric.geometry, strict=True))
    for code, parent_code, geom in zip(
        metric["code"].iloc[1:],
        metric["parent_code"].iloc[1:],
        metric.geometry.iloc[1:],
        strict=True,
    ):
        assert shapely.difference(geom, by_code[parent_code]).area < 1.0, code


@pytest.mark.parametrize("level", ["street", "community", "unit"])
def test_grids_of_one_level_never_share_interior(city, level):
    geoms = _level(city, level).geometry.values
    tree = shapely.STRtree(geoms)
    assert tree.query(geoms, predicate="overlaps").size == 0
    i, j = tree.query(geoms, predicate="intersects")
    i, j = i[i < j], j[i < j]
    assert i.size > len(geoms)  # neighbours do touch
    # DE-9IM: interiors of two neighbours must not meet (only their boundaries do)
    assert not shapely.relate_pattern(geoms[i], geoms[j], "T********").any()


def test_children_union_has_the_parent_area(metric):
    for parent, kids in _family(metric):
        union = shapely.union_all(kids.geometry.values)
        assert union.area == pytest.approx(parent.geometry.area, rel=1e-6), parent["code"]
        assert shapely.symmetric_difference(union, parent.geometry).area < 1.0


def test_children_union_equals_parent_in_lonlat(city):
    for parent, kids in _family(city):
        union = shapely.coverage_union_all(kids.geometry.values)
        assert shapely.equals(union, parent.geometry), parent["code"]


def test_city_geometry_is_the_district_geometry(city):
    city_geom = _level(city, "city").geometry.iloc[0]
    district = _level(city, "district").geometry.iloc[0]
    assert shapely.to_wkb(city_geom) == shapely.to_wkb(district)


# --- shapes and sizes -----------------------------------------------------------------------------


def test_district_is_about_15_km2_and_neither_circle_nor_rectangle(metric):
    district = _level(metric, "district").geometry.iloc[0]
    assert 13.5e6 < district.area < 16.5e6
    assert district.area / shapely.minimum_rotated_rectangle(district).area < 0.95
    polsby_popper = 4 * np.pi * district.area / district.length**2
    assert polsby_popper < 0.95
    assert shapely.get_num_coordinates(district) > 100


def test_unit_areas_are_mostly_5000_to_20000_m2_without_slivers(metric):
    area = _level(metric, "unit").area.to_numpy()
    assert area.min() >= 1500
    assert ((area >= 5000) & (area <= 20000)).mean() >= 0.9
    assert 8000 <= area.mean() <= 12000


def test_no_grid_below_the_district_is_an_axis_aligned_rectangle(metric):
    below = metric[metric["level"].isin(["street", "community", "unit"])].geometry.values
    envelope_area = shapely.area(shapely.envelope(below))
    assert (shapely.area(below) < 0.99 * envelope_area).all()


def test_units_are_numbered_in_rows_north_to_south_then_west_to_east(metric):
    row_height = DemoParams().row_height_m
    for _, units in _level(metric, "unit").groupby("parent_code"):
        units = units.sort_values("code")
        xy = shapely.get_coordinates(shapely.point_on_surface(units.geometry.values))
        row = np.floor((xy[:, 1].max() - xy[:, 1]) / row_height)
        expected = np.lexsort((xy[:, 0], row))
        assert list(expected) == list(range(len(units)))
        assert (np.diff(row) >= 0).all()  # rows never go back north


# --- attributes -----------------------------------------------------------------------------------


def test_names_follow_the_chinese_naming_pattern(city):
    assert _level(city, "city")["name"].iloc[0] == "郑州市"
    assert _level(city, "district")["name"].iloc[0] == "金水区"
    streets, communities = _level(city, "street"), _level(city, "community")
    assert streets["name"].str.fullmatch(r"[\u4e00-\u9fff]+街道").all()
    assert communities["name"].str.fullmatch(r"[\u4e00-\u9fff]+社区").all()
    assert streets["name"].is_unique and communities["name"].is_unique
    community_name = dict(zip(communities["code"], communities["name"], strict=True))
    for code, parent, name in _level(city, "unit")[["code", "parent_code", "name"]].itertuples(
        index=False
    ):
        assert name == f"{community_name[parent]}第{code[-2:]}网格"


def test_responsible_unit_and_persons_are_filled_with_plausible_contacts(city):
    assert city["responsible_unit"].str.len().gt(0).all()
    for persons in city["responsible_persons"]:
        assert 1 <= len(persons) <= 3
        for person in persons:
            assert set(person) == {"name", "phone"}
            assert PHONE.match(person["phone"]), person
            assert CJK_NAME.match(person["name"]), person


def test_land_use_and_management_grade_come_from_the_documented_sets(city):
    assert set(city["land_use"]) <= set(LAND_USES)
    assert set(city["management_grade"]) <= set(MANAGEMENT_GRADES)
    units = _level(city, "unit")
    assert units["land_use"].nunique() >= 5
    assert units["management_grade"].nunique() == 3


# --- roads ----------------------------------------------------------------------------------------


def test_roads_are_main_and_secondary_linestrings_in_wgs84(roads):
    assert roads.crs.to_epsg() == 4326
    assert set(roads["kind"]) == set(ROAD_KINDS)
    assert (roads.geom_type == "LineString").all()
    assert shapely.is_valid(roads.geometry.values).all()
    assert roads["name"].str.len().gt(0).all()


def test_main_roads_cross_the_district_and_secondary_roads_are_denser(roads):
    lengths = roads.to_crs(roads.estimate_utm_crs()).length.groupby(roads["kind"]).sum()
    main_by_name = (
        roads[roads["kind"] == "main"]
        .to_crs(roads.estimate_utm_crs())
        .length.groupby(roads["name"])
        .sum()
    )
    assert (main_by_name > 2000).sum() >= 2
    assert lengths["secondary"] > 2 * lengths["main"]


def test_roads_run_along_grid_boundaries(roads, metric):
    # Every road vertex and every road segment midpoint lies on a unit grid boundary, so no road
    # runs through the middle of a grid. 5 cm allows the build's 1 cm snap grid and round-off.
    coords, which = shapely.get_coordinates(
        roads.to_crs(metric.crs).geometry.values, return_index=True
    )
    same_road = which[1:] == which[:-1]
    midpoints = (coords[1:][same_road] + coords[:-1][same_road]) / 2
    probes = shapely.points(np.vstack([coords, midpoints]))
    edges = shapely.boundary(_level(metric, "unit").geometry.values)
    hit = shapely.STRtree(edges).query(probes, predicate="dwithin", distance=0.05)[0]
    assert np.unique(hit).size == len(probes)


def test_roads_are_deterministic_and_follow_the_seed(roads):
    again = build_demo_roads(seed=7)
    assert list(shapely.to_wkb(again.geometry.values)) == list(
        shapely.to_wkb(roads.geometry.values)
    )
    other = build_demo_roads(seed=8)
    assert not shapely.equals(
        shapely.union_all(other.geometry.values), shapely.union_all(roads.geometry.values)
    )


# --- width 15 and bad parameters ------------------------------------------------------------------


def test_width_15_gives_15_digit_codes_over_the_same_grids(city):
    wide = build_demo_city(code_width=15)
    scheme = CodeScheme(15)
    for code, level, parent in zip(wide["code"], wide["level"], wide["parent_code"], strict=True):
        scheme.validate(code, level, parent)
    assert wide["code"].iloc[0] == "410100000000000"
    assert list(shapely.to_wkb(wide.geometry.values)) == list(shapely.to_wkb(city.geometry.values))
    narrow_units = _level(city, "unit")["code"].str.slice(0, 12).tolist()
    wide_units = _level(wide, "unit")
    assert wide_units["code"].str.slice(0, 12).tolist() == narrow_units
    assert wide_units["code"].str.slice(12).tolist() == [
        c.zfill(3) for c in _level(city, "unit")["code"].str.slice(12)
    ]
    assert wide_units["name"].str.fullmatch(r".+社区第\d{3}网格").all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"code_width": 13}, CodeError, "width"),
        ({"n_streets": 5, "n_communities": 3}, ValueError, "n_communities"),
        ({"n_communities": 10}, ValueError, "code_width=15"),
        ({"n_units": 40}, ValueError, "n_units"),
        ({"center": (200.0, 34.75)}, ValueError, "out of range"),
        ({"county_code": "4101"}, ValueError, "6-digit"),
    ],
)
def test_bad_parameters_raise_with_a_message_naming_the_fix(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_demo_city(**kwargs)

"""Demo hotspots: determinism, contents and placement.

Every spatial check is made independently of gis.metric and of the generator's own zones: plain
shapely predicates on the lon/lat output, distances and areas after geopandas reprojects to the
UTM zone it estimates.
"""

import re

import numpy as np
import pandas as pd
import pytest
import shapely

from demo.hotspots import HOTSPOT_KINDS, build_demo_hotspots
from tests.demo.helpers import TZ, of_kind

PHONE = re.compile(r"^1[358]\d{9}$")

# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_hotspots_including_geometry(hotspots):
    again = build_demo_hotspots(seed=7)  # builds its own city and roads from the seed
    pd.testing.assert_frame_equal(
        pd.DataFrame(again.drop(columns="geometry")),
        pd.DataFrame(hotspots.drop(columns="geometry")),
    )
    assert list(shapely.to_wkb(again.geometry.values)) == list(
        shapely.to_wkb(hotspots.geometry.values)
    )


def test_other_seed_places_hotspots_elsewhere(city, roads, hotspots):
    other = build_demo_hotspots(seed=8, city=city, roads=roads)
    assert list(other["kind"]) == list(hotspots["kind"])
    assert not shapely.equals(other.geometry.values, hotspots.geometry.values).all()


# --- hotspots: contents ---------------------------------------------------------------------------


def test_hotspot_counts_kinds_and_geometry_types(hotspots):
    counts = hotspots["kind"].value_counts().to_dict()
    assert counts == {
        "farmer_market": 6,
        "rail_corridor": 1,
        "construction_site": 8,
        "school_gate": 10,
        "urban_rural_fringe": 1,
        "air_quality_point": 4,
    }
    expected_type = {
        "farmer_market": "Polygon",
        "rail_corridor": "LineString",
        "construction_site": "Polygon",
        "school_gate": "Point",
        "urban_rural_fringe": "Polygon",
        "air_quality_point": "Point",
    }
    assert (hotspots.geom_type == hotspots["kind"].map(expected_type)).all()
    assert hotspots.geometry.is_valid.all() and not hotspots.geometry.is_empty.any()
    assert hotspots.crs.to_epsg() == 4326
    # rows ordered by kind then key; keys stable and unique
    order = [
        (HOTSPOT_KINDS.index(k), key)
        for k, key in zip(hotspots["kind"], hotspots["key"], strict=True)
    ]
    assert order == sorted(order)
    assert hotspots["key"].is_unique
    assert hotspots["key"].str.fullmatch(r"(market|rail|site|school|fringe|air)-\d{2}").all()


def test_hotspot_names_buffers_owners_and_weights(hotspots):
    suffix = {
        "farmer_market": r".+农贸市场",
        "rail_corridor": r"京广铁路沿线",
        "construction_site": r".+地块建设工地",
        "school_gate": r".+(小学|中学)校门",
        "urban_rural_fringe": r"城乡结合部\((东|西|南|北|东北|西北|东南|西南)郊\)",
        "air_quality_point": r"空气质量监测点\d+",
    }
    for kind, pattern in suffix.items():
        assert of_kind(hotspots, kind)["name"].str.fullmatch(pattern).all(), kind
    assert hotspots["name"].is_unique
    buffers = hotspots.groupby("kind")["buffer_m"].unique().map(list).to_dict()
    assert buffers == {
        "farmer_market": [100.0],
        "rail_corridor": [50.0],
        "construction_site": [150.0],
        "school_gate": [100.0],
        "urban_rural_fringe": [0.0],
        "air_quality_point": [300.0],
    }
    assert hotspots["owner_unit"].str.len().gt(0).all()
    assert hotspots["owner_name"].str.fullmatch(r"[\u4e00-\u9fff]{2,4}").all()
    assert hotspots["owner_phone"].str.fullmatch(PHONE.pattern).all()
    assert hotspots["risk_weight"].between(0.5, 3.0).all()
    quota = hotspots["patrol_quota_per_week"]
    assert str(quota.dtype) == "Int64"
    assert quota.isna().to_numpy().tolist() == (hotspots["kind"] == "air_quality_point").tolist()
    assert (quota.dropna() > 0).all()


def test_only_construction_sites_have_an_end_and_some_have_ended(hotspots):
    for column in ("active_from", "active_to"):
        assert str(hotspots[column].dt.tz) == TZ
    sites = of_kind(hotspots, "construction_site")
    others = hotspots[hotspots["kind"] != "construction_site"]
    assert others["active_to"].isna().all()
    assert (others["active_from"] == pd.Timestamp("2020-01-01", tz=TZ)).all()
    assert sites["active_to"].notna().all()
    assert (sites["active_to"] > sites["active_from"]).all()
    assert sites["active_from"].min() >= pd.Timestamp("2025-01-01", tz=TZ)
    assert sites["active_to"].max() < pd.Timestamp("2028-01-01", tz=TZ)
    now = pd.Timestamp("2026-11-20", tz=TZ)
    assert 1 <= (sites["active_to"] <= now).sum() < len(sites)  # some finished, some still going


def test_market_and_site_areas_are_in_the_requested_ranges(hotspots_m):
    markets = of_kind(hotspots_m, "farmer_market").area
    sites = of_kind(hotspots_m, "construction_site").area
    assert markets.between(3_000 - 1, 8_000 + 1).all()
    assert sites.between(10_000 - 1, 40_000 + 1).all()


# --- hotspots: placement --------------------------------------------------------------------------


def test_every_hotspot_but_the_rail_line_lies_inside_the_district(hotspots, district):
    rest = hotspots[hotspots["kind"] != "rail_corridor"]
    assert shapely.covered_by(rest.geometry.values, district).all()


def test_rail_line_crosses_the_district_and_stays_within_200_m_of_it(hotspots_m, district_m):
    rail = of_kind(hotspots_m, "rail_corridor").geometry.iloc[0]
    assert rail.within(district_m.buffer(200.0 + 0.5))  # 0.5 m: reprojection of the clip edge
    assert rail.length > 0.5 * np.sqrt(district_m.area)
    ends = shapely.get_point(rail, [0, -1])
    assert not shapely.intersects(ends, district_m).any()  # enters and leaves the district
    assert shapely.distance(ends, district_m.exterior).min() > 150.0


def test_rail_line_crosses_at_least_three_streets(city, hotspots):
    rail = of_kind(hotspots, "rail_corridor").geometry.iloc[0]
    streets = city[city["level"] == "street"].geometry.values
    assert shapely.intersects(streets, rail).sum() >= 3
    # and really runs through them, not just grazing a corner
    assert (shapely.length(shapely.intersection(streets, rail)) > 0).sum() >= 3


def test_polygon_hotspots_do_not_overlap_each_other(hotspots):
    polys = hotspots[hotspots["kind"].isin(["farmer_market", "construction_site"])]
    geoms = polys.geometry.values
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    assert (i == j).all(), list(
        zip(polys["key"].values[i[i != j]], polys["key"].values[j[i != j]], strict=True)
    )


def test_markets_sit_beside_main_road_junctions(roads, hotspots_m, utm):
    roads_m = roads.to_crs(utm)
    main = roads_m[roads_m["kind"] == "main"]
    crossings = []
    for _, road in main.iterrows():
        others = roads_m[roads_m["name"] != road["name"]].geometry.values
        hit = shapely.intersection(road.geometry, others)
        crossings.extend(p for p in shapely.get_parts(hit) if p.geom_type == "Point")
    junctions = shapely.multipoints(crossings)
    markets = of_kind(hotspots_m, "farmer_market").geometry.values
    assert (shapely.distance(markets, junctions) < 80.0).all()
    # beside, not on, the roads
    assert not shapely.intersects(markets, shapely.union_all(roads_m.geometry.values)).any()


def test_construction_sites_do_not_straddle_roads(roads, hotspots_m, utm):
    sites = of_kind(hotspots_m, "construction_site").geometry.values
    road_lines = shapely.union_all(roads.to_crs(utm).geometry.values)
    assert not shapely.intersects(sites, road_lines).any()


def test_school_gates_are_at_the_roadside(roads, hotspots_m, utm):
    gates = of_kind(hotspots_m, "school_gate").geometry.values
    road_lines = shapely.union_all(roads.to_crs(utm).geometry.values)
    distance = shapely.distance(gates, road_lines)
    assert ((distance > 1.0) & (distance < 20.0)).all()


def test_fringe_runs_along_part_of_the_district_edge(hotspots_m, district_m):
    fringe = of_kind(hotspots_m, "urban_rural_fringe").geometry.iloc[0]
    shared = fringe.boundary.intersection(district_m.exterior.buffer(0.5)).length
    assert shared > 1_000.0  # a real stretch of the edge ...
    assert shared < 0.5 * district_m.exterior.length  # ... but only part of it
    assert 0.02 < fringe.area / district_m.area < 0.25


# --- errors ---------------------------------------------------------------------------------------


def test_city_without_units_is_refused(city, roads):
    with pytest.raises(ValueError, match="unit grids"):
        build_demo_hotspots(city=city[city["level"] != "unit"], roads=roads)


def test_roads_of_another_place_are_refused(city, roads):
    moved = roads.copy()
    moved.geometry = moved.geometry.translate(0.2, 0.0)
    with pytest.raises(ValueError, match="do not belong"):
        build_demo_hotspots(city=city, roads=moved)

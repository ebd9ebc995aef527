"""Demo hotspots and cases: determinism, contents, placement, and where cases cluster.

Every spatial check is made independently of gis.metric and of the generator's own zones: plain
shapely predicates on the lon/lat output, distances and areas after geopandas reprojects to the
UTM zone it estimates.
"""

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.demo import build_demo_city, build_demo_roads
from gis.demo_hotspots import (
    CASE_CATEGORIES,
    HOTSPOT_KINDS,
    build_demo_hotspots,
    generate_cases,
)

N = 20_000
PHONE = re.compile(r"^1[358]\d{9}$")
TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def city() -> gpd.GeoDataFrame:
    return build_demo_city()


@pytest.fixture(scope="module")
def roads() -> gpd.GeoDataFrame:
    return build_demo_roads()


@pytest.fixture(scope="module")
def hotspots(city, roads) -> gpd.GeoDataFrame:
    return build_demo_hotspots(city=city, roads=roads)


@pytest.fixture(scope="module")
def utm(city):
    return city.estimate_utm_crs()


@pytest.fixture(scope="module")
def district(city):
    return city[city["level"] == "district"].geometry.iloc[0]


@pytest.fixture(scope="module")
def district_m(city, utm):
    return city[city["level"] == "district"].to_crs(utm).geometry.iloc[0]


@pytest.fixture(scope="module")
def hotspots_m(hotspots, utm) -> gpd.GeoDataFrame:
    return hotspots.to_crs(utm)


@pytest.fixture(scope="module")
def cases(city, hotspots) -> pd.DataFrame:
    return generate_cases(N, city=city, hotspots=hotspots)


@pytest.fixture(scope="module")
def cases_m(cases, utm) -> np.ndarray:
    points = gpd.GeoSeries(gpd.points_from_xy(cases["lon"], cases["lat"]), crs=4326)
    return points.to_crs(utm).values


def _of_kind(frame, kind):
    return frame[frame["kind"] == kind]


def _within(points_m: np.ndarray, geoms_m, metres: float) -> np.ndarray:
    """Whether each point lies within ``metres`` of any of ``geoms_m`` (plain shapely)."""
    return shapely.dwithin(points_m, shapely.union_all(np.asarray(geoms_m)), metres)


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


def test_same_seed_gives_identical_cases(city, hotspots, cases):
    pd.testing.assert_frame_equal(generate_cases(N, city=city, hotspots=hotspots), cases)


def test_other_seed_gives_other_cases_with_other_keys(city, hotspots, cases):
    other = generate_cases(N, seed=8, city=city, hotspots=hotspots)
    assert not np.array_equal(other["lon"].to_numpy(), cases["lon"].to_numpy())
    assert not set(other["idempotency_key"]) & set(cases["idempotency_key"])


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
        assert _of_kind(hotspots, kind)["name"].str.fullmatch(pattern).all(), kind
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
    sites = _of_kind(hotspots, "construction_site")
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
    markets = _of_kind(hotspots_m, "farmer_market").area
    sites = _of_kind(hotspots_m, "construction_site").area
    assert markets.between(3_000 - 1, 8_000 + 1).all()
    assert sites.between(10_000 - 1, 40_000 + 1).all()


# --- hotspots: placement --------------------------------------------------------------------------


def test_every_hotspot_but_the_rail_line_lies_inside_the_district(hotspots, district):
    rest = hotspots[hotspots["kind"] != "rail_corridor"]
    assert shapely.covered_by(rest.geometry.values, district).all()


def test_rail_line_crosses_the_district_and_stays_within_200_m_of_it(hotspots_m, district_m):
    rail = _of_kind(hotspots_m, "rail_corridor").geometry.iloc[0]
    assert rail.within(district_m.buffer(200.0 + 0.5))  # 0.5 m: reprojection of the clip edge
    assert rail.length > 0.5 * np.sqrt(district_m.area)
    ends = shapely.get_point(rail, [0, -1])
    assert not shapely.intersects(ends, district_m).any()  # enters and leaves the district
    assert shapely.distance(ends, district_m.exterior).min() > 150.0


def test_rail_line_crosses_at_least_three_streets(city, hotspots):
    rail = _of_kind(hotspots, "rail_corridor").geometry.iloc[0]
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
    markets = _of_kind(hotspots_m, "farmer_market").geometry.values
    assert (shapely.distance(markets, junctions) < 80.0).all()
    # beside, not on, the roads
    assert not shapely.intersects(markets, shapely.union_all(roads_m.geometry.values)).any()


def test_construction_sites_do_not_straddle_roads(roads, hotspots_m, utm):
    sites = _of_kind(hotspots_m, "construction_site").geometry.values
    road_lines = shapely.union_all(roads.to_crs(utm).geometry.values)
    assert not shapely.intersects(sites, road_lines).any()


def test_school_gates_are_at_the_roadside(roads, hotspots_m, utm):
    gates = _of_kind(hotspots_m, "school_gate").geometry.values
    road_lines = shapely.union_all(roads.to_crs(utm).geometry.values)
    distance = shapely.distance(gates, road_lines)
    assert ((distance > 1.0) & (distance < 20.0)).all()


def test_fringe_runs_along_part_of_the_district_edge(hotspots_m, district_m):
    fringe = _of_kind(hotspots_m, "urban_rural_fringe").geometry.iloc[0]
    shared = fringe.boundary.intersection(district_m.exterior.buffer(0.5)).length
    assert shared > 1_000.0  # a real stretch of the edge ...
    assert shared < 0.5 * district_m.exterior.length  # ... but only part of it
    assert 0.02 < fringe.area / district_m.area < 0.25


# --- cases: shape and time ------------------------------------------------------------------------


def test_cases_have_the_requested_rows_columns_and_dtypes(cases):
    assert len(cases) == N
    assert list(cases.columns) == [
        "lon",
        "lat",
        "category_code",
        "reported_at",
        "source",
        "description",
        "idempotency_key",
    ]
    assert cases["lon"].dtype == np.float64 and cases["lat"].dtype == np.float64
    for column in ("category_code", "source", "description", "idempotency_key"):
        assert pd.api.types.is_string_dtype(cases[column]), column
    assert str(cases["reported_at"].dt.tz) == TZ
    assert cases["category_code"].str.fullmatch(r"\d{4}").all()
    assert set(cases["source"]) == {"patrol", "citizen", "inspector"}
    assert cases["description"].str.len().gt(0).all()
    # each description is one written for its category
    allowed = {code: set(texts) for code, (_, texts) in CASE_CATEGORIES.items()}
    assert all(
        d in allowed[c] for c, d in zip(cases["category_code"], cases["description"], strict=True)
    )
    # every standard major class appears
    assert set(cases["category_code"].str[:2]) == {"01", "02", "03", "04", "05", "06"}


def test_reported_at_lies_in_the_half_open_range_and_is_sorted(cases):
    at = cases["reported_at"]
    assert at.min() >= pd.Timestamp("2026-01-01", tz=TZ)
    assert at.max() < pd.Timestamp("2026-11-20", tz=TZ)
    assert at.is_monotonic_increasing
    assert (at.dt.microsecond == 0).all()


def test_short_range_with_odd_bounds_and_foreign_timezone(city, hotspots):
    start = pd.Timestamp("2026-03-01 02:30:15", tz="UTC")  # 10:30:15 in Shanghai
    end = "2026-03-01 12:00:00.5"
    out = generate_cases(2_000, city=city, hotspots=hotspots, start=start, end=end)
    assert out["reported_at"].min() >= start
    assert out["reported_at"].max() < pd.Timestamp(end, tz=TZ)
    assert str(out["reported_at"].dt.tz) == TZ


def test_daytime_is_busier_than_night(cases):
    hours = cases["reported_at"].dt.hour
    assert hours.between(9, 11).sum() > 5 * hours.between(1, 3).sum()


def test_idempotency_keys_are_unique(cases):
    assert cases["idempotency_key"].is_unique


def test_zero_cases_give_an_empty_frame_with_the_columns(city, hotspots, cases):
    empty = generate_cases(0, city=city, hotspots=hotspots)
    assert empty.empty and list(empty.columns) == list(cases.columns)


# --- cases: where they are ------------------------------------------------------------------------


def test_about_half_a_percent_lie_just_outside_the_district(cases, cases_m, district, district_m):
    outside = ~shapely.contains_xy(district, cases["lon"].to_numpy(), cases["lat"].to_numpy())
    assert 0.002 <= outside.mean() <= 0.008
    distance = shapely.distance(cases_m[outside], district_m)
    assert (distance > 10.0).all() and (distance < 310.0).all()


def test_cases_inside_the_district_fall_in_exactly_one_unit_grid(city, cases, district):
    units = city[city["level"] == "unit"].geometry.values
    points = shapely.points(cases["lon"].to_numpy(), cases["lat"].to_numpy())
    inside = shapely.contains_xy(district, cases["lon"].to_numpy(), cases["lat"].to_numpy())
    which, _ = shapely.STRtree(units).query(points, predicate="within")
    per_point = np.bincount(which, minlength=len(points))
    assert (per_point[inside] == 1).all()
    assert (per_point[~inside] == 0).all()


def test_vending_clusters_near_markets(cases, cases_m, hotspots_m):
    near = _within(cases_m, _of_kind(hotspots_m, "farmer_market").geometry.values, 100.0)
    vending = cases["category_code"].isin(["0501", "0502"]).to_numpy()
    assert near[vending].mean() > 0.25
    assert near[vending].mean() > 5 * near[~vending].mean()


def test_vending_clusters_near_school_gates(cases, cases_m, hotspots_m):
    near = _within(cases_m, _of_kind(hotspots_m, "school_gate").geometry.values, 100.0)
    vending = cases["category_code"].isin(["0501", "0502"]).to_numpy()
    assert near[vending].mean() > 5 * near[~vending].mean()


def test_construction_cases_cluster_at_sites_only_while_they_are_active(cases, cases_m, hotspots_m):
    sites = _of_kind(hotspots_m, "construction_site")
    at = cases["reported_at"]
    near_active = np.zeros(len(cases), dtype=bool)
    near_idle = np.zeros(len(cases), dtype=bool)
    for _, site in sites.iterrows():
        near = shapely.dwithin(cases_m, site.geometry, 150.0)
        active = ((at >= site["active_from"]) & (at < site["active_to"])).to_numpy()
        near_active |= near & active
        near_idle |= near & ~active
    building = cases["category_code"].str.startswith("03").to_numpy()
    assert near_active[building].mean() > 0.6
    assert near_active[building].mean() > 5 * near_active[~building].mean()
    # next to a site that has not started or has finished, building cases are no more common
    # than other cases (only the background spread puts them there)
    idle_only = near_idle & ~near_active
    assert idle_only[building].mean() < 2 * idle_only[~building].mean() + 0.01


def test_garbage_clusters_along_the_rail_line(cases, cases_m, hotspots_m):
    near = _within(cases_m, _of_kind(hotspots_m, "rail_corridor").geometry.values, 50.0)
    garbage = cases["category_code"].isin(["0102", "0103"]).to_numpy()
    assert near[garbage].mean() > 0.5
    assert near[garbage].mean() > 5 * near[~garbage].mean()


def test_straw_burning_happens_in_the_urban_rural_fringe(cases, hotspots):
    fringe = _of_kind(hotspots, "urban_rural_fringe").geometry.iloc[0]
    inside = shapely.contains_xy(fringe, cases["lon"].to_numpy(), cases["lat"].to_numpy())
    straw = (cases["category_code"] == "0601").to_numpy()
    assert inside[straw].mean() > 0.9
    assert inside[~straw].mean() < 0.2


def test_commercial_grids_get_more_background_cases_than_green_ones(city, utm, cases):
    units = city[city["level"] == "unit"]
    background = cases[cases["category_code"].str[:2].isin(["02", "04"])]  # drawn to no hotspot
    points = shapely.points(background["lon"].to_numpy(), background["lat"].to_numpy())
    _, unit = shapely.STRtree(units.geometry.values).query(points, predicate="within")
    counts = np.bincount(unit, minlength=len(units))
    area = units.to_crs(utm).area.to_numpy()
    use = units["land_use"].to_numpy()

    def density(kind):
        return counts[use == kind].sum() / area[use == kind].sum()

    assert density("商业") > 3 * density("绿地")


def test_custom_categories_replace_the_default_list(city, hotspots):
    out = generate_cases(
        3_000, city=city, hotspots=hotspots, categories=[("0601", 3.0), ("9901", 1.0)]
    )
    assert set(out["category_code"]) == {"0601", "9901"}
    assert out["category_code"].eq("0601").mean() == pytest.approx(0.75, abs=0.04)
    assert out.loc[out["category_code"] == "9901", "description"].str.contains("9901").all()


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "non-negative"),
        ({"n": 10, "categories": [("12", 1.0)]}, "4-digit"),
        ({"n": 10, "categories": [("0102", -1.0)]}, ">= 0"),
        ({"n": 10, "categories": [("0102", 1.0), ("0102", 2.0)]}, "repeat"),
        ({"n": 10, "categories": [("0102", 0.0)]}, "sum to 0"),
        ({"n": 10, "categories": []}, "empty"),
        ({"n": 10, "start": "2026-05-01", "end": "2026-04-01"}, "after start"),
        ({"n": 10, "start": "not a date"}, "not a date"),
    ],
)
def test_bad_case_arguments_are_refused(city, hotspots, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_cases(city=city, hotspots=hotspots, **kwargs)


def test_hotspots_without_required_columns_are_refused(city, hotspots):
    with pytest.raises(ValueError, match="risk_weight"):
        generate_cases(10, city=city, hotspots=hotspots.drop(columns="risk_weight"))


def test_point_hotspot_without_buffer_is_refused(city, hotspots):
    broken = hotspots.copy()
    broken.loc[broken["kind"] == "school_gate", "buffer_m"] = 0.0
    with pytest.raises(ValueError, match="buffer_m > 0"):
        generate_cases(10, city=city, hotspots=broken)


def test_city_without_units_is_refused(city, roads):
    with pytest.raises(ValueError, match="unit grids"):
        build_demo_hotspots(city=city[city["level"] != "unit"], roads=roads)


def test_roads_of_another_place_are_refused(city, roads):
    moved = roads.copy()
    moved.geometry = moved.geometry.translate(0.2, 0.0)
    with pytest.raises(ValueError, match="do not belong"):
        build_demo_hotspots(city=city, roads=moved)

"""Demo cases: determinism, contents, and where cases cluster around the hotspots.

Every spatial check is made independently of gis.metric and of the generator's own zones: plain
shapely predicates on the lon/lat output, distances and areas after geopandas reprojects to the
UTM zone it estimates.
"""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from demo.cases import DESCRIPTIONS, generate_cases
from service.cases.catalogue import CATEGORY_SEED
from tests.demo.helpers import TZ, of_kind, within

N = 20_000
NAMES = {row[0]: row[4] for row in CATEGORY_SEED}  # what the service's demo loader passes


@pytest.fixture(scope="module")
def cases(city, hotspots) -> pd.DataFrame:
    return generate_cases(N, city=city, hotspots=hotspots, names=NAMES)


@pytest.fixture(scope="module")
def cases_m(cases, utm) -> np.ndarray:
    points = gpd.GeoSeries(gpd.points_from_xy(cases["lon"], cases["lat"]), crs=4326)
    return points.to_crs(utm).values


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_cases(city, hotspots, cases):
    again = generate_cases(N, city=city, hotspots=hotspots, names=NAMES)
    pd.testing.assert_frame_equal(again, cases)


def test_other_seed_gives_other_cases_with_other_keys(city, hotspots, cases):
    other = generate_cases(N, seed=8, city=city, hotspots=hotspots)
    assert not np.array_equal(other["lon"].to_numpy(), cases["lon"].to_numpy())
    assert not set(other["idempotency_key"]) & set(cases["idempotency_key"])


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
    # each description is one written for its category, or its catalogue name (xx99)
    allowed = {code: set(DESCRIPTIONS.get(code) or [name]) for code, name in NAMES.items()}
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
    near = within(cases_m, of_kind(hotspots_m, "farmer_market").geometry.values, 100.0)
    vending = cases["category_code"].isin(["0501", "0502"]).to_numpy()
    assert near[vending].mean() > 0.25
    assert near[vending].mean() > 5 * near[~vending].mean()


def test_vending_clusters_near_school_gates(cases, cases_m, hotspots_m):
    near = within(cases_m, of_kind(hotspots_m, "school_gate").geometry.values, 100.0)
    vending = cases["category_code"].isin(["0501", "0502"]).to_numpy()
    assert near[vending].mean() > 5 * near[~vending].mean()


def test_construction_cases_cluster_at_sites_only_while_they_are_active(cases, cases_m, hotspots_m):
    sites = of_kind(hotspots_m, "construction_site")
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
    near = within(cases_m, of_kind(hotspots_m, "rail_corridor").geometry.values, 50.0)
    garbage = cases["category_code"].isin(["0102", "0103"]).to_numpy()
    assert near[garbage].mean() > 0.5
    assert near[garbage].mean() > 5 * near[~garbage].mean()


def test_straw_burning_happens_in_the_urban_rural_fringe(cases, hotspots):
    fringe = of_kind(hotspots, "urban_rural_fringe").geometry.iloc[0]
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


def test_categories_without_demo_texts_are_described_by_the_names_given(city, hotspots):
    categories = [("0199", 1.0), ("0699", 1.0), ("9901", 1.0)]
    out = generate_cases(300, city=city, hotspots=hotspots, categories=categories, names=NAMES)
    texts = out.groupby("category_code")["description"].agg(set).to_dict()
    assert texts == {
        "0199": {"其他市容环境问题"},  # no demo text: its catalogue name
        "0699": {"其他城市管理问题"},  # a demo text of its own wins over the name 其他
        "9901": {"城市管理问题(类别9901)"},  # neither: a generic text naming the code
    }
    # the names change the descriptions only, never where, when or what
    bare = generate_cases(300, city=city, hotspots=hotspots, categories=categories)
    pd.testing.assert_frame_equal(bare.drop(columns="description"), out.drop(columns="description"))


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

"""Grid registry rules on real PostGIS: codes, hierarchy, overlaps, versions, locate."""

from __future__ import annotations

from datetime import timedelta

import pytest
import shapely
from pyproj import Geod
from sqlalchemy import func, select

from service.accounts.principal import SYSTEM
from service.clock import now
from service.db.models import Grid
from service.errors import Conflict, InvalidInput, NotFound
from service.grids.registry import GridInput, Registry
from service.grids.repository import geom_of
from tests.helpers.city import (
    COMM_A,
    COMM_B,
    DISTRICT,
    lonlat,
    mbox,
    point_lonlat,
    small_city,
    unit_code,
)

GEOD = Geod(ellps="WGS84")


def _count(registry: Registry) -> int:
    return registry.session.scalar(
        select(func.count()).select_from(Grid).where(Grid.city == registry.city)
    )


@pytest.fixture
def city(registry: Registry) -> Registry:
    registry.write(small_city(), by=SYSTEM)
    return registry


def test_area_is_measured_in_metres_and_matches_geodesic_area(city: Registry) -> None:
    grid = city.get(unit_code(COMM_A, 1))
    geodesic, _ = GEOD.geometry_area_perimeter(geom_of(grid))
    assert grid.area_m2 == pytest.approx(abs(geodesic), rel=2e-3)
    assert grid.area_m2 == pytest.approx(10_000, rel=2e-3)


def test_parent_code_is_derived_and_chain_reaches_city(city: Registry) -> None:
    grid = city.get(unit_code(COMM_A, 5))
    assert grid.parent_code == COMM_A
    assert [g.level for g in city.repo.chain(grid, now())] == [
        "unit",
        "community",
        "street",
        "district",
        "city",
    ]


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("4101050010010", "13 digits"),
        ("410105001001001", "15 digits"),
        ("4101050010010A", "digits only"),
        ("41010500100100", "all-zero unit part"),
    ],
)
def test_bad_unit_codes_are_rejected_and_nothing_is_stored(
    city: Registry, code: str, fragment: str
) -> None:
    before = _count(city)
    item = GridInput(code, "unit", "x", lonlat(mbox(0, 0, 50, 50)))
    with pytest.raises(InvalidInput) as err:
        city.write([item], by=SYSTEM)
    assert fragment in err.value.message
    assert _count(city) == before


def test_child_code_must_start_with_parent_prefix(city: Registry) -> None:
    item = GridInput("41010500100109", "unit", "x", lonlat(mbox(0, 0, 50, 50)), parent_code=COMM_B)
    with pytest.raises(InvalidInput, match="must start with|does not match"):
        city.write([item], by=SYSTEM)


def test_missing_parent_is_rejected(registry: Registry) -> None:
    item = GridInput("41010500100101", "unit", "x", lonlat(mbox(0, 0, 50, 50)))
    with pytest.raises(InvalidInput, match="parent 41010500100100 does not exist"):
        registry.write([item], by=SYSTEM)
    assert _count(registry) == 0


def test_unit_outside_its_community_is_rejected(city: Registry) -> None:
    # community A spans x 0..400; this cell pokes 50 m into community B
    item = GridInput(unit_code(COMM_A, 9), "unit", "x", lonlat(mbox(380, 0, 450, 50)))
    with pytest.raises(InvalidInput, match="outside its parent") as err:
        city.write([item], by=SYSTEM)
    outside = err.value.extra["errors"][0]["outside_m2"]
    assert outside == pytest.approx(50 * 50, rel=5e-3)


def test_overlapping_sibling_is_a_conflict_and_nothing_is_stored(city: Registry) -> None:
    before = _count(city)
    # a new unit overlapping unit 01 (x 0..100, y 100..200) by 50 m x 100 m
    item = GridInput(unit_code(COMM_A, 9), "unit", "x", lonlat(mbox(50, 100, 150, 200)))
    with pytest.raises(Conflict) as err:
        city.write([item], by=SYSTEM)
    others = {e["other"] for e in err.value.extra["errors"]}
    assert others == {unit_code(COMM_A, 1), unit_code(COMM_A, 2)}
    assert _count(city) == before


def test_neighbours_sharing_an_edge_do_not_conflict(city: Registry) -> None:
    assert (
        len(
            city.repo.list(
                __import__("service.grids.repository", fromlist=["GridFilter"]).GridFilter(
                    city=city.city, at=now(), level="unit"
                )
            )
        )
        == 11
    )


def test_invalid_ring_is_rejected_with_location(registry: Registry) -> None:
    bowtie = shapely.Polygon(
        [(113.65, 34.75), (113.66, 34.76), (113.66, 34.75), (113.65, 34.76), (113.65, 34.75)]
    )
    item = GridInput("41010000000000", "city", "x", bowtie)
    with pytest.raises(InvalidInput, match="Self-intersection"):
        registry.write([item], by=SYSTEM)


def test_boundary_change_creates_a_version_and_old_one_stays_queryable(city: Registry) -> None:
    code = unit_code(COMM_A, 1)
    old = city.get(code)
    old_geom = geom_of(old)
    t_change = now()
    smaller = lonlat(mbox(0, 120, 100, 200))
    report = city.write(
        [GridInput(code, "unit", "甲社区第01网格", smaller)], at=t_change, by=SYSTEM
    )
    assert report.versioned == [code]
    current = city.get(code)
    assert current.version == 2
    assert current.area_m2 == pytest.approx(8_000, rel=3e-3)
    before = city.get(code, at=t_change - timedelta(microseconds=1))
    assert before.version == 1
    assert geom_of(before).equals(old_geom)
    assert [v.version for v in city.versions(code)] == [1, 2]


def test_same_boundary_updates_attributes_without_new_version(city: Registry) -> None:
    code = unit_code(COMM_A, 2)
    geom = geom_of(city.get(code))
    report = city.write([GridInput(code, "unit", "新名字", geom, land_use="商业")], by=SYSTEM)
    assert report.updated == [code]
    grid = city.get(code)
    assert (grid.version, grid.name, grid.land_use) == (1, "新名字", "商业")


def test_locate_interior_point_returns_grid_chain_and_person(city: Registry) -> None:
    lon, lat = point_lonlat(150, 150)  # middle of unit 02
    result = city.locate(lon, lat)
    assert result.grid.code == unit_code(COMM_A, 2)
    assert [g.code for g in result.chain][:1] == [COMM_A]
    assert result.chain[-1].level == "city"
    assert result.grid.responsible_persons[0]["name"] == "网格员2"
    assert [g.code for g, _ in result.candidates] == [unit_code(COMM_A, 2)]


def test_point_on_shared_edge_goes_to_lowest_code(city: Registry) -> None:
    units = {g.code: g.geometry for g in small_city() if g.level == "unit"}
    # vertices of unit 06 are exactly shared with its neighbours (02 to its north, 05, 07 ...)
    corners = shapely.get_coordinates(units[unit_code(COMM_A, 6)].exterior)[:-1]
    ties = 0
    for lon, lat in corners:
        point = shapely.Point(lon, lat)
        covering = sorted(c for c, g in units.items() if shapely.covers(g, point))
        ties += len(covering) >= 2
        assert city.locate(lon, lat).grid.code == covering[0]
    assert ties == 4  # every corner of an interior-row cell is shared
    # the north-west corner of unit 06 touches units 01, 02, 05 and 06: 01 wins
    nw = min(corners, key=lambda c: c[0] - c[1])
    assert city.locate(*nw).grid.code == unit_code(COMM_A, 1)


def test_point_near_boundary_lists_every_candidate_with_distance(city: Registry) -> None:
    lon, lat = point_lonlat(95, 150)  # 5 m west of the edge between units 01 and 02
    result = city.locate(lon, lat, radius_m=15)
    codes = [g.code for g, _ in result.candidates]
    assert codes == [unit_code(COMM_A, 1), unit_code(COMM_A, 2)]
    distances = dict((g.code, d) for g, d in result.candidates)
    assert distances[unit_code(COMM_A, 1)] == 0
    assert distances[unit_code(COMM_A, 2)] == pytest.approx(5.0, abs=0.1)


def test_point_in_hole_is_outside_all_grids_and_names_nearest(city: Registry) -> None:
    lon, lat = point_lonlat(550, 100)  # centre of the lake; 50 m from its shore
    with pytest.raises(NotFound) as err:
        city.locate(lon, lat)
    assert err.value.extra["nearest_code"] == unit_code(COMM_B, 1)
    assert err.value.extra["nearest_distance_m"] == pytest.approx(50.0, abs=0.5)


def test_multipolygon_grid_covers_both_parts(city: Registry) -> None:
    for y in (40, 160):
        assert city.locate(*point_lonlat(750, y)).grid.code == unit_code(COMM_B, 2)
    assert city.locate(*point_lonlat(750, 100)).grid.code == unit_code(COMM_B, 3)


def test_locate_converts_gcj02_input(city: Registry) -> None:
    from gis.datum import from_wgs84

    lon, lat = point_lonlat(150, 150)
    glon, glat = from_wgs84(lon, lat, "gcj02")
    result = city.locate(float(glon), float(glat), datum="gcj02")
    assert result.grid.code == unit_code(COMM_A, 2)
    assert result.lon == pytest.approx(lon, abs=1e-7)


@pytest.mark.parametrize(
    ("lon", "lat", "datum", "field"),
    [
        (200.0, 34.0, "wgs84", "lon"),
        (113.0, -95.0, "wgs84", "lat"),
        (113.0, 34.0, "utm", "datum"),
        (float("nan"), 34.0, "wgs84", "lon"),
    ],
)
def test_locate_rejects_bad_input(registry: Registry, lon, lat, datum, field) -> None:
    with pytest.raises(InvalidInput) as err:
        registry.locate(lon, lat, datum=datum)
    assert err.value.field == field


def test_locate_at_a_past_time_uses_the_version_valid_then(city: Registry) -> None:
    code = unit_code(COMM_A, 1)
    t0 = now()
    # shrink unit 01 to its east half; the west half becomes uncovered
    city.write(
        [GridInput(code, "unit", "x", lonlat(mbox(50, 100, 100, 200)))],
        at=t0 + timedelta(seconds=1),
        by=SYSTEM,
    )
    lon, lat = point_lonlat(20, 150)
    with pytest.raises(NotFound):
        city.locate(lon, lat, at=t0 + timedelta(seconds=2))
    assert city.locate(lon, lat, at=t0).grid.code == code


def test_district_import_checks_district_exists_for_street(registry: Registry) -> None:
    item = GridInput("41010500200000", "street", "x", lonlat(mbox(0, 0, 10, 10)))
    with pytest.raises(InvalidInput, match=f"parent {DISTRICT} does not exist"):
        registry.write([item], by=SYSTEM)

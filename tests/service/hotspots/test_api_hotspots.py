"""Hotspots over HTTP: kinds, creation, zones in metres, nearby, grids touched, import."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import LineString, Point

from tests.helpers.city import COMM_A, MARKET, RAIL_X, X0, Y0, lonlat, mbox, point_lonlat, unit_code

GEOD = Geod(ellps="WGS84")


def _spot(client: TestClient, **body):
    base = {
        "key": "school-01",
        "kind": "school_gate",
        "name": "第一小学校门",
        "geometry": shapely.geometry.mapping(lonlat(Point(X0 + 50, Y0 + 50))),
    }
    return client.post("/api/hotspots", json=base | body)


def test_point_hotspot_gets_the_kind_buffer_in_metres(client: TestClient, case_city) -> None:
    r = _spot(client)
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert props["buffer_m"] == 100.0  # school gates default to 100 m
    zone = shapely.geometry.shape(props["zone"])
    area, _ = GEOD.geometry_area_perimeter(zone)
    assert abs(area) == pytest.approx(3.14159 * 100**2, rel=0.01)


def test_grids_touched_by_the_rail_corridor_with_shares(client: TestClient, case_city) -> None:
    spots = client.get("/api/hotspots", params={"kind": "rail_corridor"}).json()["features"]
    rail = spots[0]["id"]
    body = client.get(f"/api/hotspots/{rail}/grids").json()
    zone_codes = [g["code"] for g in body["zone"]]
    # the 20 m wide corridor at x=350 runs through units and pokes out of the city
    assert set(zone_codes) == {unit_code(COMM_A, 4), unit_code(COMM_A, 8)}
    assert sum(g["share"] for g in body["zone"]) == pytest.approx(
        200 * 20 / (300 * 20 + 314.16), rel=0.01
    )
    line = {g["code"]: g for g in body["line"]}
    assert line[unit_code(COMM_A, 4)]["share"] == pytest.approx(100 / 300, rel=1e-3)
    assert line[unit_code(COMM_A, 8)]["share"] == pytest.approx(100 / 300, rel=1e-3)


def test_grids_touched_by_a_market_sum_to_one(client: TestClient, case_city) -> None:
    market = client.get("/api/hotspots", params={"kind": "farmer_market"}).json()["features"][0]
    body = client.get(f"/api/hotspots/{market['id']}/grids").json()
    zone = shapely.geometry.shape(
        client.get(f"/api/hotspots/{market['id']}").json()["properties"]["zone"]
    )
    # the 60 m market plus 20 m buffer spans x 100..200: only unit A-02, edge-touch excluded
    assert [g["code"] for g in body["zone"]] == [unit_code(COMM_A, 2)]
    assert body["zone"][0]["share"] == pytest.approx(
        shapely.intersection(zone, lonlat(mbox(100, 100, 200, 200))).area / zone.area, rel=1e-3
    )


def test_near_lists_hotspots_by_distance(client: TestClient, case_city) -> None:
    lon, lat = point_lonlat(190, 150)  # 10 m east of the market, 160 m west of the rail
    found = client.get(
        "/api/hotspots/near", params={"lon": lon, "lat": lat, "radius_m": 500}
    ).json()
    assert [h["key"] for h in found] == ["market-01", "rail-01"]
    assert found[0]["distance_m"] == pytest.approx(10, abs=0.1) and found[0]["in_zone"]
    assert found[1]["distance_m"] == pytest.approx(RAIL_X - 190, abs=0.2)
    assert not found[1]["in_zone"]


def test_inactive_construction_site_is_ignored_at_intake(client: TestClient, case_city) -> None:
    site = mbox(20, 20, 80, 80)
    r = client.post(
        "/api/hotspots",
        json={
            "key": "site-01",
            "kind": "construction_site",
            "name": "已完工工地",
            "geometry": shapely.geometry.mapping(lonlat(site)),
            "buffer_m": 10,
            "active_from": "2026-01-01T00:00:00+08:00",
            "active_to": "2026-06-30T00:00:00+08:00",
        },
    )
    assert r.status_code == 201, r.text
    lon, lat = point_lonlat(50, 50)
    during = client.post(
        "/api/cases",
        json={
            "category_code": "0304",
            "lon": lon,
            "lat": lat,
            "reported_at": "2026-03-01T10:00:00+08:00",
        },
    ).json()
    after = client.post(
        "/api/cases",
        json={
            "category_code": "0304",
            "lon": lon,
            "lat": lat,
            "reported_at": "2026-08-01T10:00:00+08:00",
        },
    ).json()
    assert during["hotspot_ids"] == [r.json()["id"]]
    assert after["hotspot_ids"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "volcano"}, "kind"),
        ({"key": "market-01"}, "key"),
        ({"buffer_m": 0}, "buffer_m"),  # a point needs a buffer
        ({"geometry": {"type": "Point", "coordinates": [500, 1]}}, "geometry"),
        ({"active_from": "2026-05-01T00:00:00", "active_to": "2026-04-01T00:00:00"}, "active_to"),
    ],
)
def test_bad_hotspots_are_422(client: TestClient, case_city, body: dict, field: str) -> None:
    r = _spot(client, **body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_city_can_add_its_own_kind(client: TestClient, case_city) -> None:
    r = client.post(
        "/api/hotspot-kinds", json={"key": "night_market", "name": "夜市", "default_buffer_m": 80}
    )
    assert r.status_code == 201
    assert _spot(client, kind="night_market", key="nm-1").json()["properties"]["buffer_m"] == 80
    assert (
        client.post("/api/hotspot-kinds", json={"key": "night_market", "name": "x"}).status_code
        == 409
    )


def test_import_hotspots_all_or_nothing(client: TestClient, case_city, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "key": ["m-2", "r-2"],
            "kind": ["farmer_market", "rail_corridor"],
            "name": ["乙市场", "支线"],
            "buffer_m": [30, 15],
            "owner_unit": ["乙市场办", None],
        },
        geometry=[lonlat(MARKET.buffer(-10)), lonlat(LineString([(X0, Y0), (X0 + 10, Y0)]))],
        crs=4326,
    )
    path = tmp_path / "spots.gpkg"
    frame.to_file(path)
    with path.open("rb") as fh:
        r = client.post("/api/hotspots/import", files={"file": ("spots.gpkg", fh)})
    assert r.status_code == 200, r.text
    assert r.json()["keys"] == ["m-2", "r-2"]
    frame.loc[1, "kind"] = "volcano"
    frame["key"] = ["m-3", "r-3"]
    frame.to_file(path)
    with path.open("rb") as fh:
        bad = client.post("/api/hotspots/import", files={"file": ("spots.gpkg", fh)})
    assert bad.status_code == 422 and bad.json()["errors"][0]["index"] == 1
    keys = [f["properties"]["key"] for f in client.get("/api/hotspots").json()["features"]]
    assert "m-3" not in keys

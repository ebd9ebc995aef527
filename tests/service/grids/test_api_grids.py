"""The grid registry over HTTP: status codes, messages, GeoJSON shapes, nothing half-stored."""

from __future__ import annotations

import shapely
from fastapi.testclient import TestClient

from service.grids.registry import Registry
from tests.helpers.city import COMM_A, lonlat, mbox, point_lonlat, small_city, unit_code


def _feature_body(item, **extra):
    return {
        "code": item.code,
        "level": item.level,
        "name": item.name,
        "geometry": shapely.geometry.mapping(item.geometry),
        **extra,
    }


def _load(client: TestClient) -> None:
    for item in small_city():
        r = client.post("/api/grids", json=_feature_body(item))
        assert r.status_code == 201, r.text


def test_create_and_read_back_a_hierarchy(client: TestClient) -> None:
    _load(client)
    r = client.get(f"/api/grids/{unit_code(COMM_A, 3)}")
    assert r.status_code == 200
    feature = r.json()
    assert feature["properties"]["parent_code"] == COMM_A
    assert feature["properties"]["version"] == 1
    assert abs(feature["properties"]["area_m2"] - 10_000) < 30
    listing = client.get("/api/grids", params={"level": "unit", "parent": COMM_A}).json()
    assert [f["id"] for f in listing["features"]] == [unit_code(COMM_A, i) for i in range(1, 9)]


def test_within_lists_the_grids_under_a_code_prefix(client: TestClient) -> None:
    _load(client)
    a1, a2 = unit_code(COMM_A, 1), unit_code(COMM_A, 2)
    prefix = a1[:-1]  # the unit grids 01..09 of community A (an account's scope may be this)
    listing = client.get("/api/grids", params={"level": "unit", "within": prefix}).json()
    codes = [f["id"] for f in listing["features"]]
    assert codes == sorted(
        c for c in (unit_code(COMM_A, i) for i in range(1, 9)) if c.startswith(prefix)
    )
    one = client.get("/api/grids", params={"within": a2}).json()
    assert [f["id"] for f in one["features"]] == [a2]
    bad = client.get("/api/grids", params={"within": "41%"})
    assert bad.status_code == 422 and "within" in bad.text


def test_locate_endpoint_returns_chain_candidates_and_person(client: TestClient) -> None:
    _load(client)
    lon, lat = point_lonlat(97, 150)  # 3 m from the edge between units 01 and 02
    r = client.get("/api/grids/locate", params={"lon": lon, "lat": lat})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["grid"]["code"] == unit_code(COMM_A, 1)
    assert [c["level"] for c in body["chain"]] == ["community", "street", "district", "city"]
    assert body["near_boundary"] is True
    assert [c["code"] for c in body["candidates"]] == [unit_code(COMM_A, 1), unit_code(COMM_A, 2)]
    assert abs(body["candidates"][1]["distance_m"] - 3.0) < 0.1


def test_locate_outside_every_grid_is_404_naming_nearest(client: TestClient) -> None:
    _load(client)
    lon, lat = point_lonlat(200, 300)  # 100 m north of unit 02
    r = client.get("/api/grids/locate", params={"lon": lon, "lat": lat})
    assert r.status_code == 404
    body = r.json()
    assert body["nearest_code"] in {unit_code(COMM_A, 2), unit_code(COMM_A, 3)}
    assert abs(body["nearest_distance_m"] - 100) < 1
    assert "nearest" in body["detail"]


def test_locate_bad_input_is_4xx_naming_field(client: TestClient) -> None:
    r = client.get("/api/grids/locate", params={"lon": 113.6, "lat": 34.7, "datum": "utm"})
    assert r.status_code == 422 and r.json()["field"] == "datum"
    r = client.get("/api/grids/locate", params={"lon": 181, "lat": 34.7})
    assert r.status_code == 422 and r.json()["field"] == "lon"
    r = client.get("/api/grids/locate", params={"lon": "east", "lat": 34.7})
    assert r.status_code == 422 and "lon" in r.text


def test_wrong_code_width_is_422_and_nothing_stored(client: TestClient) -> None:
    item = small_city()[0]
    r = client.post("/api/grids", json=_feature_body(item) | {"code": "410100000000000"})
    assert r.status_code == 422
    assert "14-digit" in r.json()["detail"]
    assert client.get("/api/grids").json()["features"] == []


def test_missing_parent_is_422(client: TestClient) -> None:
    unit = small_city()[5]
    r = client.post("/api/grids", json=_feature_body(unit))
    assert r.status_code == 422
    assert "does not exist" in r.json()["detail"]
    assert r.json()["field"] == "parent_code"


def test_overlap_is_409(client: TestClient) -> None:
    _load(client)
    body = {
        "code": unit_code(COMM_A, 9),
        "level": "unit",
        "name": "x",
        "geometry": shapely.geometry.mapping(lonlat(mbox(10, 110, 60, 160))),
    }
    r = client.post("/api/grids", json=body)
    assert r.status_code == 409
    assert unit_code(COMM_A, 1) in r.json()["detail"]
    assert r.json()["field"] == "geometry"


def test_malformed_geometry_is_422(client: TestClient) -> None:
    r = client.post(
        "/api/grids",
        json={
            "code": "41010000000000",
            "level": "city",
            "name": "x",
            "geometry": {"type": "Polygon", "coordinates": "nope"},
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "geometry"
    r = client.post(
        "/api/grids",
        json={
            "code": "41010000000000",
            "level": "city",
            "name": "x",
            "geometry": {"type": "Point", "coordinates": [1, 2]},
        },
    )
    assert r.status_code == 422 and "Polygon" in r.json()["detail"]


def test_patch_with_geometry_creates_version_and_at_reads_old(client: TestClient) -> None:
    _load(client)
    code = unit_code(COMM_A, 4)
    before = client.get(f"/api/grids/{code}").json()
    r = client.patch(
        f"/api/grids/{code}",
        json={"geometry": shapely.geometry.mapping(lonlat(mbox(300, 150, 400, 200)))},
    )
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["version"] == 2
    old = client.get(f"/api/grids/{code}", params={"at": before["properties"]["valid_from"]})
    assert old.json()["properties"]["version"] == 1
    versions = client.get(f"/api/grids/{code}/versions").json()["features"]
    assert [f["properties"]["version"] for f in versions] == [1, 2]
    assert versions[0]["properties"]["valid_to"] == versions[1]["properties"]["valid_from"]


def test_patch_attributes_keeps_version(client: TestClient) -> None:
    _load(client)
    code = unit_code(COMM_A, 4)
    r = client.patch(
        f"/api/grids/{code}",
        json={"responsible_persons": [{"name": "王芳", "phone": "13900000000"}]},
    )
    assert r.status_code == 200
    props = client.get(f"/api/grids/{code}").json()["properties"]
    assert props["version"] == 1
    assert props["responsible_persons"] == [{"name": "王芳", "phone": "13900000000"}]


def test_unknown_code_is_404(client: TestClient) -> None:
    r = client.get("/api/grids/41010599999999")
    assert r.status_code == 404 and "41010599999999" in r.json()["detail"]


def test_gcj02_geometry_is_stored_in_wgs84(client: TestClient, registry: Registry) -> None:
    from gis.datum import transform_geometries

    city = small_city()[0]
    gcj = transform_geometries(city.geometry, "wgs84", "gcj02")
    r = client.post(
        "/api/grids",
        json=_feature_body(city, datum="gcj02") | {"geometry": shapely.geometry.mapping(gcj)},
    )
    assert r.status_code == 201
    stored = shapely.geometry.shape(r.json()["geometry"])
    assert shapely.equals_exact(
        stored.normalize(), shapely.MultiPolygon([city.geometry]).normalize(), 1e-8
    )


def test_patch_with_null_name_is_422_and_keeps_the_name(client: TestClient) -> None:
    _load(client)
    code = unit_code(COMM_A, 4)
    r = client.patch(f"/api/grids/{code}", json={"name": None})
    assert r.status_code == 422 and "name" in r.text
    assert client.get(f"/api/grids/{code}").json()["properties"]["name"] == "甲社区第04网格"

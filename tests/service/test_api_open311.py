"""Open311 GeoReport v2 façade, with the grid code and detailed status extensions."""

from __future__ import annotations

from cityfixture import COMM_A, point_lonlat, unit_code
from fastapi.testclient import TestClient

from gis.datum import from_wgs84


def _form(x: float = 150, y: float = 50, **extra) -> dict:
    lon, lat = point_lonlat(x, y)
    return {
        "service_code": "0102",
        "lat": str(lat),
        "long": str(lon),
        "description": "路边有垃圾",
        "first_name": "小",
        "last_name": "明",
        "phone": "13900001111",
        "media_url": "https://img/1.jpg",
    } | extra


def test_services_list_the_catalogue(client: TestClient, case_city) -> None:
    services = client.get("/open311/v2/services.json").json()
    codes = {s["service_code"]: s for s in services}
    assert codes["0102"]["service_name"] == "暴露垃圾" and codes["0102"]["type"] == "realtime"
    assert codes["0601"]["service_name"] == "焚烧秸秆"
    assert codes["0303"]["metadata"] is True
    definition = client.get("/open311/v2/services/0303.json").json()
    assert [a["code"] for a in definition["attributes"]] == ["site_name"]
    assert client.get("/open311/v2/services/9999.json").status_code == 404


def test_post_form_then_read_back_with_extensions(client: TestClient, case_city) -> None:
    r = client.post("/open311/v2/requests.json", data=_form())
    assert r.status_code == 201, r.text
    sid = r.json()[0]["service_request_id"]
    assert r.json()[0]["grid_code"] == unit_code(COMM_A, 6)
    got = client.get(f"/open311/v2/requests/{sid}.json").json()[0]
    assert got["status"] == "open" and got["detailed_status"] == "reported"
    assert got["grid_code"] == unit_code(COMM_A, 6)
    assert got["service_name"] == "暴露垃圾" and got["media_url"] == "https://img/1.jpg"
    lon, lat = point_lonlat(150, 50)
    assert (got["long"], got["lat"]) == (lon, lat) or abs(got["long"] - lon) < 1e-9
    case = client.get(f"/api/cases/{sid}").json()
    assert case["source"] == "open311" and case["reporters"][0]["name"] == "小 明"


def test_attributes_and_gcj02_datum(client: TestClient, case_city) -> None:
    lon, lat = point_lonlat(250, 150)
    glon, glat = from_wgs84(lon, lat, "gcj02")
    r = client.post(
        "/open311/v2/requests.json",
        data=_form(
            service_code="0303",
            lat=str(float(glat)),
            long=str(float(glon)),
            datum="gcj02",
            **{"attribute[site_name]": "某某工地"},
        ),
    )
    assert r.status_code == 201, r.text
    case = client.get(f"/api/cases/{r.json()[0]['service_request_id']}").json()
    assert case["grid_code"] == unit_code(COMM_A, 3)
    assert case["fields"] == {"site_name": "某某工地"}


def test_idempotency_header_prevents_a_second_request(client: TestClient, case_city) -> None:
    headers = {"Idempotency-Key": "app-42"}
    first = client.post("/open311/v2/requests.json", data=_form(), headers=headers)
    again = client.post("/open311/v2/requests.json", data=_form(), headers=headers)
    assert again.status_code == 200
    assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    changed = client.post(
        "/open311/v2/requests.json", data=_form(description="别的"), headers=headers
    )
    assert changed.status_code == 409 and changed.json()[0]["code"] == 409


def test_malformed_fields_get_open311_errors(client: TestClient, case_city) -> None:
    cases = [
        ({"lat": "north"}, 400, "lat"),
        ({"long": ""}, 400, "long"),
        ({"service_code": ""}, 400, "service_code"),
        ({"service_code": "7777"}, 422, "unknown category"),
        ({"service_code": "0303"}, 422, "site_name"),
        ({"datum": "mars"}, 422, "datum"),
    ]
    for extra, status, fragment in cases:
        r = client.post("/open311/v2/requests.json", data=_form(**extra))
        assert r.status_code == status, (extra, r.text)
        assert fragment in r.json()[0]["description"]
    outside = client.post("/open311/v2/requests.json", data=_form(550, 100))
    assert outside.status_code == 422 and "nearest" in outside.json()[0]["description"]
    assert client.get("/open311/v2/requests.json").json() == []


def test_query_by_status_and_code(client: TestClient, case_city) -> None:
    a = client.post("/open311/v2/requests.json", data=_form()).json()[0]["service_request_id"]
    client.post("/open311/v2/requests.json", data=_form(service_code="0104", description="x"))
    version = client.get(f"/api/cases/{a}").json()["version"]
    client.post(
        f"/api/cases/{a}/actions",
        json={"action": "reject", "actor": "x", "note": "非城管问题", "version": version},
    )
    closed = client.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    assert [r["service_request_id"] for r in closed] == [a]
    assert closed[0]["detailed_status"] == "rejected"
    only = client.get("/open311/v2/requests.json", params={"service_code": "0104"}).json()
    assert [r["service_code"] for r in only] == ["0104"]
    assert client.get("/open311/v2/requests.json", params={"status": "lost"}).status_code == 400
    assert client.get("/open311/v2/requests/abc.json").status_code == 400
    assert client.get("/open311/v2/requests/999999.json").status_code == 404

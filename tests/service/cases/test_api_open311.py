"""Open311 GeoReport v2 façade, to the letter of the standard, with the grid code and detailed
status extensions. XML answers are read with the standard library's parser and checked against
the element names of the GeoReport v2 and Service Discovery pages."""

from __future__ import annotations

import dataclasses
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import requests
from fastapi.testclient import TestClient
from georeport import GeoReport

from gis.datum import from_wgs84
from service.accounts.accounts import KeyInput
from service.accounts.principal import SYSTEM
from service.cases.catalogue import Catalogue
from service.factory import create_app
from service.settings import AuthSettings, CaseSettings
from tests.helpers.accounts import seeded
from tests.helpers.city import COMM_A, point_lonlat, unit_code

V2 = "/open311/v2"
SERVICE_ELEMENTS = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}
REQUEST_ELEMENTS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
EXTENSIONS = ["grid_code", "detailed_status", "detailed_status_label"]


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


def _xml(r) -> ET.Element:
    """The XML document of an answer, after checking the standard's content type and
    declaration."""
    assert r.headers["content-type"].startswith("text/xml"), r.headers["content-type"]
    assert "charset=utf-8" in r.headers["content-type"]
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(r.content)


def _errors(r) -> list[dict]:
    """Open311's error document, in the format of the request path: [{code, description}]."""
    if r.headers["content-type"].startswith("application/json"):
        body = r.json()
        assert isinstance(body, list) and body, body
        assert all(set(e) == {"code", "description"} for e in body), body
        return body
    root = _xml(r)
    assert root.tag == "errors" and [e.tag for e in root] == ["error"] * len(root)
    out = []
    for error in root:
        assert [c.tag for c in error] == ["code", "description"]
        out.append(
            {"code": int(error.findtext("code")), "description": error.findtext("description")}
        )
    return out


def _post(client: TestClient, fmt: str = "json", **form) -> str:
    r = client.post(f"{V2}/requests.{fmt}", data=_form(**form))
    assert r.status_code == 201, r.text
    if fmt == "json":
        return r.json()[0]["service_request_id"]
    return _xml(r).findtext("request/service_request_id")


def _count_cases(client: TestClient) -> int:
    return len(client.get("/api/cases", params={"limit": 1000}).json()["items"])


# -- services ---------------------------------------------------------------------------------


def test_services_list_the_catalogue(client: TestClient, case_city) -> None:
    services = client.get(f"{V2}/services.json").json()
    codes = {s["service_code"]: s for s in services}
    assert codes["0102"]["service_name"] == "暴露垃圾" and codes["0102"]["type"] == "realtime"
    assert codes["0601"]["service_name"] == "焚烧秸秆"
    assert codes["0303"]["metadata"] is True
    definition = client.get(f"{V2}/services/0303.json").json()
    assert [a["code"] for a in definition["attributes"]] == ["site_name"]
    assert client.get(f"{V2}/services/9999.json").status_code == 404


def test_services_xml_is_the_standard_document(client: TestClient, case_city) -> None:
    root = _xml(client.get(f"{V2}/services.xml"))
    assert root.tag == "services" and {s.tag for s in root} == {"service"}
    by_code = {s.findtext("service_code"): s for s in root}
    assert set(by_code) == {s["service_code"] for s in client.get(f"{V2}/services.json").json()}
    for service in root:
        assert {c.tag for c in service} == SERVICE_ELEMENTS
        assert service.findtext("metadata") in ("true", "false")
    assert by_code["0102"].findtext("service_name") == "暴露垃圾"
    assert by_code["0303"].findtext("metadata") == "true"
    assert by_code["0102"].findtext("metadata") == "false"

    definition = _xml(client.get(f"{V2}/services/0303.xml"))
    assert definition.tag == "service_definition"
    assert definition.findtext("service_code") == "0303"
    attributes = definition.find("attributes")
    assert attributes is not None and [a.tag for a in attributes] == ["attribute"]
    attribute = attributes[0]
    assert [c.tag for c in attribute] == [
        "variable",
        "code",
        "datatype",
        "required",
        "datatype_description",
        "order",
        "description",
    ]
    assert attribute.findtext("code") == "site_name"
    assert attribute.findtext("required") == "true" and attribute.findtext("order") == "1"
    plain = _xml(client.get(f"{V2}/services/0102.xml"))
    assert plain.find("attributes") is not None and len(plain.find("attributes")) == 0

    missing = client.get(f"{V2}/services/9999.xml")
    assert missing.status_code == 404
    assert "9999" in _errors(missing)[0]["description"]


# -- POST and GET of service requests ---------------------------------------------------------


def test_post_form_then_read_back_with_extensions(client: TestClient, case_city) -> None:
    r = client.post(f"{V2}/requests.json", data=_form())
    assert r.status_code == 201, r.text
    assert set(r.json()[0]) == {"service_request_id", "service_notice", "account_id", "grid_code"}
    sid = r.json()[0]["service_request_id"]
    assert r.json()[0]["grid_code"] == unit_code(COMM_A, 6)
    got = client.get(f"{V2}/requests/{sid}.json").json()[0]
    assert list(got) == REQUEST_ELEMENTS + EXTENSIONS
    assert got["status"] == "open" and got["detailed_status"] == "reported"
    assert got["grid_code"] == unit_code(COMM_A, 6)
    assert got["service_name"] == "暴露垃圾" and got["media_url"] == "https://img/1.jpg"
    lon, lat = point_lonlat(150, 50)
    assert abs(got["long"] - lon) < 1e-9 and abs(got["lat"] - lat) < 1e-9
    case = client.get(f"/api/cases/{sid}").json()
    assert case["source"] == "open311" and case["reporters"][0]["name"] == "小 明"


def test_post_and_read_in_xml(client: TestClient, case_city) -> None:
    # a control character that XML 1.0 cannot carry must not break the document
    r = client.post(f"{V2}/requests.xml", data=_form(description="垃圾\x01堆"))
    assert r.status_code == 201, r.text
    root = _xml(r)
    assert root.tag == "service_requests" and [c.tag for c in root] == ["request"]
    created = root[0]
    assert [c.tag for c in created] == [
        "service_request_id",
        "service_notice",
        "account_id",
        "grid_code",
    ]
    sid = created.findtext("service_request_id")
    assert created.findtext("account_id") == "" and created.findtext("grid_code")

    one = _xml(client.get(f"{V2}/requests/{sid}.xml"))
    assert one.tag == "service_requests" and len(one) == 1
    request = one[0]
    assert [c.tag for c in request] == REQUEST_ELEMENTS + EXTENSIONS
    as_json = client.get(f"{V2}/requests/{sid}.json").json()[0]
    for element in request:
        value = as_json[element.tag]
        if element.tag == "description":
            assert element.text == "垃圾堆"
        elif value is None:
            assert element.text is None  # the standard's empty element for "not returned"
        elif isinstance(value, float):
            assert float(element.text) == value
        else:
            assert element.text == str(value)
    listed = _xml(client.get(f"{V2}/requests.xml"))
    assert [r.findtext("service_request_id") for r in listed] == [sid]


def test_get_requests_take_a_datum_for_lat_long(client: TestClient, case_city) -> None:
    sid = _post(client)
    lon, lat = point_lonlat(150, 50)
    glon, glat = (float(v) for v in from_wgs84(lon, lat, "gcj02"))
    one = client.get(f"{V2}/requests/{sid}.json", params={"datum": "gcj02"}).json()[0]
    assert abs(one["long"] - glon) < 1e-9 and abs(one["lat"] - glat) < 1e-9
    listed = client.get(f"{V2}/requests.json", params={"datum": "gcj02"}).json()[0]
    assert (listed["long"], listed["lat"]) == (one["long"], one["lat"])
    bad = client.get(f"{V2}/requests.json", params={"datum": "mars"})
    assert bad.status_code == 400 and "datum" in _errors(bad)[0]["description"]


def test_attributes_and_gcj02_datum(client: TestClient, case_city) -> None:
    lon, lat = point_lonlat(250, 150)
    glon, glat = from_wgs84(lon, lat, "gcj02")
    r = client.post(
        f"{V2}/requests.json",
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


def test_multipart_and_json_posts_are_accepted_too(client: TestClient, case_city) -> None:
    # one client library posts multipart with a photo file next to the fields
    r = client.post(
        f"{V2}/requests.json",
        data=_form(),
        files={"media": ("photo.jpg", b"\xff\xd8\xff", "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    lon, lat = point_lonlat(150, 50)
    r = client.post(
        f"{V2}/requests.json",
        json={
            "service_code": "0303",
            "lat": lat,
            "long": lon,
            "attribute": {"site_name": "工地"},
        },
    )
    assert r.status_code == 201, r.text
    case = client.get(f"/api/cases/{r.json()[0]['service_request_id']}").json()
    assert case["fields"] == {"site_name": "工地"}
    xml_body = client.post(
        f"{V2}/requests.json", content=b"<request/>", headers={"content-type": "text/xml"}
    )
    assert xml_body.status_code == 400
    assert "application/x-www-form-urlencoded" in _errors(xml_body)[0]["description"]
    deep = client.post(
        f"{V2}/requests.xml",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
    )
    assert deep.status_code == 400 and "nested" in _errors(deep)[0]["description"]


def test_idempotency_header_prevents_a_second_request(client: TestClient, case_city) -> None:
    headers = {"Idempotency-Key": "app-42"}
    first = client.post(f"{V2}/requests.json", data=_form(), headers=headers)
    again = client.post(f"{V2}/requests.json", data=_form(), headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    changed = client.post(f"{V2}/requests.json", data=_form(description="别的"), headers=headers)
    assert changed.status_code == 409 and _errors(changed)[0]["code"] == 409
    too_long = client.post(
        f"{V2}/requests.xml", data=_form(), headers={"Idempotency-Key": "k" * 201}
    )
    assert too_long.status_code == 400 and "Idempotency-Key" in _errors(too_long)[0]["description"]
    assert _count_cases(client) == 1


def test_malformed_fields_get_open311_errors(client: TestClient, case_city) -> None:
    cases = [
        ({"lat": "north"}, 400, "lat"),
        ({"long": ""}, 400, "long"),
        ({"lat": "nan"}, 400, "finite"),
        ({"service_code": ""}, 400, "service_code"),
        ({"service_code": "7777"}, 404, "service_code '7777' not found"),
        ({"service_code": "0303"}, 400, "site_name"),
        ({"datum": "mars"}, 400, "datum"),
        ({"description": "长" * 4001}, 400, "4000"),
        ({"requested_datetime": "yesterday"}, 400, "requested_datetime"),
    ]
    for extra, status, fragment in cases:
        for fmt in ("json", "xml"):
            r = client.post(f"{V2}/requests.{fmt}", data=_form(**extra))
            assert r.status_code == status, (extra, r.text)
            errors = _errors(r)
            assert errors[0]["code"] == status and fragment in errors[0]["description"], errors
    outside = client.post(f"{V2}/requests.json", data=_form(550, 100))
    assert outside.status_code == 400 and "nearest" in _errors(outside)[0]["description"]
    assert client.get(f"{V2}/requests.json").json() == []


def test_address_only_is_refused_naming_the_missing_location(client: TestClient, case_city) -> None:
    form = _form(address_string="金水路与花园路交叉口")
    del form["lat"], form["long"]
    for fmt in ("json", "xml"):
        r = client.post(f"{V2}/requests.{fmt}", data=form)
        assert r.status_code == 400
        description = _errors(r)[0]["description"]
        assert "lat and long are required" in description and "address_string" in description
    del form["address_string"]
    r = client.post(f"{V2}/requests.json", data=form)
    assert r.status_code == 400 and "location" in _errors(r)[0]["description"]
    r = client.post(f"{V2}/requests.json", data=_form(long=""))
    assert r.status_code == 400 and "long is required" in _errors(r)[0]["description"]
    assert _count_cases(client) == 0


def test_a_value_postgresql_refuses_is_an_open311_error(client: TestClient, case_city) -> None:
    r = client.post(f"{V2}/requests.xml", data=_form(description="a\x00b"))
    assert r.status_code == 400
    assert "cannot be stored" in _errors(r)[0]["description"]
    assert _count_cases(client) == 0


# -- GET requests: lists, window and paging ---------------------------------------------------


def test_comma_lists_of_codes_ids_and_statuses(client: TestClient, case_city) -> None:
    a = _post(client)
    b = _post(client, service_code="0104", description="x")
    c = _post(client, service_code="0501", description="y")
    version = client.get(f"/api/cases/{a}").json()["version"]
    client.post(
        f"/api/cases/{a}/actions",
        json={"action": "reject", "actor": "x", "note": "非城管问题", "version": version},
    )

    def ids(**params) -> set[str]:
        r = client.get(f"{V2}/requests.json", params=params)
        assert r.status_code == 200, r.text
        return {x["service_request_id"] for x in r.json()}

    assert ids(service_code="0102,0104") == {a, b}
    assert ids(service_code="0102,0104,9999") == {a, b}
    assert ids(service_code="01") == set()  # codes are exact, not prefixes
    assert ids(status="closed") == {a}
    assert ids(status="open") == {b, c}
    assert ids(status="open,closed") == {a, b, c}
    assert ids(status="", service_code="") == {a, b, c}  # empty means not sent
    assert ids(service_request_id=f"{a},{c}") == {a, c}
    # service_request_id overrides every other argument
    assert ids(service_request_id=f"{a},{c}", status="open", service_code="0104") == {a, c}
    assert ids(service_request_id=f"{b},abc,99999999999999999999") == {b}
    closed = client.get(f"{V2}/requests.json", params={"status": "closed"}).json()
    assert closed[0]["detailed_status"] == "rejected"
    bad = client.get(f"{V2}/requests.json", params={"status": "lost"})
    assert bad.status_code == 400 and "status" in _errors(bad)[0]["description"]


def test_default_window_is_the_last_90_days(client: TestClient, case_city) -> None:
    old_at = datetime.now(UTC) - timedelta(days=100)
    old = _post(client, requested_datetime=old_at.isoformat())
    new = _post(client, description="新")

    def ids(**params) -> list[str]:
        r = client.get(f"{V2}/requests.json", params=params)
        assert r.status_code == 200, r.text
        return [x["service_request_id"] for x in r.json()]

    assert ids() == [new]
    start = (old_at - timedelta(days=1)).isoformat()
    assert ids(start_date=start) == [old]  # start only: 90 days from it
    assert ids(end_date=(old_at + timedelta(days=1)).isoformat()) == [old]
    # the bounds are inclusive
    assert ids(start_date=old_at.isoformat(), end_date=old_at.isoformat()) == [old]
    too_wide = client.get(
        f"{V2}/requests.xml",
        params={"start_date": start, "end_date": datetime.now(UTC).isoformat()},
    )
    assert too_wide.status_code == 400 and "90 days" in _errors(too_wide)[0]["description"]
    backwards = client.get(
        f"{V2}/requests.json",
        params={"start_date": "2026-03-01T00:00:00Z", "end_date": "2026-02-01T00:00:00Z"},
    )
    assert backwards.status_code == 400
    bad = client.get(f"{V2}/requests.json", params={"start_date": "soon"})
    assert bad.status_code == 400 and "start_date" in _errors(bad)[0]["description"]


def _next(r) -> str | None:
    link = r.headers.get("link")
    if not link:
        return None
    for part in link.split(","):
        url, rel = part.split(";")
        if rel.strip() == 'rel="next"':
            return url.strip()[1:-1]
    return None


def test_pages_follow_link_next_without_a_silent_cut(client: TestClient, case_city) -> None:
    made = [_post(client, description=f"第{i}件") for i in range(5)]
    seen: list[str] = []
    url: str | None = f"{V2}/requests.json?page_size=2"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        seen += [x["service_request_id"] for x in r.json()]
        url = _next(r)
        pages += 1
        if url:  # the following page keeps the first page's window
            query = parse_qs(urlsplit(url).query)
            assert query["page_size"] == ["2"] and "end_date" in query and "start_date" in query
    assert pages == 3 and seen == made[::-1]  # newest first, each once
    second = client.get(f"{V2}/requests.xml", params={"page": 2, "page_size": 2})
    assert [x.findtext("service_request_id") for x in _xml(second)] == made[::-1][2:4]
    assert 'rel="prev"' in second.headers["link"]
    assert client.get(f"{V2}/requests.json", params={"page": 9}).json() == []
    for params in ({"page_size": 1001}, {"page_size": 0}, {"page": 0}, {"page": "x"}):
        bad = client.get(f"{V2}/requests.json", params=params)
        assert bad.status_code == 400, params
        assert next(iter(params)) in _errors(bad)[0]["description"]


def test_more_than_1000_requests_are_paged_not_cut(client: TestClient, case_city) -> None:
    n = 1001
    lon, lat = point_lonlat(150, 50)
    now = datetime.now(UTC)
    frame = pd.DataFrame(
        {
            "category_code": ["0102"] * n,
            "lon": [lon] * n,
            "lat": [lat] * n,
            "reported_at": [(now - timedelta(minutes=i + 1)).isoformat() for i in range(n)],
            "source": ["open311"] * n,
        }
    )
    r = client.post(
        "/api/cases/import",
        files={"file": ("cases.csv", io.BytesIO(frame.to_csv(index=False).encode()))},
    )
    assert r.status_code == 200, r.text
    first = client.get(f"{V2}/requests.json")
    assert len(first.json()) == 1000
    following = _next(first)
    assert following is not None
    rest = client.get(following).json()
    ids = [x["service_request_id"] for x in first.json() + rest]
    assert len(rest) == 1 and len(set(ids)) == n


# -- jurisdiction, api_key, discovery ---------------------------------------------------------


def test_jurisdiction_id_is_checked_when_given(client: TestClient, case_city) -> None:
    city = case_city.city  # the default jurisdiction_id is the city key
    sid = _post(client)
    for path in ("services.json", "services/0102.xml", "requests.json", f"requests/{sid}.xml"):
        assert client.get(f"{V2}/{path}", params={"jurisdiction_id": city}).status_code == 200
        assert client.get(f"{V2}/{path}", params={"jurisdiction_id": ""}).status_code == 200
        wrong = client.get(f"{V2}/{path}", params={"jurisdiction_id": "sfgov.org"})
        assert wrong.status_code == 404, path
        description = _errors(wrong)[0]["description"]
        assert "jurisdiction_id 'sfgov.org' not found" in description and city in description
    wrong = client.post(f"{V2}/requests.json", data=_form(jurisdiction_id="sfgov.org"))
    assert wrong.status_code == 404
    in_url = client.post(f"{V2}/requests.json?jurisdiction_id=sfgov.org", data=_form())
    assert in_url.status_code == 404
    assert client.post(f"{V2}/requests.json", data=_form(jurisdiction_id=city)).status_code == 201
    assert _count_cases(client) == 2


def test_configured_jurisdiction_replaces_the_city_key(settings, sessions, case_city) -> None:
    city = case_city.city
    custom = dataclasses.replace(
        settings, cases=CaseSettings(_env_file=None, open311_jurisdiction="zhengzhou.gov.cn")
    )
    with TestClient(create_app(custom, sessions=sessions)) as client:
        ok = client.get(f"{V2}/services.json", params={"jurisdiction_id": "zhengzhou.gov.cn"})
        assert ok.status_code == 200
        assert (
            client.get(f"{V2}/services.json", params={"jurisdiction_id": city}).status_code == 404
        )


def test_api_key_as_open311_defines_it(settings, sessions, session, case_city) -> None:
    """api_key (in the form or the URL) is an API key of the city's: a key with cases.report
    may submit, one without may not, a revoked or unknown one is refused; reading requests
    needs cases.read."""
    accounts = seeded(session, settings)
    _, reporter = accounts.create_key(KeyInput("12345热线", ["cases.report"]), SYSTEM)
    _, reader = accounts.create_key(KeyInput("open311 app", ["cases.read"]), SYSTEM)
    revoked, revoked_secret = accounts.create_key(KeyInput("old", ["cases.report"]), SYSTEM)
    accounts.revoke_key(revoked.id, SYSTEM)
    with TestClient(create_app(settings, sessions=sessions)) as client:
        for form, status in (
            (_form(), 403),
            (_form(api_key=""), 403),
            (_form(api_key="guess"), 403),
            (_form(api_key=revoked_secret), 403),
            (_form(api_key=reader), 403),
            (_form(api_key=reporter), 201),
        ):
            for fmt in ("json", "xml"):
                r = client.post(f"{V2}/requests.{fmt}", data=form)
                assert r.status_code == status, (form, r.text)
                if status == 403:
                    errors = _errors(r)
                    assert errors[0]["code"] == 403
        in_url = client.post(f"{V2}/requests.json?api_key={reporter}", data=_form())
        assert in_url.status_code == 201
        assert client.get(f"{V2}/requests.json").status_code == 403  # cases are never public
        listed = client.get(f"{V2}/requests.json", params={"api_key": reader})
        assert listed.status_code == 200 and len(listed.json()) == 3
        assert "api_key" in client.get("/open311/discovery.json").json()["key_service"]


def test_anonymous_reports_when_the_city_allows_them_are_rate_limited(
    settings, sessions, case_city
) -> None:
    open_city = dataclasses.replace(
        settings,
        auth=AuthSettings(_env_file=None, public_reports=True, public_reports_per_hour=3),
    )
    with TestClient(create_app(open_city, sessions=sessions)) as client:
        answers = [client.post(f"{V2}/requests.json", data=_form()) for _ in range(4)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429]
    assert int(answers[-1].headers["retry-after"]) > 0
    assert answers[-1].json()[0]["code"] == 429


def test_discovery_in_both_formats(client: TestClient, case_city, session) -> None:
    doc = client.get("/open311/discovery.json").json()
    assert list(doc) == ["changeset", "contact", "key_service", "endpoints"]
    assert all(isinstance(doc[k], str) and doc[k] for k in ("changeset", "contact", "key_service"))
    assert "api_key is needed" in doc["key_service"]
    [endpoint] = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert endpoint["changeset"] == doc["changeset"]
    # the endpoint URL is where the services are
    path = urlsplit(endpoint["url"]).path
    assert path == V2 and client.get(f"{path}/services.xml").status_code == 200

    root = _xml(client.get("/open311/discovery.xml"))
    assert root.tag == "discovery"
    assert [c.tag for c in root] == ["changeset", "contact", "key_service", "endpoints"]
    xml_endpoint = root.find("endpoints/endpoint")
    assert [c.tag for c in xml_endpoint] == [
        "specification",
        "url",
        "changeset",
        "type",
        "formats",
    ]
    assert [f.text for f in xml_endpoint.find("formats")] == ["text/xml", "application/json"]
    assert client.get(f"{V2}/discovery.json").json() == doc

    # a new service changes the changeset, telling clients to refresh their cached list
    Catalogue(session, case_city.settings).add_category(
        "0698",
        family="event",
        major_name="其他事件",
        name="乱扔烟头",
        deadline_amount=1,
        deadline_unit="days",
        department="城管执法中队",
        by=SYSTEM,
    )
    session.commit()
    assert client.get("/open311/discovery.json").json()["changeset"] != doc["changeset"]


# -- errors: always Open311's shape under /open311 --------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_every_error_under_open311_has_the_standard_shape(
    client: TestClient, case_city, fmt: str
) -> None:
    cases = [
        ("get", f"{V2}/requests/99999999999999999999.{fmt}", 404, "99999999999999999999"),
        ("get", f"{V2}/requests/abc.{fmt}", 404, "abc"),
        ("get", f"{V2}/requests/999999.{fmt}", 404, "999999"),
        ("get", f"{V2}/nothing-here.{fmt}", 404, "discovery"),
        ("get", f"/open311/v3/services.{fmt}", 404, "discovery"),
        ("delete", f"{V2}/requests.{fmt}", 405, "takes GET, POST"),
        ("put", f"{V2}/services.{fmt}", 405, "takes GET"),
    ]
    for method, path, status, fragment in cases:
        r = client.request(method, path)
        assert r.status_code == status, (path, r.text)
        [error] = _errors(r)
        assert error["code"] == status and fragment in error["description"], (path, error)
        if status == 405:
            assert r.headers["allow"] == error["description"].rsplit("takes ", 1)[1]
    assert _xml(client.get(f"{V2}/services.csv")).tag == "errors"  # XML is the default
    assert client.get(f"{V2}/services.csv").status_code == 404
    # elsewhere the app keeps its own error shape
    assert client.get("/api/nothing-here").json() == {"detail": "Not Found"}
    assert "detail" in client.get("/api/cases/99999999999999999999").json()


# -- a real third-party client ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_georeport_client_reads_everything(
    live_server: str, case_city, fmt: str, session, settings
) -> None:
    """The georeport client reads the service list and definitions; requests are not public
    here (cases never are) and it sends no api_key when reading, so those are read with a
    key of the city's through plain requests."""
    accounts = seeded(session, settings)
    _, key = accounts.create_key(KeyInput("open311 app", ["cases.report", "cases.read"]), SYSTEM)
    endpoint = f"{live_server}{V2}"
    posted = []
    for code in ("0102", "0104"):
        r = requests.post(
            f"{endpoint}/requests.{fmt}", data=_form(service_code=code, api_key=key), timeout=30
        )
        assert r.status_code == 201, r.text
        posted.append(r)
    ids = [
        r.json()[0]["service_request_id"]
        if fmt == "json"
        else _xml(r).findtext("request/service_request_id")
        for r in posted
    ]
    client = GeoReport(endpoint, jurisdiction=case_city.city, api_key=key, output_format=fmt)

    services = client.get_service_list()
    by_code = {s["service_code"]: s for s in services}
    assert by_code["0102"]["service_name"] == "暴露垃圾"
    assert str(by_code["0303"]["metadata"]).lower() == "true"
    definition = client.get_service_definition("0303")
    attribute = (
        definition["attributes"]["attribute"] if fmt == "xml" else definition["attributes"][0]
    )
    assert attribute["code"] == "site_name"

    with pytest.raises(requests.HTTPError) as refused:
        client.get_service_requests(service_code="0102,0104", status="open")
    assert refused.value.response.status_code == 403
    listed = requests.get(
        f"{endpoint}/requests.json",
        params={"service_code": "0102,0104", "status": "open", "api_key": key},
        timeout=30,
    ).json()
    assert {r["service_request_id"] for r in listed} == set(ids)
    one = requests.get(
        f"{endpoint}/requests/{ids[0]}.json", params={"api_key": key}, timeout=30
    ).json()[0]
    lon, lat = point_lonlat(150, 50)
    assert one["service_code"] == "0102" and one["status"] == "open"
    assert abs(float(one["long"]) - lon) < 1e-9 and abs(float(one["lat"]) - lat) < 1e-9
    assert one["grid_code"] == unit_code(COMM_A, 6)

    with pytest.raises(requests.HTTPError) as caught:
        GeoReport(endpoint, jurisdiction="sfgov.org", output_format=fmt).get_service_list()
    assert caught.value.response.status_code == 404

"""OGC API – Features Part 1 at /ogc: checked against the published Part 1 schemas, its own
OpenAPI 3.0 definition, and real clients (GDAL's OAPIF driver, OWSLib)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import shapely
import shapely.affinity
from fastapi.testclient import TestClient
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_openapi
from owslib.ogcapi.features import Features
from referencing import Registry as RefRegistry
from referencing import Resource
from referencing.jsonschema import DRAFT4
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.db.models import Grid
from service.grids.ogc import params as ogc_params
from service.grids.ogc.openapi import ITEMS_ACCEPTED, MAX_LIMIT
from service.grids.registry import GridInput, Registry
from tests.helpers import ogcschemas
from tests.helpers.city import (
    CITY,
    COMM_A,
    DISTRICT,
    STREET,
    X0,
    Y0,
    lonlat,
    mbox,
    point_lonlat,
    small_city,
    unit_code,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)  # the small city is written
T1 = datetime(2025, 6, 1, tzinfo=UTC)  # units get new boundaries
UNITS = sorted(g.code for g in small_city() if g.level == "unit")
A1, A2 = unit_code(COMM_A, 1), unit_code(COMM_A, 2)


@pytest.fixture
def city(registry: Registry) -> Registry:
    registry.write(small_city(), at=T0, by=SYSTEM)
    registry.session.commit()
    return registry


@pytest.fixture
def versioned_city(city: Registry) -> Registry:
    """The small city where A-01 and A-02 moved their shared edge 20 m east at T1."""
    old = {g.code: g for g in small_city()}
    moved = [
        GridInput(A1, "unit", old[A1].name, lonlat(mbox(0, 100, 120, 200))),
        GridInput(A2, "unit", old[A2].name, lonlat(mbox(120, 100, 200, 200))),
    ]
    city.write(moved, at=T1, by=SYSTEM)
    city.session.commit()
    return city


def _link(body: dict[str, Any], rel: str, type_: str | None = None) -> str | None:
    return next(
        (
            lk["href"]
            for lk in body["links"]
            if lk["rel"] == rel and (type_ is None or lk.get("type") == type_)
        ),
        None,
    )


def _all_pages(client: TestClient, url: str, **params: Any) -> list[dict[str, Any]]:
    page = client.get(url, params=params).json()
    features = page["features"]
    while nxt := _link(page, "next"):
        page = client.get(nxt).json()
        features += page["features"]
    return features


# -- resources against the published schemas and the service's own API definition --------------

RESOURCES = {  # path → (Part 1 schema, path template in the API definition, media type)
    "/ogc": ("landingPage", "/", "application/json"),
    "/ogc/conformance": ("confClasses", "/conformance", "application/json"),
    "/ogc/collections": ("collections", "/collections", "application/json"),
    "/ogc/collections/unit": ("collection", "/collections/{collectionId}", "application/json"),
    "/ogc/collections/unit/items?limit=3": (
        "featureCollectionGeoJSON",
        "/collections/{collectionId}/items",
        "application/geo+json",
    ),
    f"/ogc/collections/unit/items/{A1}.v1": (
        "featureGeoJSON",
        "/collections/{collectionId}/items/{featureId}",
        "application/geo+json",
    ),
}


def _own_validator(api: dict[str, Any], template: str, media_type: str) -> OAS30Validator:
    """A validator for the 200 answer that the service's API definition promises."""
    resource = Resource.from_contents(api, default_specification=DRAFT4)
    registry: RefRegistry = RefRegistry().with_resource("urn:citygrid-ogc", resource)
    schema = api["paths"][template]["get"]["responses"]["200"]["content"][media_type]["schema"]
    pointer = schema["$ref"].replace("#", "urn:citygrid-ogc#")
    return OAS30Validator({"$ref": pointer}, registry=registry, format_checker=oas30_format_checker)


def test_every_resource_validates_against_part1_schemas_and_the_api_definition(
    client: TestClient, versioned_city: Registry
) -> None:
    api = client.get("/ogc/api").json()
    for path, (part1, template, media_type) in RESOURCES.items():
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].split(";")[0] == media_type, path
        body = r.json()
        errors = [e.message for e in ogcschemas.validator(part1).iter_errors(body)]
        assert errors == [], (path, part1, errors)
        own = [e.message for e in _own_validator(api, template, media_type).iter_errors(body)]
        assert own == [], (path, own)


def test_landing_page_links_and_collections_with_extents(
    client: TestClient, versioned_city: Registry
) -> None:
    landing = client.get("/ogc").json()
    rels = {lk["rel"]: lk for lk in landing["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["service-doc"]["type"] == "text/html"
    conf = client.get("/ogc/conformance").json()["conformsTo"]
    for cls in ("core", "geojson", "oas30", "html"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{cls}" in conf
    cols = client.get("/ogc/collections").json()["collections"]
    assert [c["id"] for c in cols] == ["city", "district", "street", "community", "unit"]
    unit = next(c for c in cols if c["id"] == "unit")
    minx, miny, maxx, maxy = unit["extent"]["spatial"]["bbox"][0]
    expected = shapely.union_all([g.geometry for g in small_city() if g.level == "unit"]).bounds
    assert (minx, miny, maxx, maxy) == pytest.approx(expected, abs=1e-9)
    # time: from the first version's start; open-ended while versions are current
    assert unit["extent"]["temporal"]["interval"] == [["2025-01-01T00:00:00Z", None]]
    assert _link(unit, "items", "application/geo+json")


# -- the API definition (service-desc) and its HTML documentation (service-doc) ---------------


def test_service_desc_is_openapi_30_describing_every_accepted_parameter(
    client: TestClient, city: Registry
) -> None:
    desc = _link(client.get("/ogc").json(), "service-desc")
    r = client.get(desc)
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    api = r.json()
    validate_openapi(api)  # a valid OpenAPI 3.0 document
    assert api["openapi"].startswith("3.0")
    assert api["servers"][0]["url"].endswith("/ogc")
    items = api["paths"]["/collections/{collectionId}/items"]["get"]
    documented = {p["name"]: p for p in items["parameters"] if p["in"] == "query"}
    assert set(documented) == set(ITEMS_ACCEPTED) == {"limit", "offset", "bbox", "datetime", "f"}
    limit = documented["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, MAX_LIMIT, 100)
    # Part 1's own building blocks: same name, location, style and value type
    official = ogcschemas.schemas()
    for name in ("limit", "bbox", "datetime"):
        ours, theirs = documented[name], official[name]
        for key in ("name", "in", "style", "explode", "required"):
            assert ours[key] == theirs[key], (name, key)
        assert ours["schema"]["type"] == theirs["schema"]["type"]
    assert documented["bbox"]["schema"]["oneOf"] == official["bbox"]["schema"]["oneOf"]
    assert set(items["responses"]) >= {"200", "400", "404", "500"}
    assert "application/geo+json" in items["responses"]["200"]["content"]
    # every documented parameter is accepted; anything else is a 400 naming it
    values = {
        "limit": "5",
        "offset": "1",
        "bbox": "113,34,114,35",
        "datetime": "2025-03-01T00:00:00Z",
        "f": "json",
    }
    for name in documented:
        answer = client.get("/ogc/collections/unit/items", params={name: values[name]})
        assert answer.status_code == 200, (name, answer.text)
    bad = client.get("/ogc/collections/unit/items", params={"bbox-crs": "EPSG:4326"})
    assert bad.status_code == 400 and bad.json()["field"] == "bbox-crs"
    assert bad.json()["code"] == "InvalidParameterValue"


def test_app_openapi_lists_the_items_parameters_too(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    items = doc["paths"]["/ogc/collections/{collection_id}/items"]["get"]
    assert {p["name"] for p in items["parameters"] if p["in"] == "query"} == set(ITEMS_ACCEPTED)


def test_service_doc_is_a_self_contained_html_page(client: TestClient) -> None:
    doc = _link(client.get("/ogc").json(), "service-doc")
    r = client.get(doc)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert page.startswith("<!DOCTYPE html>")
    for text in ("/collections/{collectionId}/items", "limit", "bbox", "datetime", "offset"):
        assert text in page
    # nothing loaded from another host: the page works without internet
    assert "<script" not in page and "<link" not in page


# -- HTML encoding and alternate links --------------------------------------------------------


def test_each_json_resource_has_an_html_alternate_showing_its_links(
    client: TestClient, city: Registry
) -> None:
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/unit"):
        body = client.get(path).json()
        alternate = _link(body, "alternate", "text/html")
        assert alternate, path
        page = client.get(alternate)
        assert page.headers["content-type"].startswith("text/html"), path
        hrefs = set(re.findall(r'<a href="([^"]+)"', page.text))
        targets = {urlsplit(lk["href"]).path for lk in body["links"] if lk["rel"] != "self"}
        assert targets <= {urlsplit(h.replace("&amp;", "&")).path for h in hrefs}, path
    # a browser gets HTML without asking; GDAL and OWSLib ask for JSON or anything
    assert client.get("/ogc", headers={"accept": "text/html,*/*"}).text.startswith("<!DOCTYPE")
    geojson = client.get("/ogc", headers={"accept": "application/geo+json, application/json"})
    assert geojson.headers["content-type"].startswith("application/json")
    assert client.get("/ogc", params={"f": "xml"}).status_code == 400


def test_items_page_as_html_lists_the_features(client: TestClient, city: Registry) -> None:
    page = client.get("/ogc/collections/unit/items", params={"limit": 4, "f": "html"}).text
    for code in UNITS[:4]:
        assert f"{code}.v1" in page
    assert UNITS[4] not in page
    assert 'rel="next"' in page


# -- paging -----------------------------------------------------------------------------------


def test_items_page_with_limit_offset_next_and_prev_links(
    client: TestClient, city: Registry
) -> None:
    r = client.get("/ogc/collections/unit/items", params={"limit": 4})
    assert r.headers["content-type"].startswith("application/geo+json")
    first = r.json()
    assert first["numberMatched"] == 11 and first["numberReturned"] == 4
    assert _link(first, "prev") is None and _link(first, "self", "application/geo+json")
    assert _link(first, "alternate", "text/html")
    features = _all_pages(client, "/ogc/collections/unit/items", limit=4)
    assert [f["properties"]["code"] for f in features] == UNITS
    assert [f["id"] for f in features] == [f"{c}.v1" for c in UNITS]
    last = client.get("/ogc/collections/unit/items", params={"limit": 4, "offset": 8}).json()
    assert last["numberReturned"] == 3 and _link(last, "next") is None
    prev = client.get(_link(last, "prev")).json()
    assert [f["properties"]["code"] for f in prev["features"]] == UNITS[4:8]


def test_limit_above_the_maximum_is_served_as_the_maximum(
    client: TestClient, city: Registry
) -> None:
    r = client.get("/ogc/collections/unit/items", params={"limit": MAX_LIMIT * 5})
    assert r.status_code == 200 and r.json()["numberReturned"] == 11
    for asked in (MAX_LIMIT + 1, MAX_LIMIT * 5, 10**30):  # the page size actually used
        assert ogc_params.limit(str(asked)) == MAX_LIMIT
    assert client.get("/ogc/collections/unit/items", params={"limit": 10**30}).status_code == 200
    one = client.get("/ogc/collections/unit/items", params={"limit": 1}).json()
    assert parse_qs(urlsplit(_link(one, "next")).query) == {"limit": ["1"], "offset": ["1"]}


def test_bad_parameters_are_400_naming_the_parameter(client: TestClient, city: Registry) -> None:
    cases = {
        "limit": ["0", "-3", "ten"],
        "offset": ["-1", "x", str(2**64)],
        "bbox": ["1,2,3", "a,b,c,d", "3,2,1,4", "nan,1,2,3"],
        "datetime": [
            "yesterday",
            "../..",
            "/",
            "2025-06-01T00:00:00Z/2025-01-01T00:00:00Z",
            "2025-02-30",
            "2025-01-01T00:00:00Z/2025-02-01T00:00:00Z/2025-03-01T00:00:00Z",
        ],
    }
    for name, values in cases.items():
        for value in values:
            r = client.get("/ogc/collections/unit/items", params={name: value})
            assert r.status_code == 400, (name, value, r.text)
            body = r.json()
            assert body["field"] == name and body["code"] and name in body["description"]
    assert client.get("/ogc/collections", params={"limit": 3}).status_code == 400
    assert client.get("/ogc/collections/province").status_code == 404
    assert client.get("/ogc/collections/province/items").json()["code"] == "NotFound"


# -- time: grid versions ----------------------------------------------------------------------


def _versions(session: Session, city: str) -> list[tuple[str, int, datetime, datetime | None]]:
    rows = session.execute(
        select(Grid.code, Grid.version, Grid.valid_from, Grid.valid_to).where(
            Grid.city == city, Grid.level == "unit"
        )
    ).all()
    return [(r.code, r.version, r.valid_from, r.valid_to) for r in rows]


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        (None, "now", "now"),
        ("2025-03-01T00:00:00Z", "2025-03-01T00:00:00+00:00", "2025-03-01T00:00:00+00:00"),
        ("2025-03-01T08:00:00+08:00", "2025-03-01T00:00:00+00:00", "2025-03-01T00:00:00+00:00"),
        (
            "2025-03-01T00:00:00Z/2025-07-01T00:00:00Z",
            "2025-03-01T00:00:00+00:00",
            "2025-07-01T00:00:00+00:00",
        ),
        ("../2025-03-01T00:00:00Z", None, "2025-03-01T00:00:00+00:00"),
        ("2025-07-01T00:00:00Z/..", "2025-07-01T00:00:00+00:00", None),
        ("2025-07-01T00:00:00Z/", "2025-07-01T00:00:00+00:00", None),
        ("../2024-06-01T00:00:00Z", None, "2024-06-01T00:00:00+00:00"),
        # a date is the whole day in the city's zone: 2025-06-01 08:00 (= T1) falls in it
        ("2025-06-01", "2025-05-31T16:00:00+00:00", "2025-06-01T15:59:59.999999+00:00"),
        # an instant without offset is city time: 07:59 local is still before T1
        ("2025-06-01T07:59:00", "2025-05-31T23:59:00+00:00", "2025-05-31T23:59:00+00:00"),
        ("2025-06-01T00:00:00Z", "2025-06-01T00:00:00+00:00", "2025-06-01T00:00:00+00:00"),
    ],
)
def test_datetime_selects_versions_whose_validity_meets_it(
    client: TestClient,
    versioned_city: Registry,
    session: Session,
    value: str | None,
    start: str | None,
    end: str | None,
) -> None:
    wall = datetime.now(UTC)
    lo = wall if start == "now" else datetime.fromisoformat(start) if start else None
    hi = wall if end == "now" else datetime.fromisoformat(end) if end else None
    # validity is [valid_from, valid_to); the request is the closed interval [lo, hi]
    expected = sorted(
        f"{code}.v{version}"
        for code, version, valid_from, valid_to in _versions(session, versioned_city.city)
        if (hi is None or valid_from <= hi) and (lo is None or valid_to is None or valid_to > lo)
    )
    params = {"limit": 50} | ({"datetime": value} if value else {})
    features = _all_pages(client, "/ogc/collections/unit/items", **params)
    assert sorted(f["id"] for f in features) == expected
    for f in features:  # each feature carries its own validity
        props = f["properties"]
        assert f["id"] == f"{props['code']}.v{props['version']}"
        assert props["valid_from"] and "valid_to" in props
    # the grid that changed at T1 appears twice exactly when the request spans T1
    twice = (lo is None or lo < T1) and (hi is None or hi >= T1)
    assert (f"{A1}.v1" in expected and f"{A1}.v2" in expected) == twice


def test_versions_by_id_and_the_current_version_by_code(
    client: TestClient, versioned_city: Registry
) -> None:
    old = client.get(f"/ogc/collections/unit/items/{A1}.v1").json()
    assert old["properties"]["version"] == 1
    assert datetime.fromisoformat(old["properties"]["valid_to"]) == T1
    current = client.get(f"/ogc/collections/unit/items/{A1}").json()
    assert current["id"] == f"{A1}.v2" and current["properties"]["valid_to"] is None
    moved = shapely.geometry.shape(current["geometry"])
    assert moved.symmetric_difference(lonlat(mbox(0, 100, 120, 200))).area < 1e-12
    assert _link(current, "collection") and _link(current, "alternate", "text/html")
    assert client.get(f"/ogc/collections/unit/items/{A1}.v3").status_code == 404
    assert client.get(f"/ogc/collections/community/items/{A1}").status_code == 404
    assert client.get(f"/ogc/collections/unit/items/{A1}", params={"x": 1}).status_code == 400


def test_an_unencoded_plus_offset_still_reads_as_an_offset(
    client: TestClient, versioned_city: Registry
) -> None:
    # '+' in a query string decodes to a space; clients often send offsets unencoded
    page = client.get(
        f"/ogc/collections/unit/items?datetime=2025-06-01T07:59:00+08:00&bbox={_around(A1)}"
    ).json()
    assert [f["id"] for f in page["features"]] == [f"{A1}.v1"]
    page = client.get(
        f"/ogc/collections/unit/items?datetime=2025-06-01T08:00:00+08:00&bbox={_around(A1)}"
    ).json()
    assert [f["id"] for f in page["features"]] == [f"{A1}.v2"]


def _around(code: str) -> str:
    """A tiny bbox around the centre of the small city's grid ``code`` (inside it alone)."""
    middle = next(g for g in small_city() if g.code == code).geometry.centroid
    return f"{middle.x - 1e-5},{middle.y - 1e-5},{middle.x + 1e-5},{middle.y + 1e-5}"


# -- bbox: geometries, not envelopes ----------------------------------------------------------

L_SHAPE = shapely.Polygon([(0, 0), (200, 0), (200, 100), (100, 100), (100, 300), (0, 300)])
DIAGONAL = shapely.Polygon([(250, 0), (350, 0), (550, 300), (450, 300)])
U_SHAPE = shapely.Polygon(
    [(600, 0), (900, 0), (900, 300), (800, 300), (800, 100), (700, 100), (700, 300), (600, 300)]
)


def _placed(shape: shapely.Polygon) -> shapely.Geometry:
    """A shape in metres from the fixture's origin, in lon/lat."""
    return lonlat(shapely.affinity.translate(shape, X0, Y0))


@pytest.fixture
def concave_units(registry: Registry) -> dict[str, shapely.Geometry]:
    """One community holding an L-shaped, a diagonal and a U-shaped unit grid."""
    whole = lonlat(mbox(-20, -20, 920, 320))
    units = {
        unit_code(COMM_A, i): _placed(shape)
        for i, shape in enumerate((L_SHAPE, DIAGONAL, U_SHAPE), start=1)
    }
    parents = [
        GridInput(CITY, "city", "市", whole),
        GridInput(DISTRICT, "district", "区", whole),
        GridInput(STREET, "street", "街道", whole),
        GridInput(COMM_A, "community", "社区", whole),
    ]
    cells = [GridInput(code, "unit", f"第{code[-2:]}网格", g) for code, g in units.items()]
    registry.write(parents + cells, at=T0, by=SYSTEM)
    registry.session.commit()
    return units


BOXES = {  # metres: corners of envelopes that the shapes leave empty, and boxes that hit them
    "L's empty top-right corner": (170, 270, 190, 290),
    "diagonal's empty top-left corner": (260, 270, 280, 290),
    "diagonal's empty bottom-right corner": (520, 10, 540, 30),
    "U's notch": (730, 200, 770, 240),
    "L's foot, diagonal's envelope": (190, 90, 260, 110),
    "U's west arm": (610, 250, 640, 280),
    "everything": (-10, -10, 910, 310),
}


@pytest.mark.parametrize("name", list(BOXES))
def test_bbox_selects_grids_whose_geometry_meets_the_box_not_its_envelope(
    client: TestClient, concave_units: dict[str, shapely.Geometry], name: str
) -> None:
    x1, y1, x2, y2 = BOXES[name]
    bbox = (*point_lonlat(x1, y1), *point_lonlat(x2, y2))
    box = shapely.box(*bbox)
    expected = sorted(code for code, g in concave_units.items() if g.intersects(box))
    by_envelope = {code for code, g in concave_units.items() if box.intersects(g.envelope)}
    if "empty" in name or "envelope" in name:  # the box tells geometry from envelope apart
        assert by_envelope - set(expected)
    features = _all_pages(
        client, "/ogc/collections/unit/items", bbox=",".join(f"{v:.9f}" for v in bbox)
    )
    assert sorted(f["properties"]["code"] for f in features) == expected


# -- real clients -----------------------------------------------------------------------------


def test_gdal_ogrinfo_lists_and_reads_collections(live_server: str, city: Registry) -> None:
    out = subprocess.run(
        ["ogrinfo", "-ro", "-q", f"OAPIF:{live_server}/ogc"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for level in ("city", "district", "street", "community", "unit"):
        assert level in out
    # read every unit grid through GDAL (it pages with limit/next) and compare with the source
    features = _ogr2ogr(live_server, "unit", page_size=4)
    source = {g.code: g.geometry for g in small_city() if g.level == "unit"}
    assert sorted(f["properties"]["code"] for f in features) == sorted(source)
    for f in features:
        got = shapely.geometry.shape(f["geometry"])
        assert got.symmetric_difference(source[f["properties"]["code"]]).area < 1e-12


def _ogr2ogr(server: str, layer: str, page_size: int) -> list[dict[str, Any]]:
    dump = subprocess.run(
        [
            "ogr2ogr",
            "-f",
            "GeoJSON",
            "/vsistdout/",
            f"OAPIF:{server}/ogc",
            layer,
            "-oo",
            f"PAGE_SIZE={page_size}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    return json.loads(dump)["features"]


def test_gdal_pages_through_every_unit_grid_of_the_demo_city(
    demo_live_server: str, demo_registry: Registry, session: Session
) -> None:
    current = set(
        session.scalars(
            select(Grid.code).where(
                Grid.city == demo_registry.city, Grid.level == "unit", Grid.valid_to.is_(None)
            )
        )
    )
    assert len(current) > 1000  # many pages of 100
    features = _ogr2ogr(demo_live_server, "unit", page_size=100)
    codes = [f["properties"]["code"] for f in features]
    assert len(codes) == len(set(codes)) and set(codes) == current


def test_owslib_reads_the_api(live_server: str, versioned_city: Registry) -> None:
    api = Features(f"{live_server}/ogc/")
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (api.conformance()["conformsTo"])
    )
    assert api.api()["openapi"].startswith("3.0")
    assert api.feature_collections() == ["city", "district", "street", "community", "unit"]
    assert api.collection("unit")["extent"]["temporal"]["interval"][0][1] is None
    page = api.collection_items("unit", limit=4)
    assert page["numberMatched"] == 11 and len(page["features"]) == 4
    inner = [float(v) for v in _around(A1).split(",")]
    hits = api.collection_items("unit", bbox=inner)["features"]
    assert [f["id"] for f in hits] == [f"{A1}.v2"]
    then = api.collection_items("unit", bbox=inner, datetime_="../2025-03-01T00:00:00Z")
    assert [f["id"] for f in then["features"]] == [f"{A1}.v1"]
    both = api.collection_items("unit", bbox=inner, datetime_="2025-01-01T00:00:00Z/..")
    assert sorted(f["id"] for f in both["features"]) == [f"{A1}.v1", f"{A1}.v2"]
    assert api.collection_item("unit", f"{A1}.v1")["properties"]["version"] == 1

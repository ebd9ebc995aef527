"""OGC API – Features Part 1 at /ogc, checked with a real client (GDAL's OAPIF driver)."""

from __future__ import annotations

import json
import subprocess

import pytest
import shapely
from cityfixture import COMM_A, small_city, unit_code
from fastapi.testclient import TestClient

from service.registry import Registry


@pytest.fixture
def city(registry: Registry) -> Registry:
    registry.write(small_city())
    registry.session.commit()
    return registry


def test_landing_conformance_and_collections(client: TestClient, city: Registry) -> None:
    landing = client.get("/ogc").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    conf = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    cols = client.get("/ogc/collections").json()["collections"]
    assert [c["id"] for c in cols] == ["city", "district", "street", "community", "unit"]
    unit = next(c for c in cols if c["id"] == "unit")
    minx, miny, maxx, maxy = unit["extent"]["spatial"]["bbox"][0]
    expected = shapely.union_all([g.geometry for g in small_city() if g.level == "unit"]).bounds
    assert (minx, miny, maxx, maxy) == pytest.approx(expected, abs=1e-9)


def test_items_page_with_limit_offset_and_next_links(client: TestClient, city: Registry) -> None:
    r = client.get("/ogc/collections/unit/items", params={"limit": 4})
    assert r.headers["content-type"].startswith("application/geo+json")
    page = r.json()
    assert page["numberMatched"] == 11 and page["numberReturned"] == 4
    codes = [f["id"] for f in page["features"]]
    while nxt := next((lk["href"] for lk in page["links"] if lk["rel"] == "next"), None):
        page = client.get(nxt).json()
        codes += [f["id"] for f in page["features"]]
    assert codes == sorted(g.code for g in small_city() if g.level == "unit")


def test_bbox_filter_matches_shapely_intersects(client: TestClient, city: Registry) -> None:
    units = {g.code: g.geometry for g in small_city() if g.level == "unit"}
    first = units[unit_code(COMM_A, 1)]
    bbox = first.centroid.buffer(0.0003).bounds
    page = client.get(
        "/ogc/collections/unit/items", params={"bbox": ",".join(map(str, bbox))}
    ).json()
    expected = sorted(c for c, g in units.items() if g.intersects(shapely.box(*bbox)))
    assert sorted(f["id"] for f in page["features"]) == expected


def test_item_by_id_and_errors(client: TestClient, city: Registry) -> None:
    code = unit_code(COMM_A, 2)
    r = client.get(f"/ogc/collections/unit/items/{code}")
    assert r.status_code == 200 and r.json()["properties"]["code"] == code
    assert client.get(f"/ogc/collections/community/items/{code}").status_code == 404
    assert client.get("/ogc/collections/province").status_code == 404
    assert client.get("/ogc/collections/unit/items", params={"limit": 0}).status_code == 400
    assert client.get("/ogc/collections/unit/items", params={"bbox": "1,2,3"}).status_code == 400
    assert client.get("/ogc/collections/unit/items", params={"foo": 1}).status_code == 400


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
    dump = subprocess.run(
        [
            "ogr2ogr",
            "-f",
            "GeoJSON",
            "/vsistdout/",
            f"OAPIF:{live_server}/ogc",
            "unit",
            "-oo",
            "PAGE_SIZE=4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    features = json.loads(dump)["features"]
    source = {g.code: g.geometry for g in small_city() if g.level == "unit"}
    assert sorted(f["properties"]["code"] for f in features) == sorted(source)
    for f in features:
        got = shapely.geometry.shape(f["geometry"])
        assert got.symmetric_difference(source[f["properties"]["code"]]).area < 1e-12

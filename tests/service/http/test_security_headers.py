"""Security headers on every answer: API JSON, pages, tiles, static files, errors, docs."""

from __future__ import annotations

import dataclasses
import re

import pytest
from fastapi.testclient import TestClient

from service.factory import create_app
from service.settings import MapSettings

SAMPLE = [
    ("GET", "/api/grids"),  # API JSON
    ("GET", "/"),  # the map page (or its 404 page: the empty city has no grids)
    ("GET", "/login"),  # a page anyone sees
    ("GET", "/tiles/grids/14/13365/6525.mvt"),  # a vector tile
    ("GET", "/static/citygrid/dispatcher.js"),  # a static file
    ("GET", "/static/vendor/leaflet@1.9.3/leaflet.css"),
    ("GET", "/api/no-such-thing"),  # 404
    ("POST", "/api/grids/import"),  # 422 (no file)
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/ogc/collections"),
]


def _check(r) -> None:
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert re.search(r"script-src 'self' 'nonce-[\w-]+'(;|$)", csp), csp  # no unsafe-inline
    assert "'unsafe-eval'" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize(("method", "path"), SAMPLE)
def test_every_answer_carries_the_security_headers(
    client: TestClient, method: str, path: str
) -> None:
    r = client.request(method, path)
    assert r.status_code < 500, r.text
    _check(r)


def test_refusals_carry_them_too(anonymous_client: TestClient) -> None:
    r = anonymous_client.get("/api/cases")
    assert r.status_code == 401
    _check(r)
    r = anonymous_client.get("/", follow_redirects=False)
    assert r.status_code == 303
    _check(r)


def test_the_map_page_runs_only_scripts_with_this_answers_nonce(
    client: TestClient, case_city
) -> None:
    r = client.get("/")
    assert r.status_code == 200, r.text
    nonce = re.search(r"'nonce-([\w-]+)'", r.headers["content-security-policy"]).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", r.text)
    assert inline and all(f'nonce="{nonce}"' in attrs for attrs in inline)
    markup = re.sub(r"<script.*?</script>", "", r.text, flags=re.S)
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", markup)  # no inline event handlers
    again = client.get("/")
    assert nonce not in again.headers["content-security-policy"]  # one per answer


def test_swagger_ui_is_served_from_the_service(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text
    nonce = re.search(r"'nonce-([\w-]+)'", page.headers["content-security-policy"]).group(1)
    assert f'<script nonce="{nonce}">' in page.text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # not served: it would need a CDN


def test_the_base_maps_tile_host_may_serve_images(settings, sessions) -> None:
    osm = dataclasses.replace(settings, map=MapSettings(_env_file=None, basemap="osm"))
    with TestClient(create_app(osm, sessions=sessions)) as c:
        csp = c.get("/healthz").headers["content-security-policy"]
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in csp

"""Heat-map layers: server-side aggregates checked against independent counts (small city)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import shapely
from PIL import Image
from shapely.geometry import shape

from gis.gi_star import HOT_SPOT_CLASSES
from layers.i18n import messages
from layers.styles import ANSWER_TEXTS
from tests.helpers.city import COMM_A, COMM_B, point_lonlat, small_city, unit_code
from tests.helpers.patrol import walk

WINDOW = {"from": "2026-11-01T00:00:00", "to": "2026-11-30T00:00:00"}
# (x, y) in metres, category: four in A-02 (x, y in 100..200), a few elsewhere
CASES = [
    ((150, 150), "0102"),
    ((152, 151), "0102"),
    ((160, 140), "0502"),
    ((110, 190), "0102"),
    ((50, 50), "0102"),
    ((750, 150), "0502"),
    ((350, 20), "0102"),
]


@pytest.fixture
def heat_city(client, case_city):
    for (x, y), category in CASES:
        lon, lat = point_lonlat(x, y)
        r = client.post(
            "/api/cases",
            json={
                "category_code": category,
                "lon": lon,
                "lat": lat,
                "reported_at": "2026-11-17T10:00:00",
                "source": "patrol",
                "fields": {"shop_name": "x", "site_name": "y"},
            },
        )
        assert r.status_code == 201, r.text
    r = client.put(
        "/api/patrol/workers/W001", json={"code": "W001", "name": "王伟", "devices": ["phone-1"]}
    )
    assert r.status_code == 201
    fixes = walk([(2, 50), (398, 50)])
    assert client.post(
        "/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes}
    ).is_success
    return client


def _grid_geoms():
    return {g.code: g.geometry for g in small_city() if g.level == "unit"}


def _points():
    return [shapely.Point(point_lonlat(x, y)) for (x, y), _ in CASES]


def test_grid_layer_counts_cases_per_grid_like_geos(heat_city):
    r = heat_city.get("/api/heat/grids", params=WINDOW)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["legend"]["rows"] and body["legend"]["title"].startswith("Cases per km²")
    got = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    for code, geom in _grid_geoms().items():
        expected = sum(geom.covers(p) for p in _points())
        assert got[code]["cases"] == expected, code
        assert got[code]["fill"].startswith("#")
    a02 = got[unit_code(COMM_A, 2)]
    assert a02["responsible_person"] == "网格员2" and a02["open"] == 4
    assert a02["per_km2"] == pytest.approx(4 / 0.01, rel=0.01)  # 4 cases in 10,000 m²
    assert got[unit_code(COMM_A, 5)]["visits"] == 1 and got[unit_code(COMM_A, 1)]["visits"] == 0


def test_category_and_grid_filters(heat_city):
    r = heat_city.get("/api/heat/grids", params={**WINDOW, "category": "05"})
    got = {f["properties"]["code"]: f["properties"]["cases"] for f in r.json()["features"]}
    assert sum(got.values()) == 2
    r = heat_city.get("/api/heat/grids", params={**WINDOW, "grid": COMM_B})
    assert {f["properties"]["code"] for f in r.json()["features"]} == {
        unit_code(COMM_B, s) for s in (1, 2, 3)
    }


def test_hexbins_count_every_case_once(heat_city):
    r = heat_city.get("/api/heat/hexbins", params={**WINDOW, "size_m": 100})
    assert r.status_code == 200
    features = r.json()["features"]
    assert sum(f["properties"]["count"] for f in features) == len(CASES)
    hexes = [shape(f["geometry"]) for f in features]
    for p in _points():
        assert any(h.buffer(1e-9).covers(p) for h in hexes)


def test_kde_is_a_png_overlay_covering_the_cases(heat_city):
    r = heat_city.get("/api/heat/kde", params={**WINDOW, "bandwidth_m": 50})
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "ImageOverlay" and body["points"] == len(CASES)
    png = base64.b64decode(body["image"].split(",", 1)[1])
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGBA"
    (south, west), (north, east) = body["bounds"]
    for p in _points():
        assert west <= p.x <= east and south <= p.y <= north
    alpha = np.asarray(image)[:, :, 3]
    assert alpha.max() > 0 and (alpha == 0).any()  # drawn where cases are, clear elsewhere


def test_gi_star_classifies_every_grid(heat_city):
    r = heat_city.get("/api/heat/gi", params={**WINDOW, "permutations": 199})
    assert r.status_code == 200
    props = [f["properties"] for f in r.json()["features"]]
    assert len(props) == 11
    areas = {g.code: g for g in small_city()}
    assert {p["class"] for p in props} <= set(HOT_SPOT_CLASSES)
    a02 = next(p for p in props if p["code"] == unit_code(COMM_A, 2))
    assert a02["value"] == pytest.approx(400, rel=0.01)
    assert areas  # the fixture city is the one the grids came from


def test_coverage_and_blind_spot_layers(heat_city):
    r = heat_city.get("/api/heat/coverage", params=WINDOW)
    shares = {
        f["properties"]["code"]: f["properties"]["covered_share"] for f in r.json()["features"]
    }
    assert shares[unit_code(COMM_A, 5)] > 0.4 and shares[unit_code(COMM_A, 1)] == 0
    r = heat_city.get("/api/heat/blind", params={**WINDOW, "min_cases": 2})
    blind = {f["properties"]["code"]: f["properties"] for f in r.json()["features"]}
    assert unit_code(COMM_A, 2) in blind  # 4 cases, never patrolled
    assert blind[unit_code(COMM_A, 2)]["patrol_hours"] == 0
    assert unit_code(COMM_A, 5) not in blind  # 1 case only
    r = heat_city.get("/api/heat/tracks", params=WINDOW)
    assert r.status_code == 200 and r.json()["points"] == len(walk([(2, 50), (398, 50)]))


def test_gcj02_answers_are_shifted(heat_city):
    from gis.datum import transform_geometries

    plain = heat_city.get("/api/heat/grids", params=WINDOW).json()["features"][0]
    shifted = heat_city.get("/api/heat/grids", params={**WINDOW, "datum": "gcj02"}).json()
    moved = shifted["features"][0]
    expected = transform_geometries(shape(plain["geometry"]), "wgs84", "gcj02")
    assert shape(moved["geometry"]).equals_exact(expected, 1e-7)
    kde = heat_city.get("/api/heat/kde", params={**WINDOW, "datum": "gcj02"}).json()
    plain_kde = heat_city.get("/api/heat/kde", params=WINDOW).json()
    assert kde["bounds"] != plain_kde["bounds"]


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/api/heat/nope", {}, 404, "layer"),
        ("/api/heat/grids", {"category": "77"}, 404, "category"),
        ("/api/heat/grids", {"grid": "41010599999999"}, 404, "grid"),
        ("/api/heat/grids", {"from": "2026-11-30", "to": "2026-11-01"}, 422, "to"),
        ("/api/heat/hexbins", {"size_m": 5}, 422, "size_m"),
        ("/api/heat/kde", {"bandwidth_m": 1}, 422, "bandwidth_m"),
        ("/api/heat/gi", {"permutations": 5}, 422, "permutations"),
    ],
)
def test_bad_requests_name_the_parameter(heat_city, path, params, status, field):
    r = heat_city.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


def test_large_answers_are_gzipped(heat_city):
    r = heat_city.get("/api/heat/grids", params=WINDOW, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.json()["type"] == "FeatureCollection"  # the client undoes it transparently


def test_answers_are_reused_until_the_data_changes(heat_city):
    first = heat_city.get("/api/heat/grids", params=WINDOW).json()
    cache = heat_city.app.state.heat_cache
    assert heat_city.get("/api/heat/grids", params=WINDOW).json() == first
    assert len(cache._answers) == 1  # served from the cache, not recomputed
    lon, lat = point_lonlat(50, 150)  # a new case in A-01
    r = heat_city.post(
        "/api/cases",
        json={"category_code": "0102", "lon": lon, "lat": lat, "reported_at": "2026-11-18T10:00"},
    )
    assert r.status_code == 201
    after = heat_city.get("/api/heat/grids", params=WINDOW).json()
    cases = {f["properties"]["code"]: f["properties"]["cases"] for f in after["features"]}
    assert cases[unit_code(COMM_A, 1)] == 1
    assert len(cache._answers) == 2


def _translated(text: str, texts: dict[str, str]) -> str | None:
    """What dispatcher.js's C.translate shows for ``text`` (None: shown as given)."""
    if text in texts:
        return texts[text]
    numbers = re.findall(r"\d+(?:\.\d+)?", text)
    found = texts.get(re.sub(r"\d+(?:\.\d+)?", "{n}", text)) if numbers else None
    if found is None:
        return None
    for n in numbers:
        found = found.replace("{n}", n, 1)
    return found


def test_every_legend_text_of_the_answers_reads_in_chinese_on_the_page(heat_city):
    texts = messages("zh_CN").browser(ANSWER_TEXTS)["messages"]
    asked = [
        ("grids", {}),
        ("grids", {"per": "patrol_hour"}),
        ("hexbins", {"size_m": 100}),
        ("kde", {"bandwidth_m": 50}),
        ("gi", {"permutations": 99}),
        ("coverage", {"metric": "share"}),
        ("coverage", {"metric": "since"}),
        ("tracks", {}),
        ("blind", {"min_cases": 1}),
    ]
    for layer, params in asked:
        r = heat_city.get(f"/api/heat/{layer}", params={**WINDOW, **params})
        assert r.status_code == 200, r.text
        legend = r.json()["legend"]
        assert _translated(legend["title"], texts), (layer, legend["title"])
        for row in legend["rows"]:
            if re.search(r"[a-z]", row["label"]):  # words, not a class of numbers
                assert _translated(row["label"], texts), (layer, row["label"])

"""``GET /``: the dispatcher page on the small city, and refusals as HTML pages.

(Named ``test_api_page`` because ``tests/layers/test_page.py`` holds the rendering tests and
test modules need unique names here.)
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from gis.datum import wgs84_to_gcj02
from layers.page import layer_titles
from service.accounts.principal import SYSTEM
from service.grids.registry import Registry
from service.settings import AppSettings, MapSettings
from tests.helpers.accounts import admin_client
from tests.helpers.city import COMM_A, lonlat, mbox, unit_code

LAYER_TITLES = layer_titles()  # the default (Chinese) page's titles

SHANGHAI = ZoneInfo("Asia/Shanghai")


def fitted_bounds(html: str) -> tuple[float, float, float, float]:
    """(west, south, east, north) the page fits the map to."""
    (south, west), (north, east) = json.loads(
        re.search(r"fitBounds\(\s*(\[.*?\]\]),", html, re.S)[1]
    )
    return west, south, east, north


def layer_urls(html: str) -> dict[str, str]:
    found = re.findall(r"L\.Citygrid\.\w+\(\s*(\"[^\"]*\"), (\{.*?\})\s*\);", html, re.S)
    return {json.loads(opts)["title"]: json.loads(url) for url, opts in found}


def test_page_opens_on_the_city_with_catalogue_kinds_and_every_layer(
    client: TestClient, case_city: Registry
) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    for title in LAYER_TITLES.values():
        assert json.dumps(title) in html  # in the layer control
    # the filter lists the catalogue; the hotspot legend the kinds
    assert "0101 私搭乱建" in html and "B0101 上水井盖" in html
    assert json.dumps("农贸市场") in html and json.dumps("铁路沿线") in html
    # opens on the current city-level grid (independent: the fixture's geometry)
    expected = lonlat(mbox(0, 0, 800, 200)).bounds
    assert fitted_bounds(html) == pytest.approx(expected, abs=1e-9)
    # default period: the last 30 days, today included
    today = datetime.now(SHANGHAI).date()
    first = (today - timedelta(days=29)).isoformat()
    grids_url = layer_urls(html)[LAYER_TITLES["density"]]
    assert (
        f"from={first}" in grids_url
        and f"to={(today + timedelta(days=1)).isoformat()}" in grids_url
    )


def test_filters_reach_every_layer_and_the_note(client: TestClient, case_city: Registry) -> None:
    grid = unit_code(COMM_A, 2)
    r = client.get(
        "/", params={"from": "2026-11-01", "to": "2026-11-20", "category": "05", "grid": grid}
    )
    assert r.status_code == 200, r.text
    urls = layer_urls(r.text)
    assert (
        "category=05" in urls[LAYER_TITLES["cases"]]
        and f"grid={grid}" in urls[LAYER_TITLES["cases"]]
    )
    for kind in ("density", "hexbins", "gi", "blind"):
        url = urls[LAYER_TITLES[kind]]
        assert "from=2026-11-01" in url and "to=2026-11-21" in url
        assert "category=05" in url and f"grid={grid}" in url
    text = re.sub(r"<[^>]+>", " ", r.text)
    assert re.search(r"上报时间：\s+2026年11月1日\s–\s20日", text)  # dates as zh_CN writes them
    assert f"{grid} 甲社区第02网格" in text and "05 街面秩序 (全部)" in text
    # the map opens on that grid: 100 m × 100 m, from x=100 to 200, y=100 to 200
    assert fitted_bounds(r.text) == pytest.approx(lonlat(mbox(100, 100, 200, 200)).bounds, abs=1e-9)


@pytest.mark.parametrize(
    ("params", "status", "field", "message"),
    [
        ({"category": "77"}, 404, "category", "no category &#x27;77&#x27;"),
        ({"grid": "41010599999999"}, 404, "grid", "no grid with code &#x27;41010599999999&#x27;"),
        ({"grid": "甲社区"}, 422, "grid", "grid must be a grid code"),
        ({"from": "2026-02-30"}, 422, "from", "must be a date like 2026-11-16"),
        (
            {"from": "2026-11-20", "to": "2026-11-10"},
            422,
            "to",
            "ends (2026-11-10) before it starts",
        ),
        ({"from": "2024-01-01", "to": "2026-11-10"}, 422, "from", "at most 366 days"),
    ],
)
def test_a_filter_that_cannot_be_shown_is_an_html_page_saying_why(
    client: TestClient, case_city: Registry, params, status, field, message
) -> None:
    r = client.get("/", params={**params, "lang": "en"})
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert message in r.text and '<html lang="en">' in r.text
    assert f"<code>{field}</code>" in r.text
    assert "L.map(" not in r.text  # no map pretending to be fine


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"grid": "甲社区"}, "grid 必须是网格编码（数字），收到的是 &#x27;甲社区&#x27;"),
        ({"from": "2026-02-30"}, "&#x27;from&#x27; 必须是日期（如 2026-11-16）"),
        ({"from": "2026-11-20", "to": "2026-11-10"}, "结束日期（2026-11-10）早于开始日期"),
    ],
)
def test_the_refusal_page_is_chinese_first_with_a_switch(
    client: TestClient, case_city: Registry, params, message
) -> None:
    r = client.get("/", params=params)
    assert r.status_code == 422 and '<html lang="zh-CN">' in r.text
    assert "<h1>422 无法显示</h1>" in r.text and message in r.text and "返回地图" in r.text
    # the same request in English, one click away
    switch = re.search(r'<a href="([^"]+)" lang="en">English</a>', r.text).group(1)
    english = client.get(switch.replace("&amp;", "&"))
    assert english.status_code == 422 and "<h1>422 Cannot show this</h1>" in english.text


def test_a_city_without_grids_says_so(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "no grids yet" in r.text


def test_static_files_are_served(client: TestClient) -> None:
    js = client.get("/static/citygrid/dispatcher.js")
    assert js.status_code == 200 and "L.Citygrid" in js.text
    assert "javascript" in js.headers["content-type"]
    leaflet = client.get("/static/vendor/leaflet@1.9.3/leaflet.css")
    assert leaflet.status_code == 200 and ".leaflet-container" in leaflet.text
    assert client.get("/static/../pyproject.toml").status_code == 404


def test_amap_base_map_shifts_the_view_and_asks_for_gcj02(
    settings: AppSettings, sessions, session, case_city: Registry
) -> None:
    settings.map = MapSettings(_env_file=None, basemap="amap")
    with admin_client(settings, sessions, session) as c:
        html = c.get("/").text
    urls = layer_urls(html)
    assert all("datum=gcj02" in url for url in urls.values()), urls
    west, south, east, north = lonlat(mbox(0, 0, 800, 200)).bounds
    lon, lat = wgs84_to_gcj02(np.array([west, east]), np.array([south, north]))
    assert fitted_bounds(html) == pytest.approx((lon[0], lat[0], lon[1], lat[1]), abs=1e-9)
    assert "webrd0{s}.is.autonavi.com" in html


def test_map_settings_refuse_tianditu_without_key_and_a_template_without_z() -> None:
    with pytest.raises(ValidationError, match="TIANDITU_KEY"):
        MapSettings(_env_file=None, basemap="tianditu")
    with pytest.raises(ValidationError, match="XYZ template"):
        MapSettings(_env_file=None, basemap="osm", tile_url="http://tiles.example/tile.png")
    assert MapSettings(_env_file=None).basemap == "none"


# -- the same views as static files: `citygrid heatmap` ------------------------------------------
HEATMAP_CITY = "990220"  # committed by the CLI test; removed after it


@pytest.fixture
def heatmap_env(monkeypatch: pytest.MonkeyPatch, database_url: str, engine):
    from datetime import UTC

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from service.cases.catalogue import seed_catalogue
    from service.db.models import (
        Category,
        CoverageRun,
        Grid,
        GridCoverage,
        HotspotCoverage,
        HotspotKind,
    )
    from service.settings import DatabaseSettings, GridSettings
    from tests.helpers.city import small_city

    settings = AppSettings(
        database=DatabaseSettings(_env_file=None, database_url=database_url),
        grids=GridSettings(_env_file=None, city=HEATMAP_CITY),
    )
    with Session(engine) as s:
        Registry(s, settings).write(small_city(), at=datetime(2025, 1, 1, tzinfo=UTC), by=SYSTEM)
        seed_catalogue(s, HEATMAP_CITY)
        s.commit()
    monkeypatch.setenv("CITYGRID_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYGRID_CITY", HEATMAP_CITY)
    yield
    with Session(engine) as s:
        runs = select(CoverageRun.id).where(CoverageRun.city == HEATMAP_CITY)
        for model in (GridCoverage, HotspotCoverage):
            s.query(model).filter(model.run_id.in_(runs)).delete(synchronize_session=False)
        for model in (CoverageRun, Grid, Category, HotspotKind):
            s.query(model).filter(model.city == HEATMAP_CITY).delete()
        s.commit()


def test_heatmap_command_writes_a_png_and_an_offline_page(heatmap_env, tmp_path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from service.cli import app

    runner = CliRunner()
    png = tmp_path / "grids.png"
    args = ["heatmap", "--layer", "grids", "--from", "2026-11-16", "--to", "2026-11-22"]
    r = runner.invoke(app, [*args, "--out", str(png), "--size", "640x480"])
    assert r.exit_code == 0, r.output
    assert Image.open(png).size == (640, 480)
    page = tmp_path / "kde.html"
    r = runner.invoke(app, [*args[:1], "--layer", "kde", "--out", str(page)])
    assert r.exit_code == 0, r.output
    html = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "/static/" not in html
    assert html.count('"type": "Feature"') == 11  # the unit grid outlines, embedded
    r = runner.invoke(app, [*args, "--grid", "41010599999999", "--out", str(png)])
    assert r.exit_code == 1 and "no grid with code" in r.output
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "x.pdf")])
    assert r.exit_code == 1 and ".png or .html" in r.output

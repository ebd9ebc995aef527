"""``/m/``, the grid worker's phone page, and ``/m/sw.js``, its service worker: who gets the
page, what extent, parts and base map it is given, and what the worker keeps offline."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy.orm import Session, sessionmaker

from gis.datum import wgs84_to_gcj02
from layers.i18n import messages
from layers.mobile import mobile_texts
from service.factory import create_app
from service.grids.registry import Registry
from service.settings import AppSettings, MapSettings
from tests.helpers.accounts import bearer, make_user
from tests.helpers.city import COMM_A, small_city


def _block(html: str, element_id: str) -> Any:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html)
    assert match, element_id
    return json.loads(match.group(1))


def _community_a_bounds() -> tuple[float, ...]:
    units = [
        g.geometry for g in small_city() if g.level == "unit" and g.code.startswith(COMM_A[:12])
    ]
    return tuple(shapely.union_all(units).bounds)


@pytest.fixture
def app_for(sessions: sessionmaker[Session]):
    def make(settings: AppSettings) -> TestClient:
        return TestClient(create_app(settings, sessions=sessions))

    return make


def test_someone_not_logged_in_is_sent_to_the_login_form(
    case_city: Registry, anonymous_client: TestClient
) -> None:
    answer = anonymous_client.get("/m/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fm%2F"


def test_an_account_that_neither_reports_verifies_nor_patrols_gets_the_403_page(
    case_city: Registry, anonymous_client: TestClient, session: Session, settings: AppSettings
) -> None:
    clerk = make_user(session, settings, "dispatcher", login="disp")
    answer = anonymous_client.get("/m/", headers=bearer(session, settings, clerk))
    assert answer.status_code == 403
    assert "上报问题" in answer.text and "核查结案" in answer.text  # the permissions it needs


def test_a_grid_worker_gets_the_extent_of_their_grids_and_the_parts_they_may_use(
    case_city: Registry, anonymous_client: TestClient, session: Session, settings: AppSettings
) -> None:
    worker = make_user(session, settings, "grid_worker", login="gw", scope_grids=[COMM_A])
    answer = anonymous_client.get("/m/", headers=bearer(session, settings, worker))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-cache"
    config = _block(answer.text, "m-config")
    assert config["scope"] == [COMM_A[:12]]
    assert config["bounds"] == pytest.approx(_community_a_bounds(), abs=1e-7)
    # the seeded grid worker verifies and sends back, but feedback is the department's
    assert config["actions"] == ["verify", "rework"]
    assert config["report"] and config["patrol"] and config["orders"]
    assert config["datum"] == "wgs84" and config["tiles"] == []
    assert config["worker"] == "/m/sw.js" and config["page"] == "/m/"
    # every text from the one dict, Chinese first; English on request
    assert _block(answer.text, "m-texts") == mobile_texts(messages("zh_CN"))
    assert "<h1>网格员工作台</h1>" in answer.text
    english = anonymous_client.get("/m/?lang=en", headers=bearer(session, settings, worker))
    assert _block(english.text, "m-texts") == mobile_texts(messages("en"))
    # no inline code: the only scripts are files of the service and the two data blocks
    scripts = re.findall(r"<script([^>]*)>", answer.text)
    assert all('src="/static/' in s or 'type="application/json"' in s for s in scripts)


def test_an_inspector_reports_but_sees_no_patrol_or_case_actions(
    case_city: Registry, anonymous_client: TestClient, session: Session, settings: AppSettings
) -> None:
    inspector = make_user(session, settings, "inspector", login="insp")
    answer = anonymous_client.get("/m/", headers=bearer(session, settings, inspector))
    config = _block(answer.text, "m-config")
    assert config["report"] and not config["patrol"] and not config["orders"]
    assert config["actions"] == [] and config["scope"] is None  # the whole city
    city = shapely.union_all([g.geometry for g in small_city() if g.level == "city"])
    assert config["bounds"] == pytest.approx(city.bounds, abs=1e-7)
    assert 'id="m-patrol-tab"' not in answer.text and 'id="case-detail"' not in answer.text


def test_under_an_amap_base_map_the_page_draws_in_gcj02_with_the_amap_tiles(
    case_city: Registry, app_for, session: Session, settings: AppSettings
) -> None:
    amap = dataclasses.replace(settings, map=MapSettings(_env_file=None, basemap="amap"))
    worker = make_user(session, settings, "grid_worker", login="gw2", scope_grids=[COMM_A])
    with app_for(amap) as client:
        answer = client.get("/m/", headers=bearer(session, settings, worker))
        config = _block(answer.text, "m-config")
        assert config["datum"] == "gcj02"
        (tiles,) = config["tiles"]
        assert "autonavi.com" in tiles["url"] and tiles["options"]["subdomains"] == "1234"
        assert tiles["options"]["attribution"] == "© 高德地图 AutoNavi"
        # the grids the script asks for (datum=gcj02) are shifted as the phone's position is
        west, south, east, north = config["bounds"]
        found = client.get(
            "/api/grids",
            params={"level": "unit", "bbox": f"{west},{south},{east},{north}", "datum": "gcj02"},
            headers=bearer(session, settings, worker),
        ).json()
    a1 = next(f for f in found["features"] if f["id"] == COMM_A[:12] + "01")
    plain = next(g for g in small_city() if g.code == COMM_A[:12] + "01").geometry
    shifted = shapely.transform(plain, lambda xy: np.column_stack(wgs84_to_gcj02(*xy.T)))
    assert shapely.hausdorff_distance(shape(a1["geometry"]), shifted) < 1e-7
    assert shapely.hausdorff_distance(plain, shifted) > 1e-3  # hundreds of metres: shifted


def test_the_service_worker_keeps_the_shell_that_the_service_serves(
    anonymous_client: TestClient,
) -> None:
    answer = anonymous_client.get("/m/sw.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    first, _, code = answer.text.partition("\n")
    head = json.loads(first.removeprefix("self.CITYGRID = ").removesuffix(";"))
    assert head["page"] == "/m/" and re.fullmatch(r"[0-9a-f]{16}", head["version"])
    assert "/m/" in head["shell"]
    assets = [u for u in head["shell"] if u.startswith("/static/")]
    assert {u.rsplit("/", 1)[1] for u in assets} == {
        "datum.js",
        "m.js",
        "m.css",
        "leaflet.js",
        "leaflet.css",
    }
    for url in assets:
        assert anonymous_client.get(url).status_code == 200, url
    assert "caches.open" in code and 'addEventListener("fetch"' in code

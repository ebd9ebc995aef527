"""The dispatcher page in a real browser: headless Debian Chromium driven by Playwright.

The small city with cases and a patrol walk is served by uvicorn (``live_server``); the page
must load its layers from that server alone, draw the grid choropleth with the colours the API
answers, list its layers, open a grid's popup on a click and draw the open cases. A screenshot
is saved to ``test-artifacts/dispatcher.png``.

Needs ``/usr/bin/chromium`` and the ``playwright`` package: ``scripts/bootstrap.sh`` installs
both. Missing, the tests fail (a skipped browser test would hide a broken page).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx2 as httpx
import pytest

from layers.page import layer_titles
from layers.report import POPUP_FIELDS, heat_html
from service.auth import RENEWAL_COOKIE, SESSION_COOKIE
from service.grids.registry import Registry
from tests.helpers.accounts import admin_headers, make_user
from tests.helpers.browser import chromium
from tests.helpers.city import COMM_A, STREET, TO_UTM, X0, point_lonlat, unit_code
from tests.helpers.patrol import walk

LAYER_TITLES = layer_titles()  # the default (Chinese) page's titles

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
SHANGHAI = ZoneInfo("Asia/Shanghai")
DENSITY = LAYER_TITLES["density"]
# (x, y) in metres in the small city, category: away from the market and the rail line too
CASES = [
    (50, 50, "0102"),
    (60, 40, "0102"),
    (150, 150, "0501"),
    (250, 150, "0201"),
    (450, 20, "0104"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture
def admin_token(session, settings) -> str:
    """An access token of the city's admin (the API and the page's session cookie)."""
    return admin_headers(session, settings)["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def city_with_data(live_server: str, case_city: Registry, admin_token: str) -> dict:
    """Cases reported through the API and a patrol walk along community A, two hours ago."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=live_server, timeout=30, headers=headers) as api:
        r = api.put(
            "/api/patrol/workers/W001",
            json={"code": "W001", "name": "王伟", "devices": ["phone-1"]},
        )
        assert r.status_code == 201, r.text
        start = datetime.now(SHANGHAI) - timedelta(hours=2)
        fixes = walk([(0, 50), (400, 50), (400, 150), (0, 150)], start=start)
        r = api.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
        assert r.status_code == 200 and r.json()["stored"] == len(fixes), r.text
        ids = []
        for x, y, category in CASES:
            lon, lat = point_lonlat(x, y)
            r = api.post("/api/cases", json={"category_code": category, "lon": lon, "lat": lat})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        grids = api.get("/api/heat/grids").json()
    return {"cases": ids, "grids": grids}


class Watched:
    """A page with its console errors, page errors and requested URLs."""

    def __init__(self, browser, url: str, token: str | None = None, locale: str = "zh-CN") -> None:
        # a browser in Chinese (its Accept-Language) unless told otherwise
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
        if token is not None:  # logged in: the session cookie the login page would set
            context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": url}])
        self.page = context.new_page()
        # every Content-Security-Policy violation of the page, as the browser reports it
        self.page.add_init_script(
            "window.__cspViolations = [];"
            "document.addEventListener('securitypolicyviolation', e =>"
            " window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)

    def csp_violations(self) -> list[str]:
        """The Content-Security-Policy violations the page has reported so far."""
        return self.page.evaluate("() => window.__cspViolations || []")

    def drawn(self, title: str) -> None:
        self.page.wait_for_function(
            "t => window.L && L.Citygrid && L.Citygrid.layers[t] && L.Citygrid.layers[t].drawn",
            arg=title,
            timeout=60_000,
        )


def test_dispatcher_page_in_chromium(
    browser, live_server: str, city_with_data: dict, admin_token: str
) -> None:
    w = Watched(browser, f"{live_server}/", admin_token)
    page = w.page
    for title in (DENSITY, LAYER_TITLES["boundaries"], LAYER_TITLES["hotspots"]):
        w.drawn(title)

    # the layer control lists every layer, the density choropleth chosen
    labels = page.locator(".leaflet-control-layers label").all_inner_texts()
    assert [t.strip() for t in labels] == list(LAYER_TITLES.values())
    assert page.get_by_label(DENSITY).is_checked()

    # every unit grid comes in the heat tiles, filled with the colour the API gives it
    features = page.evaluate("t => L.Citygrid.layers[t].features", DENSITY)
    expected = {
        f["properties"]["code"]: f["properties"]["fill"]
        for f in city_with_data["grids"]["features"]
    }
    assert len(expected) == 11  # 8 + 3 unit grids
    assert {code: p["fill"] for code, p in features.items()} == expected
    # drawn on canvas tiles (thousands of grids as SVG paths would be slow)
    assert page.locator(".leaflet-overlay-pane canvas").count() >= 1
    legend = page.locator(f'.citygrid-legend[data-layer="{DENSITY}"]').inner_text()
    # the answer's legend ("Cases per km²") shown from the page's catalogue
    assert city_with_data["grids"]["legend"]["title"] == "Cases per km²"
    assert "每平方公里案件数" in legend

    # a click on unit grid A-05 (x 0-100 m, y 0-100 m: no hotspot zone over it) opens its popup
    lon, lat = point_lonlat(25, 75)
    x, y = page.evaluate(
        "([lat, lon]) => { const m = Object.values(window).find(v => v instanceof L.Map);"
        " const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; }",
        [lat, lon],
    )
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=10_000)
    text = popup.inner_text()
    assert unit_code(COMM_A, 5) in text and "网格员5" in text and "13800000005" in text
    assert "经八路街道办" in text
    assert "期内案件数\t2" in text  # two of the five cases lie in A-05
    # the attribution names citygrid (and the base map's provider when there is one) only
    attribution = page.locator(".leaflet-control-attribution").inner_text()
    assert attribution.strip() == "citygrid" and "Leaflet" not in attribution
    assert page.locator(".leaflet-control-scale-line").count() == 1  # metres, no feet

    # open cases: at this zoom (≥ 14) one point per case
    page.get_by_label(LAYER_TITLES["cases"]).check()
    w.drawn(LAYER_TITLES["cases"])
    points = page.locator(".leaflet-citygridCases-pane path").count()
    assert points == len(city_with_data["cases"])

    # another heat layer replaces the choropleth and its legend
    page.get_by_label(LAYER_TITLES["kde"]).check()
    w.drawn(LAYER_TITLES["kde"])
    assert page.locator(".leaflet-overlay-pane img.citygrid-surface").count() == 1
    assert page.locator(f'.citygrid-legend[data-layer="{DENSITY}"]').count() == 0
    assert page.locator(f'.citygrid-legend[data-layer="{LAYER_TITLES["kde"]}"]').count() == 1
    page.get_by_label(DENSITY).check()
    page.wait_for_timeout(300)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dispatcher.png"))
    assert w.errors == []
    assert w.csp_violations() == []  # the page's own scripts all carry the answer's nonce
    hosts = {urlsplit(u).netloc for u in w.requests if not u.startswith("data:")}
    assert hosts == {urlsplit(live_server).netloc}

    # and the policy bites: a script injected without the nonce does not run
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__injected = true'; document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.__injected === undefined")
    assert any(v.startswith("script-src") for v in w.csp_violations())
    page.close()


def test_the_page_in_english_and_back_with_its_switch(
    browser, live_server: str, city_with_data: dict, admin_token: str
) -> None:
    english = layer_titles("en")
    # an English browser opens the pages in Chinese: English is the switch
    w = Watched(browser, f"{live_server}/?lang=en", admin_token, locale="en-US")
    page = w.page
    w.drawn(english["density"])
    labels = page.locator(".leaflet-control-layers label").all_inner_texts()
    assert [t.strip() for t in labels] == list(english.values())
    # a status line of the script, from its English catalogue
    page.get_by_label(english["cases"]).check()
    w.drawn(english["cases"])
    assert "Apply" in page.locator(".citygrid-filter").inner_text()
    # the switch: the same filter in Chinese, and the choice outlives the page
    page.get_by_role("link", name="中文").click()
    w.drawn(LAYER_TITLES["density"])
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.goto(f"{live_server}/")
    w.drawn(LAYER_TITLES["density"])
    assert "查询" in page.locator(".citygrid-filter").inner_text()
    assert w.errors == [] and w.csp_violations() == []
    page.close()


def test_refused_filter_shows_the_reason_in_the_browser(
    browser, live_server: str, case_city, admin_token: str
) -> None:
    w = Watched(browser, f"{live_server}/?category=77", admin_token)
    assert "no category '77'" in w.page.locator(".citygrid-error-message").inner_text()
    assert w.page.locator(".leaflet-container").count() == 0
    w.page.close()


def test_report_html_opens_from_a_file_without_network(
    browser, city_with_data: dict, tmp_path: Path
) -> None:
    path = tmp_path / "grids.html"
    path.write_text(
        heat_html(city_with_data["grids"], title="grids", popup_fields=POPUP_FIELDS["grids"]),
        encoding="utf-8",
    )
    w = Watched(browser, path.as_uri())
    w.page.wait_for_selector(".citygrid-legend", timeout=20_000)
    assert w.page.locator(".leaflet-overlay-pane path").count() == 11
    assert w.errors == []
    assert {urlsplit(u).scheme for u in w.requests} <= {"file", "data"}
    w.page.close()


# -- logging in through the login page: each user sees their scope ----------------------------
PASSWORD = "correct horse battery"
ALL_UNITS = 11  # 8 unit grids in community A, 3 in community B


def _in_community_a(lon: float, lat: float) -> bool:
    x, _ = TO_UTM.transform(lon, lat)
    return -5 <= x - X0 <= 405  # community A spans x 0-400 m (a point's radius of slack)


def _log_in_through_the_page(w: Watched, live_server: str, login: str) -> None:
    """From the page asked for, through the login form (as a person would), back to it."""
    page = w.page
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    assert "用户名" in page.locator("form").inner_text()
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")


def _case_points(page) -> list[tuple[float, float]]:
    """(lon, lat) of every open-case point drawn on the map."""
    return page.evaluate(
        "() => { const m = Object.values(window).find(v => v instanceof L.Map);"
        " const r = m.getContainer().getBoundingClientRect();"
        " return Array.from(document.querySelectorAll('.leaflet-citygridCases-pane path'))"
        "  .map(p => { const b = p.getBoundingClientRect();"
        "   const ll = m.containerPointToLatLng([b.left + b.width / 2 - r.left,"
        "                                        b.top + b.height / 2 - r.top]);"
        "   return [ll.lng, ll.lat]; }); }"
    )


@pytest.mark.parametrize(
    ("role", "scope", "cases_seen", "grids_seen"),
    [
        ("dispatcher", STREET, len(CASES), ALL_UNITS),  # the street office: everything here
        ("grid_worker", COMM_A, 4, 8),  # community A only: not the case at x 450 m in B
    ],
)
def test_logging_in_on_the_page_shows_the_users_scope(
    browser,
    live_server: str,
    city_with_data: dict,
    session,
    settings,
    role: str,
    scope: str,
    cases_seen: int,
    grids_seen: int,
) -> None:
    make_user(session, settings, role, login=f"web-{role}", scope_grids=[scope], password=PASSWORD)
    session.commit()
    w = Watched(browser, f"{live_server}/")  # anonymous: sent to the login form
    _log_in_through_the_page(w, live_server, f"web-{role}")
    page = w.page
    w.drawn(DENSITY)
    assert f"web-{role}" in page.locator(".citygrid-account-name").inner_text()

    # the choropleth colours the unit grids in the user's scope, and no other
    assert len(page.evaluate("t => L.Citygrid.layers[t].features", DENSITY)) == grids_seen
    # the open cases shown all lie in the user's grids
    page.get_by_label(LAYER_TITLES["cases"]).check()
    w.drawn(LAYER_TITLES["cases"])
    points = _case_points(page)
    assert len(points) == cases_seen
    if scope == COMM_A:
        assert all(_in_community_a(lon, lat) for lon, lat in points), points
    # the page ran under the Content-Security-Policy without a violation
    assert w.errors == [] and w.csp_violations() == []
    page.close()


def test_logging_out_on_the_page_ends_the_session(
    browser, live_server: str, case_city, session, settings
) -> None:
    make_user(
        session, settings, "dispatcher", login="web-out", scope_grids=[STREET], password=PASSWORD
    )
    session.commit()
    w = Watched(browser, f"{live_server}/")
    _log_in_through_the_page(w, live_server, "web-out")
    page = w.page
    page.get_by_role("button", name=re.compile("退出登录")).click()
    page.wait_for_url(re.compile(r".*/login$"))
    cookies = {c["name"] for c in page.context.cookies()}
    assert SESSION_COOKIE not in cookies and RENEWAL_COOKIE not in cookies
    page.goto(f"{live_server}/")
    page.wait_for_url(re.compile(r".*/login\?next=.*"))  # anonymous again
    assert w.errors == []
    page.close()


def test_a_user_without_the_map_permission_sees_the_chinese_403_page(
    browser, live_server: str, case_city, session, settings
) -> None:
    make_user(
        session, settings, "department", login="web-dept", department="环卫所", password=PASSWORD
    )
    session.commit()
    w = Watched(browser, f"{live_server}/")
    page = w.page
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    page.fill("#login", "web-dept")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.locator(".citygrid-login-error").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "login.png"))
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    assert "403 无权访问" in page.locator("h1").inner_text()
    assert "maps.read" in page.locator(".citygrid-error-message").inner_text()
    assert page.locator(".leaflet-container").count() == 0
    page.close()


def test_swagger_ui_works_under_the_content_security_policy(browser, live_server: str) -> None:
    w = Watched(browser, f"{live_server}/docs")
    w.page.wait_for_selector(".opblock", timeout=30_000)  # the operations are listed
    assert w.page.locator(".opblock").count() >= 50
    hosts = {urlsplit(u).netloc for u in w.requests if not u.startswith("data:")}
    assert hosts == {urlsplit(live_server).netloc}
    assert w.errors == [] and w.csp_violations() == []
    w.page.close()

"""The cross-scoring page in a real browser (headless Chromium driven by Playwright): a scorer
logs in through the login form, fills the checklist of their grid, sees the API's refusal next
to the item it names, submits, and the API then holds the points given; the organiser edits
the rotation of a draft (a self-scoring pair is refused next to its row) and opens it, sees the
rotation of an open round, closes it and reads the grid's score in the results.

The page runs under the service's Content-Security-Policy (its script is a file of the
service, its writes carry the CSRF token) and loads nothing from elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from sqlalchemy.orm import Session

from service.grids.registry import Registry
from service.settings import AppSettings
from tests.helpers.accounts import admin_headers, bearer, make_user, seeded
from tests.helpers.browser import chromium
from tests.helpers.city import COMM_A, COMM_B, unit_code

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
API = "/api/assessment/rounds"
A1, B1 = unit_code(COMM_A, 1), unit_code(COMM_B, 1)
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
GIVEN = {"mqsb": 18, "zdjy": 20, "ljqy": 12.5, "ldlf": 10, "ggzp": 10, "lhss": 9, "tczx": 5}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def open_round(
    live_server: str, case_city: Registry, session: Session, settings: AppSettings
) -> dict[str, Any]:
    """An open round of 2026-11 over unit grid A-01, scored by an office of community B."""
    office = {"login": "office-b", "scope_grids": [COMM_B], "password": PASSWORD}
    make_user(session, settings, "inspector", **office)
    make_user(session, settings, "leader", login="boss", password=PASSWORD)
    session.commit()
    with httpx.Client(
        base_url=live_server, timeout=30, headers=admin_headers(session, settings)
    ) as api:
        r = api.post(API, json={"period": "2026-11", "grids": [A1], "scorers": ["office-b"]})
        assert r.status_code == 201, r.text
        rnd = r.json()
        assert api.post(f"{API}/{rnd['id']}/open").status_code == 200
    return rnd


class Page:
    """A browser tab that records page errors and CSP violations."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_context(
            viewport={"width": 1280, "height": 900},
            locale="zh-CN",  # a Chinese browser
        ).new_page()
        self.page.add_init_script(
            "window.__cspViolations = [];"
            "document.addEventListener('securitypolicyviolation', e =>"
            " window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def log_in(self, live_server: str, login: str) -> None:
        """Ask for the page, log in on the form it sends us to, and come back."""
        page = self.page
        page.goto(f"{live_server}/assessment/rounds")
        page.wait_for_url(re.compile(r".*/login\?next=.*"))
        page.fill("#login", login)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}/assessment/rounds")

    def clean(self, live_server: str) -> None:
        assert self.errors == []
        assert self.page.evaluate("() => window.__cspViolations") == []
        hosts = {urlsplit(u).netloc for u in self.requests if not u.startswith("data:")}
        assert hosts == {urlsplit(live_server).netloc}


def test_a_scorer_fills_and_submits_a_scoresheet(
    browser: Any, live_server: str, open_round: dict[str, Any], session, settings
) -> None:
    tab = Page(browser)
    tab.log_in(live_server, "office-b")
    page = tab.page
    assert page.locator("h2").all_inner_texts() == ["我的评分任务"]  # no organiser part
    row = page.locator(f'#my-assignments tr[data-grid="{A1}"]')
    row.get_by_role("button", name="填写评分表").click()
    form = page.locator("#sheet-form")
    form.wait_for(state="visible")
    codes = form.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)")
    assert codes == list(GIVEN)  # dust (扬尘) does not apply: no site touches A-01
    assert "门前三包" in form.locator('tr[data-code="mqsb"]').inner_text()

    # one point too many: the service's refusal appears next to that item, nothing is stored
    for code, points in GIVEN.items():
        form.locator(f'tr[data-code="{code}"] input[name="points"]').fill(str(points))
    form.locator('tr[data-code="mqsb"] input[name="points"]').fill("21")
    form.get_by_role("button", name="提交评分表").click()
    error = form.locator('[data-error-for="items[mqsb]"]')
    error.wait_for(state="visible")
    assert "outside 0..20" in error.inner_text()
    mqsb = form.locator('tr[data-code="mqsb"] input[name="points"]')
    assert mqsb.get_attribute("aria-invalid") == "true"

    form.locator('tr[data-code="mqsb"] input[name="points"]').fill("18")
    form.locator('tr[data-code="mqsb"] input[name="note"]').fill("沿街商户门前有杂物")
    form.locator("#sheet-notes").fill("抽查两条主街")
    form.get_by_role("button", name="提交评分表").click()
    result = page.locator("#sheet-result")
    result.wait_for(state="visible")
    assert "已提交网格" in result.inner_text() and "84.5 / 90" in result.inner_text()
    assert form.is_hidden()
    page.wait_for_function(
        "g => document.querySelector(`#my-assignments tr[data-grid='${g}']`)"
        " .innerText.includes('已提交')",
        arg=A1,
    )
    tab.clean(live_server)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "rounds-scorer.png"), full_page=True)

    # the API holds what was typed
    with httpx.Client(
        base_url=live_server, timeout=30, headers=admin_headers(session, settings)
    ) as api:
        sheets = api.get(f"{API}/{open_round['id']}/scoresheets").json()["scoresheets"]
    assert len(sheets) == 1 and sheets[0]["grid"] == A1 and sheets[0]["scorer"] == "office-b"
    assert {i["code"]: i["points"] for i in sheets[0]["items"]} == GIVEN
    assert {i["code"]: i["note"] for i in sheets[0]["items"]}["mqsb"] == "沿街商户门前有杂物"
    assert sheets[0]["notes"] == "抽查两条主街" and sheets[0]["points"] == 84.5
    page.close()


def test_the_organiser_sees_the_rotation_closes_the_round_and_reads_the_results(
    browser: Any, live_server: str, open_round: dict[str, Any], session, settings
) -> None:
    with httpx.Client(
        base_url=live_server, timeout=30, headers=admin_headers(session, settings)
    ) as api:
        office = seeded(session, settings).user_by_login("office-b")
        assert office is not None
        sheet = {
            "grid": A1,
            "items": [{"code": c, "points": p} for c, p in GIVEN.items()],
        }
        r = api.post(
            f"{API}/{open_round['id']}/scoresheets",
            json=sheet,
            headers=bearer(session, settings, office),
        )
        assert r.status_code == 201, r.text
    tab = Page(browser)
    tab.log_in(live_server, "boss")
    page = tab.page
    page.fill("#rounds-period", "2026-11")
    page.get_by_role("button", name="查询").click()
    listed = page.locator(f'#rounds-list tr[data-round="{open_round["id"]}"]')
    listed.wait_for()
    assert "进行中" in listed.inner_text() and "1 / 1" in listed.inner_text()
    listed.get_by_role("button", name="查看").click()
    rotation = page.locator('#rotation tr[data-scorer="office-b"]')
    rotation.wait_for()
    assert A1 in rotation.inner_text() and "✓" in rotation.inner_text()
    assert page.locator("#assignments-form").is_hidden()  # an open round's rotation is fixed

    page.get_by_role("button", name="结束考核").click()
    page.wait_for_function(
        "() => document.querySelector('#round-title').innerText.includes('已结束')"
    )
    page.locator('#results[data-state="closed"]').wait_for(state="attached")
    results = page.locator(f'#results tr[data-grid="{A1}"]')
    cells = results.locator("td").all_inner_texts()
    assert cells[1] == "93.89"  # 84.5 of 90 points
    with httpx.Client(
        base_url=live_server, timeout=30, headers=admin_headers(session, settings)
    ) as api:
        score = api.get(f"/api/assessment/scores/grid/{A1}", params={"period": "2026-11"}).json()
        state = api.get(f"{API}/{open_round['id']}").json()["state"]
    assert state == "closed"
    parts = {c["external"]: c for c in score["components"] if c.get("external")}
    assert parts["cross_scoring"]["value"] == pytest.approx(84.5 / 90 * 100, abs=0.01)
    assert float(cells[2]) == pytest.approx(score["total"], abs=0.01)
    assert cells[3] == score["grade"]
    link = results.get_by_role("link", name="查看红黄榜").get_attribute("href")
    assert link is not None and link.startswith("/api/assessment/lists?period=2026-11")
    assert "subject=grid%3Aunit" in link
    tab.clean(live_server)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "rounds-organiser.png"), full_page=True)
    page.close()


def test_the_organiser_edits_the_rotation_of_a_draft_and_opens_it(
    browser: Any, live_server: str, case_city: Registry, session, settings
) -> None:
    for login, scope in (("office-a", [COMM_A]), ("office-b", [COMM_B]), ("team", [])):
        make_user(session, settings, "inspector", login=login, scope_grids=scope)
    make_user(session, settings, "leader", login="boss", password=PASSWORD)
    session.commit()
    body = {"period": "2026-11", "grids": [A1, B1], "scorers": ["office-a", "office-b"]}
    with httpx.Client(
        base_url=live_server, timeout=30, headers=admin_headers(session, settings)
    ) as api:
        r = api.post(API, json=body)
        assert r.status_code == 201, r.text
    rnd = r.json()
    # the proposal: each office scores the other's community
    assert {(a["grid"], a["scorer"]) for a in rnd["assignments"]} == {
        (A1, "office-b"),
        (B1, "office-a"),
    }
    tab = Page(browser)
    tab.log_in(live_server, "boss")
    page = tab.page
    page.fill("#rounds-period", "2026-11")
    page.get_by_role("button", name="查询").click()
    page.locator(f'#rounds-list tr[data-round="{rnd["id"]}"]').get_by_role(
        "button", name="查看"
    ).click()
    form = page.locator("#assignments-form")
    form.wait_for(state="visible")
    assert "草稿" in page.locator("#round-title").inner_text()
    assert A1 in page.locator('#rotation tr[data-scorer="office-b"]').inner_text()

    # office A put on its own grid: refused, said next to that row, nothing changed
    rows = form.locator("tbody tr")
    assert rows.count() == 2
    rows.nth(0).locator('input[name="scorer"]').fill("office-a")
    form.get_by_role("button", name="保存分配").click()
    error = rows.nth(0).locator('[data-error-for="assignments[0]"]')
    error.wait_for(state="visible")
    assert "own scope" in error.inner_text()
    assert A1 in page.locator('#rotation tr[data-scorer="office-b"]').inner_text()

    # the city's team takes A-01 instead; saved, shown, then the round is opened
    rows.nth(0).locator('input[name="scorer"]').fill("team")
    form.get_by_role("button", name="保存分配").click()
    page.locator('#rotation tr[data-scorer="team"]').wait_for()
    assert page.locator('#rotation tr[data-scorer="office-b"]').count() == 0
    page.get_by_role("button", name="开启考核").click()
    page.wait_for_function(
        "() => document.querySelector('#round-title').innerText.includes('进行中')"
    )
    assert form.is_hidden() and page.get_by_role("button", name="结束考核").is_visible()
    with httpx.Client(
        base_url=live_server, timeout=30, headers=admin_headers(session, settings)
    ) as api:
        stored = api.get(f"{API}/{rnd['id']}").json()
    assert stored["state"] == "open"
    assert {(a["grid"], a["scorer"]) for a in stored["assignments"]} == {
        (A1, "team"),
        (B1, "office-a"),
    }
    tab.clean(live_server)
    page.close()

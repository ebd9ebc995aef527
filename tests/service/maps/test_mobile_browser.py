"""The grid worker's phone page in a real browser: headless Chromium (Playwright) with a
360 × 800 touch screen and an overridden position.

A grid worker of community A logs in through the login form and lands on ``/m/``: the map
holds community A's eight unit grids and the position, the task lists hold the case to
verify, the open case and the supervision order of the grid. A report made online becomes a
case at once (its photo waits in the outbox while the photo service is not there); a report
made offline waits in IndexedDB with its idempotency key and becomes exactly one case when the
network returns — and sending the same queue item again creates no second one.

The page loads nothing from elsewhere and runs under the service's Content-Security-Policy.
Its first load (bytes transferred) is written to ``test-artifacts/m-page-weight.json``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gis.datum import wgs84_to_gcj02
from service.accounts.principal import SYSTEM
from service.clock import now
from service.db.models import Case, Device, GpsFix, PatrolSession, Photo
from service.grids.registry import Registry
from service.patrol.workers import PatrolService, WorkerInput
from service.settings import AppSettings
from service.supervision.orders import OrderInput, OrderService
from tests.helpers.accounts import make_user
from tests.helpers.browser import chromium
from tests.helpers.city import COMM_A, point_lonlat, unit_code
from tests.helpers.supervision import reported, step

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
A1 = unit_code(COMM_A, 1)
# a 1 × 1 PNG: the camera's picture


def _png() -> bytes:
    """A small real picture (the photo service decodes what it is sent)."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
WEIGHT_BUDGET = 200_000  # bytes on the first load, gzip included


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def world(case_city: Registry, session: Session, settings: AppSettings) -> dict[str, Any]:
    """A grid worker of community A, a case waiting for verification (A-02), an open case
    (A-03) under a supervision order, and a case in community B the worker must not see."""
    worker = make_user(
        session, settings, "grid_worker", login="gw-a", scope_grids=[COMM_A], password=PASSWORD
    )
    to_verify = step(
        session, settings, reported(session, settings, 0.5), "register", "dispatch", "feedback"
    )
    open_case = step(session, settings, reported(session, settings, 0.2, x=250), "register")
    elsewhere = reported(session, settings, 0.2, x=450, y=20)
    order = OrderService(session, settings).issue(
        OrderInput(
            demand="限期清理暴露垃圾",
            deadline_at=now() + timedelta(days=2),
            unit_kind="grid",
            unit=unit_code(COMM_A, 3),
            case_ids=[open_case.id],
        ),
        SYSTEM,
    )
    session.commit()
    return {
        "worker": worker,
        "to_verify": to_verify.id,
        "open": open_case.id,
        "elsewhere": elsewhere.id,
        "order": order.number,
    }


class Phone:
    """A 360 × 800 touch phone at (x, y) metres in the small city, recording page errors, CSP
    violations, requests and the bytes of each answer."""

    def __init__(
        self, browser: Any, x: float = 50, y: float = 150, service_workers: str = "allow"
    ) -> None:
        lon, lat = point_lonlat(x, y)
        self.context = browser.new_context(
            service_workers=service_workers,
            viewport={"width": 360, "height": 800},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
            permissions=["geolocation"],
        )
        self.page = self.context.new_page()
        self.page.add_init_script(
            "window.__cspViolations = [];"
            "document.addEventListener('securitypolicyviolation', e =>"
            " window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        self.errors: list[str] = []
        self.finished: list[Any] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfinished", lambda r: self.finished.append(r))

    def log_in(self, live_server: str) -> None:
        """Ask for the page, log in on the form it sends us to, and come back."""
        page = self.page
        page.goto(f"{live_server}/m/")
        page.wait_for_url(re.compile(r".*/login\?next=.*"))
        page.fill("#login", "gw-a")
        page.fill("#password", PASSWORD)
        self.finished.clear()  # the page's first load starts here
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}/m/")
        page.wait_for_load_state("networkidle")

    def outbox(self) -> list[dict[str, Any]]:
        """The queued items (without their photos' bytes), read from IndexedDB."""
        return self.page.evaluate(
            """() => new Promise((resolve, reject) => {
                const open = indexedDB.open("citygrid-m", 1);
                open.onsuccess = () => {
                    const all = open.result.transaction("outbox").objectStore("outbox").getAll();
                    all.onsuccess = () => resolve(all.result.map(i => ({
                        id: i.id, kind: i.kind, key: i.key, state: i.state || null,
                        body: i.body || null, caseKey: i.caseKey || null,
                        size: i.blob ? i.blob.size : null})));
                    all.onerror = () => reject(all.error);
                };
                open.onerror = () => reject(open.error);
            })"""
        )

    def clean(self, live_server: str) -> None:
        assert self.errors == []
        assert self.page.evaluate("() => window.__cspViolations") == []
        hosts = {urlsplit(r.url).netloc for r in self.finished if not r.url.startswith("data:")}
        assert hosts <= {urlsplit(live_server).netloc}


def _cases_with_key(session: Session, key: str) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).where(Case.idempotency_key == key)) or 0)


def test_the_page_shows_my_grids_my_position_and_my_tasks(
    browser: Any, live_server: str, world: dict[str, Any]
) -> None:
    phone = Phone(browser)
    phone.log_in(live_server)
    page = phone.page

    # bytes transferred on the first load: the page, its script and style, Leaflet, the API
    weight = {
        r.url.removeprefix(live_server): sum(r.sizes()[k] for k in ("responseBodySize",))
        + r.sizes()["responseHeadersSize"]
        for r in phone.finished
        if not r.url.endswith("/login")
    }
    total = sum(weight.values())
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "m-page-weight.json").write_text(json.dumps({"total": total, **weight}, indent=1))
    assert any(u.startswith("/static/vendor/leaflet") for u in weight)
    assert 0 < total < WEIGHT_BUDGET

    # my grids: community A's eight unit grids, drawn and named
    page.wait_for_function("() => document.querySelectorAll('#m-grids .m-grid').length === 8")
    codes = page.locator("#m-grids .m-grid").evaluate_all("s => s.map(e => e.dataset.code)")
    assert sorted(codes) == [unit_code(COMM_A, i) for i in range(1, 9)]
    assert page.locator("#m-map path.leaflet-interactive").count() >= 8
    page.wait_for_function("() => document.querySelector('.leaflet-interactive[fill=\"#d32f2f\"]')")
    lon, lat = point_lonlat(50, 150)
    assert f"{lon:.6f}" in page.locator("#m-position").inner_text()
    assert page.locator(".leaflet-control-attribution").inner_text().startswith("citygrid")

    # the shift under a GCJ-02 base map: the same numbers as gis/datum.py
    glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    js = page.evaluate("([lon, lat]) => window.CitygridDatum.gcj02(lon, lat)", [lon, lat])
    assert js == pytest.approx([float(glon[0]), float(glat[0])], abs=1e-9)

    # my tasks: the case to verify, the open case, the order; nothing of community B
    page.get_by_role("tab", name="任务").tap()
    verify = page.locator(f'#tasks-verify li[data-case="{world["to_verify"]}"]')
    verify.wait_for()
    assert "已反馈" in verify.inner_text()
    page.locator(f'#tasks-cases li[data-case="{world["open"]}"]').wait_for()
    assert page.locator(f'li[data-case="{world["elsewhere"]}"]').count() == 0
    order = page.locator("#tasks-orders li")
    order.first.wait_for()
    assert world["order"] in order.first.inner_text()
    assert "限期清理暴露垃圾" in order.first.inner_text()

    # verification from the phone: the case closes and leaves the list
    verify.get_by_role("button").tap()
    detail = page.locator("#case-detail")
    detail.wait_for(state="visible")
    assert detail.locator('[data-action="feedback"]').count() == 0  # not the worker's to do
    detail.locator("#action-note").fill("现场已清理干净")
    detail.locator('[data-action="verify"]').tap()
    page.wait_for_function("() => document.querySelector('#case-detail-result').textContent")
    assert "核查通过" in page.locator("#case-detail-result").inner_text()
    page.wait_for_function(
        f"() => !document.querySelector('#tasks-verify li[data-case=\"{world['to_verify']}\"]')"
    )
    page.screenshot(path=str(ARTIFACTS / "m-tasks.png"))

    # the service worker keeps the app shell: without network the page opens from it
    cached = page.evaluate(
        """async () => {
            await navigator.serviceWorker.ready;
            const names = (await caches.keys()).filter(n => n.startsWith("citygrid-m-"));
            const cache = await caches.open(names[0]);
            return (await cache.keys()).map(r => new URL(r.url).pathname);
        }"""
    )
    assert {"/m/", "/static/citygrid/m.js", "/static/citygrid/m.css"} <= set(cached)
    assert {"/static/vendor/leaflet@1.9.3/leaflet.js"} <= set(cached)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    phone.context.set_offline(True)
    (worker,) = phone.context.service_workers
    reach = "() => fetch('/healthz').then(() => 'network', () => 'none')"
    assert worker.evaluate(reach) == "none"  # the worker itself has no network either
    answer = page.reload()
    assert answer is not None and answer.from_service_worker
    page.locator("h1").wait_for()
    assert page.locator("h1").inner_text() == "网格员工作台"
    assert page.locator("#m-net").inner_text() == "离线"
    page.wait_for_function("() => typeof L !== 'undefined' && document.querySelector('#m-map')")
    phone.context.set_offline(False)

    # logging out leaves none of the API's answers in the phone's cache
    page.locator("#m-logout button").tap()
    page.wait_for_url(re.compile(r".*/login$"))
    left = page.evaluate(
        """async () => {
            const out = [];
            for (const n of await caches.keys())
                for (const r of await (await caches.open(n)).keys()) out.push(r.url);
            return out;
        }"""
    )
    assert left and not [u for u in left if "/api/" in u]
    phone.clean(live_server)
    phone.context.close()


class PhotoRoute:
    """Watches ``POST /api/cases/{id}/photos``: records each upload and passes it to the
    service, or — while ``status`` is set — answers that itself (a service without its photo
    route, as an older deployment would be)."""

    def __init__(self, status: int | None) -> None:
        self.status = status
        self.posts: list[dict[str, Any]] = []

    def __call__(self, route: Any) -> None:
        request = route.request
        post = {
            "path": urlsplit(request.url).path,
            "body": request.post_data_buffer,
            "key": request.headers.get("idempotency-key"),
        }
        self.posts.append(post)
        if self.status is not None:
            post["answered"] = self.status
            route.fulfill(status=self.status, json={"detail": "no photo route here"})
            return
        answer = route.fetch()
        post["answered"] = answer.status
        route.fulfill(response=answer)


def test_a_report_made_offline_becomes_exactly_one_case_with_its_photo_when_online_again(
    browser: Any, live_server: str, world: dict[str, Any], session: Session
) -> None:
    # on the edge between; without the service worker, so that the watched
    # photo route sees the uploads (writes never go through the worker anyway)
    phone = Phone(browser, x=100, y=150, service_workers="block")
    photos = PhotoRoute(404)  # first: a service without its photo route
    phone.context.route(re.compile(r".*/api/cases/\d+/photos$"), photos)
    phone.log_in(live_server)
    page = phone.page
    page.get_by_role("tab", name="上报").tap()

    # the located grid and its neighbour across the edge, to confirm
    candidates = page.locator("#report-candidates input[name=grid]")
    candidates.first.wait_for()
    assert sorted(candidates.evaluate_all("i => i.map(e => e.value)")) == [
        unit_code(COMM_A, 1),
        unit_code(COMM_A, 2),
    ]
    page.locator(f'#report-candidates input[value="{A1}"]').check()
    # the catalogue's categories to choose from
    page.wait_for_function("() => document.querySelectorAll('#report-category option').length > 5")

    # online: a case at once
    page.select_option("#report-category", "0102")
    page.fill("#report-description", "人行道上有暴露垃圾")
    page.set_input_files(
        "#report-photo", files=[{"name": "p.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.click("#report-submit")
    result = page.locator("#report-result")
    page.wait_for_function(
        "() => document.querySelector('#report-result').textContent.includes('案件编号')"
    )
    case_id = int(re.search(r"(\d+)", result.inner_text()).group(1))
    session.expire_all()
    case = session.get(Case, case_id)
    assert case is not None and case.description == "人行道上有暴露垃圾"
    assert case.source == "patrol" and case.reporter_user_id == world["worker"].id
    assert case.grid_code == A1 and case.fields == {}  # the worker's confirmed candidate
    # its photo went to the case's photo route: multipart file, stage and position
    page.wait_for_function(
        "() => document.querySelector('#outbox-items li[data-kind=photo][data-state=pending]')"
    )
    (first,) = photos.posts
    assert first["path"] == f"/api/cases/{case_id}/photos"
    lon, lat = point_lonlat(100, 150)
    assert b'name="file"; filename="p.png"' in first["body"] and PNG in first["body"]
    assert b'name="step"\r\n\r\nreport\r\n' in first["body"]
    assert b'name="stage"\r\n\r\nbefore\r\n' in first["body"]
    assert f'name="lon"\r\n\r\n{lon}'.encode() in first["body"]
    assert f'name="lat"\r\n\r\n{lat}'.encode() in first["body"]
    # … which is not there yet: the photo waits in the outbox
    (kept,) = phone.outbox()
    assert kept["kind"] == "photo" and kept["size"] == len(PNG) and kept["state"] == "pending"
    assert first["key"] == kept["key"]

    # offline: the report and its photo wait in IndexedDB, nothing reaches the service
    phone.context.set_offline(True)
    page.wait_for_function("() => !navigator.onLine")
    assert page.locator("#m-net").inner_text() == "离线"
    page.select_option("#report-category", "0102")
    page.fill("#report-description", "离线时发现的暴露垃圾")
    page.set_input_files(
        "#report-photo", files=[{"name": "q.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.click("#report-submit")
    page.wait_for_function(
        "() => document.querySelector('#report-result').textContent.includes('待发送')"
    )
    queued = [i for i in phone.outbox() if i["kind"] == "case"]
    assert len(queued) == 1 and queued[0]["state"] == "waiting"
    key = queued[0]["key"]
    assert re.fullmatch(r"[0-9a-f-]{36}", key)
    assert queued[0]["body"]["description"] == "离线时发现的暴露垃圾"
    waiting_photos = [i for i in phone.outbox() if i["kind"] == "photo"]
    assert len(waiting_photos) == 2 and waiting_photos[1]["caseKey"] == key  # the new report's
    assert page.locator("#outbox-count").inner_text() == "3"
    assert _cases_with_key(session, key) == 0 and len(photos.posts) == 1

    # back online, the photo route there now: everything sent once, the outbox empty
    photos.status = None
    phone.context.set_offline(False)
    page.wait_for_function(
        "() => document.querySelector('#outbox-count').textContent === '0'", timeout=60_000
    )
    assert _cases_with_key(session, key) == 1
    session.expire_all()
    new_id = session.scalar(select(Case.id).where(Case.idempotency_key == key))
    assert f"案件编号 {new_id}" in result.inner_text()
    sent = [(p["path"], p["answered"]) for p in photos.posts]
    assert sent == [
        (f"/api/cases/{case_id}/photos", 404),
        (f"/api/cases/{case_id}/photos", 201),
        (f"/api/cases/{new_id}/photos", 201),
    ]
    assert b'filename="q.png"' in photos.posts[2]["body"]

    # the same queue item sent again (a lost answer, a second tab): still one case
    # … and a report another account queued on this phone waits for that account
    other = "00000000-0000-4000-8000-000000000001"
    page.evaluate(
        """([item, other]) => new Promise((resolve, reject) => {
            const open = indexedDB.open("citygrid-m", 1);
            open.onsuccess = () => {
                const tx = open.result.transaction("outbox", "readwrite");
                const box = tx.objectStore("outbox");
                box.add({kind: "case", key: item.key, body: item.body, state: "waiting"});
                box.add({kind: "case", key: other, body: item.body, state: "waiting",
                         user: "网格员乙 (gw-b)"});
                tx.oncomplete = resolve;
                tx.onerror = () => reject(tx.error);
            };
        })""",
        [queued[0], other],
    )
    page.click("#outbox-send")
    page.wait_for_function(
        "() => document.querySelector('#outbox-count').textContent === '1'", timeout=60_000
    )
    assert [i["key"] for i in phone.outbox()] == [other]
    assert _cases_with_key(session, key) == 1 and _cases_with_key(session, other) == 0
    session.expire_all()
    assert (
        session.scalar(select(func.count()).where(Case.description == "离线时发现的暴露垃圾")) == 1
    )
    assert len(photos.posts) == 3  # no photo sent twice either
    # … and stored once with each case: a report photo taken before, where the phone was
    session.expire_all()
    stored = session.execute(
        select(Photo.case_id, Photo.step, Photo.stage).where(Photo.case_id.in_([case_id, new_id]))
    ).all()
    assert sorted(stored) == sorted([(case_id, "report", "before"), (new_id, "report", "before")])
    page.screenshot(path=str(ARTIFACTS / "m-report.png"))
    phone.clean(live_server)
    phone.context.close()


def test_a_patrol_started_on_the_phone_sends_its_fixes_and_ends(
    browser: Any, live_server: str, world: dict[str, Any], session: Session, settings: AppSettings
) -> None:
    PatrolService(session, settings).save_worker(
        WorkerInput(code="W-A1", name="网格员甲", grid_codes=[A1], devices=["phone-a1"]), SYSTEM
    )
    session.commit()
    phone = Phone(browser, x=30, y=130)
    phone.log_in(live_server)
    page = phone.page
    page.get_by_role("tab", name="巡查").tap()
    page.locator("#patrol-start").tap()  # no device yet: said next to the field
    assert page.locator('[data-error-for="device_id"]').inner_text() == "请填写设备编号"
    page.fill("#patrol-device", "phone-a1")
    page.locator("#patrol-start").tap()
    page.wait_for_function("() => !document.querySelector('#patrol-start').offsetParent")
    lon, lat = point_lonlat(60, 130)  # the phone moves: its next fix is sent at once
    phone.context.set_geolocation({"longitude": lon, "latitude": lat})
    page.wait_for_function(
        "() => document.querySelector('#patrol-status').textContent.includes('已上传 1 个')"
    )
    page.locator("#patrol-stop").tap()
    page.wait_for_function(
        "() => document.querySelector('#patrol-status').textContent === '未在巡查'"
    )
    session.expire_all()
    (device,) = session.scalars(select(Device).where(Device.device_id == "phone-a1"))
    (patrol,) = session.scalars(select(PatrolSession).where(PatrolSession.device_key == device.id))
    assert patrol.ended_at is not None
    fixes = session.scalars(select(GpsFix).where(GpsFix.device_key == device.id)).all()
    # the phone's WGS 84 position, stored as sent
    assert (fixes[0].lon, fixes[0].lat) == pytest.approx((lon, lat), abs=1e-9)
    assert all(patrol.started_at <= f.at for f in fixes)
    phone.clean(live_server)
    phone.context.close()


def test_a_report_outside_every_grid_is_refused_once_shown_and_removed_by_hand(
    browser: Any, live_server: str, world: dict[str, Any], session: Session
) -> None:
    phone = Phone(browser, x=2000, y=2000)  # well outside the small city
    phone.log_in(live_server)
    page = phone.page
    page.get_by_role("tab", name="上报").tap()
    page.wait_for_function(
        "() => document.querySelector('#report-grid').textContent === '当前位置不在任何网格内'"
    )
    page.wait_for_function("() => document.querySelectorAll('#report-category option').length > 5")

    # a category with a required field: asked for on the phone before anything is queued
    page.select_option("#report-category", "0203")
    page.locator("#report-field-shop_name").wait_for()
    page.fill("#report-description", "城外的违规牌匾")
    page.click("#report-submit")
    assert page.locator('[data-error-for="fields.shop_name"]').inner_text() == "请填写 shop_name"
    assert phone.outbox() == []

    # the service refuses the position: the reason next to it and in the outbox, no case
    page.fill("#report-field-shop_name", "某某超市")
    page.click("#report-submit")
    failed = page.locator("#outbox-items li[data-state=failed]")
    failed.wait_for()
    assert "被拒绝" in failed.inner_text()
    assert "allow_unassigned" in page.locator('[data-error-for="lon,lat"]').inner_text()
    (item,) = phone.outbox()
    assert item["state"] == "failed" and item["body"]["fields"] == {"shop_name": "某某超市"}
    session.expire_all()
    assert session.scalar(select(func.count()).where(Case.description == "城外的违规牌匾")) == 0

    # never sent again unchanged; the worker removes it
    page.click("#outbox-send")
    page.wait_for_function("() => document.querySelector('#outbox-count').textContent === '1'")
    failed.get_by_role("button", name="删除").tap()
    page.wait_for_function("() => document.querySelector('#outbox-count').textContent === '0'")
    assert phone.outbox() == []
    session.expire_all()
    assert session.scalar(select(func.count()).where(Case.description == "城外的违规牌匾")) == 0
    phone.clean(live_server)
    phone.context.close()

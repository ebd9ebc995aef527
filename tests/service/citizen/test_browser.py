"""The citizen's report form in a real phone-sized browser (headless Chromium, Playwright):
pick a category, attach a photo, tap the map, send; the tracking number shows and its status
page opens. The case and its "before" photo are in the database afterwards."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import select

from service.db.models import Case, Photo
from service.factory import create_app
from service.settings import AuthSettings, ServerSettings
from tests.helpers.browser import chromium
from tests.helpers.city import point_lonlat
from tests.helpers.photos import jpeg
from tests.helpers.servers import in_thread

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
NUMBER = re.compile(r"^\d+-[2-9A-HJKMNP-Z]{6}$")


@pytest.fixture
def open_city_server(settings, sessions, case_city) -> Iterator[str]:
    """The small city, accepting public reports, served on a free port."""
    open_city = dataclasses.replace(
        settings,
        server=ServerSettings(
            _env_file=None, max_active_requests=1, max_queued_requests=10_000, queue_wait_s=600
        ),
        auth=AuthSettings(_env_file=None, public_reports=True, public_map=True),
    )
    with in_thread(create_app(open_city, sessions=sessions)) as url:
        yield url


def test_a_citizen_reports_from_a_phone_and_follows_the_number(
    open_city_server: str, session
) -> None:
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": 360, "height": 800}, is_mobile=True, has_touch=True
        )
        page = context.new_page()
        outside = []
        page.on(
            "request",
            lambda r: outside.append(r.url) if not r.url.startswith(open_city_server) else None,
        )
        page.goto(f"{open_city_server}/report")
        assert page.locator("h1").inner_text() == "上报问题"
        page.select_option("#report-category", "0102")
        page.set_input_files(
            "#report-photo",
            files=[{"name": "rubbish.jpg", "mimeType": "image/jpeg", "buffer": jpeg(7)}],
        )
        box = page.locator("#report-map").bounding_box()
        # the map opens on the city: a little west of its middle is inside community A
        page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
        assert page.locator("#report-lat").input_value() != ""
        page.fill("#report-phone", "13900002222")
        page.click("#report-submit")
        number_node = page.locator("#report-number")
        number_node.wait_for(state="visible", timeout=15000)
        number = number_node.inner_text().strip()
        assert NUMBER.match(number), number
        assert page.locator("#report-form").is_hidden()  # sent: the form gives way
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "citizen-report.png"), full_page=True)

        page.click("#report-status-link")
        page.wait_for_selector("#status-result")
        assert page.locator('[data-field="number"]').inner_text() == number
        assert page.locator('[data-field="status"]').inner_text() == "已受理"
        assert "13900002222" not in page.content()
        context.close()
    assert outside == []  # nothing loaded from outside the service (no CDN)

    case = session.scalars(select(Case).where(Case.id == int(number.split("-")[0]))).one()
    assert case.category_code == "0102" and case.source == "citizen"
    photo = session.scalars(select(Photo).where(Photo.case_id == case.id)).one()
    assert (photo.step, photo.stage) == ("report", "before")


def test_the_problem_map_draws_the_reports_and_filters_them(open_city_server: str, session) -> None:
    for i, (x, y, code) in enumerate([(50, 50, "0102"), (250, 150, "0104"), (650, 20, "0102")]):
        lon, lat = point_lonlat(x, y)
        r = httpx.post(
            f"{open_city_server}/api/public/reports",
            data={
                "service_code": code,
                "lat": str(lat),
                "long": str(lon),
                "device_id": f"device-{i:016d}",
            },
        )
        assert r.status_code == 201, r.text
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 360, "height": 800})
        page.goto(f"{open_city_server}/public/map")
        from playwright.sync_api import expect

        # a function of the page cannot be waited for: the strict CSP forbids eval
        expect(page.locator("#map-count")).to_have_text("显示 3 条上报", timeout=15000)
        assert page.locator("path.leaflet-interactive").count() == 3
        page.select_option("#map-category", "0102")
        assert page.locator("#map-count").inner_text() == "显示 2 条上报"
        assert page.locator("path.leaflet-interactive").count() == 2

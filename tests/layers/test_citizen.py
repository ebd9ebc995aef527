"""The citizen's pages as HTML: what each shows, escaped, with nothing from outside."""

from __future__ import annotations

import html
import json
import re

from layers.citizen import (
    NOT_FOUND,
    STATUS_TEXTS,
    CategoryChoice,
    ReportPage,
    StatusPage,
    report_page,
    status_page,
)
from layers.i18n import messages
from tests.helpers.citizen import BOUNDS, CHOICES, citizen_pages, sample_status


def test_the_form_offers_the_categories_grouped_and_escaped() -> None:
    hostile = CategoryChoice("0199", '<img src=x onerror="alert(1)">', "市容环境")
    page = report_page(ReportPage((*CHOICES, hostile), BOUNDS))
    assert '<optgroup label="市容环境"><option value="0102">暴露垃圾</option>' in page
    assert '<optgroup label="宣传广告"><option value="0201">非法小广告</option>' in page
    assert "<img src=x" not in page and "&lt;img src=x" in page
    for field in ('name="media"', 'name="service_code"', 'name="lat"', 'name="long"',
                  'name="phone"', 'name="description"'):  # fmt: skip
        assert field in page


def test_the_map_settings_travel_as_data_not_script() -> None:
    tiles = ({"tiles": "https://webrd0{s}.is.autonavi.com/{x}/{y}/{z}", "attr": "高德"},)
    page = report_page(ReportPage(CHOICES, BOUNDS, tiles=tiles, datum="gcj02"))
    raw = re.search(r'data-map="([^"]*)"', page).group(1)
    assert json.loads(html.unescape(raw)) == {
        "tiles": list(tiles),
        "bounds": list(BOUNDS),
        "datum": "gcj02",
    }
    # only the service's own scripts; the base map's tiles are images the script asks for
    assert re.findall(r'<script src="([^"]+)"', page) == [
        "/static/vendor/leaflet@1.9.3/leaflet.js",
        "/static/citygrid/datum.js",
        "/static/citygrid/citizen.js",
    ]
    assert "<script>" not in page and " style=" not in page


def test_the_status_page_says_the_status_in_plain_words() -> None:
    tr = messages("zh_CN")
    for status in STATUS_TEXTS:
        page = status_page(StatusPage(number="12-K7QX2M", found=sample_status(status)))
        shown = re.search(r'<dd data-field="status">([^<]*)</dd>', page).group(1)
        assert shown == tr.gettext(STATUS_TEXTS[status])
        assert ('data-field="closed"' in page) == (status == "closed")
    page = status_page(StatusPage(number="12-K7QX2M", found=sample_status()))
    assert "2026年11月20日 10:30:00" in page  # the city's time, the Chinese way
    assert "100 米" in page


def test_an_unknown_number_shows_why_and_keeps_the_form() -> None:
    tr = messages("zh_CN")
    page = status_page(StatusPage(number='"><b>', error=tr.gettext(NOT_FOUND)))
    assert "没有这个查询编号的上报" in page and 'value="&quot;&gt;&lt;b&gt;"' in page
    assert "status-result" not in page


def test_no_page_loads_anything_from_outside() -> None:
    for name, page in {**citizen_pages("zh_CN"), **citizen_pages("en")}.items():
        assert not re.search(r'(src|href)="(https?:)?//', page), name

"""The citizen's pages over HTTP: a report with its photo answers a tracking number whose
status anyone may read; a position outside the city, a bad photo, a missing device token are
4xx naming the field with nothing stored; anonymous reports are limited per device and per
address (429); the public problem map carries no personal data and only positions snapped to
the configured cells (checked against an independent pyproj computation)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import func, select

from service.db.models import Case, Photo
from service.factory import create_app
from service.settings import AuthSettings, PublicSettings
from tests.conftest import TEST_CITY
from tests.helpers.accounts import admin_headers, bearer, make_user
from tests.helpers.city import CITY, point_lonlat
from tests.helpers.photos import jpeg

NUMBER = re.compile(r"^\d+-[2-9A-HJKMNP-Z]{6}$")
TO_UTM = Transformer.from_crs(4326, 32649, always_xy=True)  # the small city: UTM zone 49N
TO_LONLAT = Transformer.from_crs(32649, 4326, always_xy=True)
DEVICE = "device-aaaaaaaaaaaaaaaa"
PHONE = "13900001111"


def cell_centre(lon: float, lat: float, size: float) -> tuple[float, float]:
    """The centre of the ``size`` m UTM 49N cell holding (lon, lat), computed here."""
    x, y = TO_UTM.transform(lon, lat)
    cx = (math.floor(x / size) + 0.5) * size
    cy = (math.floor(y / size) + 0.5) * size
    return TO_LONLAT.transform(cx, cy)


def open_settings(settings, per_hour: int = 100, per_device: int = 100, **public):
    """The test city with the citizen's pages open to anyone."""
    return dataclasses.replace(
        settings,
        auth=AuthSettings(
            _env_file=None, public_reports=True, public_map=True, public_reports_per_hour=per_hour
        ),
        public=PublicSettings(_env_file=None, reports_per_device_per_hour=per_device, **public),
    )


@pytest.fixture
def citizen(settings, sessions, case_city) -> Iterator[TestClient]:
    """An anonymous client of the city that accepts public reports and publishes its map."""
    with TestClient(create_app(open_settings(settings), sessions=sessions)) as c:
        yield c


def report(
    client: TestClient,
    x: float = 150,
    y: float = 50,
    device: str = DEVICE,
    photo: bytes | None = None,
    key: str | None = None,
    **extra: str,
):
    lon, lat = point_lonlat(x, y)
    data = {
        "service_code": "0102",
        "lat": str(lat),
        "long": str(lon),
        "description": "路边有垃圾",
        "phone": PHONE,
        "device_id": device,
    } | extra
    files = {"media": ("p.jpg", photo, "image/jpeg")} if photo is not None else None
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/public/reports", data=data, files=files, headers=headers)


def count(session, model) -> int:
    """This city's rows (other tests of the run commit rows of other cities)."""
    return session.scalar(select(func.count()).select_from(model).where(model.city == TEST_CITY))


def test_report_with_photo_answers_a_number_whose_status_anyone_reads(
    citizen: TestClient, session, settings
) -> None:
    r = report(citizen, photo=jpeg(3))
    assert r.status_code == 201, r.text
    body = r.json()
    number = body["tracking_number"]
    assert NUMBER.match(number), number
    assert body["status"] == "reported" and body["category"] == "暴露垃圾"
    assert body["status_url"] == f"/report/status?number={number}"

    case = session.scalars(
        select(Case).where(Case.city == TEST_CITY).order_by(Case.id.desc())
    ).first()
    assert number.startswith(f"{case.id}-")
    assert case.source == "citizen" and case.reporters[0]["phone"] == PHONE
    assert case.reporters[0]["device_id"] == DEVICE
    photo = session.scalars(select(Photo).where(Photo.case_id == case.id)).one()
    assert (photo.step, photo.stage, photo.uploader) == ("report", "before", "anonymous")

    status = citizen.get(f"/api/public/reports/{number.lower()}")
    assert status.status_code == 200, status.text
    s = status.json()
    assert s["status"] == "reported" and s["open"] is True and s["tracking_number"] == number
    expected = cell_centre(case.lon, case.lat, 100.0)
    assert s["lon"] == pytest.approx(expected[0], abs=2e-7)
    assert s["lat"] == pytest.approx(expected[1], abs=2e-7)
    assert PHONE not in status.text and "路边有垃圾" not in status.text
    assert not {"phone", "reporters", "description", "id", "grid_code"} & set(s)

    page = citizen.get("/report/status", params={"number": number})
    assert page.status_code == 200
    assert number in page.text and "已受理" in page.text and "暴露垃圾" in page.text
    assert PHONE not in page.text
    english = citizen.get("/report/status", params={"number": number, "lang": "en"})
    assert "Received" in english.text


def test_a_number_not_given_out_is_404_naming_it(citizen: TestClient, session) -> None:
    number = report(citizen).json()["tracking_number"]
    case_id, code = number.split("-")
    forged = f"{case_id}-{'2' if code[0] != '2' else '3'}{code[1:]}"
    for wrong in (forged, f"{int(case_id) + 1}-{code}", "abc"):
        r = citizen.get(f"/api/public/reports/{wrong}")
        assert r.status_code == 404, (wrong, r.text)
        assert r.json()["field"] == "tracking_number"
    page = citizen.get("/report/status", params={"number": forged})
    assert page.status_code == 404 and "没有" in page.text


def test_a_retry_with_the_same_key_answers_the_same_number(citizen: TestClient, session) -> None:
    before = count(session, Case)
    first = report(citizen, photo=jpeg(4), key="k-citizen-1")
    again = report(citizen, photo=jpeg(4), key="k-citizen-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["tracking_number"] == again.json()["tracking_number"]
    assert count(session, Case) == before + 1
    assert count(session, Photo) == 1
    # the key on other content (another device) is not someone else's receipt
    other = report(citizen, key="k-citizen-1", device="device-bbbbbbbbbbbbbbbb")
    assert other.status_code == 409 and other.json()["field"] == "idempotency_key"
    assert str(first.json()["tracking_number"]) not in other.text


def test_duplicate_reports_are_flagged_by_the_intake(citizen: TestClient) -> None:
    first = report(citizen)
    second = report(citizen, x=152, y=51, device="device-cccccccccccccccc")
    assert first.json()["duplicate"] is False
    assert second.status_code == 201 and second.json()["duplicate"] is True


def test_a_position_outside_the_city_is_422_naming_it_and_nothing_is_stored(
    citizen: TestClient, session
) -> None:
    before = (count(session, Case), count(session, Photo))
    r = report(citizen, x=5000, y=5000, photo=jpeg(5))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "lat,long" and "outside" in r.json()["detail"]
    assert (count(session, Case), count(session, Photo)) == before


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"photo": b"not a picture at all"}, "media", 422),
        ({"photo": b""}, "media", 422),
        ({"service_code": "0203"}, "service_code", 422),  # needs a shop name: staff only
        ({"service_code": ""}, "service_code", 400),
        ({"lat": ""}, "lat", 400),
        ({"device": ""}, "device_id", 400),
        ({"device": "short"}, "device_id", 400),
    ],
)
def test_bad_reports_are_refused_naming_the_field(
    citizen: TestClient, session, change, field, status
) -> None:
    before = (count(session, Case), count(session, Photo))
    r = report(citizen, **change)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field, r.json()
    assert (count(session, Case), count(session, Photo)) == before


def test_anonymous_reports_are_limited_per_device(settings, sessions, case_city) -> None:
    open_city = open_settings(settings, per_hour=100, per_device=2)
    with TestClient(create_app(open_city, sessions=sessions)) as c:
        outside = report(c, x=5000, y=5000)  # refused: not one of the device's reports
        first = report(c, x=50, key="retry-1")
        retry = report(c, x=50, key="retry-1")  # a lost answer asked again: the same report
        second = report(c, x=150)
        third = report(c, x=250)
        other_device = report(c, x=450, device="device-dddddddddddddddd")
    codes = [a.status_code for a in (outside, first, retry, second, third)]
    assert codes == [422, 201, 200, 201, 429]
    assert int(third.headers["retry-after"]) > 0 and "this device" in third.json()["detail"]
    assert other_device.status_code == 201


def test_anonymous_reports_are_limited_per_address_with_open311(
    settings, sessions, case_city
) -> None:
    open_city = open_settings(settings, per_hour=3, per_device=100)
    with TestClient(create_app(open_city, sessions=sessions)) as c:
        answers = [report(c, x=50 + 100 * i, device=f"device-{i:016d}") for i in range(3)]
        fourth = report(c, x=450, device="device-eeeeeeeeeeeeeeee")
        lon, lat = point_lonlat(350, 150)
        open311 = c.post(
            "/open311/v2/requests.json",
            data={"service_code": "0102", "lat": str(lat), "long": str(lon)},
        )
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert fourth.status_code == 429 and int(fourth.headers["retry-after"]) > 0
    assert "address" in fourth.json()["detail"]
    assert open311.status_code == 429  # one count per address for both ways in


def test_logged_in_reporters_pass_no_abuse_guard(client: TestClient, case_city) -> None:
    # staff report with their account: no device token, no anonymous limits
    r = report(client, device="")
    assert r.status_code == 201, r.text


def test_the_reporters_phone_is_masked_for_roles_without_people_read(
    citizen: TestClient, session, settings, sessions
) -> None:
    report(citizen)
    case = session.scalars(
        select(Case).where(Case.city == TEST_CITY).order_by(Case.id.desc())
    ).first()
    worker = make_user(session, settings, "grid_worker", scope_grids=[CITY])
    session.commit()
    with TestClient(create_app(settings, sessions=sessions)) as staff:
        masked = staff.get(f"/api/cases/{case.id}", headers=bearer(session, settings, worker))
        full = staff.get(f"/api/cases/{case.id}", headers=admin_headers(session, settings))
    assert masked.status_code == 200, masked.text
    assert PHONE not in masked.text and "139****1111" in masked.text
    assert PHONE in full.text


def test_the_problem_map_has_no_personal_data_and_snapped_positions(
    citizen: TestClient, session
) -> None:
    spots = [(150, 50), (155, 45), (350, 150), (650, 120)]  # the first two share a cell
    for i, (x, y) in enumerate(spots):
        code = "0102" if i != 1 else "0104"
        r = report(
            citizen,
            x=x,
            y=y,
            service_code=code,
            device=f"device-{i:016d}",
            first_name="张",
            last_name="三",
        )
        assert r.status_code == 201, r.text
    r = citizen.get("/api/public/cases")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["cache-control"] == "public, max-age=60"
    doc = r.json()
    assert doc["precision_m"] == 100.0 and len(doc["features"]) == 4
    text = json.dumps(doc, ensure_ascii=False)
    for personal in (PHONE, "张", "路边有垃圾", DEVICE[:10], "phone", "name", "reporter"):
        assert personal not in text, personal
    for feature in doc["features"]:
        assert set(feature["properties"]) == {
            "category_code",
            "category",
            "status",
            "status_text",
            "open",
            "reported_on",
        }
    cases = session.scalars(
        select(Case).where(Case.city == TEST_CITY).order_by(Case.reported_at.desc(), Case.id.desc())
    ).all()
    got = [tuple(f["geometry"]["coordinates"]) for f in doc["features"]]
    expected = [cell_centre(c.lon, c.lat, 100.0) for c in cases]
    for (glon, glat), (elon, elat), c in zip(got, expected, cases, strict=True):
        assert glon == pytest.approx(elon, abs=2e-7) and glat == pytest.approx(elat, abs=2e-7)
        # the true point lies within the cell: at most 100 m × √2 / 2 away
        gx, gy = TO_UTM.transform(glon, glat)
        x, y = TO_UTM.transform(c.lon, c.lat)
        assert math.hypot(gx - x, gy - y) <= 100 * math.sqrt(2) / 2 + 1e-6
    assert len(set(got)) == 3  # two reports in one cell show as one place
    # cached: a conditional request is answered 304
    again = citizen.get("/api/public/cases", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_the_precision_is_a_setting(settings, sessions, case_city, session) -> None:
    coarse = open_settings(settings, precision_m=500.0, map_cache_s=0)
    with TestClient(create_app(coarse, sessions=sessions)) as c:
        assert report(c, x=150, y=50).status_code == 201
        doc = c.get("/api/public/cases").json()
    case = session.scalars(select(Case).where(Case.city == TEST_CITY)).one()
    lon, lat = doc["features"][0]["geometry"]["coordinates"]
    assert (lon, lat) == pytest.approx(cell_centre(case.lon, case.lat, 500.0), abs=2e-7)


def test_closed_by_default_nobody_anonymous_reports_or_reads(settings, sessions, case_city) -> None:
    with TestClient(create_app(settings, sessions=sessions), follow_redirects=False) as c:
        assert report(c).status_code == 401
        assert c.get("/api/public/cases").status_code == 401
        assert c.get("/api/public/reports/1-AAAAAA").status_code == 401
        page = c.get("/report")
        assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
        assert c.get("/public/map").status_code == 303


def test_pages_are_chinese_first_and_load_nothing_from_outside(citizen: TestClient) -> None:
    form = citizen.get("/report")
    assert form.status_code == 200, form.text
    assert '<html lang="zh-CN">' in form.text and "上报问题" in form.text
    assert 'name="service_code"' in form.text and "暴露垃圾" in form.text
    assert "违规牌匾标识" not in form.text  # needs a shop name: not offered to citizens
    assert "/static/vendor/leaflet@1.9.3/leaflet.js" in form.text
    assert not re.search(r"(src|href)=\"https?://", form.text)
    english = citizen.get("/report", params={"lang": "en"})
    assert '<html lang="en">' in english.text and "Report a problem" in english.text
    public_map = citizen.get("/public/map", params={"lang": "zh_CN"})  # English was remembered
    assert public_map.status_code == 200 and "问题地图" in public_map.text
    assert not re.search(r"(src|href)=\"https?://", public_map.text)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"description": "垃圾\x00"}, None),
        ({"lat": "nan"}, "lat"),
        ({"lat": "1e400"}, "lat"),
        ({"lat": "95"}, None),
        ({"datum": "mars"}, None),
        ({"phone": "1" * 41}, "phone"),
    ],
)
def test_hostile_fields_get_a_client_error(citizen: TestClient, session, change, field) -> None:
    before = count(session, Case)
    r = report(citizen, **change)
    assert 400 <= r.status_code < 500, r.text
    if field is not None:
        assert r.json()["field"] == field
    assert count(session, Case) == before


def test_a_body_that_is_no_form_is_a_client_error(citizen: TestClient) -> None:
    r = citizen.post("/api/public/reports", json={"service_code": "0102"})
    assert r.status_code == 400 and r.json()["field"] == "device_id"


def test_a_body_larger_than_a_photo_is_refused_before_it_is_read(
    settings, sessions, case_city, session
) -> None:
    small = dataclasses.replace(
        open_settings(settings), photos=settings.photos.model_copy(update={"max_mb": 0.1})
    )
    with TestClient(create_app(small, sessions=sessions)) as c:
        r = report(c, photo=jpeg(1, size=(1200, 900), quality=100) + b"\0" * 200_000)
    assert r.status_code == 413 and r.json()["field"] == "media"
    assert count(session, Case) == 0

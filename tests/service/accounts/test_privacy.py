"""Personal data: reporters' names and phones, workers' phones and grids' responsible persons
are shown as stored only with people.read; everyone else gets them masked, in JSON, in the
history, in the ledger's CSV and XLSX exports and in the heat layers."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM, Principal
from service.accounts.privacy import mask_name, mask_phone, people_for
from service.settings import AppSettings
from tests.helpers.accounts import headers_of, seeded
from tests.helpers.scope import Places, demo_places, report_at

REPORTER = {"name": "张三丰", "phone": "13812345678"}


@pytest.fixture
def places(session: Session, demo_loaded: AppSettings) -> Places:
    return demo_places(session, demo_loaded)


@pytest.mark.parametrize(
    ("phone", "shown"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86*******5678"),
        ("0371-6123456", "037*****3456"),
        ("12345", "***45"),
        ("110", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_phones_keep_their_first_three_and_last_four_digits(phone, shown) -> None:
    assert mask_phone(phone) == shown


@pytest.mark.parametrize(
    ("name", "shown"),
    [("张三", "张*"), ("张三丰", "张**"), ("欧阳娜娜", "欧***"), ("李", "*"), (None, None)],
)
def test_names_keep_their_first_character(name, shown) -> None:
    assert mask_name(name) == shown


def test_a_reporter_record_loses_its_email_and_keeps_what_is_not_personal() -> None:
    record = REPORTER | {"email": "z@example.cn", "source": "citizen", "worker_id": "W7"}
    nobody = Principal("user", 1, "x", frozenset({"cases.read"}))
    masked = people_for(nobody, [record])[0]
    assert masked == {
        "name": "张**",
        "phone": "138****5678",
        "source": "citizen",
        "worker_id": "W7",
    }
    assert people_for(SYSTEM, [record]) == [record]  # SYSTEM holds people.read


def test_case_json_and_history_mask_reporters_without_people_read(
    demo_client: TestClient, places: Places
) -> None:
    case = report_at(demo_client, places.unit_point, reporter=REPORTER)
    dispatcher = headers_of(demo_client, "dispatcher")  # people.read
    inspector = headers_of(demo_client, "inspector")  # not
    full = demo_client.get(f"/api/cases/{case['id']}", headers=dispatcher).json()
    assert full["reporters"][0]["name"] == "张三丰"
    assert full["reporters"][0]["phone"] == "13812345678"
    masked = demo_client.get(f"/api/cases/{case['id']}", headers=inspector).json()
    assert masked["reporters"][0]["name"] == "张**"
    assert masked["reporters"][0]["phone"] == "138****5678"
    history = demo_client.get(f"/api/cases/{case['id']}/history", headers=inspector).json()
    assert history[0]["data"]["reporters"][0]["phone"] == "138****5678"
    listed = demo_client.get("/api/cases", headers=inspector).json()["items"]
    assert "13812345678" not in str(listed) and "张三丰" not in str(listed)


def test_ledger_exports_mask_reporters_without_people_read(
    demo_client: TestClient, places: Places, session: Session, demo_loaded: AppSettings
) -> None:
    report_at(demo_client, places.unit_point, reporter=REPORTER)
    seeded(session, demo_loaded).save_role(
        "exporter", "导出", "exporter", ["cases.read", "cases.export"], by=SYSTEM
    )
    session.commit()
    exporter = headers_of(demo_client, "exporter")
    leader = headers_of(demo_client, "leader")  # people.read

    def csv_rows(headers: dict[str, str]) -> list[dict[str, str]]:
        r = demo_client.get("/api/cases/export", params={"lang": "zh"}, headers=headers)
        assert r.status_code == 200
        return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))

    masked = csv_rows(exporter)
    assert [(r["上报人"], r["上报人电话"]) for r in masked] == [("张**", "138****5678")]
    assert "13812345678" not in str(masked)
    assert [(r["上报人"], r["上报人电话"]) for r in csv_rows(leader)] == [("张三丰", "13812345678")]
    r = demo_client.get(
        "/api/cases/export", params={"format": "xlsx", "lang": "en"}, headers=exporter
    )
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    head, *rows = list(sheet.iter_rows(values_only=True))
    row = dict(zip(head, rows[0], strict=True))
    assert (row["reporter_name"], row["reporter_phone"]) == ("张**", "138****5678")


def test_worker_phones_are_masked_without_people_read(
    demo_client: TestClient, places: Places
) -> None:
    body = {
        "code": "W-P1",
        "name": "刘洋",
        "phone": "13900001111",
        "grid_codes": [places.unit],
        "devices": ["phone-p1"],
    }
    assert demo_client.put("/api/patrol/workers/W-P1", json=body).status_code == 201
    inspector = headers_of(demo_client, "inspector")  # patrol.read, not people.read
    dispatcher = headers_of(demo_client, "dispatcher")  # both
    seen = demo_client.get("/api/patrol/workers/W-P1", headers=inspector).json()
    assert seen["phone"] == "139****1111" and seen["name"] == "刘洋"
    listed = demo_client.get("/api/patrol/workers", headers=inspector).json()
    assert "13900001111" not in str(listed)
    full = demo_client.get("/api/patrol/workers/W-P1", headers=dispatcher).json()
    assert full["phone"] == "13900001111"


def test_heat_grid_layer_masks_responsible_persons_without_people_read(
    demo_client: TestClient, places: Places
) -> None:
    inspector = headers_of(demo_client, "inspector", scope_grids=[places.community])
    dispatcher = headers_of(demo_client, "dispatcher", scope_grids=[places.community])

    def first_person(headers: dict[str, str]) -> tuple[str, str]:
        r = demo_client.get("/api/heat/grids", params={"per": "grid"}, headers=headers)
        assert r.status_code == 200, r.text
        props = next(
            f["properties"] for f in r.json()["features"] if f["properties"]["responsible_phone"]
        )
        return props["responsible_person"], props["responsible_phone"]

    name, phone = first_person(dispatcher)
    assert first_person(inspector) == (mask_name(name), mask_phone(phone))
    assert mask_phone(phone) != phone

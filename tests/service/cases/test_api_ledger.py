"""The ledger (问题台账): filters, keyset paging, CSV and XLSX exports."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.helpers.accounts import verifier_headers
from tests.helpers.city import COMM_A, COMM_B, point_lonlat, unit_code

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def cases(client: TestClient, case_city) -> list[dict]:
    """24 cases over 24 hours in both communities, three categories, two sources."""
    out = []
    spots = [(50, 50), (150, 150), (450, 20), (750, 40), (250, 50), (350, 120)]
    for i in range(24):
        x, y = spots[i % len(spots)]
        lon, lat = point_lonlat(x + (i // 6) * 40 % 50, y)
        body = {
            "category_code": ("0102", "0104", "0201")[i % 3],
            "lon": lon,
            "lat": lat,
            "source": "patrol" if i % 2 else "citizen",
            "reported_at": (BASE + timedelta(hours=i)).isoformat(),
            "description": f"问题{i}",
        }
        r = client.post("/api/cases", json=body)
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


def _all_pages(client: TestClient, limit: int, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        page = client.get(
            "/api/cases", params={"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        ).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_keyset_pages_cover_everything_once_newest_first(client: TestClient, cases) -> None:
    items = _all_pages(client, 5)
    assert [c["id"] for c in items] == [c["id"] for c in reversed(cases)]


def test_filters_match_an_independent_count(client: TestClient, cases) -> None:
    def expect(pred) -> list[int]:
        return sorted(c["id"] for c in cases if pred(c))

    def got(**params) -> list[int]:
        return sorted(c["id"] for c in _all_pages(client, 7, **params))

    assert got(grid=COMM_B) == expect(lambda c: c["grid_code"].startswith(COMM_B[:12]))
    assert got(grid=unit_code(COMM_A, 2)) == expect(
        lambda c: c["grid_code"] == unit_code(COMM_A, 2)
    )
    assert got(category="01") == expect(lambda c: c["category_code"].startswith("01"))
    assert got(source="patrol") == expect(lambda c: c["source"] == "patrol")
    start, end = BASE + timedelta(hours=5), BASE + timedelta(hours=9)
    assert got(**{"from": start.isoformat(), "to": end.isoformat()}) == expect(
        lambda c: start <= datetime.fromisoformat(c["reported_at"]) < end
    )
    west = point_lonlat(0, 0) + point_lonlat(400, 200)
    assert got(bbox=",".join(map(str, west))) == expect(
        lambda c: c["grid_code"].startswith(COMM_A[:12])
    )
    assert got(status="reported,closed") == expect(lambda c: True)
    assert got(overdue="true") == expect(
        lambda c: datetime.fromisoformat(c["deadline_at"]) < datetime.now(SHANGHAI)
    )


def test_bad_filters_are_4xx(client: TestClient, cases) -> None:
    export = client.get("/api/cases/export", params={"status": "null"})
    assert export.status_code == 422 and "unknown status" in export.json()["detail"]
    assert client.get("/api/cases", params={"status": "lost"}).status_code == 422
    assert client.get("/api/cases", params={"cursor": "garbage!"}).status_code == 400
    assert client.get("/api/cases", params={"grid": "41019999999999"}).status_code == 404
    assert client.get("/api/cases", params={"bbox": "1,2"}).status_code == 422
    assert client.get("/api/cases", params={"limit": 0}).status_code == 422


def test_csv_export_in_chinese_matches_the_ledger(client: TestClient, cases) -> None:
    r = client.get("/api/cases/export", params={"format": "csv", "lang": "zh", "grid": COMM_A})
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["案件编号", "状态", "类别代码", "类别名称"]
    ids = sorted(int(row[0]) for row in rows[1:])
    assert ids == sorted(c["id"] for c in cases if c["grid_code"].startswith(COMM_A[:12]))
    assert {row[1] for row in rows[1:]} == {"上报"}
    names = {row[2]: row[3] for row in rows[1:]}
    assert names["0102"] == "暴露垃圾"


def test_xlsx_export_opens_and_has_every_row(client: TestClient, cases) -> None:
    r = client.get("/api/cases/export", params={"format": "xlsx", "lang": "en"})
    book = load_workbook(io.BytesIO(r.content), read_only=True)
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "id" and len(rows) == len(cases) + 1
    descriptions = {row[5] for row in rows[1:]}
    assert descriptions == {c["description"] for c in cases}


def test_due_within_lists_only_open_cases_due_soon(client: TestClient, case_city) -> None:
    lon, lat = point_lonlat(50, 50)
    now = datetime.now(SHANGHAI)
    fresh = client.post("/api/cases", json={"category_code": "0102", "lon": lon, "lat": lat})
    deadline = datetime.fromisoformat(fresh.json()["deadline_at"])
    hours = (deadline - now).total_seconds() / 3600 + 1
    due = client.get("/api/cases/due", params={"within_hours": hours}).json()["items"]
    assert [c["id"] for c in due] == [fresh.json()["id"]]
    assert client.get("/api/cases/due", params={"within_hours": 0.0001}).json()["items"] == []


def test_counts_per_grid_and_hotspot_match_an_independent_tally(client: TestClient, cases) -> None:
    from collections import Counter

    # one recurrence: close a case, then report the same category next to it
    first = cases[0]
    for step in ("register", "dispatch", "feedback", "verify"):
        version = client.get(f"/api/cases/{first['id']}").json()["version"]
        client.post(
            f"/api/cases/{first['id']}/actions",
            json={"action": step, "actor": "x", "version": version},
            headers=verifier_headers(client) if step == "verify" else None,
        )
    again = client.post(
        "/api/cases",
        json={"category_code": first["category_code"], "lon": first["lon"], "lat": first["lat"]},
    ).json()
    assert again["recurring_of"] == first["id"]
    everything = _all_pages(client, 100)

    by_community = client.get(
        "/api/cases/counts", params={"by": "grid", "level": "community"}
    ).json()
    tally = Counter(c["grid_code"][:12] + "00" for c in everything)
    assert {r["grid"]: r["cases"] for r in by_community} == dict(tally)
    recurring = {r["grid"]: r["recurring"] for r in by_community if r["recurring"]}
    assert recurring == {again["grid_code"][:12] + "00": 1}
    open_total = sum(r["open"] for r in by_community)
    assert open_total == sum(
        c["status"] not in ("closed", "rejected", "merged") for c in everything
    )

    by_spot = client.get("/api/cases/counts", params={"by": "hotspot"}).json()
    spot_tally = Counter(h for c in everything for h in c["hotspot_ids"])
    assert {r["hotspot"]: r["cases"] for r in by_spot} == dict(spot_tally)
    assert spot_tally  # the fixture's market and rail line collect cases

    only_0102 = client.get("/api/cases/counts", params={"by": "grid", "category": "0102"}).json()
    assert sum(r["cases"] for r in only_0102) == sum(
        c["category_code"] == "0102" for c in everything
    )
    assert client.get("/api/cases/counts", params={"by": "street_lamp"}).status_code == 422

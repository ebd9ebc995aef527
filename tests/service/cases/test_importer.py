"""Bulk case intake applies the same rules as the single intake, all or nothing."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tests.helpers.accounts import verifier_headers
from tests.helpers.city import point_lonlat

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 6, 1, 9, 0, tzinfo=SHANGHAI)


def _rows(n: int = 300, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xs = rng.uniform(5, 795, n)
    ys = rng.uniform(5, 195, n)
    inside_lake = (xs > 500) & (xs < 600) & (ys > 50) & (ys < 150)
    xs[inside_lake] -= 120
    lonlat = np.array([point_lonlat(x, y) for x, y in zip(xs, ys, strict=True)])
    return pd.DataFrame(
        {
            "category_code": rng.choice(["0102", "0501", "0104", "0201"], n),
            "lon": lonlat[:, 0],
            "lat": lonlat[:, 1],
            "reported_at": [
                (BASE + timedelta(minutes=int(m))).isoformat()
                for m in rng.integers(0, 60 * 24 * 20, n)
            ],
            "source": rng.choice(["patrol", "citizen"], n),
            "description": [f"问题{i}" for i in range(n)],
            "idempotency_key": [f"k{i}" for i in range(n)],
        }
    )


def _upload(client: TestClient, frame: pd.DataFrame, **form):
    buf = frame.to_csv(index=False, float_format="%.12f").encode()
    return client.post("/api/cases/import", files={"file": ("cases.csv", buf)}, data=form)


def _all(client: TestClient) -> list[dict]:
    items, cursor = [], None
    while True:
        page = client.get(
            "/api/cases", params={"limit": 1000} | ({"cursor": cursor} if cursor else {})
        ).json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


def test_bulk_matches_single_intake_row_by_row(client: TestClient, case_city) -> None:
    frame = _rows()
    r = _upload(client, frame)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == len(frame)
    bulk = {c["description"]: c for c in _all(client)}
    # the same rows one by one through the JSON API, under other keys
    singles = {}
    for row in frame.itertuples():
        body = {
            "category_code": row.category_code,
            "lon": row.lon,
            "lat": row.lat,
            "reported_at": row.reported_at,
            "source": row.source,
            "description": row.description + "单",
            "idempotency_key": "s" + row.idempotency_key,
        }
        got = client.post("/api/cases", json=body)
        assert got.status_code == 201, got.text
        singles[row.description] = got.json()
    for name, one in singles.items():
        many = bulk[name]
        assert many["grid_code"] == one["grid_code"], name
        assert [c["code"] for c in many["grid_candidates"]] == [
            c["code"] for c in one["grid_candidates"]
        ], name
        assert np.allclose(
            [c["distance_m"] for c in many["grid_candidates"]],
            [c["distance_m"] for c in one["grid_candidates"]],
            atol=0.02,
        )
        assert many["hotspot_ids"] == one["hotspot_ids"], name
        assert (many["department"], many["routed_by"]) == (one["department"], one["routed_by"])
        assert many["deadline_at"] == one["deadline_at"], name


def test_duplicates_in_a_file_point_at_the_first_report(client: TestClient, case_city) -> None:
    lon, lat = point_lonlat(250, 150)
    lon2, lat2 = point_lonlat(270, 150)  # 20 m east
    frame = pd.DataFrame(
        {
            "category_code": ["0102", "0102", "0104", "0102"],
            "lon": [lon, lon2, lon2, lon2],
            "lat": [lat, lat2, lat2, lat2],
            "reported_at": [
                BASE.isoformat(),
                (BASE + timedelta(hours=2)).isoformat(),
                (BASE + timedelta(hours=2)).isoformat(),
                (BASE + timedelta(hours=30)).isoformat(),
            ],
            "description": ["a", "b", "c", "d"],
        }
    )
    assert _upload(client, frame).status_code == 200
    got = {c["description"]: c for c in _all(client)}
    assert got["b"]["suspected_duplicate_of"] == got["a"]["id"]
    assert got["c"]["suspected_duplicate_of"] is None  # another category
    assert got["d"]["suspected_duplicate_of"] is None  # 28 h after a, 28 h after b


def test_any_bad_row_rejects_the_whole_file(client: TestClient, case_city) -> None:
    frame = _rows(50).astype({"lat": object})
    frame.loc[7, "category_code"] = "0999"
    frame.loc[9, "lat"] = "north"
    frame.loc[11, "reported_at"] = "2099-01-01T00:00:00+08:00"
    lake = point_lonlat(550, 100)
    frame.loc[13, "lon"], frame.loc[13, "lat"] = lake
    r = _upload(client, frame)
    assert r.status_code == 422
    body = r.json()
    assert body["error_count"] == 4
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (8, "category_code"),
        (10, "lat"),
        (12, "reported_at"),
        (14, "lon,lat"),
    ]
    assert _all(client) == []


def test_per_row_mode_stores_the_good_rows(client: TestClient, case_city) -> None:
    frame = _rows(40)
    frame.loc[3, "category_code"] = "0999"
    r = _upload(client, frame, mode="rows")
    assert r.status_code == 200
    assert (r.json()["created"], r.json()["error_count"]) == (39, 1)
    assert len(_all(client)) == 39


def test_reimporting_a_file_replays_and_a_changed_row_conflicts(
    client: TestClient, case_city
) -> None:
    frame = _rows(30)
    assert _upload(client, frame).json()["created"] == 30
    again = _upload(client, frame).json()
    assert (again["created"], again["replayed"]) == (0, 30)
    frame.loc[5, "description"] = "改了"
    clash = _upload(client, frame)
    assert clash.status_code == 422 and clash.json()["errors"][0]["row"] == 6
    assert "different report" in clash.json()["errors"][0]["reason"]
    assert len(_all(client)) == 30


def test_unassigned_rows_when_asked_and_required_fields(client: TestClient, case_city) -> None:
    lake = point_lonlat(550, 100)
    frame = pd.DataFrame(
        {
            "category_code": ["0102", "0303"],
            "lon": [lake[0]] * 2,
            "lat": [lake[1]] * 2,
            "field_site_name": [None, "某工地"],
        }
    )
    r = _upload(client, frame, allow_unassigned="true")
    assert r.status_code == 200, r.text
    assert r.json()["unassigned"] == 2
    missing = pd.DataFrame({"category_code": ["0303"], "lon": [lake[0]], "lat": [lake[1]]})
    bad = _upload(client, missing, allow_unassigned="true")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "field_site_name"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"a,b\n1,2\n", "missing column"),
        (b"category_code,lon,lat\n", "no rows"),
    ],
)
def test_bad_files(client: TestClient, case_city, content: bytes, fragment: str) -> None:
    r = client.post("/api/cases/import", files={"file": ("x.csv", io.BytesIO(content))})
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]


def test_unreadable_file_without_suffix_is_422(client: TestClient, case_city) -> None:
    r = client.post("/api/cases/import", files={"file": ("file", io.BytesIO(b"[\xdd\xb8"))})
    assert r.status_code == 422 and r.json()["field"] == "file"


def test_rows_are_stored_in_report_time_order_whatever_the_file_order(
    client: TestClient, case_city
) -> None:
    lon, lat = point_lonlat(250, 150)
    lon2, lat2 = point_lonlat(270, 150)  # 20 m east
    # newest first: the duplicate ("b") comes before the report it duplicates ("a")
    frame = pd.DataFrame(
        {
            "category_code": ["0102", "0102", "0104", "0102"],
            "lon": [lon2, lon2, lon2, lon],
            "lat": [lat2, lat2, lat2, lat],
            "reported_at": [
                (BASE + timedelta(hours=30)).isoformat(),
                (BASE + timedelta(hours=2)).isoformat(),
                (BASE + timedelta(hours=1)).isoformat(),
                BASE.isoformat(),
            ],
            "description": ["d", "b", "c", "a"],
        }
    )
    assert _upload(client, frame).status_code == 200
    got = {c["description"]: c for c in _all(client)}
    assert got["b"]["suspected_duplicate_of"] == got["a"]["id"]
    assert got["c"]["suspected_duplicate_of"] is None
    assert got["d"]["suspected_duplicate_of"] is None
    # ids follow report time, as if the reports had arrived one by one
    assert [got[k]["id"] for k in "acbd"] == sorted(got[k]["id"] for k in "abcd")


def _act(client: TestClient, case_id: int, action: str) -> None:
    version = client.get(f"/api/cases/{case_id}").json()["version"]
    r = client.post(
        f"/api/cases/{case_id}/actions",
        json={"action": action, "version": version},
        # the admin reported and fed the case back: someone else verifies it
        headers=verifier_headers(client) if action == "verify" else None,
    )
    assert r.status_code == 200, r.text


def test_bulk_rows_link_to_stored_open_and_closed_cases(client: TestClient, case_city) -> None:
    def single(x: float, y: float, category: str = "0102") -> dict:
        lon, lat = point_lonlat(x, y)
        body = {"category_code": category, "lon": lon, "lat": lat, "description": "单"}
        r = client.post("/api/cases", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    closed = single(300, 150)
    for step in ("register", "dispatch", "feedback", "verify"):
        _act(client, closed["id"], step)
    still_open = single(700, 100)
    spots = [(310, 150, "0102"), (310, 150, "0104"), (340, 150, "0102"), (715, 100, "0102")]
    frame = pd.DataFrame(
        {
            "category_code": [c for _, _, c in spots],
            "lon": [point_lonlat(x, y)[0] for x, y, _ in spots],
            "lat": [point_lonlat(x, y)[1] for x, y, _ in spots],
            "description": ["near closed", "other category", "40 m away", "near open"],
        }
    )
    r = _upload(client, frame)
    assert r.status_code == 200, r.text
    got = {c["description"]: c for c in _all(client)}
    assert got["near closed"]["recurring_of"] == closed["id"]
    assert got["other category"]["recurring_of"] is None
    assert got["40 m away"]["recurring_of"] is None  # the rule's radius is 30 m
    assert got["40 m away"]["suspected_duplicate_of"] == got["near closed"]["id"]  # 30 m
    assert got["near open"]["suspected_duplicate_of"] == still_open["id"]


def test_field_columns_become_the_same_json_as_a_per_row_json_dumps() -> None:
    from service.cases.importer import _fields_json

    frame = pd.DataFrame(
        {
            "field_site_name": ['工地"一"', None, "a\\b\t\n😀", '工地"一"'],
            "field_count": [3, 4, None, 3],
            "field_ratio": [0.5, np.nan, 1e-7, 2.0],
            "field_when": pd.to_datetime(["2026-06-01 09:00", None, None, "2026-06-02 00:00"]),
            "field_empty": [None, None, None, None],
        }
    )
    columns = [c for c in frame.columns if c.startswith("field_")]
    got = _fields_json(frame, columns).to_pylist()
    sub = frame[columns].rename(columns=lambda c: c[len("field_") :])
    expected = [
        json.dumps({k: v for k, v in row.items() if pd.notna(v)}, ensure_ascii=False, default=str)
        for row in sub.to_dict("records")
    ]
    assert got == expected
    assert got[1] == '{"count": 4.0}'
    assert _fields_json(frame, []).to_pylist() == ["{}"] * 4


def test_reporter_entries_are_the_same_json_as_a_per_row_json_dumps() -> None:
    from service.cases.importer import _reporters_json

    name = np.array(["张三", None, None, 'a"b\\c', "李四"], dtype=object)
    phone = np.array([None, "13800000000", None, "1", "13800000000"], dtype=object)
    source = np.array(["citizen", "patrol", "import", "inspector", "citizen"], dtype=object)
    at = np.array(
        [
            "2026-06-01T01:00:05.123456",
            "1969-12-31T23:59:59.500000",
            "2026-01-01T00:00:00",
            "2000-01-01T00:00:00",
            "2026-06-01T01:00:05",
        ],
        dtype="datetime64[us]",
    )
    expected = []
    for i in range(len(name)):
        if name[i] is None and phone[i] is None:
            expected.append("[]")
            continue
        when = pd.Timestamp(at[i]).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = {"name": name[i], "phone": phone[i], "source": source[i], "at": when}
        entry = {k: v for k, v in entry.items() if v is not None}
        expected.append(json.dumps([entry], ensure_ascii=False))
    assert _reporters_json(name, phone, source, at).to_pylist() == expected


ROUND_TRIP_ROWS = [
    {
        "id": 9_007_199_254_740_993,  # above 2**53: no float on the way
        "city": "测试市",
        "category_code": "0102",
        "source": "citizen",
        "status": "reported",
        "description": '路边"垃圾"\\堆放\t第二行\n😀',
        "address": None,
        "reporters": '[{"name": "张三", "phone": "13800000000", "note": "a\\"b\\\\c\\u0001"}]',
        "fields": '{"site_name": "工地", "n": 3, "x": 1.5, "ok": true, "none": null}',
        "reported_at": datetime(2026, 6, 1, 9, 0, 0, 123456, tzinfo=SHANGHAI),
        "deadline_at": None,
        "updated_at": datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("UTC")),
        "datum": "gcj02",
        "lon": 113.12345678901234,
        "lat": -0.0000001,
        "grid_id": None,
        "grid_code": None,
        "grid_candidates": "[]",
        "hotspot_ids": [],
        "department": "城管执法中队",
        "routed_by": None,
        "duplicate_of": None,
        "recurring_of": 2**62,
        "idempotency_key": "键-1",
        "request_hash": "00000000deadbeef",
    },
    {
        "id": 9_007_199_254_740_994,
        "city": "990100",
        "category_code": "0501",
        "source": "patrol",
        "status": "reported",
        "description": None,
        "address": "人民路 1 号",
        "reporters": "[]",
        "fields": "{}",
        # a zone with daylight saving time, on the night the clocks go back
        "reported_at": datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        "deadline_at": datetime(2026, 11, 3, 17, 30, tzinfo=SHANGHAI),
        "updated_at": datetime(2026, 11, 1, 6, 30, tzinfo=ZoneInfo("UTC")),
        "datum": "wgs84",
        "lon": -179.999999999,
        "lat": 89.5,
        "grid_id": 42,
        "grid_code": "41010200100101",
        "grid_candidates": '[{"code": "41010200100101", "distance_m": 0.0}]',
        "hotspot_ids": [7, 2**40, 1],
        "department": None,
        "routed_by": "rule 0102 × 4101",
        "duplicate_of": 9_007_199_254_740_993,
        "recurring_of": None,
        "idempotency_key": None,
        "request_hash": None,
    },
]


def test_binary_copy_stores_exactly_what_an_ordinary_insert_stores(session) -> None:
    from service.cases.importer import COLUMNS, COPY_SCHEMA, JSONB_COLUMNS
    from service.db.pgcopy import copy_pipelined

    cur = session.connection().connection.driver_connection.cursor()
    ids = [row["id"] for row in ROUND_TRIP_ROWS]
    as_text = ", ".join(f"{c}::text" for c in [*COLUMNS, "geom"])

    def stored_as_text() -> list[tuple]:
        cur.execute(f"SELECT {as_text} FROM cases WHERE id = ANY(%s) ORDER BY id", (ids,))
        return cur.fetchall()

    batch = pa.RecordBatch.from_pylist(ROUND_TRIP_ROWS, schema=COPY_SCHEMA)
    copy_pipelined(
        cur, "cases", COPY_SCHEMA, iter([(batch, len(ROUND_TRIP_ROWS))]), jsonb=JSONB_COLUMNS
    )
    by_copy = stored_as_text()
    cur.execute(f"SELECT {', '.join(COLUMNS)} FROM cases WHERE id = ANY(%s) ORDER BY id", (ids,))
    for row, got in zip(ROUND_TRIP_ROWS, cur.fetchall(), strict=True):
        stored = dict(zip(COLUMNS, got, strict=True))
        for name in ("reporters", "fields", "grid_candidates"):
            assert stored[name] == json.loads(row[name])
        for name in ("reported_at", "deadline_at", "updated_at"):
            # the same instant (compared in UTC: Python never equates a repeated wall-clock
            # hour, fold=1, with a time in another zone)
            utc = ZoneInfo("UTC")
            assert _in(stored[name], utc) == _in(row[name], utc), name
        plain = [c for c in COLUMNS if c not in _JSON_OR_TIME]
        assert {c: stored[c] for c in plain} == {c: row[c] for c in plain}
    # the same rows through psycopg's own (text) adaptation: the database holds the same
    cur.execute("DELETE FROM cases WHERE id = ANY(%s)", (ids,))
    casts = {"reporters": "::jsonb", "fields": "::jsonb", "grid_candidates": "::jsonb"}
    casts["hotspot_ids"] = "::bigint[]"
    values = ", ".join(f"%({c})s{casts.get(c, '')}" for c in COLUMNS)
    for row in ROUND_TRIP_ROWS:
        cur.execute(f"INSERT INTO cases ({', '.join(COLUMNS)}) VALUES ({values})", row)
    assert stored_as_text() == by_copy


_JSON_OR_TIME = {
    "reporters",
    "fields",
    "grid_candidates",
    "reported_at",
    "deadline_at",
    "updated_at",
}


def _in(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    return value.astimezone(zone) if value is not None else None

"""Bulk case intake applies the same rules as the single intake, all or nothing."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from cityfixture import point_lonlat
from fastapi.testclient import TestClient

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

"""Case intake and workflow over HTTP on the small city (real PostGIS)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gis.datum import from_wgs84
from service.grids.registry import Registry
from tests.helpers.accounts import verifier_headers
from tests.helpers.city import COMM_A, COMM_B, RAIL_X, point_lonlat, unit_code

SHANGHAI = ZoneInfo("Asia/Shanghai")


def report(client: TestClient, x: float, y: float, category: str = "0102", **extra):
    lon, lat = point_lonlat(x, y)
    body = {"category_code": category, "lon": lon, "lat": lat, "description": "test"} | extra
    return client.post("/api/cases", json=body)


def brute_force_deadline(start: datetime, hours: float) -> datetime:
    """Step minute by minute through 09:00-12:00 and 13:30-17:30 on Chinese working days."""
    t = start.astimezone(SHANGHAI).replace(second=0, microsecond=0)
    left = round(hours * 60)
    while left > 0:
        minutes = t.hour * 60 + t.minute
        working = chinese_calendar.is_workday(t.date()) and (
            9 * 60 <= minutes < 12 * 60 or 13 * 60 + 30 <= minutes < 17 * 60 + 30
        )
        t += timedelta(minutes=1)
        left -= working
    return t


def test_intake_maps_grid_hotspot_department_and_deadline(
    client: TestClient, case_city: Registry
) -> None:
    # 0501 street vending inside the market's buffer, in unit A-02
    reported = datetime(2026, 9, 30, 16, 0, tzinfo=SHANGHAI)  # the day before National Day
    r = report(
        client,
        150,
        150,
        "0501",
        reported_at=reported.isoformat(),
        reporter={"name": "张三", "phone": "13800000000"},
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["status"] == "reported"
    assert case["grid_code"] == unit_code(COMM_A, 2)
    assert len(case["hotspot_ids"]) == 1
    assert case["department"] == "甲市场管理办"  # the market owner takes precedence
    assert case["routed_by"].startswith("hotspot owner")
    expected = brute_force_deadline(reported, 2)
    assert datetime.fromisoformat(case["deadline_at"]) == expected
    assert expected.date() > datetime(2026, 10, 7).date()  # the holiday week is skipped
    assert case["allowed_actions"] == ["register", "reject", "merge"]


def test_routing_rule_by_area_and_category_default(client: TestClient, case_city) -> None:
    in_b = report(client, 450, 20, "0102").json()
    assert in_b["department"] == "乙社区环卫组" and in_b["routed_by"].startswith("rule")
    in_a = report(client, 20, 20, "0102").json()
    assert in_a["department"] == "环卫所" and in_a["routed_by"] == "category default"


def test_hotspots_are_listed_nearest_first(client: TestClient, case_city) -> None:
    # x=345 is 5 m from the rail line and outside the market: only the rail matches
    case = report(client, RAIL_X - 5, 100).json()
    assert len(case["hotspot_ids"]) == 1
    near = client.get(
        "/api/hotspots/near",
        params=dict(zip(("lon", "lat"), point_lonlat(RAIL_X - 5, 100), strict=True)),
    ).json()
    assert near[0]["key"] == "rail-01" and abs(near[0]["distance_m"] - 5) < 0.1
    assert case["hotspot_ids"] == [near[0]["id"]]


def test_point_near_edge_keeps_candidates(client: TestClient, case_city) -> None:
    case = report(client, 98, 150).json()
    assert case["near_boundary"] is True
    assert [c["code"] for c in case["grid_candidates"]] == [
        unit_code(COMM_A, 1),
        unit_code(COMM_A, 2),
    ]


def test_the_reporter_may_confirm_the_other_grid_of_a_boundary_point(
    client: TestClient, case_city, session
) -> None:
    a1, a2 = unit_code(COMM_A, 1), unit_code(COMM_A, 2)
    located = report(client, 98, 150).json()
    assert located["grid_code"] == a1
    confirmed = report(client, 98, 150, grid_code=a2)
    assert confirmed.status_code == 201, confirmed.text
    case = confirmed.json()
    assert case["grid_code"] == a2  # the confirmed candidate wins over the located grid
    assert [c["code"] for c in case["grid_candidates"]] == [a1, a2]
    # a grid that is not a candidate of the position: refused, nothing stored
    count = session.scalar(text("SELECT count(*) FROM cases"))
    far = report(client, 98, 150, grid_code=unit_code(COMM_B, 1))
    assert far.status_code == 422 and far.json()["field"] == "grid_code"
    assert a1 in far.json()["detail"] and a2 in far.json()["detail"]
    assert session.scalar(text("SELECT count(*) FROM cases")) == count
    # away from every edge the located grid is the only candidate: confirming it is fine
    own = report(client, 50, 50).json()["grid_code"]
    inside = report(client, 50, 50, grid_code=own, description="again")
    assert inside.status_code == 201 and inside.json()["grid_code"] == own


def test_gcj02_report_lands_in_the_same_grid(client: TestClient, case_city) -> None:
    lon, lat = point_lonlat(250, 50)
    glon, glat = from_wgs84(lon, lat, "gcj02")
    case = client.post(
        "/api/cases",
        json={"category_code": "0104", "lon": float(glon), "lat": float(glat), "datum": "gcj02"},
    ).json()
    assert case["grid_code"] == unit_code(COMM_A, 7)


def test_outside_every_grid_is_422_naming_nearest_unless_unassigned_allowed(
    client: TestClient, case_city
) -> None:
    r = report(client, 550, 100)  # the lake
    assert r.status_code == 422
    assert r.json()["nearest_code"] == unit_code(COMM_B, 1)
    assert "allow_unassigned" in r.json()["detail"]
    ok = report(client, 550, 100, allow_unassigned=True)
    assert ok.status_code == 201 and ok.json()["unassigned"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category_code": "0999"}, "category_code"),
        ({"category_code": "0303"}, "fields.site_name"),  # dust needs the site's name
        ({"datum": "utm"}, "datum"),
        ({"lon": 250.0}, "lon"),
        ({"source": "pigeon"}, "source"),
        ({"reported_at": "2099-01-01T00:00:00+08:00"}, "reported_at"),
    ],
)
def test_bad_reports_are_422_and_nothing_stored(
    client: TestClient, case_city, body: dict, field: str
) -> None:
    lon, lat = point_lonlat(50, 50)
    r = client.post("/api/cases", json={"category_code": "0102", "lon": lon, "lat": lat} | body)
    assert r.status_code == 422, r.text
    assert field in (r.json().get("field") or str(r.json()["detail"]))
    assert client.get("/api/cases").json()["items"] == []


def test_idempotency_key_replays_and_refuses_a_different_body(
    client: TestClient, case_city
) -> None:
    lon, lat = point_lonlat(50, 50)
    body = {"category_code": "0102", "lon": lon, "lat": lat, "description": "垃圾"}
    first = client.post("/api/cases", json=body, headers={"Idempotency-Key": "k-1"})
    again = client.post("/api/cases", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post(
        "/api/cases", json=body | {"description": "别的"}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 409 and other.json()["case_id"] == first.json()["id"]
    assert len(client.get("/api/cases").json()["items"]) == 1


def test_duplicate_within_radius_and_window_is_flagged(client: TestClient, case_city) -> None:
    first = report(client, 50, 50).json()
    near = report(client, 70, 50).json()  # 20 m away, same category
    assert near["suspected_duplicate_of"] == first["id"]
    far = report(client, 50, 85).json()  # 35 m away
    assert far["suspected_duplicate_of"] is None
    other = report(client, 52, 50, "0104").json()  # another category
    assert other["suspected_duplicate_of"] is None
    later = report(
        client, 51, 50, reported_at=(datetime.now(SHANGHAI) - timedelta(hours=30)).isoformat()
    ).json()
    assert later["suspected_duplicate_of"] is None  # outside the 24 h window


def act(client: TestClient, case_id: int, action: str, **extra):
    """Act as a dispatcher who has just loaded the case (so sends its current version)."""
    version = client.get(f"/api/cases/{case_id}").json()["version"]
    # verification is someone else's: never whoever reported or fed the case back
    headers = verifier_headers(client) if action in ("verify", "rework") else None
    return client.post(
        f"/api/cases/{case_id}/actions",
        json={"action": action, "actor": "调度员王", "version": version} | extra,
        headers=headers,
    )


def test_full_workflow_with_rework_and_history(client: TestClient, case_city) -> None:
    cid = report(client, 50, 50).json()["id"]
    for step in ("register", "dispatch", "handle", "feedback"):
        assert act(client, cid, step).status_code == 200
    rework = act(client, cid, "rework", note="垃圾未清完", photos=["https://x/1.jpg"])
    assert rework.json()["status"] == "handling"
    act(client, cid, "feedback")
    lon, lat = point_lonlat(50, 50)
    closed = act(client, cid, "verify", lon=lon, lat=lat).json()
    assert closed["status"] == "closed" and closed["closed_at"]
    history = client.get(f"/api/cases/{cid}/history").json()
    assert [h["action"] for h in history] == [
        "report",
        "register",
        "dispatch",
        "handle",
        "feedback",
        "rework",
        "feedback",
        "verify",
    ]
    assert history[5]["note"] == "垃圾未清完" and history[5]["photos"] == ["https://x/1.jpg"]
    assert history[-1]["lon"] == pytest.approx(lon)


def test_illegal_transition_is_409_with_allowed_actions(client: TestClient, case_city) -> None:
    cid = report(client, 50, 50).json()["id"]
    r = act(client, cid, "verify")
    assert r.status_code == 409
    assert r.json()["allowed"] == ["register", "reject", "merge"]
    assert act(client, cid, "fly").status_code == 422
    assert act(client, cid, "reject").status_code == 422  # a reason is required
    assert client.get(f"/api/cases/{cid}").json()["status"] == "reported"


def test_stale_version_is_409_and_nothing_changes(client: TestClient, case_city) -> None:
    case = report(client, 50, 50).json()
    assert act(client, case["id"], "register", version=case["version"]).status_code == 200
    stale = act(client, case["id"], "dispatch", version=case["version"])
    assert stale.status_code == 409 and stale.json()["current_version"] == case["version"] + 1
    assert client.get(f"/api/cases/{case['id']}").json()["status"] == "registered"
    header = client.post(
        f"/api/cases/{case['id']}/actions",
        json={"action": "dispatch", "actor": "x"},
        headers={"If-Match": f'"{case["version"]}"'},
    )
    assert header.status_code == 409
    missing = client.post(
        f"/api/cases/{case['id']}/actions", json={"action": "dispatch", "actor": "x"}
    )
    assert missing.status_code == 428 and missing.json()["field"] == "version"


def test_dispatch_to_another_department(client: TestClient, case_city) -> None:
    cid = report(client, 50, 50).json()["id"]
    act(client, cid, "register")
    moved = act(client, cid, "dispatch", department="区市政中心").json()
    assert moved["department"] == "区市政中心" and moved["routed_by"] == "dispatcher 管理员 (admin)"
    history = client.get(f"/api/cases/{cid}/history").json()
    assert history[-1]["data"] == {"department": "区市政中心", "previous": "环卫所"}


def test_extend_needs_reason_and_later_deadline(client: TestClient, case_city) -> None:
    case = report(client, 50, 50).json()
    act(client, case["id"], "register")
    old = datetime.fromisoformat(case["deadline_at"])
    assert (
        act(
            client,
            case["id"],
            "extend",
            note="x",
            deadline_at=(old - timedelta(hours=1)).isoformat(),
        ).status_code
        == 422
    )
    assert (
        act(
            client, case["id"], "extend", deadline_at=(old + timedelta(days=1)).isoformat()
        ).status_code
        == 422
    )
    ok = act(
        client,
        case["id"],
        "extend",
        note="需协调产权单位",
        deadline_at=(old + timedelta(days=1)).isoformat(),
    )
    assert datetime.fromisoformat(ok.json()["deadline_at"]) == old + timedelta(days=1)
    assert ok.json()["status"] == "registered"


def test_merge_keeps_both_reporters(client: TestClient, case_city) -> None:
    first = report(client, 50, 50, reporter={"name": "甲"}).json()
    dup = report(client, 55, 50, reporter={"name": "乙"}).json()
    assert dup["suspected_duplicate_of"] == first["id"]
    merged = act(client, dup["id"], "merge", into=first["id"]).json()
    assert merged["status"] == "merged" and merged["merged_into"] == first["id"]
    master = client.get(f"/api/cases/{first['id']}").json()
    assert [r.get("name") for r in master["reporters"]] == ["甲", "乙"]
    assert act(client, first["id"], "merge", into=first["id"]).status_code == 422


def test_recurrence_after_closure_is_flagged(client: TestClient, case_city) -> None:
    cid = report(client, 300, 150).json()["id"]
    for step in ("register", "dispatch", "feedback", "verify"):
        act(client, cid, step)
    again = report(client, 310, 150).json()
    assert again["recurring_of"] == cid and again["suspected_duplicate_of"] is None
    reopened = act(client, cid, "reopen", note="又出现了").json()
    assert reopened["status"] == "dispatched" and reopened["closed_at"] is None


def test_history_is_append_only(client: TestClient, case_city, session) -> None:
    cid = report(client, 50, 50).json()["id"]
    act(client, cid, "register")
    for sql in (
        "UPDATE case_events SET note = 'x' WHERE case_id = :c",
        "DELETE FROM case_events WHERE case_id = :c",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with session.begin_nested():
                session.execute(text(sql), {"c": cid})
    assert [h["action"] for h in client.get(f"/api/cases/{cid}/history").json()] == [
        "report",
        "register",
    ]

"""``/api/orders`` on the demo city: the lifecycle of an order, who may do each step, scoped
reads, the orders on a case, the rules, and bad input answered with a 4xx naming the field that
stores nothing (not even a number)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.settings import AppSettings
from tests.helpers.accounts import headers_of
from tests.helpers.scope import Places, act, demo_places, report_at
from tests.helpers.supervision import order_count

CST = ZoneInfo("Asia/Shanghai")
NUMBER = re.compile(r"^督办〔(\d{4})〕第(\d{4})号$")


@pytest.fixture
def places(session: Session, demo_loaded: AppSettings) -> Places:
    return demo_places(session, demo_loaded)


def _deadline(days: float = 3) -> str:
    return (datetime.now(CST) + timedelta(days=days)).isoformat()


def _dispatched(client: TestClient, places: Places) -> int:
    """An open case at the unit point, dispatched to 环卫所."""
    cid = report_at(client, places.unit_point)["id"]
    for step in ("register", "dispatch"):
        assert act(client, cid, step).status_code == 200
    return cid


def _issue(client: TestClient, headers: dict[str, str] | None = None, **body: Any):
    payload = {
        "unit_kind": "department",
        "unit": "环卫所",
        "demand": "请于三日内清理完毕并书面回复",
        "deadline": _deadline(),
    } | body
    return client.post("/api/orders", json=payload, headers=headers)


def _do(client: TestClient, order_id: int, action: str, headers=None, **extra: Any):
    return client.post(
        f"/api/orders/{order_id}/actions", json={"action": action} | extra, headers=headers
    )


def test_an_order_goes_issued_acknowledged_answered_sent_back_answered_accepted(
    demo_client: TestClient, places: Places
) -> None:
    c = demo_client
    cid = _dispatched(c, places)
    leader = headers_of(c, "leader")
    staff = headers_of(c, "department", department="环卫所")
    r = _issue(c, leader, case_ids=[cid], person_name="李强", person_phone="13912345678")
    assert r.status_code == 201, r.text
    order = r.json()
    match = NUMBER.match(order["number"])
    assert match and int(match.group(1)) == datetime.now(CST).year
    assert order["status"] == "issued" and order["case_ids"] == [cid]
    assert order["allowed_actions"] == ["acknowledge"]
    oid = order["id"]
    # the department sees it, masked: it does not hold people.read
    seen = c.get(f"/api/orders/{oid}", headers=staff).json()
    assert seen["person"] == {"name": "李*", "phone": "139****5678"}
    steps = [
        ("acknowledge", staff, {}, "acknowledged"),
        ("answer", staff, {"note": "已清运"}, "answered"),
        ("send_back", leader, {"note": "现场仍有垃圾"}, "sent_back"),
        ("answer", staff, {"note": "已彻底清理并安排每日保洁"}, "answered"),
        ("accept", leader, {}, "accepted"),
    ]
    for action, who, extra, status in steps:
        r = _do(c, oid, action, who, **extra)
        assert r.status_code == 200, (action, r.text)
        assert r.json()["status"] == status
    done = r.json()
    assert done["answer"] == "已彻底清理并安排每日保洁" and done["allowed_actions"] == []
    assert [h["action"] for h in done["history"]] == [
        "issue",
        "acknowledge",
        "answer",
        "send_back",
        "answer",
        "accept",
    ]
    assert done["history"][3]["note"] == "现场仍有垃圾"
    # the case shows its order
    on_case = c.get(f"/api/cases/{cid}/orders").json()["items"]
    assert [o["number"] for o in on_case] == [order["number"]]
    # a final state allows nothing: 409 naming the status
    again = _do(c, oid, "acknowledge", staff)
    assert again.status_code == 409 and again.json()["field"] == "status"
    assert again.json()["status"] == "accepted"


def test_numbers_follow_each_other_and_a_refused_order_takes_none(
    demo_client: TestClient, places: Places, session: Session, demo_loaded: AppSettings
) -> None:
    c = demo_client
    cid = _dispatched(c, places)
    first = NUMBER.match(_issue(c, case_ids=[cid]).json()["number"])
    before = order_count(session, demo_loaded.grids.city)
    assert _issue(c, case_ids=[cid], deadline=_deadline(-1)).status_code == 422
    assert order_count(session, demo_loaded.grids.city) == before
    second = NUMBER.match(_issue(c, case_ids=[cid]).json()["number"])
    assert first and second and int(second.group(2)) == int(first.group(2)) + 1


def test_bad_orders_are_4xx_naming_the_field_and_store_nothing(
    demo_client: TestClient, places: Places, session: Session, demo_loaded: AppSettings
) -> None:
    c = demo_client
    open_case = _dispatched(c, places)
    closed = _dispatched(c, places)
    staff = headers_of(c, "department", department="环卫所")
    worker = headers_of(c, "grid_worker")
    assert act(c, closed, "feedback", staff).status_code == 200
    assert act(c, closed, "verify", worker).status_code == 200
    before = order_count(session, demo_loaded.grids.city)
    cases = [
        ({"case_ids": [open_case, closed]}, 422, "case_ids"),
        ({"case_ids": [10**12]}, 422, "case_ids"),
        ({"case_ids": [open_case], "deadline": _deadline(-0.01)}, 422, "deadline"),
        ({"case_ids": [open_case], "unit": "不存在的局"}, 422, "unit"),
        ({"case_ids": [open_case], "unit_kind": "grid", "unit": "99999999999999"}, 422, "unit"),
        ({"case_ids": []}, 422, "case_ids"),
        ({"subject_kind": "hotspot", "subject_key": "999999"}, 422, "subject_key"),
        ({"case_ids": [open_case], "demand": "   "}, 422, "demand"),
    ]
    for body, status, field in cases:
        r = _issue(c, **body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())
    closed_answer = _issue(c, case_ids=[closed]).json()
    assert closed_answer["case_ids"] == [closed]
    assert order_count(session, demo_loaded.grids.city) == before
    # a step without its reason, or unknown
    oid = _issue(c, case_ids=[open_case]).json()["id"]
    assert _do(c, oid, "acknowledge", staff).status_code == 200
    r = _do(c, oid, "answer", staff)
    assert r.status_code == 422 and r.json()["field"] == "note"
    assert _do(c, oid, "accept").json()["field"] == "status"
    assert c.get(f"/api/orders/{oid}").json()["status"] == "acknowledged"


def test_who_may_issue_answer_accept_and_read(demo_client: TestClient, places: Places) -> None:
    c = demo_client
    cid = _dispatched(c, places)
    leader = headers_of(c, "leader")
    staff = headers_of(c, "department", department="环卫所")
    other = headers_of(c, "department", department="城管执法中队")
    worker = headers_of(c, "grid_worker", scope_grids=[places.community])
    sibling = headers_of(c, "grid_worker", scope_grids=[places.sibling])
    r = _issue(c, worker, case_ids=[cid])
    assert r.status_code == 403 and r.json()["permission"] == "orders.issue"
    dept_order = _issue(c, leader, case_ids=[cid]).json()["id"]
    # another department neither sees nor answers it
    assert c.get(f"/api/orders/{dept_order}", headers=other).status_code == 404
    assert _do(c, dept_order, "acknowledge", other).status_code == 404
    # a grid worker sees it (the case is in their grids) but it is not theirs to answer
    assert c.get(f"/api/orders/{dept_order}", headers=worker).status_code == 200
    r = _do(c, dept_order, "acknowledge", worker)
    assert r.status_code == 403 and r.json()["field"] == "unit"
    # a grid order: the grid workers of that community answer it, the sibling's do not see it
    grid_order = _issue(
        c, leader, subject_kind="grid", subject_key=places.unit, unit_kind="grid", unit=places.unit
    ).json()
    assert grid_order["unit"] == places.unit
    gid = grid_order["id"]
    assert c.get(f"/api/orders/{gid}", headers=sibling).status_code == 404
    assert _do(c, gid, "acknowledge", worker).status_code == 200
    assert _do(c, gid, "answer", worker, note="已整改").status_code == 200
    # accepting is the issuer's (or orders.issue's), never the unit's
    r = _do(c, gid, "accept", worker)
    assert r.status_code == 403 and r.json()["permission"] == "orders.issue"
    assert _do(c, gid, "accept", leader).status_code == 200
    # lists are scoped the same way
    ids = lambda h: {o["id"] for o in c.get("/api/orders", headers=h).json()["items"]}  # noqa: E731
    assert ids(staff) == {dept_order}
    assert ids(other) == set()
    assert ids(worker) == {dept_order, gid}
    assert ids(sibling) == set()
    assert {dept_order, gid} <= ids(leader)
    # a scoped leader may not put a grid outside the scope in charge
    street_leader = headers_of(c, "leader", scope_grids=[places.sibling])
    r = _issue(
        c,
        street_leader,
        unit_kind="grid",
        unit=places.unit,
        subject_kind="grid",
        subject_key=places.unit,
    )
    assert r.status_code == 403 and r.json()["field"] == "scope"


def test_rules_are_listed_and_edited_by_the_admin_only(demo_client: TestClient) -> None:
    c = demo_client
    rules = {r["key"]: r for r in c.get("/api/orders/rules").json()["rules"]}
    assert set(rules) == {"overdue", "reworked", "recurring", "campaign_hotspot"}
    assert rules["campaign_hotspot"]["mode"] == "propose" and rules["campaign_hotspot"]["enabled"]
    assert rules["overdue"]["params"] == {"working_days": 3} and rules["overdue"]["default"]
    assert rules["recurring"]["params"] == {"times": 3, "days": 30}
    leader = headers_of(c, "leader")
    r = c.put("/api/orders/rules/overdue", json={"mode": "propose"}, headers=leader)
    assert r.status_code == 403 and r.json()["permission"] == "orders.rules"
    r = c.put("/api/orders/rules/overdue", json={"mode": "propose", "params": {"working_days": 5}})
    assert r.status_code == 200, r.text
    assert r.json()["mode"] == "propose" and not r.json()["default"]
    for body, field in (
        ({"demand": "请于{deadlin}前回复"}, "demand"),
        ({"demand": "{case_id.__class__}"}, "demand"),
        ({"params": {"working_days": 0}}, "params.working_days"),
        ({"params": {"days": 3}}, "params.days"),
        ({"deadline_days": 0}, "deadline_days"),
    ):
        r = c.put("/api/orders/rules/overdue", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
    assert c.put("/api/orders/rules/nothing", json={}).status_code == 404
    # the sweep on demand: the admin's (orders.rules) only
    assert c.post("/api/orders/escalate", json={}, headers=leader).status_code == 403
    r = c.post("/api/orders/escalate", json={"at": "1900-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["field"] == "at"
    swept = c.post("/api/orders/escalate", json={"at": "2026-12-01T08:00"})
    assert swept.status_code == 200, swept.text
    assert swept.json()["at"].startswith("2026-12-01T08:00:00+08:00")
    assert {"proposed", "issued", "escalated", "at_top"} <= set(swept.json())
    now = {r["key"]: r for r in c.get("/api/orders/rules").json()["rules"]}["overdue"]
    assert now["params"] == {"working_days": 5} and now["mode"] == "propose"

"""The case workflow by principals on the demo city: each role's allowed and refused actions,
the separation of duties, 退单 (return), and the history naming who acted. Every refused write
is a 403 (naming the permission, the scope or the rule) that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.settings import AppSettings
from tests.helpers.accounts import headers_of
from tests.helpers.scope import Places, act, demo_places, report_at, state


@pytest.fixture
def places(session: Session, demo_loaded: AppSettings) -> Places:
    return demo_places(session, demo_loaded)


def _refused(
    client: TestClient, case_id: int, action: str, headers: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """Send ``action`` as ``headers``; assert a 403 that left the case as it was."""
    before = state(client, case_id)
    r = act(client, case_id, action, headers, note="试试", **extra)
    assert r.status_code == 403, (action, r.text)
    assert state(client, case_id) == before
    return r.json()


def _to(client: TestClient, case_id: int, *steps: str) -> None:
    for step in steps:
        r = act(client, case_id, step)
        assert r.status_code == 200, (step, r.text)


def test_each_role_may_do_its_own_steps_and_no_others(
    demo_client: TestClient, places: Places
) -> None:
    c = demo_client
    intake = headers_of(c, "intake")
    dispatcher = headers_of(c, "dispatcher", scope_grids=[places.street])
    sanitation = headers_of(c, "department", department="环卫所")
    worker = headers_of(c, "grid_worker", scope_grids=[places.community])
    inspector = headers_of(c, "inspector", scope_grids=[places.street])
    leader = headers_of(c, "leader")
    editor = headers_of(c, "gis_editor")
    cid = report_at(c, places.unit_point)["id"]

    # reported: intake registers; nobody else may
    for who, needs in ((dispatcher, "cases.register"), (worker, "cases.register")):
        assert _refused(c, cid, "register", who)["permission"] == needs
    for who in (inspector, leader):
        assert _refused(c, cid, "register", who)["permission"] == "cases.register"
    assert c.get(f"/api/cases/{cid}", headers=editor).status_code == 403  # no cases.read
    assert act(c, cid, "register", intake).status_code == 200
    # registered: the dispatcher dispatches and extends; intake may not dispatch
    assert _refused(c, cid, "dispatch", intake)["permission"] == "cases.dispatch"
    assert act(c, cid, "dispatch", dispatcher).status_code == 200
    # dispatched to 环卫所: its staff handle and feed back; the dispatcher may not
    assert _refused(c, cid, "handle", dispatcher)["permission"] == "cases.handle"
    assert act(c, cid, "handle", sanitation).status_code == 200
    assert act(c, cid, "feedback", sanitation).status_code == 200
    # fed back: a grid worker of the case's grids verifies; the department may not
    assert _refused(c, cid, "verify", sanitation)["permission"] == "cases.verify"
    assert _refused(c, cid, "verify", dispatcher)["permission"] == "cases.verify"
    closed = act(c, cid, "verify", worker)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    # only the admin's role reopens
    assert _refused(c, cid, "reopen", worker)["permission"] == "cases.reopen"


def test_writes_outside_the_scope_are_refused_naming_it(
    demo_client: TestClient, places: Places
) -> None:
    c = demo_client
    cid = report_at(c, places.sibling_point)["id"]  # in the sibling community
    intake = headers_of(c, "intake", scope_grids=[places.community])
    body = _refused(c, cid, "register", intake)
    assert body["field"] == "scope" and places.community[:12] in body["detail"]
    _to(c, cid, "register")
    dispatcher = headers_of(c, "dispatcher", scope_grids=[places.community])
    assert _refused(c, cid, "dispatch", dispatcher)["field"] == "scope"
    _to(c, cid, "dispatch", "feedback")
    worker = headers_of(c, "grid_worker", scope_grids=[places.community])
    assert _refused(c, cid, "verify", worker)["field"] == "scope"
    enforcement = headers_of(c, "department", department="城管执法中队")
    assert _refused(c, cid, "rework", enforcement)["permission"] == "cases.verify"
    # a merge into a case outside the scope is refused too, and neither case changes
    mine = report_at(c, places.unit_point)["id"]
    merger = headers_of(c, "intake", scope_grids=[places.community])
    before = state(c, cid)
    assert _refused(c, mine, "merge", merger, into=cid)["field"] == "scope"
    assert state(c, cid) == before


def test_a_department_handles_only_the_cases_dispatched_to_it(
    demo_client: TestClient, places: Places
) -> None:
    c = demo_client
    cid = report_at(c, places.unit_point)["id"]
    _to(c, cid, "register", "dispatch")  # to 环卫所
    enforcement = headers_of(c, "department", department="城管执法中队")
    for step in ("handle", "feedback", "return"):
        assert _refused(c, cid, step, enforcement)["field"] == "scope"
    # a department that also covers the grids sees the case, and still may not handle it
    both = headers_of(c, "department", department="城管执法中队", scope_grids=[places.community])
    assert _refused(c, cid, "handle", both)["field"] == "department"


def test_the_department_that_fed_back_never_verifies_its_own_case(
    demo_client: TestClient, places: Places
) -> None:
    c = demo_client
    cid = report_at(c, places.unit_point)["id"]
    _to(c, cid, "register", "dispatch")
    # staff of 环卫所 who are also supervisors of these grids
    fixer = headers_of(
        c, "department", "grid_worker", department="环卫所", scope_grids=[places.community]
    )
    colleague = headers_of(
        c, "department", "grid_worker", department="环卫所", scope_grids=[places.community]
    )
    assert act(c, cid, "feedback", fixer).status_code == 200
    for who in (fixer, colleague):
        for step in ("verify", "rework"):
            body = _refused(c, cid, step, who)
            assert body["rule"] == "feedback_department" and "环卫所" in body["detail"]
    worker = headers_of(c, "grid_worker", scope_grids=[places.community])
    assert act(c, cid, "verify", worker).json()["status"] == "closed"


def test_a_reporter_never_closes_their_own_report(demo_client: TestClient, places: Places) -> None:
    c = demo_client
    reporter = headers_of(c, "grid_worker", scope_grids=[places.community])
    cid = report_at(c, places.unit_point, headers=reporter)["id"]
    _to(c, cid, "register", "dispatch", "feedback")
    body = _refused(c, cid, "verify", reporter)
    assert body["rule"] == "reporter"
    # the city-wide supervisor may (a city-wide role holding cases.verify)
    supervisor = headers_of(c, "grid_worker")
    assert act(c, cid, "verify", supervisor).json()["status"] == "closed"


def test_return_sends_the_case_back_to_the_dispatcher_with_a_reason(
    demo_client: TestClient, places: Places
) -> None:
    c = demo_client
    cid = report_at(c, places.unit_point)["id"]
    sanitation = headers_of(c, "department", department="环卫所")
    dispatcher = headers_of(c, "dispatcher", scope_grids=[places.street])
    assert _refused(c, cid, "return", dispatcher)["permission"] == "cases.return"
    _to(c, cid, "register", "dispatch")
    before = state(c, cid)
    no_reason = act(c, cid, "return", sanitation)
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "note"
    assert state(c, cid) == before

    back = act(c, cid, "return", sanitation, note="不属于环卫所职责,应为园林绿化")
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "registered" and back.json()["department"] is None
    step = c.get(f"/api/cases/{cid}/history").json()[-1]
    assert (step["action"], step["from_status"], step["to_status"]) == (
        "return",
        "dispatched",
        "registered",
    )
    assert step["note"] == "不属于环卫所职责,应为园林绿化"
    assert step["data"] == {"department": "环卫所"}
    # the department no longer sees it; the dispatcher must name where it goes now
    assert c.get(f"/api/cases/{cid}", headers=sanitation).status_code == 404
    unnamed = act(c, cid, "dispatch", dispatcher)
    assert unnamed.status_code == 422 and unnamed.json()["field"] == "department"
    again = act(c, cid, "dispatch", dispatcher, department="园林绿化所")
    assert again.json()["status"] == "dispatched" and again.json()["department"] == "园林绿化所"
    # returning is only for dispatched (or handling) cases
    closed = report_at(c, places.sibling_point)["id"]
    assert act(c, closed, "return", note="x").status_code == 409


def test_the_history_names_the_account_and_ignores_the_free_text_actor(
    demo_client: TestClient, places: Places, session: Session, demo_loaded: AppSettings
) -> None:
    from service.db.models import User

    c = demo_client
    intake = headers_of(c, "intake")
    cid = report_at(c, places.unit_point)["id"]
    r = act(c, cid, "register", intake, actor="冒名顶替")
    assert r.status_code == 200
    step = c.get(f"/api/cases/{cid}/history").json()[-1]
    user = session.get(User, step["actor_user_id"])
    assert user is not None and "intake" in user.roles
    assert step["actor"] == f"{user.display_name} ({user.login})"
    assert step["actor_key_id"] is None
    # the report names its reporter account too
    report = c.get(f"/api/cases/{cid}/history").json()[0]
    assert report["actor_user_id"] is not None  # the admin who reported it


def test_an_api_key_reports_and_is_recorded_as_the_reporter(
    demo_client: TestClient, places: Places, session: Session, demo_loaded: AppSettings
) -> None:
    from service.accounts.accounts import KeyInput
    from service.accounts.principal import SYSTEM
    from tests.helpers.accounts import seeded

    key, secret = seeded(session, demo_loaded).create_key(
        # a unit of its own as its scope: it handles nothing, so it sees its own reports
        KeyInput("12345热线", ["cases.report", "cases.read"], department="12345热线"),
        SYSTEM,
    )
    session.commit()
    hotline = {"X-API-Key": secret, "Authorization": ""}  # not the client's admin token
    case = report_at(demo_client, places.unit_point, headers=hotline, source="hotline")
    history = demo_client.get(f"/api/cases/{case['id']}/history", headers=hotline)
    assert history.status_code == 200  # it reported it: in its scope
    assert history.json()[0]["actor_key_id"] == key.id
    others = report_at(demo_client, places.sibling_point)["id"]
    assert demo_client.get(f"/api/cases/{others}", headers=hotline).status_code == 404

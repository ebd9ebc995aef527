"""综合评价: a closed case is evaluated once (satisfaction and quality), by intake, a leader,
an admin or the user who reported it; refusals change nothing; the indicators count it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.assessment.figures import IndicatorEngine
from service.assessment.periods import parse_period
from service.settings import AppSettings
from tests.helpers.accounts import headers_of
from tests.helpers.scope import Places, act, demo_places, report_at, state


@pytest.fixture
def places(session: Session, demo_loaded: AppSettings) -> Places:
    return demo_places(session, demo_loaded)


def _closed(c: TestClient, places: Places, reporter: dict[str, str] | None = None) -> int:
    """A case reported (by the admin unless ``reporter``), handled by 环卫所 and verified by a
    grid worker of its community."""
    cid = report_at(c, places.unit_point, headers=reporter)["id"]
    sanitation = headers_of(c, "department", department="环卫所")
    worker = headers_of(c, "grid_worker", scope_grids=[places.community])
    for step, who in (
        ("register", None),
        ("dispatch", None),
        ("handle", sanitation),
        ("feedback", sanitation),
        ("verify", worker),
    ):
        r = act(c, cid, step, who)
        assert r.status_code == 200, (step, r.text)
    return cid


def _evaluate(c: TestClient, cid: int, who: dict[str, str] | None, **body: Any):
    return act(c, cid, "evaluate", who, **({"satisfaction": "满意", "quality": 5} | body))


def test_evaluate_per_role_once_and_only_when_closed(
    demo_client: TestClient, places: Places
) -> None:
    c = demo_client
    intake = headers_of(c, "intake")
    leader = headers_of(c, "leader")
    dispatcher = headers_of(c, "dispatcher", scope_grids=[places.street])
    sanitation = headers_of(c, "department", department="环卫所")
    worker = headers_of(c, "grid_worker", scope_grids=[places.community])

    # not closed yet: 409 naming the status, for every role that could evaluate
    open_case = report_at(c, places.unit_point)["id"]
    for who in (None, intake, leader):
        r = _evaluate(c, open_case, who)
        assert r.status_code == 409, r.text
        assert r.json()["status"] == "reported" and "reported" in r.json()["detail"]

    cid = _closed(c, places)
    case = c.get(f"/api/cases/{cid}").json()
    assert "evaluate" in case["allowed_actions"] and case["evaluation"] is None
    # roles without cases.evaluate: 403 naming it, nothing stored
    for who in (dispatcher, sanitation, worker):
        before = state(c, cid)
        r = _evaluate(c, cid, who)
        assert r.status_code == 403, r.text
        assert r.json()["permission"] == "cases.evaluate"
        assert state(c, cid) == before
    r = _evaluate(c, cid, intake, satisfaction="基本满意", quality=4)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "closed"  # evaluation leaves the case closed
    assert body["evaluation"]["satisfaction"] == "基本满意"
    assert body["evaluation"]["quality"] == 4 and body["evaluation"]["at"]
    assert "evaluate" not in body["allowed_actions"]
    # twice: 409, the first evaluation stays
    before = state(c, cid)
    r = _evaluate(c, cid, leader, satisfaction="不满意", quality=1)
    assert r.status_code == 409, r.text
    assert "evaluated once" in r.json()["detail"]
    assert state(c, cid) == before
    assert c.get(f"/api/cases/{cid}").json()["evaluation"]["satisfaction"] == "基本满意"

    # the history names who evaluated and what they said
    last = c.get(f"/api/cases/{cid}/history").json()[-1]
    assert last["action"] == "evaluate"
    assert (last["from_status"], last["to_status"]) == ("closed", "closed")
    assert last["data"] == {"satisfaction": "基本满意", "quality": 4}
    assert last["actor_user_id"] is not None and last["actor"]

    # a leader and the admin evaluate other closed cases
    assert _evaluate(c, _closed(c, places), leader).status_code == 200
    assert _evaluate(c, _closed(c, places), None).status_code == 200


def test_the_user_who_reported_may_evaluate_their_own_case(
    demo_client: TestClient, places: Places
) -> None:
    c = demo_client
    reporter = headers_of(c, "grid_worker", scope_grids=[places.community])
    other = headers_of(c, "grid_worker", scope_grids=[places.community])
    cid = _closed(c, places, reporter=reporter)
    r = _evaluate(c, cid, other)  # a worker of the same grid who did not report it
    assert r.status_code == 403 and r.json()["permission"] == "cases.evaluate"
    r = _evaluate(c, cid, reporter, satisfaction="不满意", quality=2)
    assert r.status_code == 200, r.text
    assert r.json()["evaluation"]["satisfaction"] == "不满意"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"satisfaction": "很好"}, "satisfaction"),
        ({"satisfaction": None}, "satisfaction"),
        ({"quality": 0}, "quality"),
        ({"quality": 6}, "quality"),
        ({"quality": None}, "quality"),
        ({"quality": "五"}, "quality"),
    ],
)
def test_bad_evaluations_are_422_naming_the_field_and_store_nothing(
    demo_client: TestClient, places: Places, body: dict[str, Any], field: str
) -> None:
    c = demo_client
    cid = _closed(c, places)
    before = state(c, cid)
    r = _evaluate(c, cid, None, **body)
    assert r.status_code == 422, r.text
    answer = r.json()
    if "field" in answer:  # the service's check
        assert answer["field"] == field
    else:  # the body's schema (a quality that is no number)
        assert any(field in e["loc"] for e in answer["detail"])
    assert state(c, cid) == before
    assert c.get(f"/api/cases/{cid}").json()["evaluation"] is None


def test_evaluation_indicators_match_a_plain_count(
    demo_client: TestClient, places: Places, session: Session, demo_loaded: AppSettings
) -> None:
    c = demo_client
    rated = [("满意", 5), ("基本满意", 4), ("不满意", 2), ("满意", 3)]
    for satisfaction, quality in rated:
        cid = _closed(c, places)
        assert (
            _evaluate(c, cid, None, satisfaction=satisfaction, quality=quality).status_code == 200
        )
    _closed(c, places)  # closed, never evaluated: counts in none of them
    tz = demo_loaded.grids.timezone
    today = pd.Timestamp.now(tz)
    days = f"{(today - timedelta(days=1)):%Y-%m-%d}..{(today + timedelta(days=1)):%Y-%m-%d}"
    period = parse_period(days, tz)
    plain = session.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE e.data ->> 'satisfaction' <> '不满意'),"
            " sum((e.data ->> 'quality')::int)"
            " FROM case_events e JOIN cases k ON k.city = e.city AND k.id = e.case_id"
            " WHERE k.city = :city AND e.action = 'evaluate' AND e.at >= :s AND e.at < :e"
        ),
        {"city": demo_loaded.grids.city, "s": period.start, "e": period.end},
    ).one()
    assert tuple(plain) == (4, 3, 14)
    engine = IndicatorEngine(session, demo_loaded)
    city = engine.grid_figures(period, ["city"])["city"][0].values()
    assert (city["evaluated"], city["satisfied"], city["quality_points"]) == tuple(plain)
    assert city["satisfaction_rate"] == 0.75
    assert city["avg_quality"] == 3.5
    # one subject's pass and the drill-down agree with the list
    dept = engine.subject(period, "department", "环卫所").values()
    assert dept["evaluated"] == 4 and dept["satisfaction_rate"] == 0.75
    rows, _ = engine.cases(period, "department", "环卫所", "satisfied")
    assert len(rows) == 3

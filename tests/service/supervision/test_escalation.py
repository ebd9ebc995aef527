"""The escalation sweep against PostGIS: each rule fires once per case (a unique constraint
decides, not Python), proposes or issues as its mode says, and an order whose deadline passes
unanswered goes one level up the grid or department chain, once."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.clock import now
from service.db.models import Case, SupervisionOrder
from service.grids.registry import Registry
from service.settings import AppSettings, CaseSettings
from service.supervision.escalation import escalate
from service.supervision.orders import OrderService
from service.supervision.rules import RuleBook, RulePatch
from tests.helpers.city import COMM_A, unit_code
from tests.helpers.supervision import later, order_count, reported, step

UNIT = unit_code(COMM_A, 2)  # the grid of the cases reported at the default place


@pytest.fixture
def city(case_city: Registry, session: Session, settings: AppSettings) -> AppSettings:
    """The small city with its catalogue; only the overdue rule on, unless a test says so."""
    book = RuleBook(session, settings)
    for key in ("reworked", "recurring"):
        book.update(key, RulePatch(enabled=False), SYSTEM)
    return settings


def _orders(session: Session, settings: AppSettings) -> list[SupervisionOrder]:
    return OrderService(session, settings).orders(SYSTEM, limit=1000)[::-1]


def test_an_overdue_case_gets_one_order_from_the_rule_however_often_the_sweep_runs(
    session: Session, city: AppSettings
) -> None:
    late = reported(session, city, days_ago=20)  # 暴露垃圾: two working hours to fix
    fresh = reported(session, city, days_ago=0, x=250)
    first = escalate(session, city)
    assert [o["case_ids"] for o in first.issued] == [[late.id]]
    assert first.proposed == [] and first.escalated == []
    again = escalate(session, city)
    assert again.issued == again.proposed == again.escalated == []
    (order,) = _orders(session, city)
    assert order.status == "issued" and order.rule_key == "overdue"
    assert order.number is not None and order.number.endswith("第0001号")
    # not yet dispatched: the case's grid answers for it, with its responsible person
    assert (order.unit_kind, order.unit) == ("grid", UNIT)
    assert order.unit_name == "经八路街道办" and order.person_name == "网格员2"
    assert f"案件{late.id}" in order.demand and "3个工作日" in order.demand
    assert fresh.id not in order.case_ids
    assert order_count(session, city.grids.city) == (1, 1)


def test_the_once_per_case_and_rule_guard_is_a_unique_constraint(
    session: Session, city: AppSettings
) -> None:
    late = reported(session, city, days_ago=20)
    escalate(session, city)
    (order,) = _orders(session, city)
    twin = SupervisionOrder(
        **{
            c: getattr(order, c)
            for c in ("city", "status", "subject_kind", "unit_kind", "unit", "unit_name")
        },
        number="督办〔2099〕第9999号",
        year=2099,
        seq=9999,
        demand="again",
        deadline_at=order.deadline_at,
        case_ids=[late.id],
        rule_key="overdue",
        trigger_case_id=late.id,
        level=1,
        created_at=now(),
        updated_at=now(),
    )
    savepoint = session.begin_nested()
    session.add(twin)
    with pytest.raises(IntegrityError, match="uq_supervision_orders_rule_case"):
        session.flush()
    savepoint.rollback()


def test_an_order_unanswered_past_its_deadline_goes_one_grid_level_up_once(
    session: Session, city: AppSettings
) -> None:
    reported(session, city, days_ago=20)
    escalate(session, city)
    (parent,) = _orders(session, city)
    assert escalate(session, city, later(1)).escalated == []  # not yet past its deadline
    report = escalate(session, city, later(10))
    assert len(report.escalated) == 1
    child = session.get(SupervisionOrder, report.escalated[0]["id"])
    assert child is not None
    assert (child.unit_kind, child.unit, child.unit_name) == ("grid", COMM_A, "甲社区")
    assert child.level == 2 and child.parent_id == parent.id and child.status == "issued"
    assert child.case_ids == parent.case_ids and parent.number in child.demand
    assert child.number is not None and child.number.endswith("第0002号")
    history = OrderService(session, city).history(parent)
    assert [e.action for e in history] == ["issue", "escalate"]
    assert child.number in (history[-1].note or "")
    # the same breach never escalates twice
    assert escalate(session, city, later(10)).escalated == []
    # the escalated order breaks its own deadline: one more level up (the street)
    up = escalate(session, city, later(30)).escalated
    assert [(o["unit"], o["level"]) for o in up] == [(COMM_A[:9] + "00000", 3)]


def test_an_answered_order_does_not_escalate(session: Session, city: AppSettings) -> None:
    reported(session, city, days_ago=20)
    escalate(session, city)
    (order,) = _orders(session, city)
    orders = OrderService(session, city)
    orders.act(order.id, "acknowledge", SYSTEM)
    orders.act(order.id, "answer", SYSTEM, note="已清运，建立每日巡查制度")
    assert escalate(session, city, later(10)).escalated == []


def test_a_department_order_escalates_to_its_configured_superior_then_the_top(
    session: Session, city: AppSettings
) -> None:
    settings = dataclasses.replace(
        city,
        cases=CaseSettings(
            _env_file=None, order_superiors="环卫所:市城市管理局", order_top_unit="市城管委"
        ),
    )
    case = reported(session, settings, days_ago=20)
    step(session, settings, case, "register", "dispatch")  # to 环卫所
    escalate(session, settings)
    (order,) = _orders(session, settings)
    assert (order.unit_kind, order.unit) == ("department", "环卫所")
    first = escalate(session, settings, later(10)).escalated
    assert [o["unit"] for o in first] == ["市城市管理局"]
    second = escalate(session, settings, later(30))
    assert [o["unit"] for o in second.escalated] == ["市城管委"]
    third = escalate(session, settings, later(60))
    assert third.escalated == [] and [o["unit"] for o in third.at_top] == ["市城管委"]


def test_a_case_reworked_twice_is_proposed_and_a_leader_issues_the_proposal(
    session: Session, city: AppSettings
) -> None:
    RuleBook(session, city).update("reworked", RulePatch(enabled=True), SYSTEM)
    case = reported(session, city, days_ago=0)
    step(session, city, case, "register", "dispatch", "feedback", "rework", "feedback")
    assert escalate(session, city).proposed == []  # once is not twice
    step(session, city, case, "rework")
    report = escalate(session, city)
    assert [o["case_ids"] for o in report.proposed] == [[case.id]] and report.issued == []
    (proposal,) = _orders(session, city)
    assert proposal.status == "proposed" and proposal.number is None
    assert order_count(session, city.grids.city) == (1, 0)  # a proposal takes no number
    issued = OrderService(session, city).act(proposal.id, "issue", SYSTEM)
    assert issued.status == "issued" and issued.number is not None
    assert escalate(session, city).proposed == []


def test_the_same_problem_three_times_in_thirty_days_is_proposed(
    session: Session, city: AppSettings
) -> None:
    RuleBook(session, city).update("recurring", RulePatch(enabled=True), SYSTEM)
    first = reported(session, city, days_ago=25)
    second = reported(session, city, days_ago=12)
    third = reported(session, city, days_ago=1)
    old = reported(session, city, days_ago=60)
    step(session, city, first, "register", "dispatch", "feedback", "verify")
    step(session, city, second, "register", "dispatch", "feedback", "verify")
    for case, prev in ((second, first), (third, second), (first, old)):
        session.execute(update(Case).where(Case.id == case.id).values(recurring_of=prev.id))
    session.expire_all()
    report = escalate(session, city, now() + timedelta(minutes=1))
    assert [o["case_ids"] for o in report.proposed] == [[third.id]]
    # two in the window is not three
    RuleBook(session, city).update("recurring", RulePatch(params={"times": 4, "days": 30}), SYSTEM)
    session.execute(update(Case).where(Case.id == second.id).values(recurring_of=None))
    assert escalate(session, city).proposed == []


def test_a_disabled_rule_orders_nothing(session: Session, city: AppSettings) -> None:
    RuleBook(session, city).update("overdue", RulePatch(enabled=False), SYSTEM)
    reported(session, city, days_ago=20)
    assert escalate(session, city).issued == []
    assert order_count(session, city.grids.city) == (0, 0)


def test_the_cases_of_a_sweep_load_by_one_array_parameter_whatever_their_count(
    session: Session, city: AppSettings
) -> None:
    # 1M-case city: every open case can breach a rule; an IN list of 70,000 ids binds 70,000
    # parameters and PostgreSQL refuses more than 65,535 in one statement
    from service.supervision.escalation import _cases

    late = reported(session, city, days_ago=20)
    ids = [late.id, *range(10**9, 10**9 + 70_000)]  # unknown ids are skipped
    assert list(_cases(session, ids)) == [late.id]
    assert _cases(session, []) == {}

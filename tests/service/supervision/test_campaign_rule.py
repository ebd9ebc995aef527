"""The campaign escalation rule (``campaign_hotspot``) against PostGIS: an open case with a
running campaign's tag, in one of its hotspots and open longer than the rule's working hours,
is proposed once per case and rule; the issued order, unanswered past its deadline, goes one
level up the grid chain; cases outside the hotspot, the campaign's categories or its period,
closed ones and fresh ones are left alone."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
import shapely
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.campaigns.campaigns import CampaignInput, CampaignService, TargetInput
from service.clock import now
from service.db.models import Campaign, SupervisionOrder
from service.errors import InvalidInput
from service.grids.registry import Registry
from service.settings import AppSettings
from service.supervision.escalation import escalate
from service.supervision.orders import OrderService
from service.supervision.rules import RuleBook, RulePatch
from tests.helpers.city import COMM_A, MARKET, X0, Y0, unit_code
from tests.helpers.supervision import later, order_count, reported, step

RULE = "campaign_hotspot"
UNIT = unit_code(COMM_A, 2)  # the grid holding the market
SPOT = MARKET.buffer(20)  # the market hotspot as stored (20 m buffer), in UTM metres


@pytest.fixture
def city(case_city: Registry, session: Session, settings: AppSettings) -> AppSettings:
    """The small city with its catalogue; only the campaign rule on (as seeded: propose)."""
    book = RuleBook(session, settings)
    for key in ("overdue", "reworked", "recurring"):
        book.update(key, RulePatch(enabled=False), SYSTEM)
    return settings


def _today(settings: AppSettings) -> date:
    return now().astimezone(ZoneInfo(settings.grids.timezone)).date()


def _campaign(
    session: Session, settings: AppSettings, start_days: int = -30, end_days: int = 90
) -> Campaign:
    """暴露垃圾 (0102) over community A and the market, from ``start_days`` to ``end_days``
    days from today."""
    today = _today(settings)
    return CampaignService(session, settings).create(
        CampaignInput(
            name="农贸市场周边环境专项整治",
            start=today + timedelta(days=start_days),
            end=today + timedelta(days=end_days),
            targets=[TargetInput("close_rate", 1.0)],
            grids=[COMM_A],
            hotspots=["market-01"],
            categories=["0102"],
        ),
        SYSTEM,
    )


def _orders(session: Session, settings: AppSettings) -> list[SupervisionOrder]:
    return OrderService(session, settings).orders(SYSTEM, limit=1000)[::-1]


def test_the_seeded_rule_proposes_one_order_per_case_in_a_campaign_hotspot(
    session: Session, city: AppSettings
) -> None:
    rule = RuleBook(session, city).get(RULE)
    assert (rule.mode, rule.enabled, rule.params, rule.city) == (
        "propose",
        True,
        {"working_hours": 8},
        None,
    )
    points = {"late": (150, 150), "fresh": (140, 140), "off_spot": (250, 150), "vendor": (160, 160)}
    # the places as the tests mean them (checked with shapely, not the database)
    inside = {k: SPOT.contains(shapely.Point(X0 + p[0], Y0 + p[1])) for k, p in points.items()}
    assert inside == {"late": True, "fresh": True, "off_spot": False, "vendor": True}
    late = reported(session, city, days_ago=5, x=150, y=150)
    fresh = reported(session, city, days_ago=0, x=140, y=140)
    off_spot = reported(session, city, days_ago=5, x=250, y=150)  # tagged (community A)
    vendor = reported(session, city, days_ago=5, x=160, y=160, category="0502")  # not tagged
    closed = reported(session, city, days_ago=5, x=155, y=155)
    step(session, city, closed, "register", "dispatch", "feedback", "verify")
    campaign = _campaign(session, city)
    tagged = CampaignService(session, city).active_campaigns_for_case
    assert [c["id"] for c in tagged(off_spot.id)] == [campaign.id]
    assert tagged(vendor.id) == []

    report = escalate(session, city)
    assert [o["case_ids"] for o in report.proposed] == [[late.id]]
    assert report.issued == [] and report.escalated == []
    (order,) = _orders(session, city)
    assert (order.status, order.rule_key, order.trigger_case_id) == ("proposed", RULE, late.id)
    assert order.number is None and order_count(session, city.grids.city) == (1, 0)
    assert (order.unit_kind, order.unit) == ("grid", UNIT)
    assert "农贸市场周边环境专项整治" in order.demand and "甲农贸市场" in order.demand
    assert f"案件{late.id}" in order.demand and "8个工作小时" in order.demand
    assert {fresh.id, off_spot.id, vendor.id, closed.id}.isdisjoint(order.case_ids)
    # at most once per case and rule, however often the sweep runs
    assert escalate(session, city).proposed == []
    # two weeks on, the fresh case has been open more than a working day too: its own order
    two_weeks = escalate(session, city, later(14))
    assert [o["case_ids"] for o in two_weeks.proposed] == [[fresh.id]]
    assert {o.trigger_case_id for o in _orders(session, city)} == {late.id, fresh.id}
    assert escalate(session, city, later(15)).proposed == []


def test_the_working_hours_param_decides_how_long_is_too_long(
    session: Session, city: AppSettings
) -> None:
    RuleBook(session, city).update(RULE, RulePatch(params={"working_hours": 200}), SYSTEM)
    case = reported(session, city, days_ago=5)
    _campaign(session, city)
    # five calendar days hold at most 120 hours, working or not
    assert escalate(session, city).proposed == []
    # sixty days later the case has been open far longer than 200 working hours
    report = escalate(session, city, later(60))
    assert [o["case_ids"] for o in report.proposed] == [[case.id]]


def test_no_order_outside_the_campaign_period_or_without_campaign_hotspots(
    session: Session, city: AppSettings
) -> None:
    case = reported(session, city, days_ago=10)
    _campaign(session, city, start_days=-20, end_days=-1)  # over since yesterday
    assert escalate(session, city).proposed == []
    # a running campaign over community A that names no hotspots tags the case, but it is
    # not in one of *that campaign's* hotspots
    CampaignService(session, city).create(
        CampaignInput(
            name="社区环境整治",
            start=_today(city) - timedelta(days=20),
            end=_today(city) + timedelta(days=20),
            targets=[TargetInput("close_rate", 1.0)],
            grids=[COMM_A],
        ),
        SYSTEM,
    )
    assert escalate(session, city).proposed == []
    assert order_count(session, city.grids.city) == (0, 0)
    assert case.hotspot_ids  # in the market all along


def test_an_issued_campaign_order_unanswered_goes_one_level_up_once(
    session: Session, city: AppSettings
) -> None:
    RuleBook(session, city).update(RULE, RulePatch(mode="issue"), SYSTEM)
    case = reported(session, city, days_ago=5)
    _campaign(session, city)
    first = escalate(session, city)
    assert [o["case_ids"] for o in first.issued] == [[case.id]] and first.proposed == []
    (parent,) = _orders(session, city)
    assert parent.status == "issued" and parent.number is not None
    # the second breach: the deadline (2 working days) passes unanswered
    assert escalate(session, city, later(0.5)).escalated == []
    up = escalate(session, city, later(10)).escalated
    assert [(o["unit"], o["level"], o["parent_id"]) for o in up] == [(COMM_A, 2, parent.id)]
    child = session.get(SupervisionOrder, up[0]["id"])
    assert child is not None and child.status == "issued" and child.case_ids == [case.id]
    assert child.rule_key == RULE and parent.number in child.demand
    # once: the same breach never escalates twice, and the case gets no second level-1 order
    again = escalate(session, city, later(10))
    assert again.escalated == [] and again.issued == []


def test_a_proposal_issued_by_a_leader_escalates_as_a_proposal_above(
    session: Session, city: AppSettings
) -> None:
    reported(session, city, days_ago=5)
    _campaign(session, city)
    (proposal_brief,) = escalate(session, city).proposed
    orders = OrderService(session, city)
    issued = orders.act(proposal_brief["id"], "issue", SYSTEM)
    assert issued.status == "issued"
    up = escalate(session, city, later(10)).escalated
    assert [(o["unit"], o["level"]) for o in up] == [(COMM_A, 2)]
    child = session.get(SupervisionOrder, up[0]["id"])
    assert child is not None and child.status == "proposed"  # the rule's mode: a leader decides


def test_the_rule_is_edited_like_the_others_and_bad_edits_name_the_field(
    session: Session, city: AppSettings
) -> None:
    book = RuleBook(session, city)
    edited = book.update(
        RULE, RulePatch(demand="{campaign}：{hotspot}案件{case_id}已{open_hours}小时未结"), SYSTEM
    )
    assert edited.city == city.grids.city
    for patch, field in (
        (RulePatch(params={"working_hours": 0}), "params.working_hours"),
        (RulePatch(params={"working_days": 3}), "params.working_days"),
        (RulePatch(demand="案件{case_id}超期{overdue_days}天"), "demand"),
    ):
        with pytest.raises(InvalidInput) as err:
            book.update(RULE, patch, SYSTEM)
        assert err.value.field == field
    reported(session, city, days_ago=5)
    _campaign(session, city)
    escalate(session, city)
    (order,) = _orders(session, city)
    assert order.demand.startswith("农贸市场周边环境专项整治：甲农贸市场案件")

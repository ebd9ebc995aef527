"""The case workflow announces itself: a dispatch reaches the department's subscription only
(and only once committed), and each overdue case is announced once however often the sweep
runs."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.principal import SYSTEM
from service.cases.cases import Action, CaseInput, CaseService
from service.cases.overdue import overdue_key, sweep_overdue
from service.clock import now
from service.db.models import NotifyDelivery, NotifyEvent
from service.grids.registry import Registry
from service.notify.deliverer import Deliverer
from service.notify.subscriptions import SubscriptionInput, Subscriptions
from service.settings import AppSettings
from tests.helpers.city import point_lonlat
from tests.helpers.webhooks import receiver


def _subscribe(session: Session, settings: AppSettings, url: str, events: list[str], **scope):
    sub, _ = Subscriptions(session, settings).create(
        SubscriptionInput(name="值班群", url=url, events=events, **scope), SYSTEM
    )
    return sub


def _registered(session: Session, settings: AppSettings, **extra) -> int:
    cases = CaseService(session, settings)
    lon, lat = point_lonlat(50, 50)
    case, _ = cases.intake(
        CaseInput("0102", lon, lat, address="文化路与农业路交叉口", **extra), SYSTEM
    )
    cases.act(case.id, Action("register"), SYSTEM)
    return case.id


def test_dispatching_a_case_reaches_the_department_subscription_only(
    case_city: Registry, local: AppSettings, session: Session, sessions: sessionmaker[Session]
) -> None:
    with receiver() as hook:
        sanitation = _subscribe(
            session,
            local,
            hook.url + "/sanitation",
            ["case.dispatched"],
            scope="department",
            department="环卫所",
        )
        enforcement = _subscribe(
            session,
            local,
            hook.url + "/enforcement",
            ["case.dispatched"],
            scope="department",
            department="城管执法中队",
        )
        overdue_only = _subscribe(
            session, local, hook.url + "/city", ["case.overdue"], scope="city"
        )
        case_id = _registered(session, local)
        CaseService(session, local).act(case_id, Action("dispatch", department="环卫所"), SYSTEM)
        session.commit()
        assert Deliverer(sessions, local).run_once() == 1

    [got] = hook.requests
    assert got.path == "/sanitation"
    body = json.loads(got.body)
    assert body["kind"] == "case.dispatched" and body["department"] == "环卫所"
    assert body["data"]["case_id"] == case_id
    assert body["data"]["address"] == "文化路与农业路交叉口"
    assert "reporters" not in body["data"]  # no personal data in a webhook
    subscribed = set(session.scalars(select(NotifyDelivery.subscription_id)))
    assert sanitation.id in subscribed
    assert not subscribed & {enforcement.id, overdue_only.id}


def test_a_rolled_back_dispatch_announces_nothing(
    case_city: Registry, local: AppSettings, session: Session
) -> None:
    _subscribe(session, local, "http://127.0.0.1:9/x", ["case.dispatched"], scope="city")
    case_id = _registered(session, local)
    session.commit()
    CaseService(session, local).act(case_id, Action("dispatch", department="环卫所"), SYSTEM)
    # counted by kind and city: other tests commit events of their own (a made brief's)
    events = select(func.count(NotifyEvent.id)).where(
        NotifyEvent.kind == "case.dispatched", NotifyEvent.city == local.grids.city
    )
    deliveries = (
        select(func.count(NotifyDelivery.id))
        .join(
            NotifyEvent,
            (NotifyEvent.city == NotifyDelivery.city) & (NotifyEvent.id == NotifyDelivery.event_id),
        )
        .where(NotifyEvent.kind == "case.dispatched", NotifyEvent.city == local.grids.city)
    )
    assert session.scalar(events) == 1  # in the transaction
    session.rollback()
    assert session.scalar(events) == 0
    assert session.scalar(deliveries) == 0


def test_a_grid_subscription_hears_of_dispatches_in_its_subtree_only(
    case_city: Registry, local: AppSettings, session: Session
) -> None:
    case_id = _registered(session, local)
    grid = CaseService(session, local).get(case_id, SYSTEM).grid_code
    assert grid is not None
    inside = _subscribe(
        session, local, "http://127.0.0.1:9/in", ["case.dispatched"], scope="grid", grid=grid[:12]
    )
    other = "9" * 12 if not grid.startswith("9") else "1" * 12
    outside = _subscribe(
        session, local, "http://127.0.0.1:9/out", ["case.dispatched"], scope="grid", grid=other
    )
    CaseService(session, local).act(case_id, Action("dispatch", department="环卫所"), SYSTEM)
    subscribed = set(session.scalars(select(NotifyDelivery.subscription_id)))
    assert inside.id in subscribed and outside.id not in subscribed


def test_the_overdue_sweep_announces_each_late_case_once(
    case_city: Registry, local: AppSettings, session: Session
) -> None:
    sub = _subscribe(session, local, "http://127.0.0.1:9/late", ["case.overdue"], scope="city")
    late = _registered(session, local, reported_at=now() - timedelta(days=30))
    on_time = _registered(session, local)
    at = now()
    assert sweep_overdue(session, local, at) == 1
    assert sweep_overdue(session, local, at) == 0  # the key makes it once
    event = session.scalars(select(NotifyEvent).where(NotifyEvent.kind == "case.overdue")).one()
    assert event.key == overdue_key(late) and event.payload["case_id"] == late
    deliveries = session.scalars(select(NotifyDelivery).where(NotifyDelivery.event_id == event.id))
    assert [d.subscription_id for d in deliveries] == [sub.id]
    # weeks later the other case is late too: it alone is announced, once
    later = at + timedelta(days=60)
    assert sweep_overdue(session, local, later) == 1
    assert sweep_overdue(session, local, later) == 0
    keys = session.scalars(select(NotifyEvent.key).where(NotifyEvent.kind == "case.overdue"))
    assert sorted(keys) == sorted([overdue_key(late), overdue_key(on_time)])

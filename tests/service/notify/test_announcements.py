"""Supervision orders and the daily set announce themselves: an issued order reaches the
responsible department's subscription (a proposal does not, until a leader issues it), and a
made set reaches the subscriptions of its scope, once."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.briefs.store import DocumentStore
from service.clock import now
from service.db.models import NotifyDelivery, NotifyEvent
from service.grids.registry import Registry
from service.notify.subscriptions import SubscriptionInput, Subscriptions
from service.settings import AppSettings
from service.supervision.orders import OrderInput, OrderService
from tests.helpers.city import STREET


def _subscribe(session: Session, settings: AppSettings, events: list[str], **scope) -> int:
    sub, _ = Subscriptions(session, settings).create(
        SubscriptionInput(name="督办群", url="http://127.0.0.1:9/hook", events=events, **scope),
        SYSTEM,
    )
    return sub.id


def _deliveries(session: Session, kind: str) -> list[tuple[int, dict]]:
    rows = session.execute(
        select(NotifyDelivery.subscription_id, NotifyEvent.payload)
        .join(
            NotifyEvent,
            (NotifyEvent.city == NotifyDelivery.city) & (NotifyEvent.id == NotifyDelivery.event_id),
        )
        .where(NotifyEvent.kind == kind)
    )
    return [(sub, payload) for sub, payload in rows]


def test_an_issued_order_reaches_the_units_subscription(
    case_city: Registry, local: AppSettings, session: Session
) -> None:
    mine = _subscribe(session, local, ["order.issued"], scope="department", department="环卫所")
    _subscribe(session, local, ["order.issued"], scope="department", department="城管执法局")
    orders = OrderService(session, local)
    order = orders.issue(
        OrderInput(
            demand="请于三日内清理暴露垃圾",
            deadline_at=now() + timedelta(days=3),
            unit_kind="department",
            unit="环卫所",
            subject_kind="department",
            subject_key="环卫所",
        ),
        SYSTEM,
    )
    got = _deliveries(session, "order.issued")
    assert [sub for sub, _ in got] == [mine]
    assert got[0][1]["number"] == order.number and got[0][1]["demand"] == "请于三日内清理暴露垃圾"


def test_a_made_set_is_announced_to_its_scope_once(
    case_city: Registry, local: AppSettings, session: Session
) -> None:
    street = _subscribe(session, local, ["brief.published"], scope="grid", grid=STREET[:9])
    day = date.today() - timedelta(days=1)
    store = DocumentStore(session, local)
    made = store.make_set(STREET, day, formats=["html"])
    store.make_set(STREET, day, formats=["html"])  # the stored set: no second announcement
    got = _deliveries(session, "brief.published")
    assert [sub for sub, _ in got] == [street]
    assert {d["id"] for d in got[0][1]["documents"]} == {d.id for d in made.documents}

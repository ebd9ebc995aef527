"""Two deliverers on two connections at once never send one delivery twice: rows are claimed
with FOR UPDATE SKIP LOCKED, so each takes what the other has not."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.principal import SYSTEM
from service.db.models import NotifyAttempt, NotifyDelivery
from service.notify import publish
from service.notify.deliverer import Deliverer
from service.notify.signing import DELIVERY_HEADER
from service.notify.subscriptions import SubscriptionInput, Subscriptions
from tests.helpers.webhooks import quick, receiver

pytestmark = pytest.mark.concurrency

CITY = "990170"  # committed for real (two connections); the test database is dropped after
EVENTS = 30


def test_two_deliverers_send_each_delivery_exactly_once(engine: Engine, settings_for) -> None:
    settings = quick(settings_for(CITY), max_attempts=1)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    # the receiver answers after a pause, so both deliverers are mid-send at the same time
    with receiver(pause_s=0.02) as hook:
        with Session(engine) as session:
            Subscriptions(session, settings).create(
                SubscriptionInput(
                    name="并发测试", url=hook.url, events=["order.issued"], scope="city"
                ),
                SYSTEM,
            )
            for n in range(EVENTS):
                publish(session, "order.issued", {"order_id": n}, city=CITY)
            session.commit()

        tried: dict[str, int] = {}
        start = threading.Barrier(2)

        def deliver(name: str) -> None:
            start.wait(10)
            tried[name] = Deliverer(sessions, settings).run_once(limit=EVENTS * 2)

        threads = [threading.Thread(target=deliver, args=(n,)) for n in ("甲", "乙")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    sent = Counter(r.headers[DELIVERY_HEADER] for r in hook.requests)
    assert len(sent) == EVENTS and set(sent.values()) == {1}  # each one, once
    assert tried["甲"] + tried["乙"] == EVENTS
    assert tried["甲"] > 0 and tried["乙"] > 0  # both did their share
    with Session(engine) as session:
        states = list(
            session.scalars(select(NotifyDelivery.state).where(NotifyDelivery.city == CITY))
        )
        assert states == ["delivered"] * EVENTS
        attempts = session.scalars(
            select(NotifyAttempt.delivery_id)
            .join(NotifyDelivery, NotifyDelivery.id == NotifyAttempt.delivery_id)
            .where(NotifyDelivery.city == CITY)
        )
        assert sorted(Counter(attempts).values()) == [1] * EVENTS

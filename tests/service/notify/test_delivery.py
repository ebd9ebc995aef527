"""Deliveries against a real HTTP receiver: signed bodies, retries with backoff after 500s, a
hanging receiver cut off by the timeout, addresses refused at delivery, and the log."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.principal import SYSTEM
from service.db.models import NotifyAttempt, NotifyDelivery, NotifyEvent
from service.notify import publish
from service.notify.deliverer import Deliverer, backoff
from service.notify.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from service.notify.subscriptions import SubscriptionInput, Subscriptions
from service.settings import AppSettings
from tests.helpers.webhooks import quick, receiver


def _subscribe(session: Session, settings: AppSettings, url: str, **scope: object):
    sub, secret = Subscriptions(session, settings).create(
        SubscriptionInput(
            name="测试订阅",
            url=url,
            events=["case.dispatched", "case.overdue", "order.issued"],
            scope=str(scope.pop("scope", "city")),
            **scope,  # type: ignore[arg-type]
        ),
        SYSTEM,
    )
    return sub, secret


def _deliver_until_settled(sessions: sessionmaker[Session], settings: AppSettings) -> int:
    """Rounds until nothing is pending (the backoff is a few milliseconds)."""
    deliverer = Deliverer(sessions, settings)
    tried = 0
    for _ in range(500):
        tried += deliverer.run_once()
        with sessions() as s:
            pending = s.scalar(
                select(NotifyDelivery.id).where(
                    NotifyDelivery.city == settings.grids.city, NotifyDelivery.state == "pending"
                )
            )
        if pending is None:
            return tried
        time.sleep(0.002)
    raise AssertionError("deliveries still pending")


def _log(session: Session, delivery_id: int) -> list[NotifyAttempt]:
    stmt = select(NotifyAttempt).where(NotifyAttempt.delivery_id == delivery_id)
    return list(session.scalars(stmt.order_by(NotifyAttempt.attempt)))


def test_a_delivery_is_signed_and_the_signature_verifies(
    local: AppSettings, session: Session, sessions: sessionmaker[Session]
) -> None:
    with receiver() as hook:
        sub, secret = _subscribe(session, local, hook.url + "/hooks/citygrid")
        event = publish(
            session,
            "order.issued",
            {"order_id": 7, "demand": "7月20日前全部完成整改"},
            grid_code="41010500100201",
            city=local.grids.city,
        )
        session.commit()
        assert event is not None
        assert Deliverer(sessions, local).run_once() == 1

    [got] = hook.requests
    assert got.path == "/hooks/citygrid"
    headers = {k.lower(): v for k, v in got.headers.items()}
    signature = headers[SIGNATURE_HEADER.lower()]
    timestamp = headers[TIMESTAMP_HEADER.lower()]
    assert signature.startswith("sha256=")
    assert verify(secret, timestamp, got.body, signature, now=time.time())
    # the signature covers the body and the timestamp: change either and it fails
    assert not verify(secret, timestamp, got.body + b" ", signature, now=time.time())
    assert not verify(secret, str(int(timestamp) - 1), got.body, signature, now=time.time())
    assert not verify("whsec_other", timestamp, got.body, signature, now=time.time())
    body = json.loads(got.body)
    assert body["id"] == event.id and body["kind"] == "order.issued"
    assert body["data"] == {"order_id": 7, "demand": "7月20日前全部完成整改"}
    assert headers[EVENT_HEADER.lower()] == "order.issued"
    delivery = session.scalars(
        select(NotifyDelivery).where(NotifyDelivery.event_id == event.id)
    ).one()
    session.refresh(delivery)
    assert headers[DELIVERY_HEADER.lower()] == str(delivery.id)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)
    [attempt] = _log(session, delivery.id)
    assert attempt.ok and attempt.status_code == 200 and attempt.error is None
    assert attempt.duration_ms >= 0


def test_500s_are_retried_with_backoff_until_delivered(
    local: AppSettings, session: Session, sessions: sessionmaker[Session]
) -> None:
    with receiver(statuses=[500, 503]) as hook:
        _subscribe(session, local, hook.url)
        event = publish(session, "order.issued", {"order_id": 1}, city=local.grids.city)
        session.commit()
        assert _deliver_until_settled(sessions, local) == 3

    assert len(hook.requests) == 3
    # every attempt sends the same delivery, byte for byte (a receiver may drop repeats)
    assert len({r.body for r in hook.requests}) == 1
    assert len({r.headers[DELIVERY_HEADER] for r in hook.requests}) == 1
    delivery = session.scalars(
        select(NotifyDelivery).where(NotifyDelivery.event_id == event.id)
    ).one()
    session.refresh(delivery)
    assert (delivery.state, delivery.attempts) == ("delivered", 3)
    log = _log(session, delivery.id)
    assert [(a.attempt, a.ok, a.status_code) for a in log] == [
        (1, False, 500),
        (2, False, 503),
        (3, True, 200),
    ]
    assert [a.error for a in log] == ["HTTP 500", "HTTP 503", None]


def test_backoff_doubles_from_the_base_delay_up_to_the_cap(settings: AppSettings) -> None:
    cfg = quick(settings, base_delay_s=30, max_delay_s=3600)
    waits = [backoff(cfg, n).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_delivery_fails_after_the_last_attempt(
    settings: AppSettings, session: Session, sessions: sessionmaker[Session]
) -> None:
    cfg = quick(settings, max_attempts=2)
    with receiver(statuses=[500] * 10) as hook:
        _subscribe(session, cfg, hook.url)
        event = publish(session, "order.issued", {"order_id": 2}, city=cfg.grids.city)
        session.commit()
        _deliver_until_settled(sessions, cfg)
    assert len(hook.requests) == 2
    delivery = session.scalars(
        select(NotifyDelivery).where(NotifyDelivery.event_id == event.id)
    ).one()
    session.refresh(delivery)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 2, 500)


def test_a_hanging_receiver_is_cut_off_logged_failed_and_the_deliverer_goes_on(
    settings: AppSettings, session: Session, sessions: sessionmaker[Session]
) -> None:
    cfg = quick(settings, timeout_s=0.3, max_attempts=1)
    with receiver(hang=True) as stuck, receiver() as fine:
        hanging, _ = _subscribe(session, cfg, stuck.url)
        healthy, _ = _subscribe(session, cfg, fine.url)
        event = publish(session, "order.issued", {"order_id": 3}, city=cfg.grids.city)
        session.commit()
        assert Deliverer(sessions, cfg).run_once() == 2  # both tried in one round
        assert len(stuck.requests) == 1 and len(fine.requests) == 1

    rows = {
        d.subscription_id: d
        for d in session.scalars(select(NotifyDelivery).where(NotifyDelivery.event_id == event.id))
    }
    for d in rows.values():
        session.refresh(d)
    assert rows[hanging.id].state == "failed"
    [attempt] = _log(session, rows[hanging.id].id)
    assert not attempt.ok and attempt.status_code is None
    assert attempt.error.startswith("timeout")
    assert rows[healthy.id].state == "delivered"


def test_an_address_that_became_forbidden_is_refused_at_delivery(
    local: AppSettings, settings: AppSettings, session: Session, sessions: sessionmaker[Session]
) -> None:
    strict = quick(settings, allow_hosts="", max_attempts=1)  # 127.0.0.1 no longer allowed
    with receiver() as hook:
        _subscribe(session, local, hook.url)
        event = publish(session, "order.issued", {"order_id": 4}, city=local.grids.city)
        session.commit()
        assert Deliverer(sessions, strict).run_once() == 1
    assert hook.requests == []  # nothing left the machine
    delivery = session.scalars(
        select(NotifyDelivery).where(NotifyDelivery.event_id == event.id)
    ).one()
    session.refresh(delivery)
    assert delivery.state == "failed"
    assert delivery.last_error.startswith("refused:") and "loopback" in delivery.last_error


def test_an_event_nobody_wants_is_not_stored_and_a_keyed_one_happens_once(
    local: AppSettings, session: Session
) -> None:
    city = local.grids.city
    assert publish(session, "brief.published", {"brief": 1}, city=city) is None
    first = publish(session, "brief.published", {"brief": 1}, city=city, key="brief:2026-11-29")
    again = publish(session, "brief.published", {"brief": 1}, city=city, key="brief:2026-11-29")
    assert first is not None and again is None
    assert (
        session.scalar(
            select(NotifyEvent.id).where(NotifyEvent.city == city, NotifyEvent.key.is_(None))
        )
        is None
    )


def test_publish_refuses_an_unknown_kind_and_a_missing_city(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        publish(session, "case.exploded", {}, city="990100")
    with pytest.raises(ValueError, match="city"):
        publish(session, "case.overdue", {})


def test_a_configured_gateway_is_a_transport_and_off_by_default(
    settings: AppSettings, session: Session, sessions: sessionmaker[Session]
) -> None:
    from service.errors import InvalidInput
    from tests.helpers.webhooks import SmsGateway

    off = quick(settings)
    with pytest.raises(InvalidInput) as refused:
        Subscriptions(session, off).create(
            SubscriptionInput(
                name="短信", url="13800000000", events=["order.issued"], transport="sms"
            ),
            SYSTEM,
        )
    assert refused.value.field == "transport"

    on = quick(settings, gateway="tests.helpers.webhooks:sms_gateway")
    with pytest.raises(InvalidInput) as bad:
        Subscriptions(session, on).create(
            SubscriptionInput(name="短信", url="12345", events=["order.issued"], transport="sms"),
            SYSTEM,
        )
    assert bad.value.field == "url"
    sub, _ = Subscriptions(session, on).create(
        SubscriptionInput(name="短信", url="13800000000", events=["order.issued"], transport="sms"),
        SYSTEM,
    )
    SmsGateway.sent.clear()
    publish(session, "order.issued", {"order_id": 9}, city=on.grids.city)
    session.commit()
    assert Deliverer(sessions, on).run_once() == 1
    [message] = SmsGateway.sent
    assert message.address == "13800000000" and message.kind == "order.issued"
    delivery = session.scalars(
        select(NotifyDelivery).where(NotifyDelivery.subscription_id == sub.id)
    ).one()
    session.refresh(delivery)
    assert delivery.state == "delivered"

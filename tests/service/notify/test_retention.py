"""Retention of the delivery log on committed rows of different ages: finished deliveries past
CITYGRID_NOTIFY_RETENTION_DAYS go with their attempts (by the sweep and by `citygrid deliver
--once`); pending ones, younger ones, keyed events and other cities' rows stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.accounts.principal import SYSTEM
from service.cli import app
from service.clock import now
from service.db.models import NotifyAttempt, NotifyDelivery, NotifyEvent
from service.notify import publish
from service.notify.retention import prune_deliveries
from service.notify.subscriptions import SubscriptionInput, Subscriptions
from service.settings import AppSettings
from tests.helpers.webhooks import quick

pytestmark = pytest.mark.concurrency

DAY = timedelta(days=1)


def _delivery(
    session: Session,
    settings: AppSettings,
    label: str,
    state: str,
    created_days_ago: float,
    finished_days_ago: float | None,
    key: str | None = None,
) -> int:
    """One event with one delivery in ``state``, created and finished (last attempt, and
    ``delivered_at`` for a delivered one) so many days ago; returns the delivery id."""
    t = now()
    created = t - created_days_ago * DAY
    event = publish(
        session,
        "order.issued",
        {"label": label},
        city=settings.grids.city,
        key=key,
        at=created,
    )
    assert event is not None
    delivery = session.scalar(select(NotifyDelivery).where(NotifyDelivery.event_id == event.id))
    assert delivery is not None
    if finished_days_ago is not None:
        finished = t - finished_days_ago * DAY
        delivery.state = state
        delivery.attempts = 2
        if state == "delivered":
            delivery.delivered_at = finished
        for n, at in ((1, created), (2, finished)):
            session.add(
                NotifyAttempt(
                    city=delivery.city,
                    delivery_id=delivery.id,
                    attempt=n,
                    at=at,
                    ok=state == "delivered" and n == 2,
                    status_code=200 if state == "delivered" and n == 2 else 500,
                    error=None,
                    duration_ms=1.0,
                )
            )
    session.flush()
    return delivery.id


def _world(engine: Engine, settings: AppSettings) -> dict[str, int]:
    """A paused subscription (so that nothing here is sent) and deliveries of every kind and
    age, committed; returns label → delivery id."""
    with Session(engine) as session:
        sub, _ = Subscriptions(session, settings).create(
            SubscriptionInput(
                name="留存测试",
                url="http://127.0.0.1:9/hook",
                events=["order.issued"],
                scope="city",
            ),
            SYSTEM,
        )
        ids = {
            "old_delivered": _delivery(session, settings, "a", "delivered", 200, 120),
            "old_failed": _delivery(session, settings, "b", "failed", 150, 100),
            # made long ago, but its last attempt was recent: counts from when it finished
            "late_failed": _delivery(session, settings, "c", "failed", 200, 10),
            "young_delivered": _delivery(session, settings, "d", "delivered", 30, 29),
            "old_pending": _delivery(session, settings, "e", "pending", 400, None),
            "old_keyed": _delivery(session, settings, "f", "delivered", 300, 299, key="k:1"),
        }
        session.execute(
            text("UPDATE notify_subscriptions SET active = false WHERE id = :id"), {"id": sub.id}
        )
        session.commit()
        return ids


def _left(engine: Engine, city: str) -> tuple[set[int], int, set[str]]:
    """(delivery ids, attempts of them, event labels) stored for ``city``."""
    with Session(engine) as session:
        ids = set(session.scalars(select(NotifyDelivery.id).where(NotifyDelivery.city == city)))
        attempts = session.scalar(
            select(func.count())
            .select_from(NotifyAttempt)
            .where(NotifyAttempt.delivery_id.in_(ids))
        )
        labels = {
            e.payload["label"]
            for e in session.scalars(select(NotifyEvent).where(NotifyEvent.city == city))
        }
        return ids, int(attempts or 0), labels


def test_the_sweep_deletes_finished_deliveries_past_retention_and_keeps_the_rest(
    engine: Engine, settings_for
) -> None:
    settings = quick(settings_for("990181"), retention_days=90)
    other = quick(settings_for("990182"), retention_days=90)
    ids = _world(engine, settings)
    theirs = _world(engine, other)
    with Session(engine) as session:
        gone = prune_deliveries(session, settings, now())
        session.commit()
    assert gone == 3  # old_delivered, old_failed, old_keyed
    kept, attempts, labels = _left(engine, "990181")
    assert kept == {ids["late_failed"], ids["young_delivered"], ids["old_pending"]}
    assert attempts == 4  # two each for the two finished ones left, none for the pending one
    # the events of the deleted deliveries went, but the keyed one (a once-only guard) stays
    assert labels == {"c", "d", "e", "f"}
    # another city's log is untouched
    assert _left(engine, "990182")[0] == set(theirs.values())
    # a second sweep finds nothing more; a shorter retention takes the younger ones too
    with Session(engine) as session:
        assert prune_deliveries(session, settings, now()) == 0
        short = quick(settings_for("990181"), retention_days=5)
        assert prune_deliveries(session, short, now()) == 2
        session.commit()
    assert _left(engine, "990181")[0] == {ids["old_pending"]}


def test_a_batch_limit_leaves_the_rest_for_the_next_call(engine: Engine, settings_for) -> None:
    settings = quick(settings_for("990183"), retention_days=90)
    _world(engine, settings)
    with Session(engine) as session:
        assert prune_deliveries(session, settings, now(), limit=2) == 2
        assert prune_deliveries(session, settings, now(), limit=2) == 1
        assert prune_deliveries(session, settings, now(), limit=2) == 0
        session.commit()


def test_zero_days_keeps_everything(engine: Engine, settings_for) -> None:
    settings = quick(settings_for("990184"), retention_days=0)
    ids = _world(engine, settings)
    with Session(engine) as session:
        assert prune_deliveries(session, settings, now() + 10_000 * DAY) == 0
    assert _left(engine, "990184")[0] == set(ids.values())


def test_citygrid_deliver_once_deletes_past_retention(
    engine: Engine, settings_for, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    city = "990185"
    ids = _world(engine, quick(settings_for(city)))
    for name, value in {
        "CITYGRID_DATABASE_URL": database_url,
        "CITYGRID_CITY": city,
        "CITYGRID_NOTIFY_ALLOW_HOSTS": "127.0.0.1",
        "CITYGRID_NOTIFY_RETENTION_DAYS": "60",
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["deliver", "--once"])
    assert result.exit_code == 0, result.output
    assert "3 finished delivery(ies) older than 60 days deleted" in result.output
    assert _left(engine, city)[0] == {
        ids["late_failed"],
        ids["young_delivered"],
        ids["old_pending"],
    }


def test_the_retention_setting_is_checked() -> None:
    from pydantic import ValidationError

    from service.settings import NotifySettings

    assert NotifySettings(_env_file=None).retention_days == 90
    with pytest.raises(ValidationError, match="retention_days"):
        NotifySettings(_env_file=None, retention_days=-1)

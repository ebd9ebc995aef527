"""The deliverer: sends pending deliveries, one row per transaction, claimed with ``FOR UPDATE
SKIP LOCKED`` so that any number of deliverers (server processes, ``citygrid deliver``) never
send one delivery twice at once; retries with exponential backoff and logs every attempt.

A delivery's row stays locked while it is sent (the timeout bounds that), then its attempt is
logged and the row updated in the same transaction. A process that dies mid-send leaves the row
pending, to be sent again: receivers see each delivery at least once, and
``X-Citygrid-Delivery`` lets them drop a repeat.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.clock import now
from service.db.models import NotifyAttempt, NotifyDelivery, NotifyEvent, NotifySubscription
from service.notify.transports import Message, Result, Transport, transports
from service.settings import AppSettings

log = logging.getLogger("citygrid.notify")

Sweep = Callable[[Session, AppSettings, datetime], object]


def envelope(event: NotifyEvent) -> bytes:
    """The JSON body of every delivery of ``event`` (the same bytes on every attempt)."""
    body = {
        "id": event.id,
        "kind": event.kind,
        "city": event.city,
        "created_at": event.created_at.isoformat(),
        "grid_code": event.grid_code,
        "department": event.department,
        "data": event.payload,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def backoff(settings: AppSettings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base × 2^(attempts-1), capped."""
    cfg = settings.notify
    return timedelta(seconds=min(cfg.base_delay_s * 2 ** (attempts - 1), cfg.max_delay_s))


class Deliverer:
    """Sends the due deliveries of one city."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: AppSettings,
        transport_map: dict[str, Transport] | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.city = settings.grids.city
        self.transports = transport_map if transport_map is not None else transports(settings)

    def run_once(self, limit: int | None = None) -> int:
        """Send due deliveries until none is left or ``limit`` (default
        ``CITYGRID_NOTIFY_BATCH_SIZE``) were tried; returns how many were tried."""
        limit = limit or self.settings.notify.batch_size
        tried = 0
        while tried < limit and self._one():
            tried += 1
        return tried

    def _one(self) -> bool:
        """Claim, send and record one due delivery; ``False`` when none is due."""
        with self.sessions() as session:
            stmt = (
                select(NotifyDelivery, NotifySubscription, NotifyEvent)
                .join(
                    NotifySubscription,
                    (NotifySubscription.city == NotifyDelivery.city)
                    & (NotifySubscription.id == NotifyDelivery.subscription_id),
                )
                .join(
                    NotifyEvent,
                    (NotifyEvent.city == NotifyDelivery.city)
                    & (NotifyEvent.id == NotifyDelivery.event_id),
                )
                .where(
                    NotifyDelivery.city == self.city,
                    NotifyDelivery.state == "pending",
                    NotifyDelivery.next_attempt_at <= now(),
                    NotifySubscription.active.is_(True),  # a paused one keeps its deliveries
                )
                .order_by(NotifyDelivery.next_attempt_at, NotifyDelivery.id)
                .limit(1)
                .with_for_update(of=NotifyDelivery, skip_locked=True)
            )
            row = session.execute(stmt).first()
            if row is None:
                return False
            delivery, sub, event = row
            message = Message(
                delivery_id=delivery.id,
                event_id=event.id,
                kind=event.kind,
                address=sub.url,
                secret=sub.secret,
                body=envelope(event),
            )
            result = self.send(sub.transport, message)
            self._record(session, delivery, result)
            session.commit()
            return True

    def send(self, transport: str, message: Message) -> Result:
        """Send ``message`` by ``transport`` (a transport that is off fails the attempt)."""
        chosen = self.transports.get(transport)
        if chosen is None:
            return Result(False, None, f"transport {transport!r} is off on this server", 0.0)
        try:
            return chosen.send(message)
        except Exception as exc:  # a gateway's bug is a failed attempt, not a dead deliverer
            log.exception("transport %s failed on delivery %s", transport, message.delivery_id)
            return Result(False, None, f"{type(exc).__name__}: {exc}"[:500], 0.0)

    def _record(self, session: Session, delivery: NotifyDelivery, result: Result) -> None:
        t = now()
        delivery.attempts += 1
        session.add(
            NotifyAttempt(
                city=delivery.city,
                delivery_id=delivery.id,
                attempt=delivery.attempts,
                at=t,
                ok=result.ok,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
            )
        )
        delivery.last_status = result.status_code
        delivery.last_error = result.error
        if result.ok:
            delivery.state = "delivered"
            delivery.delivered_at = t
        elif delivery.attempts >= self.settings.notify.max_attempts:
            delivery.state = "failed"
            log.warning(
                "delivery %s failed for good after %s attempts: %s",
                delivery.id,
                delivery.attempts,
                result.error,
            )
        else:
            delivery.next_attempt_at = t + backoff(self.settings, delivery.attempts)
            log.info(
                "delivery %s attempt %s failed: %s", delivery.id, delivery.attempts, result.error
            )


class DeliveryWorker:
    """The deliverer as a background thread of a server process: a delivery round every
    ``CITYGRID_NOTIFY_POLL_INTERVAL_S``, the sweeps every ``CITYGRID_NOTIFY_SWEEP_INTERVAL_S``.
    Errors are logged and the loop goes on."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: AppSettings,
        sweeps: Sequence[Sweep] = (),
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.sweeps = tuple(sweeps)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="citygrid-notify", daemon=True)
        self.deliverer: Deliverer | None = None

    def start(self) -> DeliveryWorker:
        """Start the thread; returns the worker."""
        self.thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the loop to end, and wait for the send in flight (at most the timeout)."""
        self.stopped.set()
        self.thread.join(timeout_s or self.settings.notify.timeout_s + 5)

    def _loop(self) -> None:
        cfg = self.settings.notify
        next_sweep = time.monotonic()
        while not self.stopped.is_set():
            try:
                if self.deliverer is None:
                    self.deliverer = Deliverer(self.sessions, self.settings)
                if self.sweeps and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + cfg.sweep_interval_s
                    self.sweep()
                self.deliverer.run_once()
            except Exception:
                log.exception("delivery round failed; trying again in %ss", cfg.poll_interval_s)
            self.stopped.wait(cfg.poll_interval_s)

    def sweep(self) -> None:
        """Run each sweep (e.g. newly overdue cases) in a transaction of its own."""
        for sweep in self.sweeps:
            with self.sessions() as session:
                sweep(session, self.settings, now())
                session.commit()

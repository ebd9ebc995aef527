"""Subscriptions of one city, the delivery log, and the test ping — each kept to the caller's
scope.

``notify.manage`` (admin) manages subscriptions of any scope and reads every delivery;
``notify.subscribe`` subscribes within one's own scope: the whole city only for a city-wide
account, a department only one's own, a grid subtree only inside one's grids, a user only
oneself. A caller sees the subscriptions they could create and the ones they created, and the
deliveries of those.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.audit import AuditLog, snapshot
from service.accounts.principal import Principal
from service.accounts.privacy import name_for, phone_for
from service.clock import now
from service.db.models import NotifyAttempt, NotifyDelivery, NotifyEvent, NotifySubscription, User
from service.errors import Forbidden, InvalidInput, NotFound
from service.notify.kinds import PING, check_kinds
from service.notify.signing import new_secret
from service.notify.transports import Message, Result, Transport, transports
from service.settings import AppSettings

SCOPES = ("city", "department", "grid", "user")
STATES = ("pending", "delivered", "failed")
MANAGE = "notify.manage"


@dataclass
class SubscriptionInput:
    """A subscription to create, or the fields to change (``None``: leave as it is)."""

    name: str | None = None
    url: str | None = None
    events: list[str] | None = None
    scope: str | None = None
    department: str | None = None
    grid: str | None = None
    user_id: int | None = None
    transport: str | None = None
    active: bool | None = None


class Subscriptions:
    """Subscriptions, deliveries and pings of one city on one session."""

    def __init__(
        self,
        session: Session,
        settings: AppSettings,
        transport_map: dict[str, Transport] | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self._transports = transport_map

    @property
    def transports(self) -> dict[str, Transport]:
        """The deployment's transports (made on first use: the webhook opens a pool)."""
        if self._transports is None:
            self._transports = transports(self.settings)
        return self._transports

    # -- subscriptions ---------------------------------------------------------------------------
    def create(self, item: SubscriptionInput, by: Principal) -> tuple[NotifySubscription, str]:
        """A new subscription by ``by`` and its secret (shown this once)."""
        name = (item.name or "").strip()
        if not name:
            raise InvalidInput("name the subscription (e.g. 环卫所值班群)", field="name")
        kind = item.scope or ("user" if by.kind == "user" else "city")
        department, prefix, user_id = self._scope(kind, item, by)
        transport = self._transport(item.transport or "webhook")
        address = transport.check((item.url or "").strip())
        secret = new_secret()
        sub = NotifySubscription(
            city=self.city,
            name=name[:200],
            transport=transport.name,
            url=address,
            secret=secret,
            events=check_kinds(list(item.events or [])),
            scope_kind=kind,
            department=department,
            grid_prefix=prefix,
            user_id=user_id,
            active=True if item.active is None else item.active,
            created_by=by.label,
            created_by_user_id=by.id if by.kind == "user" else None,
        )
        self.session.add(sub)
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by,
            "notify_subscription.create",
            "notify_subscription",
            str(sub.id),
            None,
            snapshot(sub),
        )
        return sub, secret

    def _scope(
        self, kind: str, item: SubscriptionInput, by: Principal
    ) -> tuple[str | None, str | None, int | None]:
        """(department, grid prefix, user id) of scope ``kind``, checked against ``by``."""
        if kind not in SCOPES:
            raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}", field="scope")
        department = prefix = user_id = None
        if kind == "department":
            department = (item.department or by.department or "").strip() or None
            if department is None:
                raise InvalidInput("a department scope names the department", field="department")
        elif kind == "grid":
            prefix = self._prefix(item.grid)
        elif kind == "user":
            user_id = item.user_id
            if user_id is None and by.kind == "user":
                user_id = by.id  # one's own scope
            if user_id is None:
                raise InvalidInput("a user scope names the account (user_id)", field="user_id")
            user = self.session.get(User, user_id)
            if user is None or user.city != self.city:
                raise NotFound(f"no account {user_id}", field="user_id")
        if not self.within(by, kind, department, prefix, user_id):
            raise Forbidden(
                f"{by.label} may subscribe only within their own scope ({by.scope_text()}); "
                f"other scopes need the permission {MANAGE}",
                field="scope",
                scope=list(by.grid_prefixes or ()),
                department=by.department,
            )
        return department, prefix, user_id

    def _prefix(self, grid: str | None) -> str:
        """The subtree prefix of grid code ``grid`` (a shorter run of digits is a prefix)."""
        code = (grid or "").strip()
        scheme = self.settings.scheme
        if not code.isdigit() or len(code) > scheme.width:
            raise InvalidInput(
                f"grid must be a grid code of up to {scheme.width} digits", field="grid"
            )
        if len(code) == scheme.width:
            try:
                return scheme.subtree_prefix(code)
            except ValueError as exc:
                raise InvalidInput(str(exc), field="grid") from exc
        return code

    def _transport(self, name: str) -> Transport:
        if name not in self.transports:
            raise InvalidInput(
                f"transport {name!r} is off on this server; transports: "
                f"{', '.join(self.transports)}",
                field="transport",
            )
        return self.transports[name]

    @staticmethod
    def within(
        by: Principal,
        kind: str,
        department: str | None,
        prefix: str | None,
        user_id: int | None,
    ) -> bool:
        """Whether a subscription of this scope lies in ``by``'s own scope (or ``by`` manages
        every subscription)."""
        if by.can(MANAGE):
            return True
        if kind == "city":
            return by.city_wide
        if kind == "department":
            return by.city_wide or (by.department is not None and by.department == department)
        if kind == "grid":
            return by.covers_grid(prefix)
        return by.kind == "user" and by.id == user_id

    def visible(self, sub: NotifySubscription, by: Principal) -> bool:
        """Whether ``by`` may see (and change) ``sub``."""
        if sub.city != self.city:
            return False
        if by.kind == "user" and sub.created_by_user_id == by.id:
            return True
        return self.within(by, sub.scope_kind, sub.department, sub.grid_prefix, sub.user_id)

    def all(self, by: Principal) -> list[NotifySubscription]:
        """The subscriptions ``by`` may see, by id."""
        stmt = select(NotifySubscription).where(NotifySubscription.city == self.city)
        return [
            s
            for s in self.session.scalars(stmt.order_by(NotifySubscription.id))
            if self.visible(s, by)
        ]

    def get(self, sub_id: int, by: Principal) -> NotifySubscription:
        """Subscription ``sub_id``, or ``NotFound`` (also when out of ``by``'s sight)."""
        sub = self.session.get(NotifySubscription, sub_id)
        if sub is None or not self.visible(sub, by):
            raise NotFound(f"no subscription {sub_id}", field="id")
        return sub

    def update(self, sub_id: int, item: SubscriptionInput, by: Principal) -> NotifySubscription:
        """Change name, URL, event kinds or whether it is active (the scope stays)."""
        sub = self.get(sub_id, by)
        before = snapshot(sub)
        if item.name is not None:
            if not item.name.strip():
                raise InvalidInput("the name cannot be empty", field="name")
            sub.name = item.name.strip()[:200]
        if item.url is not None:
            sub.url = self._transport(sub.transport).check(item.url.strip())
        if item.events is not None:
            sub.events = check_kinds(list(item.events))
        if item.active is not None:
            sub.active = item.active
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by,
            "notify_subscription.update",
            "notify_subscription",
            str(sub.id),
            before,
            snapshot(sub),
        )
        return sub

    def rotate(self, sub_id: int, by: Principal) -> tuple[NotifySubscription, str]:
        """A new secret for subscription ``sub_id`` (shown this once)."""
        sub = self.get(sub_id, by)
        sub.secret = new_secret()
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by, "notify_subscription.rotate", "notify_subscription", str(sub.id), None, None
        )
        return sub, sub.secret

    def delete(self, sub_id: int, by: Principal) -> None:
        """Remove subscription ``sub_id`` with its deliveries and their log."""
        sub = self.get(sub_id, by)
        before = snapshot(sub)
        self.session.delete(sub)
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by, "notify_subscription.delete", "notify_subscription", str(sub_id), before, None
        )

    # -- the delivery log -----------------------------------------------------------------------
    def deliveries(
        self,
        by: Principal,
        subscription_id: int | None = None,
        state: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[tuple[NotifyDelivery, NotifyEvent, list[NotifyAttempt]]]:
        """Deliveries of the subscriptions ``by`` sees, newest first, with their attempts."""
        if state is not None and state not in STATES:
            raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
        if subscription_id is not None:
            ids = [self.get(subscription_id, by).id]
        else:
            ids = [s.id for s in self.all(by)]
        if not ids:
            return []
        stmt = (
            select(NotifyDelivery, NotifyEvent)
            .join(
                NotifyEvent,
                (NotifyEvent.city == NotifyDelivery.city)
                & (NotifyEvent.id == NotifyDelivery.event_id),
            )
            .where(NotifyDelivery.city == self.city, NotifyDelivery.subscription_id.in_(ids))
        )
        if state is not None:
            stmt = stmt.where(NotifyDelivery.state == state)
        if before_id is not None:
            stmt = stmt.where(NotifyDelivery.id < before_id)
        rows = list(self.session.execute(stmt.order_by(NotifyDelivery.id.desc()).limit(limit)))
        attempts: dict[int, list[NotifyAttempt]] = {d.id: [] for d, _ in rows}
        if attempts:
            found = select(NotifyAttempt).where(NotifyAttempt.delivery_id.in_(list(attempts)))
            for a in self.session.scalars(found.order_by(NotifyAttempt.id)):
                attempts[a.delivery_id].append(a)
        return [(d, e, attempts[d.id]) for d, e in rows]

    # -- the test ping --------------------------------------------------------------------------
    def ping(self, sub_id: int, by: Principal) -> Result:
        """Send a signed ``ping`` to subscription ``sub_id`` now and say what came back (the
        log keeps deliveries of events only)."""
        sub = self.get(sub_id, by)
        body = {
            "id": None,
            "kind": PING,
            "city": self.city,
            "created_at": now().isoformat(),
            "subscription": sub.id,
            "data": {"message": "citygrid 推送测试 / test message", "sent": time.time()},
        }
        message = Message(
            delivery_id=0,
            event_id=None,
            kind=PING,
            address=sub.url,
            secret=sub.secret,
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        )
        transport = self.transports.get(sub.transport)
        if transport is None:
            return Result(False, None, f"transport {sub.transport!r} is off on this server", 0.0)
        return transport.send(message)


def subscription_out(
    sub: NotifySubscription, by: Principal, secret: str | None = None
) -> dict[str, Any]:
    """A subscription as ``by`` sees it (the secret only right after it was made; who made it,
    and a gateway's phone number, masked without ``people.read``)."""
    out: dict[str, Any] = {
        "id": sub.id,
        "name": sub.name,
        "transport": sub.transport,
        "url": sub.url if sub.transport == "webhook" else phone_for(by, sub.url),
        "events": list(sub.events),
        "scope": sub.scope_kind,
        "department": sub.department,
        "grid": sub.grid_prefix,
        "user_id": sub.user_id,
        "active": sub.active,
        "created_by": name_for(by, sub.created_by),
        "created_at": sub.created_at.isoformat() if sub.created_at else None,
    }
    if secret is not None:
        out["secret"] = secret
    return out


def delivery_out(
    delivery: NotifyDelivery, event: NotifyEvent, attempts: list[NotifyAttempt]
) -> dict[str, Any]:
    """A delivery with its event and attempts, as the log shows it (the event's kind and
    where it happened, not its payload: the receiver has that)."""
    return {
        "id": delivery.id,
        "subscription_id": delivery.subscription_id,
        "event": {
            "id": event.id,
            "kind": event.kind,
            "grid_code": event.grid_code,
            "department": event.department,
            "created_at": event.created_at.isoformat(),
        },
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat()
        if delivery.state == "pending"
        else None,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
        "log": [
            {
                "attempt": a.attempt,
                "at": a.at.isoformat(),
                "ok": a.ok,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ],
    }

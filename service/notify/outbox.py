"""The outbox: :func:`publish` writes an event, and one delivery per matching subscription, in
the caller's transaction — so a notification exists exactly when the change it announces was
committed, and a rolled-back change announces nothing.

Who gets an event: the city's active subscriptions to its kind whose scope matches — the whole
city; the department the event names; a grid subtree holding the event's grid; or a user's own
scope (their grid subtrees or department, read when the event is published). A subscription
whose creator's account was disabled gets nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import any_, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gis.codes import CodeError, CodeScheme
from service.clock import now
from service.db.models import NotifyDelivery, NotifyEvent, NotifySubscription, User
from service.notify.kinds import EVENT_KINDS


def publish(
    session: Session,
    kind: str,
    payload: Mapping[str, Any],
    grid_code: str | None = None,
    department: str | None = None,
    *,
    city: str | None = None,
    key: str | None = None,
    at: datetime | None = None,
) -> NotifyEvent | None:
    """Announce ``kind`` with ``payload`` (JSON-ready; dates become ISO text) about
    ``grid_code`` and/or ``department``, in the session's transaction.

    ``city`` is the city key (default: ``payload["city"]``). ``key`` makes the event happen
    once: a second publish with the same key is ignored (``None`` is returned). An event no
    subscription wants is not stored, unless it has a key. Never sends anything itself: the
    deliverer does, after the commit.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}: add it to service.notify.kinds first")
    city = city or payload.get("city")
    if not city:
        raise ValueError("publish needs the city key: city=settings.grids.city")
    t = at or now()
    data = json.loads(json.dumps(dict(payload), default=_jsonable, ensure_ascii=False))
    wanted = subscribers(session, city, kind, grid_code, department)
    if not wanted and key is None:
        return None
    values = {
        "city": city,
        "kind": kind,
        "key": key,
        "grid_code": grid_code,
        "department": department,
        "payload": data,
        "created_at": t,
    }
    stmt = insert(NotifyEvent).values(**values)
    if key is not None:  # once per key, also when two sweeps run at the same moment
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["city", "key"], index_where=NotifyEvent.key.isnot(None)
        )
    event_id = session.scalar(stmt.returning(NotifyEvent.id))
    if event_id is None:
        return None
    for sub in wanted:
        session.add(
            NotifyDelivery(
                city=city,
                event_id=event_id,
                subscription_id=sub.id,
                state="pending",
                attempts=0,
                next_attempt_at=t,
                created_at=t,
            )
        )
    session.flush()
    return session.get(NotifyEvent, event_id)


def subscribers(
    session: Session, city: str, kind: str, grid_code: str | None, department: str | None
) -> list[NotifySubscription]:
    """The active subscriptions of ``city`` that an event of ``kind`` about ``grid_code`` and
    ``department`` goes to, by id."""
    stmt = (
        select(NotifySubscription)
        .where(
            NotifySubscription.city == city,
            NotifySubscription.active.is_(True),
            literal(kind) == any_(NotifySubscription.events),
        )
        .order_by(NotifySubscription.id)
    )
    subs = list(session.scalars(stmt))
    if not subs:
        return []
    ids = {s.user_id for s in subs} | {s.created_by_user_id for s in subs}
    ids.discard(None)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
    out = []
    for sub in subs:
        creator = users.get(sub.created_by_user_id) if sub.created_by_user_id else None
        if creator is not None and not creator.active:
            continue
        if matches(sub, grid_code, department, users.get(sub.user_id) if sub.user_id else None):
            out.append(sub)
    return out


def matches(
    sub: NotifySubscription, grid_code: str | None, department: str | None, user: User | None
) -> bool:
    """Whether an event about ``grid_code`` / ``department`` is in ``sub``'s scope (``user``:
    the account of a user-scoped subscription)."""
    if sub.scope_kind == "city":
        return True
    if sub.scope_kind == "department":
        return department is not None and department == sub.department
    if sub.scope_kind == "grid":
        return grid_code is not None and grid_code.startswith(sub.grid_prefix or "")
    if sub.scope_kind == "user":
        if user is None or not user.active:
            return False
        if not user.scope_grids and user.department is None:
            return True  # a city-wide account
        if department is not None and department == user.department:
            return True
        return grid_code is not None and any(
            grid_code.startswith(_subtree(code)) for code in user.scope_grids
        )
    return False


def _subtree(code: str) -> str:
    """The prefix of ``code``'s subtree (a code's width tells its scheme)."""
    try:
        return CodeScheme(len(code)).subtree_prefix(code)
    except (CodeError, ValueError):
        return code


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)

"""Supervision orders (督办单): issuing, the lifecycle, the history, scoped reads, and the
orders a daily circular names.

Lifecycle (``TRANSITIONS``)::

    proposed ─issue→ issued ─acknowledge→ acknowledged ─answer→ answered ─accept→ accepted
    proposed ─dismiss→ dismissed                answered ─send_back→ sent_back ─answer→ answered

* Issuing (and issuing or dismissing a proposal) needs ``orders.issue``; an issuer with a grid
  scope names only cases in it and grid units in it.
* Acknowledging and answering is the responsible unit's: ``orders.answer`` and being that unit
  (department staff of the department; accounts whose grid scope covers the grid). The admin
  (``users.admin``, city-wide) may act for any unit.
* Accepting or sending back (with a reason) is the issuer's, or anyone's holding
  ``orders.issue`` who sees the order.
* Reads are scoped: a city-wide caller sees every order; others the orders of their department,
  of grids in their scope, on cases in their grid scope, and those they issued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    and_,
    any_,
    cast,
    exists,
    false,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session

from service import notify
from service.accounts.principal import Principal
from service.accounts.privacy import person_for
from service.accounts.scope import case_condition
from service.cases.workflow import LABELS_ZH as CASE_LABELS_ZH
from service.cases.workflow import OPEN_STATUSES
from service.clock import now
from service.db.models import Case, Hotspot, SupervisionOrder, SupervisionOrderEvent
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.settings import AppSettings
from service.supervision.numbers import allocate, number_text
from service.supervision.units import Unit, Units

STATUSES = ("proposed", "dismissed", "issued", "acknowledged", "answered", "sent_back", "accepted")
LABELS_ZH = {
    "proposed": "待签发",
    "dismissed": "不予督办",
    "issued": "已签发",
    "acknowledged": "已签收",
    "answered": "已答复",
    "sent_back": "已退回",
    "accepted": "已办结",
}
# waiting for the unit's answer: these break their deadline when it passes
UNANSWERED = ("issued", "acknowledged", "sent_back")
# still open for a circular: issued and not yet accepted
OPEN = (*UNANSWERED, "answered")
SUBJECT_KINDS = ("cases", "grid", "hotspot", "department")
MAX_CASES = 200


@dataclass(frozen=True)
class Transition:
    """An action moving an order from one of ``sources`` to ``target``, done by ``who``
    (``issuer`` or ``unit``)."""

    sources: tuple[str, ...]
    target: str
    who: str
    needs_note: bool = False


TRANSITIONS: dict[str, Transition] = {
    "issue": Transition(("proposed",), "issued", "issuer"),
    "dismiss": Transition(("proposed",), "dismissed", "issuer", needs_note=True),
    "acknowledge": Transition(("issued",), "acknowledged", "unit"),
    "answer": Transition(("acknowledged", "sent_back"), "answered", "unit", needs_note=True),
    "accept": Transition(("answered",), "accepted", "issuer"),
    "send_back": Transition(("answered",), "sent_back", "issuer", needs_note=True),
}


def allowed_actions(status: str) -> list[str]:
    """Actions legal from ``status``."""
    return [a for a, t in TRANSITIONS.items() if status in t.sources]


@dataclass
class OrderInput:
    """An order as a leader issues it: what it is about (cases, or a grid, hotspot or
    department problem), who answers for it, what is demanded and by when."""

    demand: str
    deadline_at: datetime
    unit_kind: str
    unit: str
    case_ids: list[int] = field(default_factory=list)
    subject_kind: str = "cases"
    subject_key: str | None = None
    person_name: str | None = None
    person_phone: str | None = None


@dataclass
class AutoOrder:
    """An order the escalation sweep writes (``service.supervision.escalation``)."""

    status: str  # proposed | issued
    issued_by: str
    unit: Unit
    demand: str
    deadline_at: datetime
    case_ids: list[int]
    rule_key: str | None
    trigger_case_id: int | None
    level: int = 1
    parent_id: int | None = None
    subject_kind: str = "cases"
    subject_key: str | None = None


def order_condition(by: Principal, city: str) -> ColumnElement[bool] | None:
    """The SQL condition of ``city``'s orders ``by`` may see (``None``: every order)."""
    if by.city_wide:
        return None
    o = SupervisionOrder
    terms: list[ColumnElement[bool]] = []
    prefixes = by.grid_prefixes or ()
    for prefix in prefixes:
        terms.append(and_(o.unit_kind == "grid", o.unit.startswith(prefix, autoescape=True)))
    if prefixes:
        in_grids = or_(*(Case.grid_code.startswith(p, autoescape=True) for p in prefixes))
        # the city as a constant: Citus routes (and may lock, FOR UPDATE) only a query whose
        # every table is pinned to one city
        terms.append(exists().where(Case.city == city, Case.id == any_(o.case_ids), in_grids))
    if by.department is not None:
        terms.append(and_(o.unit_kind == "department", o.unit == by.department))
    if by.kind == "user" and by.id is not None:
        terms.append(o.issued_by_user_id == by.id)
    if not terms:
        return false()
    return or_(*terms)


def _names_case(case_id: int) -> ColumnElement[bool]:
    """``case_ids @> ARRAY[case_id]``: served by the GIN index on ``case_ids``."""
    return SupervisionOrder.case_ids.op("@>")(cast(array([case_id]), ARRAY(BigInteger)))


def responsible(by: Principal, order: SupervisionOrder) -> bool:
    """Whether ``by`` answers for ``order``'s unit (the admin answers for any)."""
    if by.city_wide and by.can("users.admin"):
        return True
    if order.unit_kind == "department":
        return by.department is not None and by.department == order.unit
    return by.grid_prefixes is not None and any(order.unit.startswith(p) for p in by.grid_prefixes)


class OrderService:
    """Supervision orders of one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.tz = ZoneInfo(settings.grids.timezone)
        self.units = Units(session, settings)

    # -- issuing ---------------------------------------------------------------------------
    def issue(self, item: OrderInput, by: Principal) -> SupervisionOrder:
        """Issue an order by ``by`` (``orders.issue``). Every check runs before anything is
        written: an unknown or closed case (``case_ids``), a deadline not in the future
        (``deadline``), an unknown unit (``unit``) or subject (``subject_key``) is a 422
        naming the field; a case or grid unit outside the issuer's scope a 403."""
        by.require("orders.issue")
        t = now()
        if not item.demand.strip():
            raise InvalidInput("an order needs a demand (what the unit must do)", field="demand")
        if item.deadline_at <= t:
            raise InvalidInput(
                f"deadline {item.deadline_at.isoformat()} is not in the future", field="deadline"
            )
        cases = self._open_cases(item.case_ids, by)
        self._check_subject(item)
        unit = self.units.resolve(item.unit_kind, item.unit)
        if unit.kind == "grid":
            by.require_grid(unit.key, "the responsible grid")
        order = self._insert(
            status="issued",
            issued_by=by.label,
            issued_by_user_id=by.id if by.kind == "user" else None,
            unit=unit,
            person_name=item.person_name or unit.person_name,
            person_phone=item.person_phone or unit.person_phone,
            demand=item.demand.strip(),
            deadline_at=item.deadline_at,
            case_ids=[c.id for c in cases],
            subject_kind=item.subject_kind,
            subject_key=item.subject_key,
            at=t,
        )
        self._event(order, "issue", None, by.label, by, t, None)
        return order

    def _open_cases(self, ids: list[int], by: Principal) -> list[Case]:
        ids = sorted(set(ids))
        if len(ids) > MAX_CASES:
            raise InvalidInput(f"at most {MAX_CASES} cases per order", field="case_ids")
        if not ids:
            return []
        stmt = select(Case).where(Case.city == self.city, Case.id.in_(ids)).order_by(Case.id)
        scope = case_condition(by)
        if scope is not None:
            stmt = stmt.where(scope)
        # shared row locks: a case cannot be closed between this check and the order's commit
        rows = list(self.session.scalars(stmt.with_for_update(read=True)))
        missing = sorted(set(ids) - {c.id for c in rows})
        if missing:
            raise InvalidInput(
                f"no case {', '.join(map(str, missing))} in your scope", field="case_ids"
            )
        done = [c for c in rows if c.status not in OPEN_STATUSES]
        if done:
            said = ", ".join(f"{c.id} ({CASE_LABELS_ZH.get(c.status, c.status)})" for c in done)
            raise InvalidInput(
                f"case(s) {said} are no longer open: an order is about open cases "
                "(reopen a case first)",
                field="case_ids",
                case_ids=[c.id for c in done],
            )
        return rows

    def _check_subject(self, item: OrderInput) -> None:
        kind, key = item.subject_kind, item.subject_key
        if kind not in SUBJECT_KINDS:
            raise InvalidInput(
                f"subject_kind {kind!r} must be one of {', '.join(SUBJECT_KINDS)}",
                field="subject_kind",
            )
        if kind == "cases":
            if not item.case_ids:
                raise InvalidInput("name the cases of the order", field="case_ids")
            return
        if not key:
            raise InvalidInput(f"a {kind} order names its {kind}", field="subject_key")
        if kind == "hotspot":
            spot = (
                self.session.scalar(
                    select(Hotspot.id).where(Hotspot.city == self.city, Hotspot.id == int(key))
                )
                if key.isdigit() and len(key) < 19
                else None
            )
            if spot is None:
                raise InvalidInput(f"no hotspot {key!r}", field="subject_key")
        else:
            self.units.resolve("grid" if kind == "grid" else "department", key, "subject_key")

    def add_auto(self, item: AutoOrder, at: datetime) -> SupervisionOrder:
        """Write an order of the escalation sweep (the caller holds a savepoint: a unique
        constraint may refuse it)."""
        order = self._insert(
            status=item.status,
            issued_by=item.issued_by if item.status == "issued" else None,
            issued_by_user_id=None,
            unit=item.unit,
            person_name=item.unit.person_name,
            person_phone=item.unit.person_phone,
            demand=item.demand,
            deadline_at=item.deadline_at,
            case_ids=item.case_ids,
            subject_kind=item.subject_kind,
            subject_key=item.subject_key,
            at=at,
            rule_key=item.rule_key,
            trigger_case_id=item.trigger_case_id,
            level=item.level,
            parent_id=item.parent_id,
        )
        action = "issue" if item.status == "issued" else "propose"
        self._event(order, action, None, item.issued_by, None, at, None)
        return order

    def _insert(self, *, status: str, unit: Unit, at: datetime, **values: Any) -> SupervisionOrder:
        order = SupervisionOrder(
            city=self.city,
            status=status,
            unit_kind=unit.kind,
            unit=unit.key,
            unit_name=unit.name,
            created_at=at,
            updated_at=at,
            **values,
        )
        if status == "issued":
            self._number(order, at)
        self.session.add(order)
        self.session.flush()
        if status == "issued":
            self._announce(order)
        return order

    def _announce(self, order: SupervisionOrder) -> None:
        """``order.issued`` to the subscriptions of the unit (in this transaction: an order
        rolled back announces nothing)."""
        notify.publish(
            self.session,
            "order.issued",
            {
                "id": order.id,
                "number": order.number,
                "unit_kind": order.unit_kind,
                "unit": order.unit,
                "unit_name": order.unit_name,
                "demand": order.demand,
                "deadline": order.deadline_at,
                "case_ids": list(order.case_ids or []),
                "level": order.level,
            },
            grid_code=order.unit if order.unit_kind == "grid" else None,
            department=order.unit if order.unit_kind == "department" else None,
            city=self.city,
            key=f"order.issued:{order.id}",
        )

    def _number(self, order: SupervisionOrder, at: datetime) -> None:
        year = at.astimezone(self.tz).year
        order.year = year
        order.seq = allocate(self.session, self.city, year)
        order.number = number_text(year, order.seq)
        order.issued_at = at

    # -- the lifecycle ---------------------------------------------------------------------
    def act(
        self,
        order_id: int,
        action: str,
        by: Principal,
        note: str | None = None,
        deadline_at: datetime | None = None,
    ) -> SupervisionOrder:
        """Move order ``order_id`` along its lifecycle. Unknown action: 422 (``action``);
        an order out of scope: 404; not the issuer's or the unit's to do: 403; not allowed
        from the current state: 409 naming ``status``; a missing reason: 422 (``note``)."""
        transition = TRANSITIONS.get(action)
        if transition is None:
            raise InvalidInput(
                f"unknown action {action!r}; actions are {', '.join(TRANSITIONS)}",
                field="action",
            )
        order = self.get(order_id, by, lock=True)
        if transition.who == "unit":
            by.require("orders.answer")
            if not responsible(by, order):
                raise Forbidden(
                    f"order {order.number or order.id} is for {order.unit_name} ({order.unit}), "
                    f"not for {by.label} ({by.scope_text()})",
                    field="unit",
                    unit=order.unit,
                )
        elif not (by.kind == "user" and by.id == order.issued_by_user_id):
            by.require("orders.issue")
        if order.status not in transition.sources:
            raise Conflict(
                f"cannot {action} an order that is {order.status}; allowed: "
                f"{', '.join(allowed_actions(order.status)) or 'nothing (final state)'}",
                field="status",
                status=order.status,
                allowed=allowed_actions(order.status),
            )
        note = (note or "").strip() or None
        if transition.needs_note and note is None:
            raise InvalidInput(f"{action} needs a note", field="note")
        t = now()
        if action == "issue":
            deadline = deadline_at or order.deadline_at
            if deadline <= t:
                raise InvalidInput(
                    f"deadline {deadline.isoformat()} is not in the future: send a new one",
                    field="deadline",
                )
            order.deadline_at = deadline
            order.issued_by = by.label
            order.issued_by_user_id = by.id if by.kind == "user" else None
            self._number(order, t)
        elif action == "answer":
            order.answer = note
        before = order.status
        order.status = transition.target
        order.updated_at = t
        self._event(order, action, before, by.label, by, t, note)
        self.session.flush()
        if action == "issue":
            self._announce(order)
        return order

    def _event(
        self,
        order: SupervisionOrder,
        action: str,
        before: str | None,
        actor: str,
        by: Principal | None,
        at: datetime,
        note: str | None,
        to_status: str | None = None,
    ) -> None:
        self.session.add(
            SupervisionOrderEvent(
                city=order.city,
                order_id=order.id,
                action=action,
                from_status=before,
                to_status=to_status or order.status,
                actor=actor,
                actor_user_id=by.id if by is not None and by.kind == "user" else None,
                actor_key_id=by.id if by is not None and by.kind == "key" else None,
                at=at,
                note=note,
            )
        )
        self.session.flush()

    def note_escalation(self, parent: SupervisionOrder, child: SupervisionOrder) -> None:
        """Write on ``parent``'s history that it escalated to ``child`` (status unchanged)."""
        said = child.number or f"proposal {child.id}"
        self._event(
            parent,
            "escalate",
            parent.status,
            "system",
            None,
            child.created_at,
            f"逾期未答复，升级督办至{child.unit_name}（{said}）",
        )

    # -- reads -----------------------------------------------------------------------------
    def get(self, order_id: int, by: Principal, lock: bool = False) -> SupervisionOrder:
        """Order ``order_id`` if ``by`` may see it, else ``NotFound`` (out of scope alike)."""
        stmt = select(SupervisionOrder).where(
            SupervisionOrder.city == self.city, SupervisionOrder.id == order_id
        )
        scope = order_condition(by, self.city)
        if scope is not None:
            stmt = stmt.where(scope)
        if lock:
            stmt = stmt.with_for_update(of=SupervisionOrder)
        order = self.session.scalar(stmt)
        if order is None:
            raise NotFound(f"no supervision order {order_id}", field="id")
        return order

    def history(self, order: SupervisionOrder) -> list[SupervisionOrderEvent]:
        """Every step of ``order``, oldest first."""
        stmt = (
            select(SupervisionOrderEvent)
            .where(
                SupervisionOrderEvent.city == order.city,
                SupervisionOrderEvent.order_id == order.id,
            )
            .order_by(SupervisionOrderEvent.id)
        )
        return list(self.session.scalars(stmt))

    def orders(
        self,
        by: Principal,
        status: tuple[str, ...] = (),
        case_id: int | None = None,
        unit: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[SupervisionOrder]:
        """Orders ``by`` sees, newest first, filtered by status, case and unit."""
        unknown = [s for s in status if s not in STATUSES]
        if unknown:
            raise InvalidInput(
                f"unknown status {unknown[0]!r}; statuses are {', '.join(STATUSES)}",
                field="status",
            )
        stmt = select(SupervisionOrder).where(SupervisionOrder.city == self.city)
        scope = order_condition(by, self.city)
        if scope is not None:
            stmt = stmt.where(scope)
        if status:
            stmt = stmt.where(SupervisionOrder.status.in_(status))
        if case_id is not None:
            stmt = stmt.where(_names_case(case_id))
        if unit:
            stmt = stmt.where(SupervisionOrder.unit == unit)
        stmt = stmt.order_by(SupervisionOrder.id.desc()).limit(limit).offset(offset)
        return list(self.session.scalars(stmt))

    def for_case(self, case_id: int) -> list[SupervisionOrder]:
        """Every order naming case ``case_id`` (the caller has checked the case is visible),
        oldest first."""
        stmt = (
            select(SupervisionOrder)
            .where(
                SupervisionOrder.city == self.city,
                _names_case(case_id),
            )
            .order_by(SupervisionOrder.id)
        )
        return list(self.session.scalars(stmt))

    def for_circular(
        self, scope_prefix: str | None, department: str | None, day: date
    ) -> list[dict[str, Any]]:
        """The orders a circular of ``day`` names: issued by the end of that (local) day and
        not accepted, of grids under ``scope_prefix`` or on cases there, or of
        ``department`` (both ``None``: the whole city), most overdue first. Names are as
        stored: the circular is an official document."""
        end = datetime.combine(day + timedelta(days=1), time(0), self.tz)
        o = SupervisionOrder
        stmt = select(o).where(o.city == self.city, o.status.in_(OPEN), o.issued_at < end)
        terms: list[ColumnElement[bool]] = []
        if scope_prefix:
            terms.append(
                and_(o.unit_kind == "grid", o.unit.startswith(scope_prefix, autoescape=True))
            )
            terms.append(
                exists().where(
                    Case.city == o.city,
                    Case.id == any_(o.case_ids),
                    Case.grid_code.startswith(scope_prefix, autoescape=True),
                )
            )
        if department:
            terms.append(and_(o.unit_kind == "department", o.unit == department))
        if terms:
            stmt = stmt.where(or_(*terms))
        rows = self.session.scalars(stmt.order_by(o.deadline_at, o.id))
        return [
            {
                "id": r.id,
                "number": r.number,
                "unit_kind": r.unit_kind,
                "unit": r.unit,
                "unit_name": r.unit_name,
                "person": r.person_name,
                "phone": r.person_phone,
                "demand": r.demand,
                "deadline": r.deadline_at,
                "status": r.status,
                "status_zh": LABELS_ZH[r.status],
                "overdue": r.status in UNANSWERED and r.deadline_at < end,
                "level": r.level,
                "case_ids": list(r.case_ids),
            }
            for r in rows
        ]


def order_json(
    order: SupervisionOrder,
    by: Principal,
    events: list[SupervisionOrderEvent] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An order as the API shows it to ``by`` (the person masked without ``people.read``)."""
    t = at or now()
    person = person_for(by, {"name": order.person_name, "phone": order.person_phone})
    out: dict[str, Any] = {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "status_zh": LABELS_ZH[order.status],
        "subject_kind": order.subject_kind,
        "subject_key": order.subject_key,
        "case_ids": list(order.case_ids),
        "unit_kind": order.unit_kind,
        "unit": order.unit,
        "unit_name": order.unit_name,
        "person": person,
        "demand": order.demand,
        "deadline_at": order.deadline_at.isoformat(),
        "overdue": order.status in UNANSWERED and order.deadline_at < t,
        "issued_by": order.issued_by,
        "issued_at": order.issued_at.isoformat() if order.issued_at else None,
        "level": order.level,
        "parent_id": order.parent_id,
        "rule": order.rule_key,
        "answer": order.answer,
        "allowed_actions": allowed_actions(order.status),
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }
    if events is not None:
        out["history"] = [
            {
                "action": e.action,
                "from_status": e.from_status,
                "to_status": e.to_status,
                "actor": e.actor,
                "at": e.at.isoformat(),
                "note": e.note,
            }
            for e in events
        ]
    return out

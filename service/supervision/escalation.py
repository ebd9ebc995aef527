"""The escalation sweep: rules → proposed or issued orders, and overdue orders → one level up.

:func:`escalate` is what the daily scheduler (and ``citygrid escalate``) calls. For each rule in
force it finds the open cases that breach it (``FINDERS``) and writes one order per case — a
proposal or an issued order, as the rule's ``mode`` says — addressed to the case's unit
(``Units.for_case``: its department while the department works on it, otherwise its grid).
"At most once per case and rule" is the unique constraint ``uq_supervision_orders_rule_case``:
each insert runs in a savepoint and a refused one changes nothing (its number included).

Then the second breach: an issued order whose deadline has passed unanswered is escalated once
(``uq_supervision_orders_parent``) to the unit one level up (``Units.superior``) with the same
cases, a new deadline and the parent's demand.

Two sweeps of a city never run at once (a transaction-level advisory lock); the constraints
would keep them right anyway, the lock keeps them from wasting work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.cases.workflow import OPEN_SQL
from service.clock import now, work_clock
from service.db.anyof import any_of
from service.db.models import Case, EscalationRule, SupervisionOrder
from service.errors import InvalidInput
from service.settings import AppSettings
from service.supervision.orders import UNANSWERED, AutoOrder, OrderService
from service.supervision.rules import KINDS, RuleBook, render_demand
from service.supervision.units import Unit

# working days an escalated manual order (no rule) gives the unit above
ESCALATION_DAYS = 3
# the working calendar covers 1900-2200; a sweep runs in this century or the next
MIN_YEAR, MAX_YEAR = 2000, 2100
_LOCK = 0x6475_6200  # "dub" + 0: the advisory lock class of the sweep

Finder = Callable[[Session, AppSettings, EscalationRule, datetime], Iterator[tuple[Case, dict]]]

_NOT_ORDERED = (
    " AND NOT EXISTS (SELECT 1 FROM supervision_orders o WHERE o.city = c.city"
    " AND o.rule_key = :rule AND o.trigger_case_id = c.id AND o.level = 1)"
)


def _cases(session: Session, ids: list[int]) -> dict[int, Case]:
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Case).where(any_of(Case.id, ids)))}


def _overdue(
    session: Session, settings: AppSettings, rule: EscalationRule, at: datetime
) -> Iterator[tuple[Case, dict]]:
    """Open cases at least ``working_days`` working days past their deadline at ``at``."""
    days = int(rule.params["working_days"])
    # a working day is at least a calendar day: the calendar bound narrows, the clock decides
    stmt = text(
        f"SELECT c.id FROM cases c WHERE c.city = :city AND c.status IN {OPEN_SQL}"
        " AND c.deadline_at <= :bound" + _NOT_ORDERED + " ORDER BY c.id"
    )
    ids = list(
        session.scalars(
            stmt,
            {"city": settings.grids.city, "bound": at - timedelta(days=days), "rule": rule.key},
        )
    )
    clock = work_clock(settings)
    per_day = clock.hours.hours_per_day
    for case in _cases(session, ids).values():
        assert case.deadline_at is not None
        if clock.add(case.deadline_at, days, "days") <= at:
            late = clock.working_hours_between(case.deadline_at, at) / per_day
            yield case, {"overdue_days": int(late)}


def _reworked(
    session: Session, settings: AppSettings, rule: EscalationRule, at: datetime
) -> Iterator[tuple[Case, dict]]:
    """Open cases sent back for rework at least ``times`` times by ``at``."""
    stmt = text(
        "SELECT c.id, count(*) FROM cases c"
        " JOIN case_events e ON e.city = c.city AND e.case_id = c.id"
        f" WHERE c.city = :city AND c.status IN {OPEN_SQL} AND e.action = 'rework'"
        " AND e.at <= :at" + _NOT_ORDERED + " GROUP BY c.id HAVING count(*) >= :times"
        " ORDER BY c.id"
    )
    found: dict[int, int] = dict(
        session.execute(
            stmt,
            {
                "city": settings.grids.city,
                "at": at,
                "rule": rule.key,
                "times": int(rule.params["times"]),
            },
        ).all()
    )
    for case_id, case in _cases(session, list(found)).items():
        yield case, {"reworks": int(found[case_id])}


def _recurring(
    session: Session, settings: AppSettings, rule: EscalationRule, at: datetime
) -> Iterator[tuple[Case, dict]]:
    """Open cases that end a ``recurring_of`` chain of at least ``times`` cases reported
    within ``days`` days (the same problem, again and again)."""
    days, times = int(rule.params["days"]), int(rule.params["times"])
    stmt = text(
        "WITH RECURSIVE chain AS ("
        " SELECT c.id AS head, c.recurring_of AS prev, c.reported_at AS head_at, 1 AS n"
        f" FROM cases c WHERE c.city = :city AND c.status IN {OPEN_SQL}"
        " AND c.recurring_of IS NOT NULL AND c.reported_at > :since AND c.reported_at <= :at"
        + _NOT_ORDERED
        + " UNION ALL"
        " SELECT chain.head, p.recurring_of, chain.head_at, chain.n + 1"
        " FROM chain JOIN cases p ON p.id = chain.prev AND p.city = :city"
        " WHERE p.reported_at > chain.head_at - make_interval(days => :days) AND chain.n < :times"
        ") SELECT head, max(n) FROM chain GROUP BY head HAVING max(n) >= :times ORDER BY head"
    )
    found: dict[int, int] = dict(
        session.execute(
            stmt,
            {
                "city": settings.grids.city,
                "since": at - timedelta(days=days),
                "at": at,
                "days": days,
                "times": times,
                "rule": rule.key,
            },
        ).all()
    )
    for case in _cases(session, list(found)).values():
        yield case, {}


# the campaign tag (``campaign_cases``, written by ``service.cases.campaigns``) decides "in the
# campaign's scope"; the case's matched hotspots (``cases.hotspot_ids``) decide "in one of its
# hotspots". Of several campaigns (or hotspots), the earliest-starting one (lowest id) is named.
_IN_CAMPAIGN_HOTSPOT = text(
    "SELECT DISTINCT ON (c.id) c.id, k.name,"
    " (SELECT h.name FROM hotspots h WHERE h.city = c.city AND h.id = ANY(c.hotspot_ids)"
    "  AND h.id = ANY(k.hotspot_ids) ORDER BY h.id LIMIT 1)"
    " FROM cases c"
    " JOIN campaign_cases t ON t.city = c.city AND t.case_id = c.id"
    " JOIN campaigns k ON k.id = t.campaign_id AND k.city = c.city"
    f" WHERE c.city = :city AND c.status IN {OPEN_SQL}"
    " AND k.starts_at <= :at AND k.ends_at > :at"
    " AND c.hotspot_ids && k.hotspot_ids"
    " AND c.reported_at <= :bound" + _NOT_ORDERED + " ORDER BY c.id, k.start_date, k.id"
)


def _campaign_hotspot(
    session: Session, settings: AppSettings, rule: EscalationRule, at: datetime
) -> Iterator[tuple[Case, dict]]:
    """Open cases tagged with a campaign running at ``at``, lying in one of its hotspots, and
    open at least ``working_hours`` working hours since they were reported."""
    hours = int(rule.params["working_hours"])
    # a working hour is at least a calendar hour: the calendar bound narrows, the clock decides
    found = {
        case_id: (campaign, hotspot)
        for case_id, campaign, hotspot in session.execute(
            _IN_CAMPAIGN_HOTSPOT,
            {
                "city": settings.grids.city,
                "at": at,
                "bound": at - timedelta(hours=hours),
                "rule": rule.key,
            },
        )
    }
    clock = work_clock(settings)
    for case_id, case in sorted(_cases(session, list(found)).items()):
        if clock.add(case.reported_at, hours, "hours") <= at:
            campaign, hotspot = found[case_id]
            open_hours = clock.working_hours_between(case.reported_at, at)
            yield case, {"campaign": campaign, "hotspot": hotspot, "open_hours": int(open_hours)}


# kind → finder; a new kind adds its finder here and its params in
# ``service.supervision.rules.KINDS``
FINDERS: dict[str, Finder] = {
    "overdue": _overdue,
    "reworked": _reworked,
    "recurring": _recurring,
    "campaign_hotspot": _campaign_hotspot,
}
assert set(FINDERS) == set(KINDS)


@dataclass
class SweepReport:
    """What one sweep did: orders proposed, issued and escalated (each a short dict), and
    breached orders already at the top of their chain."""

    at: datetime
    proposed: list[dict[str, Any]] = field(default_factory=list)
    issued: list[dict[str, Any]] = field(default_factory=list)
    escalated: list[dict[str, Any]] = field(default_factory=list)
    at_top: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "at": self.at.isoformat(),
            "proposed": self.proposed,
            "issued": self.issued,
            "escalated": self.escalated,
            "at_top": self.at_top,
        }


def _brief(order: SupervisionOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "rule": order.rule_key,
        "case_ids": list(order.case_ids),
        "unit": order.unit,
        "unit_name": order.unit_name,
        "level": order.level,
        "parent_id": order.parent_id,
    }


def _try(session: Session, write: Callable[[], SupervisionOrder]) -> SupervisionOrder | None:
    """``write()`` in a savepoint; ``None`` when a unique constraint refuses it (already
    done), with everything it wrote — its number too — rolled back."""
    savepoint = session.begin_nested()
    try:
        order = write()
    except IntegrityError:
        savepoint.rollback()
        return None
    savepoint.commit()
    return order


def escalate(session: Session, settings: AppSettings, at: datetime | None = None) -> SweepReport:
    """Apply every enabled escalation rule of the city at ``at`` (default: now), then escalate
    orders whose deadline passed unanswered; the caller commits."""
    at = at or now()
    if not MIN_YEAR <= at.year <= MAX_YEAR:
        raise InvalidInput(
            f"at {at.isoformat()} must lie between {MIN_YEAR} and {MAX_YEAR}", field="at"
        )
    city = settings.grids.city
    session.execute(select(func.pg_advisory_xact_lock(_LOCK, func.hashtext(city))))
    report = SweepReport(at)
    orders = OrderService(session, settings)
    rules = RuleBook(session, settings).rules()
    clock = work_clock(settings)
    tz = ZoneInfo(settings.grids.timezone)
    for rule in rules:
        if not rule.enabled or rule.kind not in FINDERS:
            continue
        deadline = clock.add(at, rule.deadline_days, "days")
        for case, facts in FINDERS[rule.kind](session, settings, rule, at):
            unit = orders.units.for_case(case)
            values = {
                **rule.params,
                **facts,
                "case_id": case.id,
                "deadline": _local(deadline, tz),
                "unit": unit.name,
            }
            item = AutoOrder(
                status="issued" if rule.mode == "issue" else "proposed",
                issued_by=f"督办升级规则 {rule.key}（{rule.name_zh}）",
                unit=unit,
                demand=render_demand(rule.demand, values),
                deadline_at=deadline,
                case_ids=[case.id],
                rule_key=rule.key,
                trigger_case_id=case.id,
            )
            order = _try(session, partial(orders.add_auto, item, at))
            if order is not None:
                (report.issued if order.status == "issued" else report.proposed).append(
                    _brief(order)
                )
    _second_breaches(session, settings, orders, {r.key: r for r in rules}, at, report)
    return report


def _second_breaches(
    session: Session,
    settings: AppSettings,
    orders: OrderService,
    rules: dict[str, EscalationRule],
    at: datetime,
    report: SweepReport,
) -> None:
    """Escalate issued orders past their deadline and still unanswered, once each."""
    o = SupervisionOrder
    children = select(o.parent_id).where(o.city == settings.grids.city, o.parent_id.is_not(None))
    stmt = (
        select(o)
        .where(
            o.city == settings.grids.city,
            o.status.in_(UNANSWERED),
            o.deadline_at < at,
            o.id.not_in(children),
        )
        .order_by(o.id)
    )
    clock = work_clock(settings)
    tz = ZoneInfo(settings.grids.timezone)
    for parent in list(session.scalars(stmt)):
        here = Unit(parent.unit_kind, parent.unit, parent.unit_name)
        above = orders.units.superior(here)
        if above is None:
            report.at_top.append(_brief(parent))
            continue
        rule = rules.get(parent.rule_key) if parent.rule_key else None
        days = rule.deadline_days if rule else ESCALATION_DAYS
        deadline = clock.add(at, days, "days")
        item = AutoOrder(
            status="proposed" if rule is not None and rule.mode == "propose" else "issued",
            issued_by=f"督办升级（{parent.number} 逾期未答复）",
            unit=above,
            demand=(
                f"{parent.number}要求{parent.unit_name}于{_local(parent.deadline_at, tz)}前答复，"
                f"逾期未答复，升级督办：请于{_local(deadline, tz)}前督促办结并书面回复。"
                f"原督办要求：{parent.demand}"
            ),
            deadline_at=deadline,
            case_ids=list(parent.case_ids),
            rule_key=parent.rule_key,
            trigger_case_id=parent.trigger_case_id,
            level=parent.level + 1,
            parent_id=parent.id,
            subject_kind=parent.subject_kind,
            subject_key=parent.subject_key,
        )

        def write(item: AutoOrder = item, parent: SupervisionOrder = parent) -> SupervisionOrder:
            order = orders.add_auto(item, at)
            orders.note_escalation(parent, order)
            return order

        order = _try(session, write)
        if order is not None:
            report.escalated.append(_brief(order))


def _local(t: datetime, tz: ZoneInfo) -> str:
    """``t`` as printed on an order: ``2026年12月3日17时30分``."""
    local = t.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日{local.hour}时{local.minute:02d}分"

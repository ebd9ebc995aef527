"""Escalation rules as data (``escalation_rules``).

A rule names a ``kind`` (what breaches it), its ``params``, a ``mode`` (``propose``: the sweep
writes a proposal a leader issues or dismisses; ``issue``: the sweep issues the order itself),
the working days the unit gets (``deadline_days``) and the ``demand`` written on the order, a
template with ``{case_id}``, ``{deadline}``, ``{unit}`` and the rule's params. The defaults
(``city`` NULL) are seeded by the migration; a city's admin edits them, which writes the city's
own row of the same key.

Kinds and their params (whole numbers ≥ 1):

* ``overdue`` (``working_days``): an open case this many working days past its deadline, on the
  city's working calendar;
* ``reworked`` (``times``): an open case sent back for rework (返工) this many times;
* ``recurring`` (``times``, ``days``): the same problem this many times within ``days`` — an open
  case at the end of a chain of ``recurring_of`` links that long.

* ``campaign_hotspot`` (``working_hours``): an open case carrying the tag of a campaign (专项行动)
  running at the sweep, lying in one of that campaign's hotspots, and open this many working
  hours since it was reported — during a campaign a hotspot's problem is not left to its
  category's ordinary deadline. A campaign that names no hotspots never triggers it.

Besides its params, a demand may name the facts its kind's finder reports (``FACTS``): e.g.
``{campaign}`` and ``{hotspot}`` (names) for ``campaign_hotspot``.

A new kind adds its params here and its finder in ``service.supervision.escalation.FINDERS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.accounts.audit import AuditLog
from service.accounts.principal import Principal
from service.clock import now
from service.db.models import EscalationRule
from service.errors import InvalidInput, NotFound
from service.settings import AppSettings

KINDS: dict[str, tuple[str, ...]] = {
    "overdue": ("working_days",),
    "reworked": ("times",),
    "recurring": ("times", "days"),
    "campaign_hotspot": ("working_hours",),
}
# kind → the facts its finder reports about a case, which a demand may name too (with a sample
# value for checking an edited template)
FACTS: dict[str, dict[str, Any]] = {
    "overdue": {"overdue_days": 5},
    "reworked": {"reworks": 2},
    "recurring": {},
    "campaign_hotspot": {"campaign": "专项行动", "hotspot": "热点", "open_hours": 10},
}
MODES = ("propose", "issue")
MAX_PARAM = 3650
MAX_DEADLINE_DAYS = 365


@dataclass
class RulePatch:
    """An admin's change of a rule: the fields given replace the stored ones."""

    name_zh: str | None = None
    params: dict[str, Any] | None = None
    mode: str | None = None
    enabled: bool | None = None
    deadline_days: int | None = None
    demand: str | None = None


def render_demand(template: str, values: dict[str, Any]) -> str:
    """``template`` with ``values`` filled in: plain ``{name}`` fields only (no attributes,
    indexes or format specs, which an edited template must not reach or blow up with);
    ``KeyError``/``ValueError`` when it names something else or is malformed."""
    for _, name, spec, conversion in Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{name}}} takes no format spec or conversion")
        if name not in values:
            raise KeyError(name)
    return template.format_map(values)


def rule_json(rule: EscalationRule) -> dict[str, Any]:
    """A rule as the API shows it (``default``: not yet edited for this city)."""
    return {
        "key": rule.key,
        "kind": rule.kind,
        "name_zh": rule.name_zh,
        "params": rule.params,
        "mode": rule.mode,
        "enabled": rule.enabled,
        "deadline_days": rule.deadline_days,
        "demand": rule.demand,
        "default": rule.city is None,
        "updated_by": rule.updated_by,
        "updated_at": rule.updated_at.isoformat() if rule.updated_at else None,
    }


class RuleBook:
    """The escalation rules in force in one city."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city

    def rules(self) -> list[EscalationRule]:
        """Every rule in force (the city's own rows replace the defaults of the same key),
        by key."""
        stmt = select(EscalationRule).where(
            or_(EscalationRule.city == self.city, EscalationRule.city.is_(None))
        )
        by_key: dict[str, EscalationRule] = {}
        for rule in self.session.scalars(stmt):
            if rule.key not in by_key or rule.city is not None:
                by_key[rule.key] = rule
        return [by_key[k] for k in sorted(by_key)]

    def get(self, key: str) -> EscalationRule:
        """The rule ``key`` in force, or ``NotFound`` naming it."""
        for rule in self.rules():
            if rule.key == key:
                return rule
        raise NotFound(f"no escalation rule {key!r}", field="key")

    def update(self, key: str, patch: RulePatch, by: Principal) -> EscalationRule:
        """Apply ``patch`` to rule ``key`` for this city (the first edit copies the default);
        ``InvalidInput`` naming the field, nothing stored, when the result breaks a rule."""
        current = self.get(key)
        merged = {
            "name_zh": patch.name_zh if patch.name_zh is not None else current.name_zh,
            "params": patch.params if patch.params is not None else dict(current.params),
            "mode": current.mode if patch.mode is None else patch.mode,
            "enabled": current.enabled if patch.enabled is None else patch.enabled,
            "deadline_days": current.deadline_days
            if patch.deadline_days is None
            else patch.deadline_days,
            "demand": patch.demand if patch.demand is not None else current.demand,
        }
        self._check(current.kind, merged)
        before = rule_json(current)
        rule = current
        if current.city is None:
            rule = EscalationRule(city=self.city, key=key, kind=current.kind)
            self.session.add(rule)
        for name, value in merged.items():
            setattr(rule, name, value)
        rule.updated_by = by.label
        rule.updated_at = now()
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by, "escalation_rule.update", "escalation_rules", key, before, rule_json(rule)
        )
        return rule

    @staticmethod
    def _check(kind: str, rule: dict[str, Any]) -> None:
        if not str(rule["name_zh"]).strip():
            raise InvalidInput("a rule needs a name", field="name_zh")
        if rule["mode"] not in MODES:
            raise InvalidInput(
                f"mode {rule['mode']!r} must be one of {', '.join(MODES)}", field="mode"
            )
        days = rule["deadline_days"]
        if (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not 1 <= days <= MAX_DEADLINE_DAYS
        ):
            raise InvalidInput(
                f"deadline_days must be a whole number of working days from 1 to "
                f"{MAX_DEADLINE_DAYS}",
                field="deadline_days",
            )
        names = KINDS[kind]
        params = rule["params"]
        extra = sorted(set(params) - set(names))
        if extra:
            raise InvalidInput(
                f"a {kind} rule takes only {', '.join(names)}, not {', '.join(extra)}",
                field=f"params.{extra[0]}",
            )
        for name in names:
            value = params.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"params.{name} must be a whole number", field=f"params.{name}")
            if not 1 <= value <= MAX_PARAM:
                raise InvalidInput(
                    f"params.{name} must be from 1 to {MAX_PARAM}", field=f"params.{name}"
                )
        facts = FACTS[kind]
        sample = {
            **params,
            **facts,
            "case_id": 1,
            "deadline": "2026年1月1日17时",
            "unit": "单位",
        }
        demand = str(rule["demand"])
        if not demand.strip():
            raise InvalidInput("a rule needs a demand", field="demand")
        try:
            render_demand(demand, sample)
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise InvalidInput(
                f"demand {demand!r} cannot be filled in ({exc!r}); it may name {{case_id}}, "
                f"{{deadline}}, {{unit}} and "
                f"{', '.join('{' + n + '}' for n in (*names, *facts))}",
                field="demand",
            ) from exc

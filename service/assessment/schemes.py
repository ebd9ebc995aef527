"""Scoring schemes (考核评分方案): how figures become points, a score, a grade and a place on the
red or yellow list — versioned data, validated here.

A scheme is a JSON document (:class:`SchemeDocument`). Per subject type (``rules``: grids of
some levels, departments, workers, dispatchers — the first rule matching a subject applies) it
names:

- ``components``: indicators (keys of ``indicator_definitions``) or *external* components
  (named scores 0–100 handed in from outside, e.g. ``cross_scoring``, the 交叉考核 round's
  score of a grid), each with a ``weight``; the weights of a rule add up to 100. An indicator's
  value becomes 0–100 points by its ``points`` rule:

  * ``linear``: 0 points at ``zero``, 100 at ``full``, a straight line between, clamped
    (``zero`` > ``full`` for "lower is better", e.g. 返工率);
  * ``bands``: the first band whose bound the value meets — all ``at_least`` (descending) or
    all ``at_most`` (ascending) — gives its points, ``otherwise`` when none does;
  * ``below_target``: 100 minus ``per_point`` points per percentage point the rate is below
    ``target`` (or above it, with ``better: lower``), never below 0.

  A quotient with nothing to divide (no 应结案 in the month) scores ``if_none`` (default 100:
  nothing went wrong). An external component a subject lacks (no round scored that grid) is
  left out and the other weights are scaled back up to 100.
- ``deductions`` (扣分), in points of the total, with the case ids behind them: ``rework`` per
  rework event in the period, ``failed_verification`` per case sent back ``times`` times or
  more (counting its whole history) with at least one of them in the period; each doubled
  (``flag_factor``) for a case flagged in ``fields.flags`` with one of ``flags`` (default
  ``leader`` 领导交办, ``media`` 媒体曝光); ``max_points`` caps a deduction.
- ``bonuses`` (加分): ``points`` per ``per`` of a count indicator, capped at ``max_points``.
- The total is the weighted points + bonuses − deductions, clamped to 0–100, rounded to 2
  places; the grade is the first of ``grades`` whose ``min`` the total reaches (A ≥ 90,
  B ≥ 75, C ≥ 60, D ≥ 40, else E: exactly 90 is an A).
- ``peer_group`` and ``lists``: subjects are ranked within their peer group (``parent``: the
  grid one level up; a grid level: the grid of that level containing the subject — for a
  worker, containing its first assigned grid; ``all``: one group), best first, equal totals
  sharing a rank; the red list (红榜) is the ``red.top`` best and/or those scoring at least
  ``red.min_score`` (both given: both must hold), the yellow list (黄榜) likewise the
  ``yellow.bottom`` worst and/or those below ``yellow.below_score``; nobody is on both.
  Only *active* subjects (any case counting in the period, or an external score) are ranked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from service.accounts.principal import Principal
from service.db.models import LEVELS, ScoringScheme
from service.errors import InvalidInput, NotFound

SUBJECT_TYPES = ("grid", "department", "worker", "dispatcher")
DEFAULT_FLAGS = ["leader", "media"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Linear(_Strict):
    """0 points at ``zero``, 100 at ``full``, straight between, clamped."""

    rule: Literal["linear"]
    zero: float
    full: float

    @model_validator(mode="after")
    def _apart(self) -> Linear:
        if self.zero == self.full:
            raise ValueError("zero and full must differ")
        return self


class Band(_Strict):
    """One band: its bound (exactly one of ``at_least``/``at_most``) and its points."""

    at_least: float | None = None
    at_most: float | None = None
    points: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _one_bound(self) -> Band:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("a band has exactly one of at_least and at_most")
        return self


class Bands(_Strict):
    """Points of the first band the value meets, ``otherwise`` when none does."""

    rule: Literal["bands"]
    bands: list[Band] = Field(min_length=1, max_length=50)
    otherwise: float = Field(default=0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        lows = [b.at_least for b in self.bands if b.at_least is not None]
        highs = [b.at_most for b in self.bands if b.at_most is not None]
        if lows and highs:
            raise ValueError("bands are all at_least or all at_most, not both")
        if lows and any(a <= b for a, b in zip(lows, lows[1:], strict=False)):
            raise ValueError("at_least bands must be in strictly descending order")
        if highs and any(a >= b for a, b in zip(highs, highs[1:], strict=False)):
            raise ValueError("at_most bands must be in strictly ascending order")
        return self


class BelowTarget(_Strict):
    """100 minus ``per_point`` per percentage point short of ``target`` (a rate 0–1)."""

    rule: Literal["below_target"]
    target: float = Field(ge=0, le=1)
    per_point: float = Field(gt=0, le=100)
    better: Literal["higher", "lower"] = "higher"


PointsRule = Annotated[Linear | Bands | BelowTarget, Field(discriminator="rule")]


class Component(_Strict):
    """One weighted part of a score: an indicator with its points rule, or an external score."""

    indicator: str | None = None
    external: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,39}$")
    weight: float = Field(gt=0, le=100)
    points: PointsRule | None = None
    if_none: float = Field(default=100, ge=0, le=100)

    @model_validator(mode="after")
    def _one_source(self) -> Component:
        if (self.indicator is None) == (self.external is None):
            raise ValueError("a component has exactly one of indicator and external")
        if self.indicator is not None and self.points is None:
            raise ValueError("an indicator component needs a points rule")
        return self


class Deduction(_Strict):
    """Points off the total per case event (``rework``) or per case (``failed_verification``)."""

    kind: Literal["rework", "failed_verification"]
    points: float = Field(gt=0, le=100)
    times: int = Field(default=3, ge=1, le=100)
    flags: list[str] = Field(default_factory=lambda: list(DEFAULT_FLAGS), max_length=20)
    flag_factor: float = Field(default=2, ge=1, le=10)
    max_points: float | None = Field(default=None, gt=0, le=100)


class Bonus(_Strict):
    """``points`` per ``per`` of a count indicator, capped."""

    name: str = Field(min_length=1, max_length=60)
    indicator: str
    per: float = Field(gt=0)
    points: float = Field(gt=0, le=100)
    max_points: float = Field(gt=0, le=100)


class RedRule(_Strict):
    """The red list of a peer group: the ``top`` best and/or those at or above ``min_score``."""

    top: int | None = Field(default=None, ge=0, le=1000)
    min_score: float | None = Field(default=None, ge=0, le=100)


class YellowRule(_Strict):
    """The yellow list: the ``bottom`` worst and/or those below ``below_score``."""

    bottom: int | None = Field(default=None, ge=0, le=1000)
    below_score: float | None = Field(default=None, ge=0, le=100)


class Lists(_Strict):
    """Who goes on the red and yellow lists of each peer group."""

    red: RedRule = RedRule(top=3)
    yellow: YellowRule = YellowRule(bottom=3)


class Rule(_Strict):
    """How subjects of one type (grids: of ``levels``) are scored, grouped and listed."""

    subject: Literal["grid", "department", "worker", "dispatcher"]
    levels: list[str] | None = None
    name: str = Field(default="", max_length=80)
    components: list[Component] = Field(min_length=1, max_length=40)
    deductions: list[Deduction] = Field(default_factory=list, max_length=10)
    bonuses: list[Bonus] = Field(default_factory=list, max_length=10)
    peer_group: str = "all"
    lists: Lists = Lists()

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.subject == "grid":
            if not self.levels:
                raise ValueError("a grid rule names its levels")
            bad = [lv for lv in self.levels if lv not in LEVELS]
            if bad:
                raise ValueError(f"unknown grid level {bad[0]!r}; levels are {', '.join(LEVELS)}")
        elif self.levels:
            raise ValueError("only grid rules have levels")
        total = sum(c.weight for c in self.components)
        if abs(total - 100) > 1e-6:
            raise ValueError(f"the weights add up to {total:g}, not 100")
        keys = [c.indicator or f"external:{c.external}" for c in self.components]
        if len(set(keys)) != len(keys):
            raise ValueError("a component appears twice")
        groups = ("all", "parent", *LEVELS[:-1])
        if self.peer_group not in groups:
            raise ValueError(f"peer_group is one of {', '.join(groups)}")
        if self.subject in ("department", "dispatcher") and self.peer_group != "all":
            raise ValueError("departments and dispatchers are ranked all together: peer_group all")
        if self.subject == "worker" and self.peer_group == "parent":
            raise ValueError("workers are grouped by a grid level (e.g. street) or all")
        if self.subject == "grid" and self.peer_group not in ("all", "parent"):
            above = LEVELS.index(self.peer_group)
            if any(LEVELS.index(lv) <= above for lv in self.levels or []):
                raise ValueError(f"peer_group {self.peer_group} must lie above every level")
        return self


class Grade(_Strict):
    """A grade and the least total that earns it."""

    grade: str = Field(min_length=1, max_length=8)
    min: float = Field(ge=0, le=100)


class SchemeDocument(_Strict):
    """A whole scheme: its rules per subject type and its grades."""

    name: str = Field(min_length=1, max_length=120)
    rules: list[Rule] = Field(min_length=1, max_length=20)
    grades: list[Grade] = Field(min_length=1, max_length=10)

    @field_validator("grades")
    @classmethod
    def _grades(cls, grades: list[Grade]) -> list[Grade]:
        mins = [g.min for g in grades]
        if any(a <= b for a, b in zip(mins, mins[1:], strict=False)):
            raise ValueError("grades are listed best first with strictly descending min")
        if mins[-1] != 0:
            raise ValueError("the last grade starts at 0 so that every total has a grade")
        return grades

    def rule_for(self, kind: str, level: str | None = None) -> Rule | None:
        """The first rule for subjects of ``kind`` (grids: of ``level``), or None."""
        for rule in self.rules:
            if rule.subject == kind and (kind != "grid" or level in (rule.levels or ())):
                return rule
        return None

    def grade(self, total: float) -> str:
        """The grade of ``total``: the first whose ``min`` it reaches."""
        for g in self.grades:
            if total >= g.min:
                return g.grade
        return self.grades[-1].grade


def _field(loc: tuple[Any, ...]) -> str:
    """``document.rules.0.components.1.weight`` from a pydantic error location (the union's
    discriminator tags, such as ``bands``, are kept: they name the rule that failed)."""
    return ".".join(["document", *(str(x) for x in loc)])


def validate_document(raw: Any, indicator_keys: set[str]) -> SchemeDocument:
    """The document ``raw`` checked: its shape, weights, bands, grades, and that every indicator
    it names exists. Anything wrong is :class:`InvalidInput` naming the field."""
    if not isinstance(raw, dict):
        raise InvalidInput("the scheme document is a JSON object", field="document")
    try:
        doc = SchemeDocument.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{_field(first['loc'])}: {msg}", field=_field(first["loc"])) from exc
    for i, rule in enumerate(doc.rules):
        named = [(f"components.{j}", c.indicator) for j, c in enumerate(rule.components)]
        named += [(f"bonuses.{j}", b.indicator) for j, b in enumerate(rule.bonuses)]
        for where, key in named:
            if key is not None and key not in indicator_keys:
                field = f"document.rules.{i}.{where}.indicator"
                raise InvalidInput(
                    f"{field}: unknown indicator {key!r} (GET /api/assessment/indicators lists "
                    "them)",
                    field=field,
                )
    return doc


# -- the default scheme --------------------------------------------------------------------------
_GRID_LEVELS = ["district", "street", "community", "unit"]
_DEDUCTIONS = [
    {"kind": "rework", "points": 0.5, "max_points": 10},
    {"kind": "failed_verification", "times": 3, "points": 2, "max_points": 10},
]
DEFAULT_DOCUMENT: dict[str, Any] = {
    "name": "默认考核评分方案（参照城市管理考评办法）",
    "rules": [
        {
            "subject": "grid",
            "levels": _GRID_LEVELS,
            "name": "网格综合评价",
            "components": [
                {
                    "indicator": "on_time_close_rate",
                    "weight": 35,
                    "points": {"rule": "below_target", "target": 0.95, "per_point": 5},
                },
                {
                    "indicator": "close_rate",
                    "weight": 20,
                    "points": {"rule": "linear", "zero": 0.8, "full": 1.0},
                },
                {
                    "indicator": "rework_rate",
                    "weight": 15,
                    "points": {
                        "rule": "bands",
                        "bands": [
                            {"at_most": 0.02, "points": 100},
                            {"at_most": 0.05, "points": 80},
                            {"at_most": 0.10, "points": 60},
                            {"at_most": 0.20, "points": 30},
                        ],
                        "otherwise": 0,
                    },
                },
                {
                    "indicator": "recurring",
                    "weight": 10,
                    "points": {
                        "rule": "bands",
                        "bands": [
                            {"at_most": 0, "points": 100},
                            {"at_most": 2, "points": 80},
                            {"at_most": 5, "points": 50},
                        ],
                        "otherwise": 20,
                    },
                },
                {"external": "cross_scoring", "weight": 20},
            ],
            "deductions": _DEDUCTIONS,
            "peer_group": "parent",
            "lists": {"red": {"top": 3}, "yellow": {"bottom": 3}},
        },
        {
            "subject": "department",
            "name": "专业部门考评",
            "components": [
                {
                    "indicator": "close_rate",
                    "weight": 30,
                    "points": {"rule": "linear", "zero": 0.8, "full": 1.0},
                },
                {
                    "indicator": "on_time_handling_rate",
                    "weight": 40,
                    "points": {"rule": "below_target", "target": 0.95, "per_point": 5},
                },
                {
                    "indicator": "rework_rate",
                    "weight": 30,
                    "points": {"rule": "linear", "zero": 0.2, "full": 0.0},
                },
            ],
            "deductions": _DEDUCTIONS,
            "peer_group": "all",
            "lists": {"red": {"top": 3}, "yellow": {"bottom": 3}},
        },
        {
            "subject": "worker",
            "name": "监督员综合指标值",
            "components": [
                {
                    "indicator": "valid_report_rate",
                    "weight": 40,
                    "points": {"rule": "linear", "zero": 0.6, "full": 1.0},
                },
                {
                    # 漏报率: part 1 counts 漏报数 (problems in the worker's grids reported by
                    # someone else), so the count is banded
                    "indicator": "missed",
                    "weight": 20,
                    "points": {
                        "rule": "bands",
                        "bands": [
                            {"at_most": 2, "points": 100},
                            {"at_most": 5, "points": 80},
                            {"at_most": 10, "points": 60},
                            {"at_most": 20, "points": 30},
                        ],
                        "otherwise": 0,
                    },
                },
                {
                    # 按时核实率 20 % + 按时核查率 20 %: part 1 has one verification deadline
                    # (按时核查率), which carries both weights
                    "indicator": "on_time_check_rate",
                    "weight": 40,
                    "points": {"rule": "below_target", "target": 0.95, "per_point": 4},
                },
            ],
            "bonuses": [
                {
                    "name": "巡查上报加分",
                    "indicator": "patrol_reported",
                    "per": 20,
                    "points": 1,
                    "max_points": 5,
                }
            ],
            "peer_group": "street",
            "lists": {"red": {"top": 3}, "yellow": {"bottom": 3}},
        },
        {
            "subject": "dispatcher",
            "name": "派遣员考评",
            "components": [
                {
                    "indicator": "accurate_dispatch_rate",
                    "weight": 100,
                    "points": {"rule": "below_target", "target": 0.95, "per_point": 5},
                }
            ],
            "peer_group": "all",
            "lists": {"red": {"top": 1}, "yellow": {"bottom": 1}},
        },
    ],
    "grades": [
        {"grade": "A", "min": 90},
        {"grade": "B", "min": 75},
        {"grade": "C", "min": 60},
        {"grade": "D", "min": 40},
        {"grade": "E", "min": 0},
    ],
}
DEFAULT_VALID_FROM = "2000-01-01T00:00:00+08:00"


# -- stored versions -----------------------------------------------------------------------------
class SchemeStore:
    """The scoring schemes of one city: its own versions and the default (``city`` NULL)."""

    def __init__(self, session: Session, city: str) -> None:
        self.session = session
        self.city = city

    def _mine(self) -> Any:
        return or_(ScoringScheme.city == self.city, ScoringScheme.city.is_(None))

    def all(self) -> list[ScoringScheme]:
        """Every version the city can use, newest first."""
        return list(
            self.session.scalars(
                select(ScoringScheme)
                .where(self._mine())
                .order_by(ScoringScheme.valid_from.desc(), ScoringScheme.id.desc())
            )
        )

    def get(self, scheme_id: int) -> ScoringScheme:
        """One version by id (``NotFound`` naming ``id``)."""
        row = self.session.get(ScoringScheme, scheme_id)
        if row is None or row.city not in (None, self.city):
            raise NotFound(f"no scoring scheme {scheme_id}", field="id")
        return row

    def in_force(self, at: datetime) -> ScoringScheme:
        """The version in force at ``at``: the latest ``valid_from`` not after it (the city's
        own before the default at the same moment, then the newest)."""
        row = self.session.scalars(
            select(ScoringScheme)
            .where(self._mine(), ScoringScheme.valid_from <= at)
            .order_by(
                ScoringScheme.valid_from.desc(),
                ScoringScheme.city.is_(None),
                ScoringScheme.id.desc(),
            )
            .limit(1)
        ).first()
        if row is None:
            raise NotFound(f"no scoring scheme is in force at {at.isoformat()}", field="period")
        return row

    def add(
        self, raw: Any, valid_from: datetime, by: Principal, indicator_keys: set[str]
    ) -> ScoringScheme:
        """A new version for the city (validated first: nothing is stored when it fails)."""
        doc = validate_document(raw, indicator_keys)
        version = (
            self.session.scalar(
                select(func.max(ScoringScheme.version)).where(ScoringScheme.city == self.city)
            )
            or 0
        ) + 1
        row = ScoringScheme(
            city=self.city,
            version=version,
            name=doc.name,
            valid_from=valid_from,
            document=doc.model_dump(mode="json", exclude_none=True),
            created_by=by.label,
        )
        self.session.add(row)
        self.session.flush()
        return row


def scheme_json(row: ScoringScheme, with_document: bool = True) -> dict[str, Any]:
    """A stored version as answers show it."""
    out: dict[str, Any] = {
        "id": row.id,
        "city": row.city,
        "version": row.version,
        "name": row.name,
        "valid_from": row.valid_from.isoformat(),
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "created_by": row.created_by,
        "default": row.city is None,
    }
    if with_document:
        out["document"] = row.document
    return out


def parse_document(row: ScoringScheme) -> SchemeDocument:
    """The stored document as a :class:`SchemeDocument` (stored ones were validated)."""
    return SchemeDocument.model_validate(row.document)

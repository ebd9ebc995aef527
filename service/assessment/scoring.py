"""Scores from figures: points per component, deductions with their cases, bonuses, total,
grade, and ranks within peer groups (the rules are documented in
:mod:`service.assessment.schemes`).

Everything here is plain arithmetic over :class:`~service.assessment.figures.Figures`, the
:class:`CaseMarks` behind the deductions and the external scores handed in; the only SQL is
:func:`case_marks`, which reads the reworks of the period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from service.assessment.definitions import BY_KEY
from service.assessment.figures import Figures
from service.assessment.periods import Period
from service.assessment.schemes import Bands, BelowTarget, Deduction, Linear, Rule, SchemeDocument

# component name → subject key → score 0–100 (e.g. "cross_scoring" → grid code → 86.5)
Externals = Mapping[str, Mapping[str, float]]
# the figures an exported or listed row keeps beside the score
ROW_FIGURES = (
    "due",
    "closed",
    "closed_on_time",
    "closed_late",
    "overdue_open",
    "close_rate",
    "on_time_close_rate",
    "reworked",
    "rework_rate",
)


def r2(x: float) -> float:
    """Two decimal places (points are shown and compared so)."""
    return round(x + 0.0, 2)


def points(rule: Linear | Bands | BelowTarget, value: float) -> float:
    """0–100 points of ``value`` under ``rule``."""
    if isinstance(rule, Linear):
        p = 100.0 * (value - rule.zero) / (rule.full - rule.zero)
    elif isinstance(rule, Bands):
        p = rule.otherwise
        for band in rule.bands:
            if (band.at_least is not None and value >= band.at_least) or (
                band.at_most is not None and value <= band.at_most
            ):
                p = band.points
                break
    else:
        gap = rule.target - value if rule.better == "higher" else value - rule.target
        p = 100.0 - rule.per_point * max(0.0, gap * 100.0)
    return r2(min(100.0, max(0.0, p)))


@dataclass(frozen=True)
class CaseMark:
    """A case reworked in the period: where it lies, its flags, its reworks (in the period and
    up to the period's end)."""

    id: int
    grid_code: str | None
    department: str | None
    flags: tuple[str, ...]
    reworks_in: int
    reworks_total: int


def case_marks(session: Session, city: str, period: Period) -> list[CaseMark]:
    """The cases with a rework event in ``period`` (through the index on ``case_events.at``),
    with their flags (``fields.flags``, a list of strings) and rework counts."""
    sql = text(
        """
SELECT c.id, c.grid_code, c.department,
  CASE WHEN jsonb_typeof(c.fields -> 'flags') = 'array' THEN
    ARRAY(SELECT jsonb_array_elements_text(c.fields -> 'flags')) ELSE '{}'::text[] END AS flags,
  count(*) FILTER (WHERE e.at >= :s) AS reworks_in, count(*) AS reworks_total
FROM case_events e JOIN cases c ON c.city = e.city AND c.id = e.case_id
WHERE c.city = :city AND e.action = 'rework' AND e.at < :e
  AND e.case_id IN (
    SELECT case_id FROM case_events
    WHERE city = :city AND action = 'rework' AND at >= :s AND at < :e)
GROUP BY c.city, c.id ORDER BY c.id"""
    )
    rows = session.execute(sql, {"city": city, "s": period.start, "e": period.end})
    return [
        CaseMark(
            r.id, r.grid_code, r.department, tuple(r.flags or ()), r.reworks_in, r.reworks_total
        )
        for r in rows
    ]


@dataclass
class Score:
    """One subject's score, explained."""

    kind: str
    key: str
    name: str | None
    level: str | None
    active: bool
    total: float
    grade: str
    components: list[dict[str, Any]]
    deductions: list[dict[str, Any]]
    bonuses: list[dict[str, Any]]
    figures: dict[str, Any]
    group: str = "all"
    rank: int | None = None
    list: str | None = None  # "red", "yellow" or None
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The subject as a list shows it (no explanation)."""
        return {
            "kind": self.kind,
            "level": self.level,
            "key": self.key,
            "name": self.name,
            "group": self.group,
            "active": self.active,
            "total": self.total,
            "grade": self.grade,
            "rank": self.rank,
            "list": self.list,
            "figures": self.figures,
        }

    def explained(self) -> dict[str, Any]:
        """The row with every component, deduction (and its case ids) and bonus."""
        return {
            **self.row(),
            "components": self.components,
            "deductions": self.deductions,
            "bonuses": self.bonuses,
            "left_out": self.extra.get("left_out", []),
        }


def _deduction(d: Deduction, cases: Iterable[CaseMark]) -> dict[str, Any] | None:
    items: list[dict[str, Any]] = []
    for c in cases:
        if d.kind == "rework":
            n = c.reworks_in
        else:  # failed verification `times` times or more, one of them in the period
            n = 1 if c.reworks_total >= d.times and c.reworks_in > 0 else 0
        if n <= 0:
            continue
        flagged = sorted(set(c.flags) & set(d.flags))
        factor = d.flag_factor if flagged else 1.0
        items.append(
            {"case_id": c.id, "count": n, "flags": flagged, "points": r2(n * d.points * factor)}
        )
    if not items:
        return None
    raw = r2(sum(i["points"] for i in items))
    capped = min(raw, d.max_points) if d.max_points is not None else raw
    label = "返工扣分" if d.kind == "rework" else f"核查{d.times}次以上未通过扣分"
    return {
        "kind": d.kind,
        "name": label,
        "per_case": d.points,
        "flag_factor": d.flag_factor,
        "points": r2(capped),
        "uncapped": raw,
        "case_ids": [i["case_id"] for i in items],
        "cases": items,
    }


_FLOAT_COUNTS = frozenset({"handling_hours", "patrol_hours"})


def _getter(key: str) -> Callable[[Mapping[str, float]], float | int | None]:
    """A function of a subject's counts giving indicator ``key`` exactly as
    :meth:`Figures.values` shows it (a city's list needs a handful of the 33 values for each
    of 30,000 grids, so each is compiled once)."""
    d = BY_KEY[key]
    if d.kind == "count":
        if key in _FLOAT_COUNTS:
            return lambda counts: round(counts.get(key, 0), 2)
        return lambda counts: int(counts.get(key, 0))
    num, den = d.numerator, d.denominator
    assert num and den

    def quotient(counts: Mapping[str, float]) -> float | None:
        below = counts.get(den, 0)
        return round(counts.get(num, 0) / below, 4) if below else None

    return quotient


def _value(subject: Figures, key: str) -> float | int | None:
    """One indicator of ``subject`` as :meth:`Figures.values` shows it."""
    return _getter(key)(subject.counts)


class RulePlan:
    """What scoring every subject under one rule shares: each component's getter, rule as
    JSON and memo of points per value (rates repeat: 1.0 and null are most grids'), the
    figures a row keeps."""

    def __init__(self, rule: Rule, scheme: SchemeDocument) -> None:
        self.rule = rule
        self.scheme = scheme
        self.components: list[tuple[Any, str | None, Any, Any, dict[Any, float]]] = [
            (
                c,
                BY_KEY[c.indicator].name_zh if c.indicator in BY_KEY else c.external,
                c.points.model_dump(exclude_none=True) if c.points else None,
                _getter(c.indicator) if c.indicator else None,
                {},  # value → points
            )
            for c in rule.components
        ]
        self.externals = [c.external for c in rule.components if c.external is not None]
        self.figures: dict[str, dict[str, Any]] = {}
        self.bonus_getters = [_getter(b.indicator) for b in rule.bonuses]

    def _row_figures(self, kind: str) -> list[tuple[str, Any]]:
        got = self.figures.get(kind)
        if got is None:
            got = self.figures[kind] = {
                k: _getter(k) for k in ROW_FIGURES if kind in BY_KEY[k].subjects
            }
        return list(got.items())

    def score(
        self, subject: Figures, marks: Iterable[CaseMark] = (), external: Externals | None = None
    ) -> Score:
        """The score of one subject (see :func:`score_subject`)."""
        external = external or {}
        counts = subject.counts
        present: list[tuple[Any, str | None, Any, float | int | None, float]] = []
        for c, name, rule_json, getter, memo in self.components:
            if getter is None:
                got = external.get(c.external or "", {}).get(subject.key)
                if got is None:
                    continue  # left out: the other weights are scaled back up to 100
                present.append((c, name, None, float(got), r2(min(100.0, max(0.0, float(got))))))
                continue
            v = getter(counts)
            p = memo.get(v)
            if p is None:
                p = memo[v] = c.if_none if v is None or c.points is None else points(c.points, v)
            present.append((c, name, rule_json, v, p))
        weights = sum(x[0].weight for x in present)
        scale = 100.0 / weights if weights else 0.0
        components: list[dict[str, Any]] = []
        weighted_sum = 0.0
        for c, name, rule_json, v, p in present:
            w = c.weight * scale
            weighted = p * w / 100.0
            weighted_sum += weighted
            components.append(
                {
                    "indicator": c.indicator,
                    "external": c.external,
                    "name": name,
                    "value": v,
                    "rule": rule_json,
                    "points": p,
                    "weight": c.weight,
                    "effective_weight": round(w, 2),
                    "weighted_points": round(weighted, 2),
                }
            )
        bonuses: list[dict[str, Any]] = []
        for b, bonus_getter in zip(self.rule.bonuses, self.bonus_getters, strict=True):
            count = float(bonus_getter(counts) or 0)
            got = r2(min(b.max_points, (count // b.per) * b.points))
            if got > 0:
                bonuses.append(
                    {"name": b.name, "indicator": b.indicator, "value": count, "points": got}
                )
        marks = list(marks)
        deductions = (
            [x for d in self.rule.deductions if (x := _deduction(d, marks)) is not None]
            if marks
            else []
        )
        total = (
            weighted_sum + sum(b["points"] for b in bonuses) - sum(d["points"] for d in deductions)
        )
        total = r2(min(100.0, max(0.0, total)))
        active = any(subject.counts.values()) or any(c.external for c, *_ in present)
        figures = {k: get(counts) for k, get in self._row_figures(subject.kind)}
        out = Score(
            subject.kind,
            subject.key,
            subject.name,
            subject.level,
            bool(active),
            total,
            self.scheme.grade(total),
            components,
            deductions,
            bonuses,
            figures,
        )
        missing = [e for e in self.externals if e not in external or subject.key not in external[e]]
        if missing:
            out.extra["left_out"] = missing
        return out


def score_subject(
    subject: Figures,
    rule: Rule,
    scheme: SchemeDocument,
    marks: Iterable[CaseMark] = (),
    external: Externals | None = None,
) -> Score:
    """The score of one subject under ``rule``: weighted points of each component, bonuses,
    deductions for the subject's ``marks``, the total (0–100) and its grade. ``external``
    holds the named outside scores (component → subject key → 0–100). Scoring many subjects
    under one rule: build one :class:`RulePlan` and call its ``score``."""
    return RulePlan(rule, scheme).score(subject, marks, external)


def rank(scores: list[Score], rule: Rule) -> None:
    """Ranks and lists within each peer group (``Score.group`` set before): best first, equal
    totals share a rank; inactive subjects are neither ranked nor listed."""
    groups: dict[str, list[Score]] = defaultdict(list)
    for s in scores:
        if s.active:
            groups[s.group].append(s)
    red, yellow = rule.lists.red, rule.lists.yellow
    for members in groups.values():
        totals = sorted((s.total for s in members), reverse=True)
        for s in members:
            s.rank = 1 + sum(1 for t in totals if t > s.total)
            from_bottom = 1 + sum(1 for t in totals if t < s.total)
            is_red = (red.top is not None or red.min_score is not None) and (
                (red.top is None or s.rank <= red.top)
                and (red.min_score is None or s.total >= red.min_score)
            )
            is_yellow = (yellow.bottom is not None or yellow.below_score is not None) and (
                (yellow.bottom is None or from_bottom <= yellow.bottom)
                and (yellow.below_score is None or s.total < yellow.below_score)
            )
            s.list = "red" if is_red else ("yellow" if is_yellow else None)


def attribute(
    marks: list[CaseMark],
    key_of: Callable[[CaseMark], Iterable[str]],
) -> dict[str, list[CaseMark]]:
    """The marks per subject key (``key_of`` names the subjects a case counts for)."""
    out: dict[str, list[CaseMark]] = defaultdict(list)
    for m in marks:
        for key in key_of(m):
            out[key].append(m)
    return out

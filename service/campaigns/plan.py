"""The pure part of campaigns: the target kinds, the back-planned schedule (倒排进度) and
whether a target is on track. No session, no HTTP.

Target kinds (``kind``, with what ``goal`` means and how ``value`` is measured on a day):

* ``close_rate`` — close every registered case of the target's categories in scope: ``value`` =
  closed ÷ registered among the campaign's cases reported by the end of the day (registered:
  accepted as a case, i.e. not still a bare report, rejected or merged; closed: ``closed_at`` by
  the end of the day). ``goal`` is a share (0–1], usually 1. The plan expects ``goal`` × the
  milestones' share on each day; on track when ``value`` ≥ the expected value (no registered
  case yet: ``value`` is ``None`` and the target is on track).
* ``hotspot_coverage`` — patrol coverage of the target's hotspots ≥ ``goal`` (a share) each
  week: ``value`` = the mean covered share of their influence zones in the stored weekly
  coverage run (``service.patrol.coverage``) of the week holding the day. The plan expects
  ``goal`` every week; on track when ``value`` ≥ ``goal``.
* ``recurrence_max`` — recurrence below a ceiling: ``value`` = the campaign's cases reported by
  the end of the day that recur a closed case (``recurring_of``); ``goal`` is the most allowed
  (a count); on track when ``value`` ≤ ``goal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from service.errors import InvalidInput

KINDS: dict[str, tuple[str, str]] = {
    "close_rate": ("案件结案率", "closed ÷ registered cases of the categories in scope"),
    "hotspot_coverage": ("热点巡查覆盖率", "mean weekly patrol coverage of the hotspots"),
    "recurrence_max": ("反弹案件上限", "recurring cases in scope, at most the goal"),
}
SHARE_KINDS = ("close_rate", "hotspot_coverage")


@dataclass(frozen=True)
class Milestone:
    """By the end of ``day``, ``share`` of each target's goal is expected (倒排进度)."""

    day: date
    share: float


def check_milestones(milestones: list[Milestone], start: date, end: date) -> list[Milestone]:
    """The milestones if each lies in ``[start, end]`` and both days and shares increase,
    shares in (0, 1]; ``InvalidInput`` naming ``milestones[i].date`` / ``.share`` otherwise."""
    for i, m in enumerate(milestones):
        where = f"milestones[{i}]"
        if not start <= m.day <= end:
            raise InvalidInput(
                f"{where}: {m.day.isoformat()} lies outside the campaign's period "
                f"{start.isoformat()} – {end.isoformat()}",
                field=f"{where}.date",
            )
        if not 0 < m.share <= 1:  # also NaN
            raise InvalidInput(
                f"{where}: share {m.share} must be above 0 and at most 1 (1 = the whole goal)",
                field=f"{where}.share",
            )
        if i:
            before = milestones[i - 1]
            if m.day <= before.day:
                raise InvalidInput(
                    f"{where}: {m.day.isoformat()} must come after the milestone before it "
                    f"({before.day.isoformat()})",
                    field=f"{where}.date",
                )
            if m.share <= before.share:
                raise InvalidInput(
                    f"{where}: share {m.share} must be above the milestone before it "
                    f"({before.share})",
                    field=f"{where}.share",
                )
    return milestones


def planned_share(milestones: list[Milestone], start: date, end: date, day: date) -> float:
    """The share of the goal the plan expects by the end of ``day``: 0 before the period,
    rising linearly between milestones (from 0 the day before ``start``) and on to 1 at
    ``end`` when the last milestone comes earlier and short of 1, then held."""
    points = [(start - timedelta(days=1), 0.0)] + [(m.day, m.share) for m in milestones]
    if points[-1][1] < 1.0 and points[-1][0] < end:
        points.append((end, 1.0))
    if day <= points[0][0]:
        return 0.0
    for (d0, s0), (d1, s1) in zip(points, points[1:], strict=False):
        if day <= d1:
            return s0 + (s1 - s0) * (day - d0).days / (d1 - d0).days
    return points[-1][1]


def expected(kind: str, goal: float, share: float) -> float:
    """What the plan expects of a target of ``kind`` on a day the plan is at ``share``."""
    return goal * share if kind == "close_rate" else goal


def on_track(kind: str, value: float | None, expect: float) -> bool:
    """Whether ``value`` keeps to the plan's ``expect`` (see the module docstring)."""
    if kind == "recurrence_max":
        return (value or 0) <= expect
    if value is None:
        return kind == "close_rate"  # nothing registered: nothing is behind
    return value >= expect - 1e-9

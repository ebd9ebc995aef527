"""Deterministic workflow histories for the demo's cases: what happened to each case up to "now".

Offices in the seeds' cities report on-time closure of 95–99 %; the demo reproduces that and
lets a few subjects stand out so that the indicators, the red/yellow list and the map say
something:

* every case gets a timeline measured against its own deadline (from the catalogue, in working
  time): most are closed well within it, a small share late;
* one department (``late_department``) is late on about a third of its cases, so its 按期结案率
  is around 70 %, and its cases are rated less satisfying;
* in the ``rework_communities`` verification often sends a fix back (返工);
* a few cases are dispatched to the wrong department first (re-dispatched) or sent back by the
  department (退单) and dispatched elsewhere; a few get an extension (延期); a few stay stuck
  for weeks (超期未结 on the map);
* a share of closed cases is evaluated (综合评价): mostly satisfied.

Steps after ``now`` have not happened yet: a case reported an hour ago is still being
worked on, one reported last month is closed. The output is plain steps; the service checks
each path against the workflow's transition table and writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

HOUR = 3600.0
DAY = 24 * HOUR

REJECT_SHARE = 0.04  # not a case (不予立案)
UNTOUCHED_SHARE = 0.0  # intake registers or rejects every report (none left behind)
STUCK_SHARE = 0.002  # closed only weeks after the deadline: 超期未结 for a long time
LATE_SHARE = 0.012  # everywhere else: closed after the deadline
LATE_SHARE_BAD = 0.35  # the late department
REWORK_SHARE = 0.012
REWORK_SHARE_BAD = 0.30  # the rework communities
LATE_AFTER_REWORK = 0.10
REDISPATCH_SHARE = 0.03
RETURN_SHARE = 0.015
EXTEND_SHARE = 0.01
EVALUATED_SHARE = 0.6

SATISFACTION = ("满意", "基本满意", "不满意")
SATISFACTION_P = (0.82, 0.15, 0.03)
SATISFACTION_P_POOR = (0.45, 0.30, 0.25)  # late department, late closure or rework
QUALITY = (5, 4, 3, 2, 1)
QUALITY_P = (0.55, 0.33, 0.09, 0.02, 0.01)
QUALITY_P_POOR = (0.20, 0.35, 0.30, 0.10, 0.05)

INTAKE = "受理员(演示)"
DISPATCHERS = ("派遣员甲(演示)", "派遣员乙(演示)")
VERIFIER = "网格监督员(演示)"
CALLER = "回访员(演示)"


class Step(NamedTuple):
    """One workflow step of case ``row``: ``action`` at ``at`` (epoch seconds)."""

    row: int
    action: str
    at: float
    actor: str
    note: str | None = None
    data: dict[str, Any] = {}  # noqa: RUF012 - never mutated: each step that has data gets its own


def build_histories(
    reported: np.ndarray,
    deadline: np.ndarray,
    department: Sequence[str | None],
    community: Sequence[str | None],
    now: float,
    late_department: str,
    rework_communities: Sequence[str],
    departments: Sequence[str],
    seed: int = 7,
) -> list[Step]:
    """Every step up to ``now`` of each case, in time order per case.

    ``reported`` and ``deadline`` are epoch seconds (NaN: no deadline), ``department`` the
    routed department, ``community`` the community grid's code prefix of each case;
    ``departments`` are the ones a wrong dispatch or a 退单 may reach.
    """
    n = len(reported)
    rng = np.random.default_rng([seed, 12])
    rework_set = set(rework_communities)
    others = sorted(set(departments))
    u = rng.random((n, 12))  # every draw of a case comes from its own row: stable per case
    # drawn for every case at once (a draw per case in the loop costs seconds)
    on_time = rng.beta(4, 2, n)
    lateness = rng.exponential(1.0, n)
    satisfaction = (
        rng.choice(3, size=n, p=SATISFACTION_P),
        rng.choice(3, size=n, p=SATISFACTION_P_POOR),
    )
    quality = (rng.choice(5, size=n, p=QUALITY_P), rng.choice(5, size=n, p=QUALITY_P_POOR))
    steps: list[Step] = []
    for i in range(n):
        r = float(reported[i])
        d = float(deadline[i]) if np.isfinite(deadline[i]) else r + 3 * DAY
        dept = department[i]
        bad = dept == late_department
        in_rework = community[i] in rework_set
        draw = u[i]
        out: list[Step] = []
        if draw[0] < REJECT_SHARE:
            out.append(Step(i, "reject", r + HOUR * (0.2 + 2 * draw[1]), INTAKE, "非城管职责"))
            steps.extend(s for s in out if s.at <= now)
            continue
        if draw[0] > 1 - UNTOUCHED_SHARE:
            continue
        span = max(d - r, HOUR)
        rework = draw[2] < (REWORK_SHARE_BAD if in_rework else REWORK_SHARE)
        late_p = LATE_SHARE_BAD if bad else LATE_SHARE
        if rework:
            late_p = max(late_p, LATE_AFTER_REWORK)
        extend = draw[9] < EXTEND_SHARE
        if draw[3] > 1 - STUCK_SHARE:
            close = d + DAY * (20 + 40 * draw[4])
        elif extend:
            close = d + DAY * (0.2 + 1.6 * draw[4])  # after the old deadline, before the new
        elif draw[3] < late_p:
            close = d + max(0.4 * span, 4 * HOUR) * lateness[i] + HOUR
        else:
            close = r + span * (0.15 + 0.8 * on_time[i])
        total = close - r

        def at(frac: float, r: float = r, total: float = total) -> float:
            return r + total * frac

        dispatcher = DISPATCHERS[int(draw[5] * len(DISPATCHERS))]
        out.append(Step(i, "register", at(0.04), INTAKE))
        now_dept = dept
        if draw[6] < REDISPATCH_SHARE and others:
            wrong = _other(others, dept, draw[7])
            out.append(
                Step(
                    i,
                    "dispatch",
                    at(0.08),
                    dispatcher,
                    None,
                    {"department": wrong, "previous": dept},
                )
            )
            out.append(
                Step(
                    i,
                    "dispatch",
                    at(0.14),
                    dispatcher,
                    None,
                    {"department": dept, "previous": wrong},
                )
            )
        elif draw[6] > 1 - RETURN_SHARE and others:
            out.append(Step(i, "dispatch", at(0.08), dispatcher))
            out.append(
                Step(
                    i, "return", at(0.12), dept or "", "非本部门职责，请改派", {"department": dept}
                )
            )
            now_dept = _other(others, dept, draw[7])
            out.append(
                Step(
                    i,
                    "dispatch",
                    at(0.16),
                    dispatcher,
                    None,
                    {"department": now_dept, "previous": None},
                )
            )
        else:
            out.append(Step(i, "dispatch", at(0.10), dispatcher))
        if extend:
            new = d + 2 * DAY
            out.append(
                Step(
                    i,
                    "extend",
                    at(0.2),
                    dispatcher,
                    "需协调多部门，申请延期",
                    {"old_deadline": d, "new_deadline": new},
                )
            )
        handler = now_dept or ""
        out.append(Step(i, "handle", at(0.25), handler))
        if rework:
            out.append(Step(i, "feedback", at(0.55), handler, None, {"department": now_dept}))
            out.append(Step(i, "rework", at(0.62), VERIFIER, "现场核查未整改到位"))
        out.append(Step(i, "feedback", at(0.88), handler, None, {"department": now_dept}))
        out.append(Step(i, "verify", close, VERIFIER))
        if draw[8] < EVALUATED_SHARE:
            poor = bad or rework or close > d
            sat = satisfaction[int(poor)][i]
            points = QUALITY[quality[int(poor)][i]]
            out.append(
                Step(
                    i,
                    "evaluate",
                    close + HOUR * (2 + 70 * draw[10]),
                    CALLER,
                    None,
                    {"satisfaction": SATISFACTION[sat], "quality": points},
                )
            )
        steps.extend(s for s in out if s.at <= now)
    return steps


def _other(departments: Sequence[str], dept: str | None, draw: float) -> str:
    """A department other than ``dept`` (the draw picks which)."""
    choices = [d for d in departments if d != dept] or list(departments)
    return choices[min(int(draw * len(choices)), len(choices) - 1)]

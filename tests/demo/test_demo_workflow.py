"""Demo workflow histories (pure): deterministic, cut at now, legal order, one late department."""

from __future__ import annotations

import numpy as np

from demo.workflow import DAY, HOUR, build_histories


def _histories(seed: int = 7):
    n = 4000
    rng = np.random.default_rng(1)
    reported = 1.75e9 + np.sort(rng.random(n)) * 60 * DAY
    deadline = reported + rng.choice([2 * HOUR, DAY, 3 * DAY], size=n)
    departments = ["环卫所", "城管执法中队", "市政工程管理处"]
    dept = [departments[i % 3] for i in range(n)]
    community = ["C1" if i % 10 == 0 else "C2" for i in range(n)]
    now = reported[-1] - 2 * DAY
    steps = build_histories(
        reported, deadline, dept, community, now, "市政工程管理处", ["C1"], departments, seed
    )
    return n, reported, deadline, dept, community, now, steps


def test_histories_are_deterministic_and_never_after_now() -> None:
    *_, now, steps = _histories()
    assert steps == _histories()[-1]
    assert max(s.at for s in steps) <= now


def test_each_history_runs_forward_in_time_from_its_report() -> None:
    n, reported, *_, steps = _histories()
    last: dict[int, float] = {}
    for s in steps:
        assert s.at >= reported[s.row]
        assert s.at >= last.get(s.row, -np.inf)
        last[s.row] = s.at


def test_the_late_department_and_the_rework_community_stand_out() -> None:
    n, reported, deadline, dept, community, now, steps = _histories()
    closed = {s.row: s.at for s in steps if s.action == "verify"}
    reworked = {s.row for s in steps if s.action == "rework"}

    def late_share(rows):
        rows = [r for r in rows if r in closed]
        return sum(closed[r] > deadline[r] for r in rows) / len(rows)

    bad = [i for i in range(n) if dept[i] == "市政工程管理处"]
    good = [i for i in range(n) if dept[i] == "环卫所" and community[i] == "C2"]
    assert late_share(bad) > 0.2
    assert late_share(good) < 0.05
    c1 = [i for i in range(n) if community[i] == "C1" and i in closed]
    c2 = [i for i in range(n) if community[i] == "C2" and i in closed]
    assert sum(i in reworked for i in c1) / len(c1) > 0.2
    assert sum(i in reworked for i in c2) / len(c2) < 0.05
    rated = [s.data for s in steps if s.action == "evaluate"]
    assert rated and all(d["satisfaction"] in ("满意", "基本满意", "不满意") for d in rated)
    assert all(1 <= d["quality"] <= 5 for d in rated)

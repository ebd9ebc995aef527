"""Duplicate and recurrence links against a brute-force reading of the rules."""

from __future__ import annotations

import numpy as np
import pytest

from gis.proximity import DuplicateFinder, RecurrenceFinder, duplicate_links, recurrence_links

R, W = 30.0, 24 * 3600.0


def brute_duplicates(x, y, t, cat, new):
    n = len(x)
    order = sorted(range(n), key=lambda k: (t[k], k))
    rank = {k: r for r, k in enumerate(order)}
    best = [-1] * n
    for i in range(n):
        if not new[i]:
            continue
        cands = [
            j
            for j in range(n)
            if j != i
            and cat[j] == cat[i]
            and np.hypot(x[i] - x[j], y[i] - y[j]) <= R
            and abs(t[i] - t[j]) <= W
            and (not new[j] or rank[j] < rank[i])
        ]
        if cands:
            best[i] = min(cands, key=lambda j: (np.hypot(x[i] - x[j], y[i] - y[j]), rank[j]))
    root = list(best)
    for i in range(n):
        while root[i] >= 0 and best[root[i]] >= 0:
            root[i] = best[root[i]]
    return root


def test_duplicates_match_brute_force_on_clustered_reports() -> None:
    rng = np.random.default_rng(4)
    n = 400
    centres = rng.uniform(0, 300, (8, 2))
    pick = rng.integers(0, 8, n)
    x = centres[pick, 0] + rng.normal(0, 15, n)
    y = centres[pick, 1] + rng.normal(0, 15, n)
    t = rng.uniform(0, 5 * 86400, n).round()
    cat = rng.choice(np.array(["0102", "0501"]), n)
    new = rng.random(n) < 0.8
    got = duplicate_links(x, y, t, cat, new, R, W)
    assert got.tolist() == brute_duplicates(x, y, t, cat, new)
    assert (got >= 0).sum() > 50  # the case exercises real duplicates
    assert all(got[k] == -1 or got[got[k]] == -1 for k in range(n))  # links point at roots


def test_edges_of_the_rule_are_inclusive() -> None:
    x = np.array([0.0, 30.0, 0.0, 60.0])
    y = np.zeros(4)
    t = np.array([0.0, W, 10.0, 20.0])
    cat = np.array(["a", "a", "b", "a"])
    new = np.array([False, True, True, True])
    got = duplicate_links(x, y, t, cat, new, R, W)
    # row 1 is exactly 30 m and 24 h from row 0: a duplicate (ties in distance with row 3 go to
    # the earliest report). Row 2 is another category; row 3 is 60 m from row 0 and reported
    # before row 1, so it duplicates nothing.
    assert got.tolist() == [-1, 0, -1, -1]


def test_recurrence_finds_recently_closed_nearby_reports_only() -> None:
    x, y = np.array([0.0, 100.0, 0.0]), np.array([0.0, 0.0, 0.0])
    t = np.array([40 * 86400.0, 40 * 86400.0, 40 * 86400.0])
    cat = np.array(["a", "a", "b"])
    cx, cy = np.array([10.0, 20.0, 100.0, 0.0]), np.array([0.0, 0.0, 25.0, 0.0])
    ct = np.array([35 * 86400.0, 39 * 86400.0, 5 * 86400.0, 38 * 86400.0])
    ccat = np.array(["a", "a", "a", "a"])
    got = recurrence_links(x, y, t, cat, cx, cy, ct, ccat, R, 30 * 86400.0)
    # row 0: closed 3 (0 m) wins over 0 (10 m) and 1 (20 m); row 1: closed 2 is 25 m away but
    # 35 days old; row 2: another category
    assert got.tolist() == [3, -1, -1]


def brute_recurrences(x, y, t, cat, cx, cy, ct, ccat, lookback):
    out = []
    for i in range(len(x)):
        cands = [
            j
            for j in range(len(cx))
            if ccat[j] == cat[i]
            and np.hypot(x[i] - cx[j], y[i] - cy[j]) <= R
            and 0 <= t[i] - ct[j] <= lookback
        ]
        out.append(min(cands, key=lambda j: (np.hypot(x[i] - cx[j], y[i] - cy[j]), j), default=-1))
    return out


def _clustered(n: int, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 300, (8, 2))
    pick = rng.integers(0, 8, n)
    x = centres[pick, 0] + rng.normal(0, 15, n)
    y = centres[pick, 1] + rng.normal(0, 15, n)
    t = 1.78e9 + rng.uniform(0, 5 * 86400, n).round()
    cat = rng.choice(np.array(["0102", "0501", "0104"]), n)
    return rng, x, y, t, cat


@pytest.mark.parametrize("slice_size", [1, 7, 64, 10_000])
def test_answering_in_slices_of_time_order_gives_the_same_links(slice_size: int) -> None:
    rng, x, y, t, cat = _clustered(500, 11)
    new = rng.random(500) < 0.85
    finder = DuplicateFinder(x, y, t, cat, new, R, W)
    # the order: every new report once, by time then position
    assert sorted(finder.order.tolist()) == np.flatnonzero(new).tolist()
    assert (np.diff(t[finder.order]) >= 0).all()
    got = np.full(500, -1)
    while True:
        rows, links = finder.next(slice_size)
        if not len(rows):
            break
        got[rows] = links
    assert got.tolist() == brute_duplicates(x, y, t, cat, new)
    assert (got >= 0).sum() > 50


def test_duplicates_do_not_depend_on_the_input_order() -> None:
    rng, x, y, t, cat = _clustered(400, 12)
    t = np.round(t / 3600) * 3600  # many equal times: ties go to the earlier position
    new = rng.random(400) < 0.8
    got = duplicate_links(x, y, t, cat, new, R, W)
    assert got.tolist() == brute_duplicates(x, y, t, cat, new)
    perm = rng.permutation(400)
    shuffled = duplicate_links(x[perm], y[perm], t[perm], cat[perm], new[perm], R, W)
    assert shuffled.tolist() == brute_duplicates(x[perm], y[perm], t[perm], cat[perm], new[perm])


def test_rule_edges_hold_at_real_clock_times() -> None:
    # epoch seconds: with this rule, time scaled onto the distance axis puts the pair exactly
    # one window apart a rounding error beyond the radius; the pair still counts
    radius, window, t0 = 33.3, 10_000.0, 1_738_652_008.0
    assert (t0 + window) * (radius / window) - t0 * (radius / window) > radius
    x = np.array([0.0, 0.0, 33.3])
    y = np.zeros(3)
    t = np.array([t0, t0 + window, t0])
    cat = np.array(["a", "a", "a"])
    new = np.array([False, True, True])
    assert duplicate_links(x, y, t, cat, new, radius, window).tolist() == [-1, 0, 0]


def test_recurrence_matches_brute_force_on_clustered_reports() -> None:
    rng, x, y, t, cat = _clustered(300, 13)
    _, cx, cy, ct, ccat = _clustered(200, 14)
    ct = ct - rng.uniform(0, 40 * 86400, 200)
    lookback = 30 * 86400.0
    got = recurrence_links(x, y, t, cat, cx, cy, ct, ccat, R, lookback)
    assert got.tolist() == brute_recurrences(x, y, t, cat, cx, cy, ct, ccat, lookback)
    assert (got >= 0).sum() > 20
    finder = RecurrenceFinder(cx, cy, ct, ccat, R, lookback)
    halves = [finder.links(x[s], y[s], t[s], cat[s]) for s in (slice(0, 150), slice(150, 300))]
    assert np.concatenate(halves).tolist() == got.tolist()
    # a category nobody closed never recurs
    assert (finder.links(x, y, t, np.full(300, "9999")) == -1).all()

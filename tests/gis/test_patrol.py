"""Cleaning GPS fixes and splitting them into tracks."""

from __future__ import annotations

import numpy as np
import pytest

from gis.patrol import REASONS, CleaningRules, clean_fixes


def _walk(n: int, dt: float = 10.0, speed: float = 1.2, t0: float = 0.0):
    t = t0 + np.arange(n) * dt
    return t, t * speed, np.zeros(n)


def _reason(result, i: int) -> str:
    return REASONS[result.reason[i]]


def test_steady_walk_is_one_track_with_every_fix_kept():
    t, x, y = _walk(50)
    out = clean_fixes(np.zeros(50, int), t, x, y)
    assert out.kept.all()
    assert out.n_tracks == 1
    assert (out.track == 0).all()


def test_repeated_timestamp_keeps_the_first_copy():
    t, x, y = _walk(10)
    t = np.r_[t, t[4]]
    x, y = np.r_[x, x[4] + 3], np.r_[y, 0.0]
    out = clean_fixes(np.zeros(11, int), t, x, y)
    assert _reason(out, 4) == "kept"
    assert _reason(out, 10) == "duplicate"
    assert out.counts()["duplicate"] == 1


def test_poor_accuracy_is_dropped_and_unknown_accuracy_trusted():
    t, x, y = _walk(10)
    acc = np.full(10, 8.0)
    acc[3], acc[6] = 120.0, np.nan
    out = clean_fixes(np.zeros(10, int), t, x, y, accuracy_m=acc)
    assert _reason(out, 3) == "poor_accuracy"
    assert _reason(out, 6) == "kept"


def test_a_spike_is_dropped_but_a_relocation_splits_the_track():
    t, x, y = _walk(30)
    y = y.copy()
    y[10] = 900.0  # one fix 900 m off the path, 10 s after and before normal fixes
    x[20:] += 5_000.0  # the phone reappears 5 km away and carries on from there
    out = clean_fixes(np.zeros(30, int), t, x, y, rules=CleaningRules(max_speed_mps=30))
    assert _reason(out, 10) == "jump"
    assert out.kept[np.r_[0:10, 11:30]].all()
    assert out.n_tracks == 2
    assert out.track[19] != out.track[20]


def test_a_two_fix_spike_is_dropped_too():
    t, x, y = _walk(30)
    y = y.copy()
    y[10:12] = [800.0, 820.0]
    out = clean_fixes(np.zeros(30, int), t, x, y)
    assert [_reason(out, i) for i in (10, 11)] == ["jump", "jump"]
    assert out.n_tracks == 1


def test_long_stationary_jitter_keeps_only_the_ends_of_the_stop():
    rng = np.random.default_rng(3)
    walk_t, walk_x, _ = _walk(30)
    stop_t = walk_t[-1] + 10 + np.arange(90) * 10.0  # 15 minutes standing
    stop_x = walk_x[-1] + rng.normal(0, 3, 90)
    stop_y = rng.normal(0, 3, 90)
    after_t, after_x, _ = _walk(30, t0=stop_t[-1] + 10)
    t = np.r_[walk_t, stop_t, after_t]
    x = np.r_[walk_x, stop_x, walk_x[-1] + after_x - after_x[0] + 12]
    y = np.r_[np.zeros(30), stop_y, np.zeros(30)]
    out = clean_fixes(np.zeros(t.size, int), t, x, y)
    stationary = out.reason == REASONS.index("stationary")
    assert stationary.sum() > 60  # most of the stop's zig-zag is gone
    assert not stationary[:25].any() and not stationary[-25:].any()  # walking is untouched
    kept_t = t[out.kept]
    # time stays accounted for: no gap in kept fixes exceeds the stop itself
    assert kept_t.max() - kept_t.min() == t.max() - t.min()
    assert out.n_tracks == 1


def test_a_stop_ends_at_a_silence_longer_than_the_gap():
    """Standing still before and after a night's silence: two stops, each keeping its ends
    (one stop across the night would drop the evening's last and the morning's first fix)."""
    rng = np.random.default_rng(5)
    t = np.r_[np.arange(40) * 10.0, 40_000 + np.arange(40) * 10.0]
    x, y = rng.normal(0, 2, 80), rng.normal(0, 2, 80)
    out = clean_fixes(np.zeros(80, int), t, x, y)
    assert out.kept[[0, 39, 40, 79]].all()
    assert out.n_tracks == 2 and out.kept.sum() == 4


def test_a_spike_does_not_span_a_silence():
    """A wild fix, a silence, another wild fix: not one spike of two across the silence."""
    t = np.r_[np.arange(10) * 10.0, 1_000 + np.arange(10) * 10.0]
    x, y = t * 1.2, np.zeros(20)
    y[9], y[10] = 5_000, 5_000
    out = clean_fixes(np.zeros(20, int), t, x, y)
    assert _reason(out, 9) != "jump" and _reason(out, 10) != "jump"


def test_a_fix_is_cleaned_alike_whatever_is_cleaned_with_it():
    """Verdicts depend on a fix's own device's neighbours only: not on other devices cleaned in
    the same call, nor on where the call's fixes begin (a rebuild window)."""
    rng = np.random.default_rng(11)
    n = 600
    t = 1.79e9 + np.cumsum(rng.choice([10.0] * 30 + [1.0, 400.0], n)) + 0.775373
    walking = np.repeat(rng.random(n // 30) < 0.5, 30)  # stretches of 30 fixes walked or stood
    x = np.cumsum(walking * 12.0) + rng.normal(0, 3, n) + 500_000
    y = rng.normal(0, 3, n) + 3_800_000
    x[rng.choice(n, 20)] += 900.0  # spikes
    alone = clean_fixes(np.zeros(n, int), t, x, y)
    others = np.r_[np.zeros(n, int), np.ones(n, int)]
    together = clean_fixes(others, np.r_[t, t + 3.3], np.r_[x, x + 7_000], np.r_[y, y])
    assert np.array_equal(alone.reason, together.reason[:n])
    assert alone.counts()["stationary"] > 0 and alone.counts()["jump"] > 0
    for start in (37, 200):  # later windows agree once past the cleaning's reach
        part = clean_fixes(np.zeros(n - start, int), t[start:], x[start:], y[start:])
        settled = t[start:] > t[start] + 700
        assert np.array_equal(part.reason[settled], alone.reason[start:][settled])


def test_walking_slowly_is_not_stationary():
    t, x, y = _walk(100, speed=0.6)
    out = clean_fixes(np.zeros(100, int), t, x, y)
    assert out.kept.all()


def test_gaps_and_sessions_split_tracks_and_lone_fixes_are_isolated():
    t, x, y = _walk(20)
    t = t.copy()
    t[10:] += 3_600  # an hour without signal
    t = np.r_[t, t[-1] + 7_200]  # one lone fix two hours later
    x, y = np.r_[x, x[-1]], np.r_[y, 0.0]
    out = clean_fixes(np.zeros(21, int), t, x, y)
    assert out.n_tracks == 2
    assert _reason(out, 20) == "isolated"
    session = np.r_[np.zeros(5, int), np.ones(16, int)]
    assert clean_fixes(np.zeros(21, int), t, x, y, session=session).n_tracks == 3


def test_devices_are_independent_and_input_order_does_not_matter():
    t, x, y = _walk(40)
    device = np.r_[np.zeros(40, int), np.ones(40, int)]
    t2, x2, y2 = np.r_[t, t], np.r_[x, x + 10_000], np.r_[y, y]
    y2[45] = 1_000  # a spike on device 1 only
    out = clean_fixes(device, t2, x2, y2)
    assert _reason(out, 45) == "jump"
    assert out.n_tracks == 2
    shuffle = np.random.default_rng(1).permutation(80)
    again = clean_fixes(device[shuffle], t2[shuffle], x2[shuffle], y2[shuffle])
    assert (again.reason == out.reason[shuffle]).all()
    assert (again.track == out.track[shuffle]).all()


def test_bad_input_is_refused_with_the_column_named():
    with pytest.raises(ValueError, match="t has 1 non-finite"):
        clean_fixes(np.zeros(2, int), [0.0, np.nan], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="one length"):
        clean_fixes(np.zeros(2, int), [0.0], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="max_speed_mps"):
        CleaningRules(max_speed_mps=0)


def test_no_fixes_gives_no_tracks():
    out = clean_fixes(np.zeros(0, int), [], [], [])
    assert out.n_tracks == 0 and out.reason.size == 0

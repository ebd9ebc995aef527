"""GPS fixes of patrolling workers → cleaned fixes split into tracks.

Everything is vectorised over whole columns (millions of fixes from thousands of devices at
once); positions are in metres of a local projected CRS (see :mod:`gis.metric`), times in
seconds.

Cleaning rules (:class:`CleaningRules`), applied in this order, each fix getting one reason:

1. **duplicate** — the same device reported the same timestamp again: the first copy is kept.
2. **poor accuracy** — the phone's own accuracy estimate is worse than ``max_accuracy_m``
   (a missing estimate is trusted).
3. **jump** — a spike: the speed needed to reach the fix from the previous kept fix *and* to
   leave it for the next one both exceed ``max_speed_mps``. Repeated a few times so that a spike
   of two or three fixes goes too. A single impossible segment that is not a spike (the phone
   reappears somewhere else and stays there) is not dropped but splits the track: no line is
   drawn across a place nobody walked. A spike never spans a silence longer than ``gap_s``.
4. **stationary** — long stationary jitter: while a worker stands still the fixes wander within a
   few metres and a naive track zig-zags. A fix is stationary when the fixes within
   ``stationary_window_s / 2`` of it (same device) have a radius of gyration below
   ``stationary_radius_m``; in each run of stationary fixes lasting at least
   ``stationary_window_s`` only the first and last fixes are kept, so the time spent there still
   counts while the zig-zag is gone. A silence longer than ``gap_s`` ends a run.
5. **isolated** — a kept fix that ends up alone in its track (one fix is no line).

Tracks split where the device changes, where two kept fixes are more than ``gap_s`` apart, at an
impossible segment (rule 3) and where the caller's session number changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["REASONS", "CleaningRules", "CleanedFixes", "clean_fixes"]

# Reason codes stored per fix; 0 means kept.
KEPT, DUPLICATE, POOR_ACCURACY, JUMP, STATIONARY, ISOLATED = range(6)
REASONS = ("kept", "duplicate", "poor_accuracy", "jump", "stationary", "isolated")
_MAX_SPIKE = 3  # longest run of wild fixes dropped as a spike


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds of :func:`clean_fixes`; the defaults suit walking and e-bike patrols."""

    max_accuracy_m: float = 50.0
    max_speed_mps: float = 30.0
    gap_s: float = 300.0
    stationary_radius_m: float = 10.0
    stationary_window_s: float = 180.0

    def __post_init__(self) -> None:
        for name in ("max_accuracy_m", "max_speed_mps", "gap_s", "stationary_radius_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.stationary_window_s >= 0:
            raise ValueError("stationary_window_s must be >= 0 (0 switches the rule off)")


@dataclass(frozen=True)
class CleanedFixes:
    """Result of :func:`clean_fixes`, aligned with the input arrays.

    Attributes
    ----------
    reason : np.ndarray of uint8
        0 for a kept fix, else the index of its reason in :data:`REASONS`.
    track : np.ndarray of int64
        Track number (0, 1, … in device then time order) of each kept fix, -1 for dropped ones.
    """

    reason: np.ndarray
    track: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask of the kept fixes."""
        return self.reason == KEPT

    def counts(self) -> dict[str, int]:
        """How many fixes each reason took (including ``kept``)."""
        found = np.bincount(self.reason, minlength=len(REASONS))
        return {name: int(n) for name, n in zip(REASONS, found, strict=True)}

    @property
    def n_tracks(self) -> int:
        """Number of tracks."""
        return int(self.track.max()) + 1 if self.track.size and self.track.max() >= 0 else 0


def clean_fixes(
    device: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    accuracy_m: np.ndarray | None = None,
    session: np.ndarray | None = None,
    rules: CleaningRules | None = None,
) -> CleanedFixes:
    """Clean GPS fixes and split them into tracks (see the module docstring for the rules).

    Parameters
    ----------
    device : array of int
        Device number of each fix.
    t : array of float
        Time in seconds (any epoch).
    x, y : array of float
        Position in metres of a projected CRS.
    accuracy_m : array of float, optional
        The phone's accuracy estimate (NaN = unknown, trusted).
    session : array of int, optional
        Patrol session number; a change splits the track.
    rules : CleaningRules, optional
        Thresholds; defaults to ``CleaningRules()``.

    Returns
    -------
    CleanedFixes
        Reasons and track numbers aligned with the input.
    """
    rules = rules or CleaningRules()
    device, t, x, y = _checked(device, t, x, y)
    n = len(t)
    order = np.lexsort((t, device)).astype(np.int64)
    dev, ts, xs, ys = device[order], t[order], x[order], y[order]
    reason = np.zeros(n, dtype=np.uint8)
    if n == 0:
        return CleanedFixes(reason, np.full(0, -1, np.int64))

    same_device = np.r_[False, dev[1:] == dev[:-1]]
    reason[same_device & np.r_[False, ts[1:] == ts[:-1]]] = DUPLICATE
    if accuracy_m is not None:
        acc = np.asarray(accuracy_m, dtype=np.float64)[order]
        reason[(reason == KEPT) & (acc > rules.max_accuracy_m)] = POOR_ACCURACY
    _drop_spikes(reason, dev, ts, xs, ys, rules)
    if rules.stationary_window_s > 0:
        _drop_stationary(reason, dev, ts, xs, ys, rules)
    sess = None if session is None else np.asarray(session)[order]
    track_sorted = _split_tracks(reason, dev, ts, xs, ys, sess, rules)

    out_reason = np.empty(n, dtype=np.uint8)
    out_reason[order] = reason
    out_track = np.empty(n, dtype=np.int64)
    out_track[order] = track_sorted
    return CleanedFixes(out_reason, out_track)


def _checked(device, t, x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    arrays = (np.asarray(device), np.asarray(t, np.float64), np.asarray(x, np.float64))
    y = np.asarray(y, np.float64)
    shapes = {a.shape for a in (*arrays, y)}
    if len(shapes) != 1 or arrays[0].ndim != 1:
        raise ValueError(f"device, t, x and y must be 1-D arrays of one length, got {shapes}")
    for name, values in (("t", arrays[1]), ("x", arrays[2]), ("y", y)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} has {int((~np.isfinite(values)).sum())} non-finite values")
    return arrays[0], arrays[1], arrays[2], y


def _segment_speed(
    idx: np.ndarray, dev: np.ndarray, ts: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    """Speed (m/s) from each fix in ``idx`` to the next one; inf across devices or dt == 0."""
    a, b = idx[:-1], idx[1:]
    dist = np.hypot(xs[b] - xs[a], ys[b] - ys[a])
    dt = ts[b] - ts[a]
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(dt > 0, dist / dt, np.inf)
    speed[dev[a] != dev[b]] = np.nan  # no segment between two devices
    return speed


def _drop_spikes(reason, dev, ts, xs, ys, rules: CleaningRules) -> None:
    """Drop runs of up to ``_MAX_SPIKE`` fixes that are entered and left at impossible speed
    while the fixes around them are reachable from each other."""
    idx = np.flatnonzero(reason == KEPT)
    if idx.size < 3:
        return
    speed = _segment_speed(idx, dev, ts, xs, ys)
    # a segment to a fix more than gap_s away does not test the fix: it starts a new track
    fast = (speed > rules.max_speed_mps) & (ts[idx[1:]] - ts[idx[:-1]] <= rules.gap_s)
    # nor does a spike span a silence longer than gap_s: what comes after it is a new track
    silent = np.r_[0, np.cumsum(ts[idx[1:]] - ts[idx[:-1]] > rules.gap_s)]
    spike = np.zeros(idx.size, dtype=bool)
    for width in range(1, _MAX_SPIKE + 1):
        p = np.flatnonzero(fast[: fast.size - width] & fast[width:])
        p = p[silent[p + width + 1] == silent[p]]
        p = p[~spike[p]]  # p itself must not be part of an earlier spike
        a, b = idx[p], idx[p + width + 1]
        dt = ts[b] - ts[a]
        dist = np.hypot(xs[b] - xs[a], ys[b] - ys[a])
        ok = (dev[a] == dev[b]) & (dt > 0) & (dist <= rules.max_speed_mps * np.maximum(dt, 1e-9))
        for k in range(1, width + 1):
            spike[p[ok] + k] = True
    reason[idx[spike]] = JUMP


def _drop_stationary(reason, dev, ts, xs, ys, rules: CleaningRules) -> None:
    idx = np.flatnonzero(reason == KEPT)
    if idx.size < 3:
        return
    d, t = dev[idx], ts[idx]
    # windows of +-half the stationary time around every fix, found on a (device, time) key;
    # a complex number orders by its real part, then its imaginary part: device, then time,
    # compared exactly (a sum of the two would round differently with other devices around)
    _, dense = np.unique(d, return_inverse=True)
    half = rules.stationary_window_s / 2.0
    key = _pair(dense, t)
    lo = np.searchsorted(key, _pair(dense, t - half), side="left")
    hi = np.searchsorted(key, _pair(dense, t + half), side="right")
    count = hi - lo
    # radius of gyration of each window, from prefix sums of positions in whole centimetres:
    # integer sums are exact (wrapping int64 arithmetic stays exact for the small result), so
    # a fix's verdict depends on its window alone, not on which other fixes were cleaned with
    # it: tracks built upload by upload equal those of one rebuild
    n2 = count.astype(np.int64) ** 2
    spread = np.zeros(idx.size, dtype=np.int64)
    approx = np.zeros(idx.size)
    with np.errstate(over="ignore"):
        for v in (xs[idx], ys[idx]):
            cm = np.round(v * 100.0).astype(np.int64)
            cm -= cm.min() if cm.size else 0
            s1 = np.r_[0, np.cumsum(cm)]
            s2 = np.r_[0, np.cumsum(cm * cm)]
            w1, w2 = s1[hi] - s1[lo], s2[hi] - s2[lo]
            spread += count * w2 - w1 * w1
            f1 = w1.astype(np.float64)
            approx += (count * w2.astype(np.float64) - f1 * f1) / np.maximum(n2, 1)
    radius_cm2 = (rules.stationary_radius_m * 100.0) ** 2
    # the float figure only guards the exact one against a window too wide for int64
    still = (approx < 4 * radius_cm2) & (spread < radius_cm2 * n2) & (count >= 3)
    if not still.any():
        return
    # runs of consecutive still fixes on one device lasting long enough: keep their two ends;
    # a silence longer than gap_s ends a run (as it ends the track), so a stop never bridges
    # time nobody saw, and a fix's fate depends only on the fixes around it
    joined = (d[1:] == d[:-1]) & (t[1:] - t[:-1] <= rules.gap_s)
    run_start = still & ~np.r_[False, still[:-1] & joined]
    run_id = np.cumsum(run_start) - 1
    runs = run_id[still]
    first = np.full(run_id.max() + 1, np.inf)
    last = np.full_like(first, -np.inf)
    np.minimum.at(first, runs, t[still])
    np.maximum.at(last, runs, t[still])
    long_run = (last - first) >= rules.stationary_window_s
    member = np.zeros(idx.size, dtype=bool)
    member[still] = long_run[runs]
    run = np.maximum(run_id, 0)  # fixes before the first run are not members anyway
    interior = member & (t > first[run]) & (t < last[run])
    reason[idx[interior]] = STATIONARY


def _pair(real: np.ndarray, imag: np.ndarray) -> np.ndarray:
    out = np.empty(real.size, dtype=np.complex128)
    out.real = real
    out.imag = imag
    return out


def _split_tracks(reason, dev, ts, xs, ys, sess, rules: CleaningRules) -> np.ndarray:
    idx = np.flatnonzero(reason == KEPT)
    track = np.full(len(reason), -1, dtype=np.int64)
    if idx.size == 0:
        return track
    speed = _segment_speed(idx, dev, ts, xs, ys) if idx.size > 1 else np.zeros(0)
    breaks = ~(speed <= rules.max_speed_mps) | (_signal_gap(reason, dev, ts, idx) > rules.gap_s)
    if sess is not None:
        breaks |= sess[idx[1:]] != sess[idx[:-1]]
    starts = np.r_[True, breaks]
    number = np.cumsum(starts) - 1
    sizes = np.bincount(number)
    alone = sizes[number] == 1
    reason[idx[alone]] = ISOLATED
    keep = ~alone
    # renumber the surviving tracks 0..k-1
    _, dense = np.unique(number[keep], return_inverse=True)
    track[idx[keep]] = dense
    return track


def _signal_gap(reason, dev, ts, idx) -> np.ndarray:
    """Longest silence between each pair of consecutive kept fixes: every fix received in
    between (even a dropped one, but not a duplicate) shows the phone was still reporting."""
    received = reason != DUPLICATE
    silence = np.zeros(len(ts))
    silence[1:] = np.where(dev[1:] == dev[:-1], ts[1:] - ts[:-1], np.inf)
    # a duplicate bridges nothing: fold its silence into the next received fix
    silence = np.where(received, silence, 0.0)
    bounds = np.r_[idx[:-1] + 1, len(ts)]
    longest = np.maximum.reduceat(np.r_[silence, 0.0], bounds)[:-1] if idx.size > 1 else silence[:0]
    return longest

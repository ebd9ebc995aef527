"""Space-time proximity of reports: suspected duplicates and recurrences, vectorised.

Coordinates are metric (x, y in metres, e.g. UTM) and times are seconds; the work is done
with a k-d tree over (x, y, scaled time), so a million reports take seconds, not hours.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _pairs(
    x: np.ndarray, y: np.ndarray, t: np.ndarray, radius_m: float, window_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) within ``radius_m`` metres and ``window_s`` seconds, with distances."""
    if len(x) < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    scale = radius_m / window_s if window_s > 0 else 0.0
    points = np.column_stack([x, y, t * scale])
    # Chebyshev ball = box: |dx|, |dy| <= r and |dt| <= window; then the exact circle
    pairs = cKDTree(points).query_pairs(radius_m, p=np.inf, output_type="ndarray")
    i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    dist = np.hypot(x[i] - x[j], y[i] - y[j])
    keep = (dist <= radius_m) & (np.abs(t[i] - t[j]) <= window_s)
    return i[keep], j[keep], dist[keep]


def duplicate_links(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    category: np.ndarray,
    is_new: np.ndarray,
    radius_m: float,
    window_s: float,
) -> np.ndarray:
    """For each new report, the report it duplicates (index), or -1.

    Parameters
    ----------
    x, y : np.ndarray
        Metric coordinates of every report: existing open ones and new ones.
    t : np.ndarray
        Report times in seconds.
    category : np.ndarray
        Category of each report; only the same category can be a duplicate.
    is_new : np.ndarray of bool
        True for the reports being added.
    radius_m, window_s : float
        The duplicate rule: the same category within this distance and time.

    Returns
    -------
    np.ndarray of int
        For a new report: the nearest earlier new report or existing open report within the
        rule, followed to the first report of its chain (so every link points at a report that
        is not itself a duplicate); -1 when there is none. Existing reports get -1.
    """
    n = len(x)
    best = np.full(n, -1, dtype=np.int64)
    best_d = np.full(n, np.inf)
    order_key = np.lexsort((np.arange(n), t))  # rank by time, then position
    rank = np.empty(n, dtype=np.int64)
    rank[order_key] = np.arange(n)
    for cat in np.unique(category[is_new]):
        members = np.flatnonzero(category == cat)
        i, j, d = _pairs(x[members], y[members], t[members], radius_m, window_s)
        a, b = members[i], members[j]
        # direct each pair at the report that can be a duplicate: a new one, later than the
        # other unless the other already exists
        src = np.concatenate([a, b])
        dst = np.concatenate([b, a])
        dd = np.concatenate([d, d])
        ok = is_new[src] & (~is_new[dst] | (rank[dst] < rank[src]))
        src, dst, dd = src[ok], dst[ok], dd[ok]
        # nearest candidate per source (ties: earliest)
        pick = np.lexsort((rank[dst], dd, src))
        src, dst, dd = src[pick], dst[pick], dd[pick]
        first = np.ones(len(src), dtype=bool)
        first[1:] = src[1:] != src[:-1]
        best[src[first]] = dst[first]
        best_d[src[first]] = dd[first]
    # follow chains to their first report (pointer jumping)
    root = best.copy()
    while True:
        has = root >= 0
        nxt = root.copy()
        nxt[has] = np.where(best[root[has]] >= 0, best[root[has]], root[has])
        if np.array_equal(nxt, root):
            return root
        root = nxt


def recurrence_links(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    category: np.ndarray,
    closed_x: np.ndarray,
    closed_y: np.ndarray,
    closed_t: np.ndarray,
    closed_category: np.ndarray,
    radius_m: float,
    lookback_s: float,
) -> np.ndarray:
    """For each report, the nearest closed report of its category within ``radius_m`` metres
    closed during the ``lookback_s`` seconds before it (index into the closed arrays), or -1."""
    out = np.full(len(x), -1, dtype=np.int64)
    for cat in np.unique(category):
        mine = np.flatnonzero(category == cat)
        theirs = np.flatnonzero(closed_category == cat)
        if not len(mine) or not len(theirs):
            continue
        tree = cKDTree(np.column_stack([closed_x[theirs], closed_y[theirs]]))
        hits = tree.query_ball_point(np.column_stack([x[mine], y[mine]]), radius_m)
        for k, found in enumerate(hits):
            if not found:
                continue
            cand = theirs[np.asarray(found)]
            age = t[mine[k]] - closed_t[cand]
            cand = cand[(age >= 0) & (age <= lookback_s)]
            if len(cand):
                d = np.hypot(closed_x[cand] - x[mine[k]], closed_y[cand] - y[mine[k]])
                out[mine[k]] = cand[np.lexsort((cand, d))[0]]
    return out

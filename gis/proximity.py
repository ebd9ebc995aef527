"""Space-time proximity of reports: suspected duplicates and recurrences, vectorised.

Coordinates are metric (x, y in metres, e.g. UTM) and times are seconds; the work is done
with k-d trees over (x, y, scaled time), so a million reports take seconds, not hours.

The finders answer a slice of reports at a time, so a bulk import can store the first rows
while the links of later ones are still being found: :class:`DuplicateFinder` in report-time
order (a report can only duplicate an earlier one), :class:`RecurrenceFinder` in any order.
The functions :func:`duplicate_links` and :func:`recurrence_links` answer all at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

# k-d tree queries use a box a hair larger than the rule, then the rule is applied exactly
# (rounding in the scaled time axis must not drop a pair that sits exactly on the edge)
_SLACK = 1e-9
_SLICE = 65_536  # reports per k-d tree query when answering all at once


class DuplicateFinder:
    """Suspected duplicates among new reports, answered in report-time order.

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

    Notes
    -----
    :attr:`order` lists the new reports by time (ties: position); :meth:`next` answers the
    next ones in that order. A new report duplicates the nearest earlier new report or existing
    report within the rule (ties: the earliest), followed to the first report of its chain, so
    every link points at a report that is not itself a duplicate.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        t: np.ndarray,
        category: np.ndarray,
        is_new: np.ndarray,
        radius_m: float,
        window_s: float,
    ) -> None:
        n = len(x)
        self._x = np.asarray(x, dtype=float)
        self._y = np.asarray(y, dtype=float)
        self._t = np.asarray(t, dtype=float)
        self._is_new = np.asarray(is_new, dtype=bool)
        self._radius = float(radius_m)
        self._window = float(window_s)
        self._rank = np.empty(n, dtype=np.int64)
        self._rank[np.argsort(self._t, kind="stable")] = np.arange(n)  # by time, then position
        new = np.flatnonzero(self._is_new)
        self.order: np.ndarray = new[np.argsort(self._t[new], kind="stable")]
        scale = radius_m / window_s if window_s > 0 else 0.0
        self._points = np.column_stack([self._x, self._y, self._t * scale])
        self._codes, _ = pd.factorize(np.asarray(category, dtype=object), use_na_sentinel=False)
        self._trees: dict[int, tuple[np.ndarray, cKDTree]] = {}
        for members in _groups(self._codes):
            if self._is_new[members].any():
                code = int(self._codes[members[0]])
                self._trees[code] = (members, cKDTree(self._points[members]))
        # a report's chain end: itself until it is answered and links somewhere
        self._root = np.arange(n)
        self._done = 0

    def next(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Links of the next ``count`` new reports of :attr:`order`.

        Returns
        -------
        (rows, links) : tuple of np.ndarray
            The reports answered (indices, in :attr:`order`) and, for each, the index of the
            report it duplicates, or -1.
        """
        rows = self.order[self._done : self._done + count]
        self._done += len(rows)
        best = np.full(len(rows), -1, dtype=np.int64)  # per position in rows
        for members in _groups(self._codes[rows]):
            theirs, tree = self._trees[int(self._codes[rows[members[0]]])]
            near = cKDTree(self._points[rows[members]]).sparse_distance_matrix(
                tree, self._radius * (1 + _SLACK), p=np.inf, output_type="ndarray"
            )
            at = members[near["i"]]
            src, dst = rows[at], theirs[near["j"]]
            dist = np.hypot(self._x[src] - self._x[dst], self._y[src] - self._y[dst])
            ok = (
                (src != dst)
                & (dist <= self._radius)
                & (np.abs(self._t[src] - self._t[dst]) <= self._window)
                # an existing report, or a new one reported earlier
                & (~self._is_new[dst] | (self._rank[dst] < self._rank[src]))
            )
            at, dst, dist = at[ok], dst[ok], dist[ok]
            pick = np.lexsort((self._rank[dst], dist, at))  # nearest, then earliest
            at, dst = at[pick], dst[pick]
            first = np.ones(len(at), dtype=bool)
            first[1:] = at[1:] != at[:-1]
            best[at[first]] = dst[first]
        has = best >= 0
        linked = rows[has]
        # earlier reports already point at their chain ends; links inside this slice are
        # followed by pointer doubling (log2 of the chain length passes)
        self._root[linked] = best[has]
        while True:
            ahead = self._root[self._root[linked]]
            if np.array_equal(ahead, self._root[linked]):
                break
            self._root[linked] = ahead
        links = np.where(has, self._root[rows], -1)
        return rows, links


class RecurrenceFinder:
    """Recently closed reports near new ones (a recurrence), for any slice of new reports.

    Parameters
    ----------
    closed_x, closed_y : np.ndarray
        Metric coordinates of the closed reports.
    closed_t : np.ndarray
        Their closing times in seconds.
    closed_category : np.ndarray
        Their categories.
    radius_m, lookback_s : float
        The rule: the same category within this distance, closed during this many seconds
        before the new report.
    """

    def __init__(
        self,
        closed_x: np.ndarray,
        closed_y: np.ndarray,
        closed_t: np.ndarray,
        closed_category: np.ndarray,
        radius_m: float,
        lookback_s: float,
    ) -> None:
        self._x = np.asarray(closed_x, dtype=float)
        self._y = np.asarray(closed_y, dtype=float)
        self._t = np.asarray(closed_t, dtype=float)
        self._radius = float(radius_m)
        self._lookback = float(lookback_s)
        codes, labels = pd.factorize(
            np.asarray(closed_category, dtype=object), use_na_sentinel=False
        )
        self._codes = codes
        self._labels = pd.Index(labels)
        # categories far apart on a third axis: one tree, and no pair across categories
        self._gap = 4.0 * radius_m + 1.0
        self._tree = cKDTree(np.column_stack([self._x, self._y, codes * self._gap]))

    def links(
        self, x: np.ndarray, y: np.ndarray, t: np.ndarray, category: np.ndarray
    ) -> np.ndarray:
        """For each report, the nearest closed report of its category within the radius closed
        during the lookback before it (index into the closed arrays; ties: the lower index),
        or -1."""
        n = len(x)
        out = np.full(n, -1, dtype=np.int64)
        if not n or not len(self._x):
            return out
        codes = self._labels.get_indexer(np.asarray(category, dtype=object))
        known = np.flatnonzero(codes >= 0)  # a category nobody closed has no recurrence
        if not len(known):
            return out
        mine = cKDTree(np.column_stack([x[known], y[known], codes[known] * self._gap]))
        near = mine.sparse_distance_matrix(
            self._tree, self._radius * (1 + _SLACK), p=np.inf, output_type="ndarray"
        )
        i, j = known[near["i"]], near["j"].astype(np.int64)
        dist = np.hypot(x[i] - self._x[j], y[i] - self._y[j])
        age = t[i] - self._t[j]
        keep = (
            (codes[i] == self._codes[j])
            & (dist <= self._radius)
            & (age >= 0)
            & (age <= self._lookback)
        )
        i, j, dist = i[keep], j[keep], dist[keep]
        pick = np.lexsort((j, dist, i))  # per report: nearest, then lowest index
        i, j = i[pick], j[pick]
        first = np.ones(len(i), dtype=bool)
        first[1:] = i[1:] != i[:-1]
        out[i[first]] = j[first]
        return out


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
    finder = DuplicateFinder(x, y, t, category, is_new, radius_m, window_s)
    out = np.full(len(x), -1, dtype=np.int64)
    for _ in range(0, len(finder.order), _SLICE):
        rows, links = finder.next(_SLICE)
        out[rows] = links
    return out


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
    closed during the ``lookback_s`` seconds before it (index into the closed arrays), or -1;
    ties in distance go to the lower index."""
    finder = RecurrenceFinder(closed_x, closed_y, closed_t, closed_category, radius_m, lookback_s)
    return finder.links(np.asarray(x, float), np.asarray(y, float), np.asarray(t, float), category)


def _groups(codes: np.ndarray) -> list[np.ndarray]:
    """Positions of each distinct integer code, ascending within a group."""
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return [g for g in np.split(order, bounds) if len(g)]

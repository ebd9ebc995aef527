"""Getis-Ord Gi* hot and cold spots among unit grids (the heat map's ``gi`` layer).

Inputs are unit grids (codes and EPSG:4326 geometries, checked by
:func:`gis.grid_inputs.validated_grids`) with one non-negative value each, typically
:func:`gis.density.grid_density`'s ``value`` column; distances are measured in metres in a
local UTM zone (:mod:`gis.metric`). Not to be confused with the hotspot *places* of
:mod:`gis.hotspots` (markets, sites …): a Gi* hot spot is a statistical cluster of high values.

Choices a user relies on
------------------------
* **Neighbours.** Binary queen contiguity plus the self-weight, computed by ``esda``; grids
  whose boundaries come within ``tolerance_m`` of each other are neighbours. A grid with no
  neighbour (an island) is joined to its nearest grid(s) by default, or left unclassified
  (``islands="exclude"``).
* **Inference.** Pseudo p-values are two-sided and count ties with the observed value as "at
  least as extreme", so a sea of zeros is not called a cold spot just because many random
  neighbourhoods are zero too.
* **Too few grids.** Gi* on fewer than three grids raises ``ValueError``: no answer exists.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import shapely

from gis import metric
from gis.grid_inputs import validated_grids

__all__ = ["HOT_SPOT_CLASSES", "gi_star"]

HOT_SPOT_CLASSES: tuple[str, ...] = (
    "hot_99",
    "hot_95",
    "hot_90",
    "not_significant",
    "cold_90",
    "cold_95",
    "cold_99",
    "island",
)
"""Classes of :func:`gi_star`, hottest first; ``island`` = not tested (no neighbour)."""
_LEVELS = ((0.01, "99"), (0.05, "95"), (0.10, "90"))


def gi_star(
    grid_codes: Sequence[str],
    grid_geoms: Sequence[shapely.Geometry],
    values: Sequence[float] | np.ndarray | pd.Series,
    *,
    permutations: int = 999,
    seed: int = 12345,
    islands: Literal["nearest", "exclude"] = "nearest",
    tolerance_m: float = 0.05,
) -> pd.DataFrame:
    """Getis-Ord Gi* hot and cold spots among unit grids, with permutation inference.

    Parameters
    ----------
    grid_codes, grid_geoms : sequence of str, sequence of shapely (Multi)Polygon
        Unique grid codes and the grids in EPSG:4326, same order (as
        :func:`gis.grid_inputs.validated_grids` takes them).
    values : array_like or pandas.Series
        A non-negative value per grid, in the order of ``grid_codes``, or a Series indexed by
        code (e.g. ``grid_density(...)["value"]``, normalised per km² or per patrol hour).
    permutations : int, default 999
        Conditional random permutations per grid (at least 99); the smallest attainable
        two-sided pseudo p-value is ``2 / (permutations + 1)``.
    seed : int, default 12345
        Seed of the permutations: the same input gives the same classes.
    islands : {"nearest", "exclude"}, default "nearest"
        "nearest": a grid with no contiguous neighbour is joined, both ways, to its nearest
        grid (to each of them when several are equally near; distances in metres).
        "exclude": it is left out of the test with class ``island`` and NaN statistics (its
        value still counts in the global mean and variance).
    tolerance_m : float, default 0.05
        Grids whose boundaries come within this many metres are neighbours (queen contiguity
        that survives rounding gaps, slivers and T-junctions of imported boundaries).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``code``: ``value``, ``neighbours`` (excluding the grid itself),
        ``island`` (had no contiguous neighbour), ``z`` (Gi* z-score under the normality
        assumption), ``p_value`` (two-sided pseudo p-value from the permutations) and
        ``class`` (categorical, :data:`HOT_SPOT_CLASSES`): ``hot_99`` for p ≤ 0.01 with the
        observed Gi* in the upper tail, ``hot_95`` for p ≤ 0.05, ``hot_90`` for p ≤ 0.10,
        ``cold_*`` likewise in the lower tail, else ``not_significant``. Where Gi* is
        undefined — all values equal, or a neighbourhood that spans every grid — ``z`` is NaN,
        ``p_value`` 1 and the class ``not_significant``.

    Raises
    ------
    ValueError
        For fewer than 3 grids, values that are negative, not finite, missing or misaligned,
        ``permutations < 99``, or grids refused by :func:`gis.grid_inputs.validated_grids`.

    Notes
    -----
    Weights are binary queen contiguity with a self-weight of 1 (Gi* includes the grid
    itself); ``esda.G_Local(transform="B", star=True)`` computes the statistic, its z-score
    and the permutation distribution. The pseudo p-value is computed here from that
    distribution: ``min(1, 2 * min(p_upper, p_lower))`` with ``p_upper = (#{sim >= obs} + 1) /
    (permutations + 1)`` and ``p_lower`` likewise, ties counted on both sides. No correction
    for multiple testing is applied (as in the classic Gi* map); expect ~10 % of grids in a
    90 % class by chance alone.
    """
    codes, geoms = validated_grids(grid_codes, grid_geoms)
    y = _checked_values(codes, values)
    if len(codes) < 3:
        raise ValueError(f"Gi* hot spots need at least 3 grids, got {len(codes)}")
    if permutations < 99:
        raise ValueError(f"permutations must be at least 99, got {permutations}")
    if islands not in ("nearest", "exclude"):
        raise ValueError(f"islands must be 'nearest' or 'exclude', got {islands!r}")
    if not (math.isfinite(tolerance_m) and tolerance_m >= 0):
        raise ValueError(f"tolerance_m must be a finite distance >= 0, got {tolerance_m}")
    graph, isolated = _contiguity(geoms, tolerance_m, attach_islands=islands == "nearest")
    z, p, upper = _inference(y, graph, permutations, seed)
    classes = _classify(p, upper)
    neighbours = np.asarray(graph.cardinalities, dtype=np.int64) - 1  # less the self-weight
    if islands == "exclude":
        z[isolated], p[isolated], classes[isolated] = np.nan, np.nan, "island"
    return pd.DataFrame(
        {
            "value": y,
            "neighbours": neighbours,
            "island": isolated,
            "z": z,
            "p_value": p,
            "class": pd.Categorical(classes, categories=HOT_SPOT_CLASSES),
        },
        index=pd.Index(codes, name="code", dtype=object),
    )


def _checked_values(
    codes: list[str], values: Sequence[float] | np.ndarray | pd.Series
) -> np.ndarray:
    if isinstance(values, pd.Series):
        missing = pd.Index(codes).difference(values.index)
        if len(missing):
            raise ValueError(f"values has no entry for {len(missing)} grid(s), e.g. {missing[0]!r}")
        y = values.reindex(pd.Index(codes)).to_numpy(dtype=np.float64)
    else:
        y = np.asarray(values, dtype=np.float64).ravel()
        if y.size != len(codes):
            raise ValueError(f"values must have one entry per grid ({len(codes)}), got {y.size}")
    bad = ~(np.isfinite(y) & (y >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Gi* needs finite values >= 0; grid {codes[i]!r} has {y[i]} ({int(bad.sum())} bad "
            "in total; a NaN rate per patrol hour means 0 patrol hours: drop or fill those)"
        )
    return y


def _contiguity(geoms: np.ndarray, tolerance_m: float, *, attach_islands: bool):
    """Binary queen contiguity with self-weight 1 (a libpysal Graph) and the island mask."""
    from libpysal.graph import Graph

    crs = metric.utm_crs_for_geometries(geoms)
    metric_geoms = np.asarray(metric.to_metric(geoms, crs))
    tree = shapely.STRtree(metric_geoms)
    # Boundaries within tolerance_m: exact touching, rounding gaps and T-junctions alike.
    heads, tails = tree.query(metric_geoms, predicate="dwithin", distance=tolerance_m)
    keep = heads != tails
    heads, tails = heads[keep], tails[keep]
    n = len(geoms)
    isolated = np.bincount(heads, minlength=n) == 0
    if attach_islands and isolated.any():
        lonely = np.flatnonzero(isolated)
        src, nearest = tree.query_nearest(metric_geoms[lonely], exclusive=True, all_matches=True)
        pairs = np.column_stack([lonely[src], nearest])
        heads = np.concatenate([heads, pairs[:, 0], pairs[:, 1]])
        tails = np.concatenate([tails, pairs[:, 1], pairs[:, 0]])
    # The self-loop carries Gi*'s self-weight and keeps every grid (an unattached island too)
    # in the graph; sorting keeps the graph's order that of the grids.
    edges = np.unique(
        np.column_stack(
            [np.concatenate([heads, np.arange(n)]), np.concatenate([tails, np.arange(n)])]
        ),
        axis=0,
    )
    graph = Graph.from_arrays(edges[:, 0], edges[:, 1], np.ones(len(edges)))
    if not np.array_equal(np.asarray(graph.unique_ids), np.arange(n)):
        raise RuntimeError("contiguity graph lost the order of the grids")
    return graph, isolated


def _inference(
    y: np.ndarray, graph, permutations: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gi* z-scores, two-sided pseudo p-values and whether each lies in the upper tail."""
    n = len(y)
    if np.ptp(y) == 0:
        # All values equal: no grid stands out and Gi* is 0/0.
        return np.full(n, np.nan), np.ones(n), np.zeros(n, dtype=bool)
    from esda.getisord import G_Local

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # esda announces a future change of its own p-value; the p-value is computed below.
        warnings.filterwarnings(
            "ignore", message="The alternative hypothesis", category=DeprecationWarning
        )
        gi = G_Local(
            y,
            graph,
            transform="B",
            star=True,
            permutations=permutations,
            keep_simulations=True,
            n_jobs=1,
            seed=seed,
        )
    observed, sims = np.asarray(gi.Gs), np.asarray(gi.rGs)
    # Floating sums in another order differ in the last bits: within 1e-10 is a tie.
    tol = 1e-10 * np.abs(observed)[:, None]
    above = (sims >= observed[:, None] - tol).sum(axis=1)
    below = (sims <= observed[:, None] + tol).sum(axis=1)
    p_upper = (above + 1.0) / (permutations + 1.0)
    p_lower = (below + 1.0) / (permutations + 1.0)
    p = np.minimum(1.0, 2.0 * np.minimum(p_upper, p_lower))
    z = np.asarray(gi.Zs, dtype=np.float64).copy()
    z[~np.isfinite(z)] = np.nan
    return z, p, p_upper < p_lower


def _classify(p: np.ndarray, upper: np.ndarray) -> np.ndarray:
    classes = np.full(p.shape, "not_significant", dtype=object)
    for alpha, level in reversed(_LEVELS):  # widest first, so the strictest level wins
        hit = p <= alpha
        classes[hit & upper] = f"hot_{level}"
        classes[hit & ~upper] = f"cold_{level}"
    return classes

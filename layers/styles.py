"""Colours and legends of the map layers: data in, fill colours and legend rows out.

Choropleths use quantile-like classes with round-ish breaks (a dispatcher reads "10–20", not
"9.73–19.41"); hot/cold spots use the conventional diverging reds/blues; every legend says
what the numbers are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex

from layers.i18n import N_

__all__ = ["ANSWER_TEXTS", "HOT_SPOT_COLOURS", "Legend", "classify", "hot_spot_legend"]

# The legend texts the map layers' answers carry (English, as the API gives them, built here,
# in service/maps/heat.py and in service/assessment/maplayer.py): the map page's script shows
# them from the catalogue; a number in a text stands for the {n} hole of its msgid ("Cases per
# 250 m hexagon").
ANSWER_TEXTS = (
    N_("Cases per km²"),
    N_("Cases per grid"),
    N_("Cases per patrol hour (grey: no patrol)"),
    N_("Cases per {n} m hexagon"),
    N_("Cases per km² (kernel density)"),
    N_("Hot/cold spots (Getis-Ord Gi*)"),
    N_("Covered share (within {n} m of a track)"),
    N_("Hours since the last visit (grey: none)"),
    N_("Patrol fixes per km² (track density)"),
    N_("Cases per patrol hour (grey: never patrolled)"),
    N_("no data"),
    N_("hot spot, {n} % confidence"),
    N_("hot spot, {n} %"),
    N_("cold spot, {n} %"),
    N_("not significant"),
    N_("no neighbour (not tested)"),
    # the assessment layer's (service/assessment/maplayer.py)
    N_("Grade"),
    N_("Red/yellow list"),
    N_("red list"),
    N_("yellow list"),
    N_("not listed"),
    N_("no cases this period"),
)

NO_DATA = "#d9d9d9"

# Gi* classes (gis.gi_star.HOT_SPOT_CLASSES) → the usual diverging reds and blues
HOT_SPOT_COLOURS = {
    "hot_99": "#b2182b",
    "hot_95": "#ef8a62",
    "hot_90": "#fddbc7",
    "not_significant": "#f7f7f7",
    "cold_90": "#d1e5f0",
    "cold_95": "#67a9cf",
    "cold_99": "#2166ac",
    "island": NO_DATA,
}
_HOT_SPOT_LABELS = {
    "hot_99": "hot spot, 99 % confidence",
    "hot_95": "hot spot, 95 %",
    "hot_90": "hot spot, 90 %",
    "not_significant": "not significant",
    "cold_90": "cold spot, 90 %",
    "cold_95": "cold spot, 95 %",
    "cold_99": "cold spot, 99 %",
    "island": "no neighbour (not tested)",
}


@dataclass(frozen=True)
class Legend:
    """A legend: a title (with units) and rows of (colour, label)."""

    title: str
    rows: tuple[tuple[str, str], ...]

    def as_json(self) -> dict[str, object]:
        """``{"title", "rows": [{"color", "label"}]}``."""
        return {"title": self.title, "rows": [{"color": c, "label": t} for c, t in self.rows]}


def classify(
    values: Sequence[float] | np.ndarray,
    title: str,
    *,
    classes: int = 5,
    cmap: str = "YlOrRd",
    decimals: int | None = None,
) -> tuple[list[str], Legend]:
    """Fill colour per value (quantile classes) and the legend; NaN gets grey "no data".

    Zero is always its own lightest class when present, so "nothing happened" never shares a
    colour with "a little".
    """
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    ramp = colormaps[cmap]
    if finite.size == 0:
        return [NO_DATA] * v.size, Legend(title, ((NO_DATA, "no data"),))
    positive = finite[finite > 0]
    quantiles = np.linspace(0, 1, classes + 1)
    breaks: np.ndarray = np.quantile(positive, quantiles) if positive.size else np.zeros(0)
    digits = decimals if decimals is not None else _digits(positive)
    breaks = np.unique(np.round(breaks, digits))
    edges = [0.0] + [b for b in breaks if b > 0]
    colours = [to_hex(ramp(x)) for x in np.linspace(0.08, 1.0, len(edges))]
    fills = []
    for x in v:
        if not np.isfinite(x):
            fills.append(NO_DATA)
        elif x <= 0:
            fills.append(colours[0])
        else:
            k = int(np.searchsorted(edges[1:], x, side="left"))
            fills.append(colours[min(k + 1, len(colours) - 1)])
    rows = [(colours[0], "0")]
    for k in range(1, len(edges)):
        low = 0 if k == 1 else edges[k - 1]
        rows.append((colours[k], f"{_fmt(low, digits)}–{_fmt(edges[k], digits)}"))
    if np.isnan(v).any():
        rows.append((NO_DATA, "no data"))
    return fills, Legend(title, tuple(rows))


def hot_spot_legend(title: str = "Hot/cold spots (Getis-Ord Gi*)") -> Legend:
    """The Gi* legend."""
    return Legend(title, tuple((c, _HOT_SPOT_LABELS[k]) for k, c in HOT_SPOT_COLOURS.items()))


def _digits(values: np.ndarray) -> int:
    if values.size == 0:
        return 0
    top = float(np.max(values))
    return 0 if top >= 20 else 1 if top >= 2 else 2


def _fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"

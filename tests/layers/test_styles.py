"""Colour classes and legends of the map layers."""

from __future__ import annotations

import numpy as np

from layers.styles import HOT_SPOT_COLOURS, NO_DATA, classify, hot_spot_legend


def test_zero_is_its_own_class_and_nan_is_grey():
    fills, legend = classify([0, 0, 1, 5, 10, 50, np.nan], "Cases per km²")
    assert fills[0] == fills[1] == legend.rows[0][0]
    assert legend.rows[0][1] == "0"
    assert fills[2] != fills[0]
    assert fills[-1] == NO_DATA and legend.rows[-1] == (NO_DATA, "no data")


def test_higher_values_never_get_a_lighter_class():
    values = np.random.default_rng(1).gamma(1.0, 20.0, 500)
    fills, legend = classify(values, "Cases")
    order = [c for c, _ in legend.rows]
    rank = np.array([order.index(f) for f in fills])
    assert (np.diff(rank[np.argsort(values)]) >= 0).all()
    labels = [label for _, label in legend.rows[1:]]
    uppers = [float(label.split("–")[1].replace(",", "")) for label in labels]
    assert uppers == sorted(uppers) and uppers[-1] >= values.max() - 0.5


def test_every_value_falls_in_its_legend_row():
    values = [0.2, 0.35, 0.5, 0.9, 1.0]
    fills, legend = classify(values, "Covered share")
    rows = dict((c, label) for c, label in legend.rows)
    for v, f in zip(values, fills, strict=True):
        low, high = (float(x) for x in rows[f].split("–"))
        assert low <= v <= high


def test_only_no_data():
    fills, legend = classify([np.nan, np.nan], "x")
    assert fills == [NO_DATA, NO_DATA] and len(legend.rows) == 1


def test_hot_spot_legend_covers_every_class():
    from gis.gi_star import HOT_SPOT_CLASSES

    assert set(HOT_SPOT_COLOURS) == set(HOT_SPOT_CLASSES)
    assert len(hot_spot_legend().rows) == len(HOT_SPOT_CLASSES)

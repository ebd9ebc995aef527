"""Helpers shared by the demo generator tests (not a test module)."""

import numpy as np
import shapely

TZ = "Asia/Shanghai"


def of_kind(frame, kind):
    """The rows of a hotspot frame of one kind."""
    return frame[frame["kind"] == kind]


def within(points_m: np.ndarray, geoms_m, metres: float) -> np.ndarray:
    """Whether each point lies within ``metres`` of any of ``geoms_m`` (plain shapely)."""
    return shapely.dwithin(points_m, shapely.union_all(np.asarray(geoms_m)), metres)

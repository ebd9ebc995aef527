"""Validation of lon/lat point arrays shared by the point indexes."""

from __future__ import annotations

import numpy as np


def validated_points(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``lon``/``lat`` as float arrays, or ``ValueError`` naming how many are bad and the first.

    Parameters
    ----------
    lon, lat : array_like
        WGS 84 degrees, same shape.

    Returns
    -------
    (np.ndarray, np.ndarray)
        float64 arrays.
    """
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"lon and lat must have the same shape, got {x.shape} and {y.shape}")
    for name, values, limit in (("lon", x, 180.0), ("lat", y, 90.0)):
        bad = ~(np.abs(values) <= limit)  # also catches NaN
        if bad.any():
            first = int(np.flatnonzero(bad.ravel())[0])
            problem = "not finite" if not np.isfinite(values.ravel()[first]) else "out of range"
            raise ValueError(
                f"{int(bad.sum())} {name} value(s) are not finite or outside "
                f"[-{limit:g}, {limit:g}] (first at position {first}: {values.ravel()[first]}, "
                f"{problem}); drop or fix them first"
            )
    return x, y


def validated_point(lon: float, lat: float) -> tuple[float, float]:
    """One lon/lat pair, validated like :func:`validated_points`."""
    x, y = validated_points(np.asarray([lon]), np.asarray([lat]))
    return float(x[0]), float(y[0])

"""Patrol helpers: GPS fixes along a walk through the small city."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import shapely

from tests.helpers.city import point_lonlat

CST = timezone(timedelta(hours=8))


DAY = datetime(2026, 11, 17, 9, 0, tzinfo=CST)


def walk(points_m, start=DAY, step_s=10.0, spacing_m=12.0):
    """Fixes every ``spacing_m`` along a metric polyline, ``step_s`` apart."""
    line = shapely.LineString(points_m)
    dist = np.arange(0.0, line.length + 1e-9, spacing_m)
    pts = shapely.line_interpolate_point(line, dist)
    fixes = []
    for k, p in enumerate(pts):
        lon, lat = point_lonlat(p.x, p.y)
        fixes.append(
            {
                "time": (start + timedelta(seconds=k * step_s)).isoformat(),
                "lon": lon,
                "lat": lat,
                "accuracy_m": 8.0,
            }
        )
    return fixes

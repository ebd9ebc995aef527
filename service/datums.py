"""Coordinates at the service's edge: a lon/lat in any supported datum (WGS 84, GCJ-02, BD-09)
to the WGS 84 that is stored, with errors that name the field."""

from __future__ import annotations

import numpy as np

from gis import datum as datums
from service.errors import InvalidInput


def to_wgs84_point(lon: float, lat: float, datum: str) -> tuple[float, float]:
    """Validate a lon/lat in ``datum`` and return it in WGS 84."""
    try:
        datums.check_datum(datum)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="datum") from exc
    if not (np.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidInput(f"lon {lon} is out of range -180..180", field="lon")
    if not (np.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"lat {lat} is out of range -90..90", field="lat")
    x, y = datums.to_wgs84(lon, lat, datum)
    return float(x), float(y)

"""The public JSON of the citizen's pages: a receipt, a status, the problem map's GeoJSON.

Only what :class:`~service.citizen.reports.PublicCase` holds goes out: category, status,
dates and the coarsened position, in the datum asked for. No reporter, no description, no
photo, no case id (the tracking number is the key), no grid code.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gis.datum import from_wgs84
from layers.citizen import STATUS_TEXTS
from service.cases.workflow import OPEN_STATUSES
from service.citizen.reports import PublicCase, Receipt
from service.http.timeparse import iso


def _position(case: PublicCase, datum: str) -> tuple[float, float]:
    lon, lat = from_wgs84(np.array([case.lon]), np.array([case.lat]), datum)
    return round(float(lon[0]), 7), round(float(lat[0]), 7)


def status_json(number: str, case: PublicCase, datum: str, precision_m: float) -> dict[str, Any]:
    """A report's status as the public reads it."""
    lon, lat = _position(case, datum)
    return {
        "tracking_number": number,
        "category_code": case.category_code,
        "category": case.category_name,
        "status": case.status,
        "status_text": STATUS_TEXTS.get(case.status, case.status),
        "open": case.status in OPEN_STATUSES,
        "reported_at": iso(case.reported_at),
        "updated_at": iso(case.updated_at),
        "closed_at": iso(case.closed_at),
        "lon": lon,
        "lat": lat,
        "datum": datum,
        "precision_m": precision_m,
    }


def receipt_json(
    receipt: Receipt, status_url: str, datum: str, precision_m: float
) -> dict[str, Any]:
    """The answer to a report: its tracking number and where to follow it."""
    return {
        **status_json(receipt.tracking_number, receipt.case, datum, precision_m),
        "duplicate": receipt.duplicate,
        "status_url": f"{status_url}?number={receipt.tracking_number}",
    }


def cases_geojson(
    cases: list[PublicCase], datum: str, precision_m: float, days: int, tz: str
) -> dict[str, Any]:
    """The problem map's FeatureCollection (dates only: the day of a report)."""
    if cases:
        lon, lat = from_wgs84(
            np.array([c.lon for c in cases]), np.array([c.lat for c in cases]), datum
        )
    else:
        lon = lat = np.array([])
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Point",
                "coordinates": [round(float(x), 7), round(float(y), 7)],
            },
            "properties": {
                "category_code": c.category_code,
                "category": c.category_name,
                "status": c.status,
                "status_text": STATUS_TEXTS.get(c.status, c.status),
                "open": c.status in OPEN_STATUSES,
                "reported_on": (iso(c.reported_at, tz) or "")[:10],
            },
        }
        for c, x, y in zip(cases, lon, lat, strict=True)
    ]
    return {
        "type": "FeatureCollection",
        "datum": datum,
        "precision_m": precision_m,
        "days": days,
        "features": features,
    }


class TimedCache:
    """Answers kept for ``seconds`` per key (per process): the public map is read by many and
    changes slowly, so its query runs at most once per key and period."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, bytes, str]] = {}

    def get(self, key: str, make: Callable[[], Any]) -> tuple[bytes, str]:
        """``(body, etag)`` of ``key``, made by ``make()`` (JSON-encoded) when missing or old."""
        t = time.monotonic()
        with self._lock:
            item = self._items.get(key)
        if item is not None and t - item[0] < self.seconds:
            return item[1], item[2]
        body = json.dumps(make(), ensure_ascii=False, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        with self._lock:
            self._items[key] = (t, body, etag)
        return body, etag

"""Date-times at the edge: naive values are read in the configured local time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def aware(value: datetime | None, tz: str) -> datetime | None:
    """``value`` with a time zone (naive values are taken as local time in ``tz``)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(tz))

"""The working-time clock configured for this deployment (cached: building it reads calendars)."""

from __future__ import annotations

from datetime import time
from functools import lru_cache

from gis.workclock import WorkClock, WorkingHours
from service.factory import AppSettings


def _periods(text: str) -> tuple[tuple[time, time], ...]:
    try:
        pairs = [part.strip().split("-") for part in text.split(",") if part.strip()]
        return tuple(
            (time.fromisoformat(a.strip()), time.fromisoformat(b.strip())) for a, b in pairs
        )
    except ValueError as exc:
        raise ValueError(
            f"CITYGRID_WORKING_PERIODS {text!r} must look like 09:00-12:00,13:30-17:30"
        ) from exc


@lru_cache(maxsize=8)
def _clock(tz: str, periods: str) -> WorkClock:
    return WorkClock(tz=tz, hours=WorkingHours(periods=_periods(periods)))


def work_clock(settings: AppSettings) -> WorkClock:
    """The clock for ``settings`` (Chinese public holidays and make-up working days)."""
    return _clock(settings.grids.timezone, settings.cases.working_periods)

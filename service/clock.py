"""Time: the current instant, and the working-time clock configured for this deployment (cached:
building it reads calendars)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache

from gis.workclock import WorkClock, WorkingHours
from service.settings import AppSettings


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


def _days(text: str, name: str) -> tuple[date, ...]:
    try:
        return tuple(date.fromisoformat(d.strip()) for d in text.split(",") if d.strip())
    except ValueError as exc:
        raise ValueError(f"{name} must be comma-separated YYYY-MM-DD dates") from exc


@lru_cache(maxsize=8)
def _clock(tz: str, periods: str, holidays: str, workdays: str) -> WorkClock:
    return WorkClock(
        tz=tz,
        hours=WorkingHours(periods=_periods(periods)),
        extra_holidays=_days(holidays, "CITYGRID_EXTRA_HOLIDAYS"),
        extra_workdays=_days(workdays, "CITYGRID_EXTRA_WORKDAYS"),
    )


def work_clock(settings: AppSettings) -> WorkClock:
    """The clock for ``settings``: Chinese public holidays and make-up working days from the
    calendar package, the city's own extra days, Monday–Friday for years not yet published."""
    c = settings.cases
    return _clock(settings.grids.timezone, c.working_periods, c.extra_holidays, c.extra_workdays)


def now() -> datetime:
    """The current instant (UTC, aware)."""
    return datetime.now(UTC)

"""Assessment periods in the local calendar: a day, an ISO week, a month, a quarter, a year or
a custom run of days.

``2026-11-29`` (day), ``2026-W47`` (ISO week, Monday to Sunday), ``2026-11`` (month),
``2026-Q4`` (quarter), ``2026`` (year), ``2026-11-01..2026-11-15`` (custom, both days
included). A period is the half-open interval [start, end) between local midnights in
``settings.grids.timezone``: a case at 23:30 local on 30 November belongs to November.
Anything else is :class:`~service.errors.InvalidInput` naming ``period``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.errors import InvalidInput

MAX_CUSTOM_DAYS = 366 * 2
_FORMS = "2026-11-29, 2026-W47, 2026-11, 2026-Q4, 2026 or 2026-11-01..2026-11-15"


@dataclass(frozen=True)
class Period:
    """A named period: its label, kind, local first and last day, and UTC-aware bounds."""

    label: str
    kind: str  # day | week | month | quarter | year | custom
    first_day: date
    last_day: date
    start: datetime
    end: datetime

    def as_dict(self) -> dict[str, str]:
        """The period as shown in answers (bounds with the local offset)."""
        return {
            "period": self.label,
            "kind": self.kind,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def _bad(text: str, why: str) -> InvalidInput:
    return InvalidInput(f"period {text!r} {why}; use {_FORMS}", field="period")


def _day(text: str, whole: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise _bad(whole, f"has no day {text!r}") from exc


def _days(text: str) -> tuple[str, date, date]:
    if ".." in text:
        a, _, b = text.partition("..")
        first, last = _day(a.strip(), text), _day(b.strip(), text)
        if last < first:
            raise _bad(text, "ends before it starts")
        if (last - first).days + 1 > MAX_CUSTOM_DAYS:
            raise _bad(text, f"is longer than {MAX_CUSTOM_DAYS} days")
        return "custom", first, last
    if m := re.fullmatch(r"(\d{4})-W(\d{2})", text):
        year, week = int(m[1]), int(m[2])
        try:
            first = date.fromisocalendar(year, week, 1)
        except ValueError as exc:
            raise _bad(text, f"names no ISO week of {year}") from exc
        return "week", first, first + timedelta(days=6)
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
        year, q = int(m[1]), int(m[2])
        first = date(year, 3 * q - 2, 1)
        nxt = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
        return "quarter", first, nxt - timedelta(days=1)
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise _bad(text, "has no month " + m[2])
        first = date(year, month, 1)
        nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return "month", first, nxt - timedelta(days=1)
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
        return "year", date(year, 1, 1), date(year, 12, 31)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = _day(text, text)
        return "day", day, day
    raise _bad(text, "is not a period")


def parse_period(text: str | None, tz: str) -> Period:
    """The period ``text`` names, in the local calendar of ``tz``."""
    if text is None or not text.strip():
        raise InvalidInput(f"give a period: {_FORMS}", field="period")
    text = text.strip()
    kind, first, last = _days(text)
    if first.year < 1900 or last.year > 2200:
        raise _bad(text, "lies outside 1900-2200")
    zone = ZoneInfo(tz)
    start = datetime.combine(first, time(0), zone)
    end = datetime.combine(last + timedelta(days=1), time(0), zone)
    return Period(text, kind, first, last, start, end)

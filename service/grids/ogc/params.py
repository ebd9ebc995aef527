"""Query parameters of ``/ogc`` read the way Part 1 defines them; bad values raise
``BadParameter`` (400) naming the parameter."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.errors import BadParameter
from service.grids.ogc.features import Period
from service.grids.ogc.openapi import DEFAULT_LIMIT, MAX_LIMIT
from service.http.params import parse_bbox

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OPEN = ("", "..")


def invalid(message: str, name: str) -> BadParameter:
    """A 400 whose body also carries Part 1's exception members ``code`` and ``description``."""
    return BadParameter(message, field=name, code="InvalidParameterValue", description=message)


def reject_unknown(names: Iterable[str], accepted: frozenset[str]) -> None:
    """Part 1 answers 400 to a query parameter its API definition does not list."""
    unknown = sorted(set(names) - accepted)
    if unknown:
        raise invalid(
            f"unknown parameter(s): {', '.join(unknown)}; this resource accepts "
            f"{', '.join(sorted(accepted))}",
            unknown[0],
        )


_BIGINT = 2**63 - 1  # PostgreSQL's LIMIT/OFFSET range


def _integer(raw: str | None, name: str, default: int, minimum: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid(f"{name} must be an integer, got {raw!r}", name) from exc
    if value < minimum:
        raise invalid(f"{name} must be at least {minimum}, got {value}", name)
    return value


def limit(raw: str | None) -> int:
    """The page size; above ``MAX_LIMIT`` it is served as ``MAX_LIMIT`` (Part 1 lets servers
    return fewer features than asked, with a ``next`` link)."""
    return min(_integer(raw, "limit", DEFAULT_LIMIT, 1), MAX_LIMIT)


def offset(raw: str | None) -> int:
    """How many selected features to skip."""
    value = _integer(raw, "offset", 0, 0)
    if value > _BIGINT:
        raise invalid(f"offset must be at most {_BIGINT}", "offset")
    return value


def bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in CRS84 (heights of a 6-number box are dropped)."""
    try:
        box = parse_bbox(raw, BadParameter)
    except BadParameter as exc:
        raise invalid(exc.message, "bbox") from exc
    if box is not None and not all(math.isfinite(v) for v in box):
        raise invalid("bbox must be four finite numbers: minlon,minlat,maxlon,maxlat", "bbox")
    return box


def _moment(raw: str, tz: str, end_of_day: bool) -> datetime:
    """An RFC 3339 date-time, or a date standing for its first (or last) microsecond."""
    if _DATE.match(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError as exc:
            raise invalid(f"datetime: {raw!r} is not a valid date", "datetime") from exc
        start = datetime.combine(day, time(), ZoneInfo(tz))
        return start + timedelta(days=1, microseconds=-1) if end_of_day else start
    try:
        value = datetime.fromisoformat(raw.upper())
    except ValueError as exc:
        raise invalid(
            f"datetime: {raw!r} is not an RFC 3339 date-time such as 2026-03-01T08:00:00Z",
            "datetime",
        ) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo(tz))


def period(raw: str | None, tz: str, now: datetime) -> Period:
    """Part 1's ``datetime``: an instant, a date (its whole day), or ``start/end`` with ``..``
    (or nothing) for an open end. Without a value, ``now``. Values without an offset are read
    in ``tz``."""
    if raw is None:
        return Period(now, now)
    # a '+' offset sent unencoded arrives as a space
    raw = raw.strip().replace(" ", "+")
    if "/" not in raw:
        if _DATE.match(raw):
            return Period(_moment(raw, tz, False), _moment(raw, tz, True))
        instant = _moment(raw, tz, False)
        return Period(instant, instant)
    parts = raw.split("/")
    if len(parts) != 2 or all(p in _OPEN for p in parts):
        raise invalid(
            "datetime must be an instant, a date or an interval start/end with at most one "
            "open end ('..'), e.g. 2026-01-01T00:00:00Z/.. ",
            "datetime",
        )
    start = None if parts[0] in _OPEN else _moment(parts[0], tz, False)
    end = None if parts[1] in _OPEN else _moment(parts[1], tz, True)
    if start is not None and end is not None and start > end:
        raise invalid(f"datetime: the interval {raw!r} ends before it starts", "datetime")
    return Period(start, end)

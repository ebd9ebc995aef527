"""Date-times at the edge: naive values are read in the configured local time zone."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, overload
from zoneinfo import ZoneInfo


@overload
def aware(value: datetime, tz: str) -> datetime: ...
@overload
def aware(value: None, tz: str) -> None: ...
def aware(value: datetime | None, tz: str) -> datetime | None:
    """``value`` with a time zone (naive values are taken as local time in ``tz``)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(tz))


# The zone answers are written in; the app sets it per request from CITYGRID_TIMEZONE.
DISPLAY_TZ: ContextVar[str] = ContextVar("display_tz", default="Asia/Shanghai")


def iso(value: datetime | None, tz: str | None = None) -> str | None:
    """ISO 8601 in the deployment's time zone, so every answer shows local time with offset."""
    if value is None:
        return None
    return value.astimezone(ZoneInfo(tz or DISPLAY_TZ.get())).isoformat()


class DisplayTimeZone:
    """ASGI middleware: answers of this app are written in ``tz``."""

    def __init__(self, app: Any, tz: str) -> None:
        self.app = app
        self.tz = tz

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the request with the display zone set."""
        token = DISPLAY_TZ.set(self.tz)
        try:
            await self.app(scope, receive, send)
        finally:
            DISPLAY_TZ.reset(token)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_epoch_us(values: Any) -> list[datetime]:
    """Aware UTC datetimes from integer microseconds since the Unix epoch (exact)."""
    return [_EPOCH + timedelta(microseconds=int(v)) for v in values]


def epoch_us(value: datetime) -> int:
    """Integer microseconds since the Unix epoch of an aware datetime (exact)."""
    return (value - _EPOCH) // timedelta(microseconds=1)

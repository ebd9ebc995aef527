"""Date-times at the edge: naive values are read in the configured local time zone."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


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

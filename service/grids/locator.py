"""Locate for the HTTP API: from memory on the event loop whenever nothing has changed.

A locate is one point-in-polygon look-up in an index that is already built (~0.3 ms), so when
the committed snapshot is known to be fresh (``service.db.changes``) it is answered right on the
event loop: no thread hand-off, no session, no query. Everything else — the first request
after a change, a moment in the past, a process whose listener is down, an app whose sessions
a test hands in — goes to a worker thread and through :meth:`Registry.locate` as before.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.datums import to_wgs84_point
from service.db.changes import ChangeListener
from service.db.engine import session_scope
from service.grids.registry import LocateResult, Registry, locate_in
from service.grids.snapshot import committed_snapshot, fresh_committed_snapshot
from service.settings import AppSettings


class GridLocator:
    """Locate points in one city's grids for request handlers."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: AppSettings,
        changes: ChangeListener | None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.city = settings.grids.city
        self.changes = changes

    async def locate(
        self, lon: float, lat: float, datum: str, at: datetime | None, radius_m: float
    ) -> LocateResult:
        """As :meth:`Registry.locate`; ``at`` None means now."""
        if at is None and self.changes is not None:
            snap = fresh_committed_snapshot(self.city, self.changes) or await run_in_threadpool(
                committed_snapshot, self.sessions, self.city, self.changes
            )
            if snap is not None:
                x, y = to_wgs84_point(lon, lat, datum)
                return locate_in(snap, x, y, radius_m)
        return await run_in_threadpool(self._locate_in_session, lon, lat, datum, at, radius_m)

    def _locate_in_session(
        self, lon: float, lat: float, datum: str, at: datetime | None, radius_m: float
    ) -> LocateResult:
        with session_scope(self.sessions) as session:
            return Registry(session, self.settings).locate(lon, lat, datum, at, radius_m)

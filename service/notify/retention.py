"""Retention of the delivery log: finished deliveries older than
``CITYGRID_NOTIFY_RETENTION_DAYS`` are deleted, with their attempts.

* A delivery is finished when it was ``delivered`` or ``failed`` for good; its age counts from
  when it finished (``delivered_at``, or its last attempt for a failed one). A ``pending``
  delivery is never deleted, however old: it is work still owed to a receiver (a paused
  subscription keeps its deliveries for when it is resumed).
* Attempts (the log) go with their delivery (``ON DELETE CASCADE``).
* An event goes when its last delivery went, unless it has a ``key``: a keyed event (e.g.
  ``case.overdue:<id>``) is the guard that announces a thing once, and deleting it would
  announce the thing again. Those rows are small and stay.

:func:`prune_deliveries` is a sweep like the overdue one: the server's background worker and
``citygrid deliver`` run it; a call deletes at most ``limit`` deliveries, so a first run over a
long history never holds a long transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from service.settings import AppSettings

# candidates come through the events' (city, created_at) index: a delivery finishes after its
# event was written, so one finished before the cut-off belongs to an event written before it
_DELETE_DELIVERIES = text(
    """
    WITH doomed AS (
        SELECT d.id FROM notify_events e
        JOIN notify_deliveries d ON d.city = e.city AND d.event_id = e.id
        WHERE e.city = :city AND e.created_at < :cutoff
          AND d.state IN ('delivered', 'failed')
          AND coalesce(
                d.delivered_at,
                (SELECT max(a.at) FROM notify_attempts a
                 WHERE a.city = :city AND a.delivery_id = d.id),
                d.created_at
              ) < :cutoff
        ORDER BY d.id
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    DELETE FROM notify_deliveries d USING doomed WHERE d.city = :city AND d.id = doomed.id
    RETURNING d.event_id
    """
)

_DELETE_EVENTS = text(
    """
    DELETE FROM notify_events e
    WHERE e.city = :city AND e.id = ANY(:ids) AND e.key IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM notify_deliveries d WHERE d.city = :city AND d.event_id = e.id)
    """
)


def prune_deliveries(
    session: Session, settings: AppSettings, at: datetime, limit: int = 10_000
) -> int:
    """Delete at most ``limit`` of the city's deliveries finished more than
    ``CITYGRID_NOTIFY_RETENTION_DAYS`` before ``at`` (their attempts with them, and their
    events when nothing else holds them and they carry no once-only key); returns how many
    deliveries went. ``0`` days keeps everything. The caller commits."""
    days = settings.notify.retention_days
    if days == 0:
        return 0
    cutoff = at - timedelta(days=days)
    events = list(
        session.scalars(
            _DELETE_DELIVERIES, {"city": settings.grids.city, "cutoff": cutoff, "limit": limit}
        )
    )
    if events:
        session.execute(_DELETE_EVENTS, {"city": settings.grids.city, "ids": sorted(set(events))})
    return len(events)

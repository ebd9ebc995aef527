"""Data versions: cheap, exact "may anything shown have changed?" checks for caches.

A version is the table's change counter (bumped by a statement trigger inside every writing
transaction, so it changes exactly when the new rows become visible) and the next moment the
picture changes by itself: the earliest future deadline of an open case (an overdue flag flips
then), the next grid validity boundary (a grid version starts or ends).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from service.cases.workflow import OPEN_SQL

_SQL = {
    "grids": (
        "SELECT (SELECT version FROM change_counters WHERE name = 'grids'), "
        # two index probes (ix_grids_city_valid_from / _to), not a pass over every grid
        "LEAST((SELECT min(valid_from) FROM grids WHERE city = :city AND valid_from > :at), "
        " (SELECT min(valid_to) FROM grids WHERE city = :city AND valid_to > :at))"
    ),
    "cases": (
        "SELECT (SELECT version FROM change_counters WHERE name = 'cases'), "
        "(SELECT min(deadline_at) FROM cases WHERE city = :city "
        f" AND status IN {OPEN_SQL} AND deadline_at > :at)"
    ),
}


def data_version(session: Session, city: str, table: str, at: datetime) -> tuple[object, ...]:
    """The version of ``table`` ("cases" or "grids") for ``city`` as seen at ``at``."""
    return tuple(session.execute(text(_SQL[table]), {"city": city, "at": at}).one())

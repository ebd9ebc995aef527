"""Change counters: one number per counted table (grids, cases, the catalogue, hotspots) that a
statement trigger bumps, from a sequence, inside every writing transaction — so a value names one
state of its table for ever, and in-memory copies keyed by it are exact."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def change_counters(session: Session) -> dict[str, int]:
    """Every table's change counter as this session's transaction sees it (one query).

    Counter values come from a sequence, so a value names one state of its table for ever:
    in-memory copies keyed by it are exact, in any transaction, after any rollback.
    """
    rows = session.execute(text("SELECT name, version FROM change_counters"))
    return {name: int(version) for name, version in rows}

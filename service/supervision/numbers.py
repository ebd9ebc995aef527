"""Order numbers: ``督办〔2026〕第0012号``, counted per city and year without gaps.

The next number comes from bumping the city's counter row for the year inside the transaction
that issues the order: the row stays locked until that transaction ends, so concurrent issuers
take turns, and an issue that rolls back (or a savepoint that does) gives its number back.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

_NEXT = text(
    "INSERT INTO supervision_order_counters (city, year, last) VALUES (:city, :year, 1) "
    "ON CONFLICT (city, year) DO UPDATE SET last = supervision_order_counters.last + 1 "
    "RETURNING last"
)


def allocate(session: Session, city: str, year: int) -> int:
    """The next sequence number of ``city`` in ``year`` (1 for the first order of a year)."""
    return int(session.execute(_NEXT, {"city": city, "year": year}).scalar_one())


def number_text(year: int, seq: int) -> str:
    """The order number as printed on the order, e.g. ``督办〔2026〕第0012号``."""
    return f"督办〔{year}〕第{seq:04d}号"

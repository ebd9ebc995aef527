"""The queries behind ``/ogc``: grid versions selected by level, time and bounding box.

A collection is one grid level; a feature is one *version* of a grid. Time selection follows
Part 1's ``datetime``: a version is selected when its validity ``[valid_from, valid_to)``
intersects the requested instant or closed interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import Session

from service.db.models import Grid
from service.grids.repository import intersects_bbox


@dataclass(frozen=True)
class Period:
    """A closed time interval ``[start, end]``; ``None`` is an open end; an instant has both
    ends equal."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class FeatureQuery:
    """Which grid versions a request selects."""

    city: str
    level: str
    period: Period
    bbox: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Extent:
    """Where and when a collection's versions are: a bbox and ``[first valid_from, last
    valid_to]`` (``end`` is ``None`` while any version is current)."""

    bbox: tuple[float, float, float, float]
    start: datetime
    end: datetime | None


def overlaps(period: Period) -> ColumnElement[bool]:
    """Versions whose validity ``[valid_from, valid_to)`` intersects ``period``.

    For an instant this is "valid at that instant", the registry's usual rule.
    """
    starts_in_time = true() if period.end is None else Grid.valid_from <= period.end
    if period.start is None:
        return starts_in_time
    return and_(starts_in_time, or_(Grid.valid_to.is_(None), Grid.valid_to > period.start))


def _select(query: FeatureQuery) -> Select[Grid]:
    stmt = select(Grid).where(
        Grid.city == query.city, Grid.level == query.level, overlaps(query.period)
    )
    if query.bbox is not None:
        stmt = stmt.where(intersects_bbox(Grid.geom, query.bbox))
    return stmt


def page(session: Session, query: FeatureQuery, limit: int, offset: int) -> list[Grid]:
    """One page of the selected versions, in code then version order (a stable order for
    ``offset`` paging)."""
    stmt = _select(query).order_by(Grid.code, Grid.version).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def count(session: Session, query: FeatureQuery) -> int:
    """How many versions ``query`` selects (``numberMatched``)."""
    stmt = select(func.count()).select_from(_select(query).subquery())
    return int(session.scalar(stmt) or 0)


def extent(session: Session, city: str, level: str) -> Extent | None:
    """The extent in space and time of every version of ``level`` (``None`` when empty)."""
    box = func.ST_Extent(Grid.geom)
    row = session.execute(
        select(
            func.ST_XMin(box),
            func.ST_YMin(box),
            func.ST_XMax(box),
            func.ST_YMax(box),
            func.min(Grid.valid_from),
            func.max(Grid.valid_to),
            func.bool_or(Grid.valid_to.is_(None)),
        ).where(Grid.city == city, Grid.level == level)
    ).one()
    if row[0] is None:
        return None
    minx, miny, maxx, maxy, start, last_end, any_current = row
    return Extent(
        (float(minx), float(miny), float(maxx), float(maxy)),
        start,
        None if any_current else last_end,
    )


def version(
    session: Session, city: str, level: str, code: str, number: int | None, at: datetime
) -> Grid | None:
    """Version ``number`` of grid ``code`` in ``level``, or the one valid at ``at``."""
    stmt = select(Grid).where(Grid.city == city, Grid.level == level, Grid.code == code)
    if number is None:
        stmt = stmt.where(overlaps(Period(at, at)))
    else:
        stmt = stmt.where(Grid.version == number)
    return session.scalars(stmt).first()

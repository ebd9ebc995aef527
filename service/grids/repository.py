"""Queries on the grid registry. Shapely geometries cross in and out here and nowhere else."""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as type_cast

import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from service.db.anyof import any_of
from service.db.models import Grid, Hotspot


def valid_at(at: datetime) -> ColumnElement[bool]:
    """Rows whose validity interval ``[valid_from, valid_to)`` contains ``at``."""
    return and_(Grid.valid_from <= at, or_(Grid.valid_to.is_(None), Grid.valid_to > at))


def to_multipolygon(geom: shapely.Geometry) -> shapely.MultiPolygon:
    """Promote a Polygon to a MultiPolygon (the column type)."""
    if isinstance(geom, shapely.Polygon):
        return shapely.MultiPolygon([geom])
    # Callers pass checked polygonal geometry, so anything else is already a MultiPolygon.
    return type_cast(shapely.MultiPolygon, geom)


def intersects_bbox(column: Any, bbox: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """Rows whose geometry meets the lon/lat box — the geometry itself, not its envelope.

    (GeoAlchemy2's ``column.intersects()`` is the ``&&`` envelope operator, which also returns
    a concave or diagonal shape whose bounding box merely reaches into the box; ``ST_Intersects``
    uses the same index and then tests the shapes.)
    """
    return func.ST_Intersects(column, func.ST_MakeEnvelope(*bbox, 4326))


def degree_window(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-widths (lon, lat) in degrees of a box around a point at ``lat`` that holds every
    place within ``radius_m`` metres of it."""
    # a degree of latitude is at least 110,574 m and one of longitude at least
    # 111,320 m x cos(lat) on the sphere (more on the ellipsoid): the window never falls short
    dy = radius_m / 110_574.0 * 1.01 + 1e-7
    dx = radius_m / (111_320.0 * max(math.cos(math.radians(lat)), 1e-3)) * 1.01 + 1e-7
    return dx, dy


def within_metres(column: Any, lon: float, lat: float, radius_m: float) -> ColumnElement[bool]:
    """Rows whose geometry lies within ``radius_m`` metres of a WGS 84 point, measured on the
    ellipsoid (``geography``), and found through the geometry column's GiST index.

    A ``geography`` cast of the column alone cannot use that index (every row would be
    measured); a lon/lat window a little wider than the radius in every direction lets the
    index pick the few rows near enough to measure.
    """
    point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
    dx, dy = degree_window(lat, radius_m)
    return and_(
        column.op("&&")(func.ST_Expand(point, dx, dy)),
        func.ST_DWithin(func.Geography(column), func.Geography(point), radius_m),
    )


def geom_of(row: Grid | Hotspot) -> BaseGeometry:
    """The row's geometry as shapely."""
    return to_shape(row.geom)


@dataclass(frozen=True)
class GridFilter:
    """Which grids to read: city, time, and optional level / parent subtree / bbox."""

    city: str
    at: datetime
    level: str | None = None
    parent_code: str | None = None
    subtree_prefix: str | None = None
    bbox: tuple[float, float, float, float] | None = None


class GridRepository:
    """Reads and writes ``grids`` rows for one session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- reads -----------------------------------------------------------------------------
    def _select(self, flt: GridFilter) -> Select[Grid]:
        stmt = select(Grid).where(Grid.city == flt.city, valid_at(flt.at))
        if flt.level:
            stmt = stmt.where(Grid.level == flt.level)
        if flt.parent_code:
            stmt = stmt.where(Grid.parent_code == flt.parent_code)
        if flt.subtree_prefix:
            stmt = stmt.where(Grid.code.startswith(flt.subtree_prefix, autoescape=True))
        if flt.bbox:
            stmt = stmt.where(intersects_bbox(Grid.geom, flt.bbox))
        return stmt

    def list(self, flt: GridFilter, limit: int | None = None, offset: int = 0) -> list[Grid]:
        """Grids matching ``flt`` ordered by code."""
        stmt = self._select(flt).order_by(Grid.code).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def count(self, flt: GridFilter) -> int:
        """How many grids match ``flt``."""
        stmt = select(func.count()).select_from(self._select(flt).subquery())
        return int(self.session.scalar(stmt) or 0)

    def extent(self, flt: GridFilter) -> tuple[float, float, float, float] | None:
        """Bounding box (minlon, minlat, maxlon, maxlat) of the matching grids."""
        sub = self._select(flt).subquery()
        box = self.session.execute(
            select(
                func.ST_XMin(func.ST_Extent(sub.c.geom)),
                func.ST_YMin(func.ST_Extent(sub.c.geom)),
                func.ST_XMax(func.ST_Extent(sub.c.geom)),
                func.ST_YMax(func.ST_Extent(sub.c.geom)),
            )
        ).one()
        return None if box[0] is None else tuple(float(v) for v in box)  # type: ignore[return-value]

    def get(self, city: str, code: str, at: datetime) -> Grid | None:
        """The version of ``code`` valid at ``at``."""
        stmt = select(Grid).where(Grid.city == city, Grid.code == code, valid_at(at))
        return self.session.scalars(stmt).first()

    def get_by_id(self, city: str, grid_id: int) -> Grid | None:
        """A grid version by its row id."""
        return self.session.scalars(
            select(Grid).where(Grid.city == city, Grid.id == grid_id)
        ).first()

    def versions(self, city: str, code: str) -> builtins.list[Grid]:
        """Every version of ``code``, oldest first."""
        stmt = select(Grid).where(Grid.city == city, Grid.code == code).order_by(Grid.version)
        return list(self.session.scalars(stmt))

    def current_by_codes(self, city: str, codes: Sequence[str], at: datetime) -> dict[str, Grid]:
        """Versions valid at ``at`` for each of ``codes`` that exists."""
        if not codes:
            return {}
        stmt = select(Grid).where(Grid.city == city, any_of(Grid.code, codes), valid_at(at))
        return {g.code: g for g in self.session.scalars(stmt)}

    def chain(self, grid: Grid, at: datetime) -> builtins.list[Grid]:
        """``grid`` and its ancestors up to the city, nearest first."""
        out = [grid]
        while out[-1].parent_code:
            parent = self.get(grid.city, out[-1].parent_code, at)
            if parent is None:
                break
            out.append(parent)
        return out

    def overlapping(
        self, city: str, level: str, geom: BaseGeometry, at: datetime, exclude: Sequence[str]
    ) -> builtins.list[Grid]:
        """Grids at ``level`` valid at ``at`` whose interiors meet ``geom``."""
        stmt = select(Grid).where(
            Grid.city == city,
            Grid.level == level,
            valid_at(at),
            func.ST_Intersects(Grid.geom, from_shape(geom, srid=4326)),
            func.ST_Relate(Grid.geom, from_shape(geom, srid=4326), "T********"),
        )
        if exclude:
            stmt = stmt.where(Grid.code.not_in(list(exclude)))
        return list(self.session.scalars(stmt))

    def near_point(
        self, city: str, level: str, lon: float, lat: float, radius_m: float, at: datetime
    ) -> builtins.list[tuple[Grid, float, bool]]:
        """Grids within ``radius_m`` metres of the point: (grid, metres, covers), nearest first.

        The bbox prefilter uses the GiST index; distance is geodesic (geography).
        """
        point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
        # generous degree window so the index prefilter never cuts a true candidate
        pad = radius_m / 100_000.0 * 2.0 + 1e-6
        distance = func.ST_Distance(func.Geography(Grid.geom), func.Geography(point)).label(
            "distance"
        )
        covers = func.ST_Covers(Grid.geom, point).label("covers")
        stmt = (
            select(Grid, distance, covers)
            .where(
                Grid.city == city,
                Grid.level == level,
                valid_at(at),
                Grid.geom.op("&&")(func.ST_Expand(point, pad)),  # index window only
            )
            .order_by(text("covers DESC"), text("distance"), Grid.code)
        )
        rows = [(g, 0.0 if c else float(d), bool(c)) for g, d, c in self.session.execute(stmt)]
        # covering grids are at distance 0 (geography may measure 1e-9 m on an edge): by code
        rows.sort(key=lambda r: (not r[2], r[1], r[0].code))
        return [r for r in rows if r[2] or r[1] <= radius_m]

    def nearest(
        self, city: str, level: str, lon: float, lat: float, at: datetime
    ) -> tuple[Grid, float] | None:
        """The nearest grid at ``level`` and its geodesic distance in metres."""
        point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
        knn = (
            select(Grid)
            .where(Grid.city == city, Grid.level == level, valid_at(at))
            .order_by(Grid.geom.distance_centroid(point))
            .limit(10)
            .subquery()
        )
        distance = func.ST_Distance(func.Geography(knn.c.geom), func.Geography(point))
        stmt = select(knn.c.id, distance.label("d")).order_by(text("d"), knn.c.code).limit(1)
        row = self.session.execute(stmt).first()
        if row is None:
            return None
        grid = self.session.get(Grid, row.id)
        assert grid is not None
        return grid, float(row.d)

    def versions_overlapping(
        self, city: str, level: str, start: datetime, end: datetime
    ) -> builtins.list[Grid]:
        """Every version at ``level`` valid at some instant of ``[start, end]``."""
        stmt = select(Grid).where(
            Grid.city == city,
            Grid.level == level,
            Grid.valid_from <= end,
            or_(Grid.valid_to.is_(None), Grid.valid_to > start),
        )
        return list(self.session.scalars(stmt))

    def fingerprint(self, city: str, level: str) -> tuple[Any, ...]:
        """Changes whenever a version of a grid at ``level`` is added or closed."""
        stmt = select(func.count(), func.max(Grid.id), func.max(Grid.valid_to)).where(
            Grid.city == city, Grid.level == level
        )
        return tuple(self.session.execute(stmt).one())

    def content_digest(self, flt: GridFilter) -> str:
        """A hash of every matching row's content: changes whenever an export would."""
        sub = self._select(flt).subquery()
        row_text = func.md5(cast(func.row(*sub.c), Text))
        stmt = select(
            func.md5(func.string_agg(row_text, aggregate_order_by(literal(""), sub.c.code)))
        )
        return str(self.session.scalar(stmt) or "empty")

    # -- writes ----------------------------------------------------------------------------
    def add(self, grid: Grid) -> Grid:
        """Insert a new grid version."""
        self.session.add(grid)
        self.session.flush()
        return grid

    def close_version(self, grid: Grid, at: datetime) -> None:
        """End ``grid``'s validity at ``at``."""
        self.session.execute(update(Grid).where(Grid.id == grid.id).values(valid_to=at))
        grid.valid_to = at


def new_grid(**values: Any) -> Grid:
    """A ``Grid`` row from plain values; ``geom`` may be a shapely geometry."""
    geom = values.pop("geom")
    if isinstance(geom, shapely.Geometry):
        geom = from_shape(to_multipolygon(geom), srid=4326)
    return Grid(geom=geom, **values)

"""Street centre lines: list, create, import, edit, delete — every write audited.

Streets have no versions (coverage is recomputed from the current ones); the audit log keeps
each street as it was before an edit or a delete, and one row per imported file.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from typing import Any

import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from service.accounts.audit import AuditLog, snapshot
from service.accounts.principal import Principal
from service.clock import now
from service.db.models import Street
from service.errors import InvalidInput, NotFound
from service.grids.repository import intersects_bbox
from service.grids.scope import ScopeArea
from service.settings import AppSettings

KIND_MAX = 20  # the column's width
EDITABLE = ("name", "kind", "geometry")
AUDIT_IDS = 1000  # ids an import's audit row lists (the count is complete)


@dataclass
class StreetInput:
    """One street to write: a WGS 84 LineString with an optional name and kind."""

    geometry: BaseGeometry
    name: str | None = None
    kind: str | None = None


def street_problem(item: StreetInput) -> dict[str, str] | None:
    """What is wrong with ``item`` (``field`` and ``reason``), or ``None``."""
    geom = item.geometry
    if geom is None or geom.is_empty:
        return {"field": "geometry", "reason": "geometry is empty"}
    if geom.geom_type != "LineString":
        return {
            "field": "geometry",
            "reason": f"a street is a LineString, got {geom.geom_type} (import a file to split "
            "MultiLineStrings into their parts)",
        }
    if any(math.isnan(v) for v in geom.bounds):
        return {"field": "geometry", "reason": "coordinates must be numbers"}
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        return {
            "field": "geometry",
            "reason": "coordinates out of range (lon -180..180, lat -90..90); send WGS 84 "
            "lon/lat or name the datum",
        }
    if geom.length == 0:
        return {"field": "geometry", "reason": "a street needs two distinct points"}
    if item.kind is not None and len(item.kind) > KIND_MAX:
        return {"field": "kind", "reason": f"kind is at most {KIND_MAX} characters"}
    if item.name is not None and len(item.name) > 200:
        return {"field": "name", "reason": "name is at most 200 characters"}
    return None


class StreetService:
    """Street operations for one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.audit = AuditLog(session, settings)

    # -- reads -----------------------------------------------------------------------------
    def _select(
        self,
        bbox: tuple[float, float, float, float] | None,
        name: str | None,
        kind: str | None,
    ) -> Select[Street]:
        stmt = select(Street).where(Street.city == self.city)
        if bbox:
            stmt = stmt.where(intersects_bbox(Street.geom, bbox))
        if name:
            stmt = stmt.where(Street.name.contains(name, autoescape=True))
        if kind:
            stmt = stmt.where(Street.kind == kind)
        return stmt

    def list(
        self,
        bbox: tuple[float, float, float, float] | None = None,
        name: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[Street]:
        """Streets meeting ``bbox``, whose name contains ``name``, of ``kind``; by id."""
        stmt = self._select(bbox, name, kind).order_by(Street.id).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def count(
        self,
        bbox: tuple[float, float, float, float] | None = None,
        name: str | None = None,
        kind: str | None = None,
    ) -> int:
        """How many streets :meth:`list` would return without a limit."""
        sub = self._select(bbox, name, kind).subquery()
        return int(self.session.scalar(select(func.count()).select_from(sub)) or 0)

    def get(self, street_id: int) -> Street:
        """A street by id, or ``NotFound``."""
        street = self.session.get(Street, street_id)
        if street is None or street.city != self.city:
            raise NotFound(f"no street {street_id}", field="id")
        return street

    # -- writes ----------------------------------------------------------------------------
    def create(
        self,
        items: builtins.list[StreetInput],
        *,
        by: Principal,
        source: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> builtins.list[Street]:
        """Add streets as ``by``, all or nothing; with ``replace`` the city's streets are
        replaced by these (a new road network) in the same transaction.

        The audit log gets a row per street, or — for an import described by ``source`` —
        one row for the file with the count, the ids and how many streets it replaced.
        """
        errors = [
            {"index": i, **problem}
            for i, item in enumerate(items)
            if (problem := street_problem(item)) is not None
        ]
        if errors:
            raise InvalidInput(
                f"{len(errors)} street(s) rejected, nothing stored: {errors[0]['reason']}",
                field=str(errors[0]["field"]) if len(items) == 1 and source is None else "features",
                errors=errors,
            )
        if source is not None and not items:
            raise InvalidInput("the file has no streets, nothing stored", field="file")
        scope = ScopeArea(self.session, self.settings, by)
        if replace and not by.city_wide:
            scope.refuse("replacing the whole city's streets")
        for i, item in enumerate(items):
            scope.require([item.geometry], f"street {i}" if source else "the street")
        replaced = 0
        if replace:
            gone = self.session.execute(
                delete(Street).where(Street.city == self.city).returning(Street.id)
            )
            replaced = len(gone.all())
        rows = [
            Street(
                city=self.city,
                name=item.name,
                kind=item.kind,
                geom=from_shape(shapely.force_2d(item.geometry), srid=4326),
                updated_at=now(),
            )
            for item in items
        ]
        self.session.add_all(rows)
        self.session.flush()
        if source is None:
            for row in rows:
                self.audit.record(by, "street.create", "street", str(row.id), None, snapshot(row))
        else:
            ids = [r.id for r in rows]
            after = {
                **source,
                "created": len(ids),
                "ids": ids[:AUDIT_IDS],
                "replace": replace,
                "replaced": replaced,
            }
            if len(ids) > AUDIT_IDS:
                after["ids_truncated"] = True
            self.audit.record(by, "street.import", "streets", source.get("file"), None, after)
        return rows

    def update(self, street_id: int, values: dict[str, Any], *, by: Principal) -> Street:
        """Change a street's name, kind or line as ``by`` (audited before and after)."""
        street = self.get(street_id)
        scope = ScopeArea(self.session, self.settings, by)
        scope.require([to_shape(street.geom)], f"street {street_id}")
        unknown = set(values) - set(EDITABLE)
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidInput(f"{name!r} cannot be changed here", field=name)
        if "geometry" in values and values["geometry"] is None:
            raise InvalidInput("geometry cannot be null; leave it out to keep it", field="geometry")
        merged = StreetInput(
            geometry=values["geometry"] if "geometry" in values else to_shape(street.geom),
            name=values.get("name", street.name),
            kind=values.get("kind", street.kind),
        )
        problem = street_problem(merged)
        if problem:
            raise InvalidInput(f"street {street_id}: {problem['reason']}", field=problem["field"])
        scope.require([merged.geometry], f"the new line of street {street_id}")
        before = snapshot(street)
        street.name, street.kind = merged.name, merged.kind
        if "geometry" in values:
            street.geom = from_shape(shapely.force_2d(merged.geometry), srid=4326)
        street.updated_at = now()
        self.session.flush()
        self.audit.record(by, "street.update", "street", str(street_id), before, snapshot(street))
        return street

    def delete(self, street_id: int, *, by: Principal) -> None:
        """Remove a street as ``by``; the audit log keeps it as it was."""
        street = self.get(street_id)
        ScopeArea(self.session, self.settings, by).require(
            [to_shape(street.geom)], f"street {street_id}"
        )
        before = snapshot(street)
        self.session.delete(street)
        self.session.flush()
        self.audit.record(by, "street.delete", "street", str(street_id), before, None)

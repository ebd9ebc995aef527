"""Hotspots: places that breed problems, with influence zones measured in metres."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text
from sqlalchemy.orm import Session

from gis.hotspots import influence_zones, length_in_grids, share_in_grids
from service.accounts.audit import AuditLog, snapshot
from service.accounts.principal import Principal
from service.clock import now
from service.datums import to_wgs84_point
from service.db.models import Hotspot, HotspotKind
from service.errors import Conflict, InvalidInput, NotFound
from service.grids.registry import Registry
from service.grids.repository import (
    GridFilter,
    geom_of,
    intersects_bbox,
    to_multipolygon,
    within_metres,
)
from service.grids.scope import ScopeArea
from service.settings import AppSettings


def active_at(at: datetime) -> ColumnElement[bool]:
    """Hotspots active at ``at``."""
    return and_(Hotspot.active_from <= at, or_(Hotspot.active_to.is_(None), Hotspot.active_to > at))


@dataclass(frozen=True)
class CoveringHotspot:
    """A hotspot whose zone covers a point: what case intake needs of it."""

    id: int
    owner_unit: str | None
    distance_m: float  # from the hotspot's own geometry, on the ellipsoid


# A fixed text (compiled once, prepared by the driver): case intake asks it for every report.
_COVERING = text(
    "SELECT id, owner_unit, ST_Distance(geography(geom), geography(p.g)) AS d"
    " FROM hotspots, (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g) p"
    " WHERE city = :city AND active_from <= :at AND (active_to IS NULL OR active_to > :at)"
    " AND ST_Covers(zone, p.g) ORDER BY d, id"
)


@dataclass
class HotspotInput:
    """One hotspot to create, as given by a client or a file (geometry in WGS 84)."""

    key: str
    kind: str
    name: str
    geometry: BaseGeometry
    buffer_m: float | None = None
    active_from: datetime | None = None
    active_to: datetime | None = None
    owner_unit: str | None = None
    owner_name: str | None = None
    owner_phone: str | None = None
    risk_weight: float | None = None
    patrol_quota_per_week: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# What PATCH may change; a new geometry, buffer or kind-default buffer remakes the zone.
EDITABLE = (
    "kind",
    "name",
    "geometry",
    "buffer_m",
    "active_from",
    "active_to",
    "owner_unit",
    "owner_name",
    "owner_phone",
    "risk_weight",
    "patrol_quota_per_week",
)
# The geometry types the hotspots table takes (its check constraint).
_GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
# An audit row of an import names at most this many keys (the count is complete).
AUDIT_KEYS = 1000


class HotspotService:
    """Hotspot operations for one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.audit = AuditLog(session, settings)

    def kinds(self) -> list[HotspotKind]:
        """The city's hotspot kinds."""
        stmt = select(HotspotKind).where(HotspotKind.city == self.city).order_by(HotspotKind.key)
        return list(self.session.scalars(stmt))

    def add_kind(
        self,
        key: str,
        name: str,
        default_buffer_m: float,
        default_risk_weight: float,
        *,
        by: Principal,
    ) -> HotspotKind:
        """Add a city-specific kind, as ``by``."""
        if self.session.get(HotspotKind, (self.city, key)) is not None:
            raise Conflict(f"hotspot kind {key!r} already exists", field="key")
        kind = HotspotKind(
            city=self.city,
            key=key,
            name=name,
            default_buffer_m=default_buffer_m,
            default_risk_weight=default_risk_weight,
        )
        self.session.add(kind)
        self.session.flush()
        self.audit.record(by, "hotspot_kind.create", "hotspot_kind", key, None, snapshot(kind))
        return kind

    def get(self, hotspot_id: int) -> Hotspot:
        """A hotspot by id, or ``NotFound``."""
        spot = self.session.get(Hotspot, hotspot_id)
        if spot is None or spot.city != self.city:
            raise NotFound(f"no hotspot {hotspot_id}", field="id")
        return spot

    def list(
        self,
        kind: str | None = None,
        at: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_ended: bool = True,
    ) -> builtins.list[Hotspot]:
        """Hotspots (active at ``at`` when given), by kind and bbox (zones meeting it), by id;
        without ``include_ended``, none that have ended by now."""
        stmt = self._select(kind, at, bbox, include_ended).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def count(
        self,
        kind: str | None = None,
        at: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        include_ended: bool = True,
    ) -> int:
        """How many hotspots :meth:`list` would return without a limit."""
        sub = self._select(kind, at, bbox, include_ended).subquery()
        return int(self.session.scalar(select(func.count()).select_from(sub)) or 0)

    def _select(
        self,
        kind: str | None,
        at: datetime | None,
        bbox: tuple[float, float, float, float] | None,
        include_ended: bool = True,
    ) -> Select[Hotspot]:
        stmt = select(Hotspot).where(Hotspot.city == self.city).order_by(Hotspot.id)
        if not include_ended:
            stmt = stmt.where(or_(Hotspot.active_to.is_(None), Hotspot.active_to > now()))
        if kind:
            stmt = stmt.where(Hotspot.kind == kind)
        if at:
            stmt = stmt.where(active_at(at))
        if bbox:
            stmt = stmt.where(intersects_bbox(Hotspot.zone, bbox))
        return stmt

    def create(
        self,
        items: builtins.list[HotspotInput],
        *,
        by: Principal,
        source: dict[str, Any] | None = None,
    ) -> builtins.list[Hotspot]:
        """Create hotspots as ``by``, all or nothing; zones are buffered in metres.

        The audit log gets a row per hotspot, or — for an import described by ``source``
        (file name, digest …) — one row for the file with the keys created.
        """
        kinds = {k.key: k for k in self.kinds()}
        errors: list[dict[str, Any]] = []
        keys = set(self.session.scalars(select(Hotspot.key).where(Hotspot.city == self.city)))
        seen: set[str] = set()
        for i, item in enumerate(items):
            reason = self._problem(item, kinds, keys | seen)
            if reason:
                errors.append({"index": i, "key": item.key, **reason})
            seen.add(item.key)
        if errors:
            raise InvalidInput(
                f"{len(errors)} hotspot(s) rejected, nothing stored: {errors[0]['reason']}",
                field=errors[0]["field"] if len(items) == 1 else "features",
                errors=errors,
            )
        scope = ScopeArea(self.session, self.settings, by)
        for item in items:
            scope.require([item.geometry], f"hotspot {item.key}")
        buffers = [
            item.buffer_m if item.buffer_m is not None else kinds[item.kind].default_buffer_m
            for item in items
        ]
        try:
            zones = influence_zones([i.geometry for i in items], buffers)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="buffer_m") from exc
        rows = []
        for item, buffer_m, zone in zip(items, buffers, zones, strict=True):
            kind = kinds[item.kind]
            rows.append(
                Hotspot(
                    city=self.city,
                    key=item.key,
                    kind=item.kind,
                    name=item.name,
                    buffer_m=buffer_m,
                    active_from=item.active_from or now(),
                    active_to=item.active_to,
                    owner_unit=item.owner_unit,
                    owner_name=item.owner_name,
                    owner_phone=item.owner_phone,
                    risk_weight=item.risk_weight
                    if item.risk_weight is not None
                    else kind.default_risk_weight,
                    patrol_quota_per_week=item.patrol_quota_per_week,
                    geom=from_shape(item.geometry, srid=4326),
                    zone=from_shape(to_multipolygon(zone), srid=4326),
                )
            )
        self.session.add_all(rows)
        self.session.flush()
        if source is None:
            for row in rows:
                self.audit.record(by, "hotspot.create", "hotspot", row.key, None, snapshot(row))
        else:
            created = [r.key for r in rows]
            after = {**source, "created": len(created), "keys": created[:AUDIT_KEYS]}
            if len(created) > AUDIT_KEYS:
                after["keys_truncated"] = True
            key = source.get("file")
            self.audit.record(by, "hotspot.import", "hotspots", key, None, after)
        return rows

    def update(self, hotspot_id: int, values: dict[str, Any], *, by: Principal) -> Hotspot:
        """Change a hotspot as ``by``, checked like a new one; a new geometry, buffer or kind
        remakes the zone (a kind change keeps the buffer unless ``buffer_m`` is sent)."""
        spot = self.get(hotspot_id)
        scope = ScopeArea(self.session, self.settings, by)
        scope.require([to_shape(spot.geom)], f"hotspot {spot.key}")
        unknown = set(values) - set(EDITABLE)
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidInput(f"{name!r} cannot be changed here", field=name)
        for name in ("kind", "name", "geometry", "active_from"):
            if name in values and values[name] is None:
                raise InvalidInput(f"{name} cannot be null; leave it out to keep it", field=name)
        merged = HotspotInput(
            key=spot.key,
            kind=values.get("kind", spot.kind),
            name=values.get("name", spot.name),
            geometry=values["geometry"] if "geometry" in values else to_shape(spot.geom),
            buffer_m=values.get("buffer_m", spot.buffer_m),
            active_from=values.get("active_from", spot.active_from),
            active_to=values.get("active_to", spot.active_to),
        )
        kinds = {k.key: k for k in self.kinds()}
        reason = self._problem(merged, kinds, set())
        if reason:
            raise InvalidInput(f"hotspot {spot.key}: {reason['reason']}", field=reason["field"])
        if merged.buffer_m is None:  # null buffer_m: back to the kind's default
            merged.buffer_m = kinds[merged.kind].default_buffer_m
        if "risk_weight" in values and values["risk_weight"] is None:
            values["risk_weight"] = kinds[merged.kind].default_risk_weight
        scope.require([merged.geometry], f"the new place of hotspot {spot.key}")
        before = snapshot(spot)
        if "geometry" in values or merged.buffer_m != spot.buffer_m:
            try:
                (zone,) = influence_zones([merged.geometry], [merged.buffer_m])
            except ValueError as exc:
                raise InvalidInput(str(exc), field="buffer_m") from exc
            spot.geom = from_shape(merged.geometry, srid=4326)
            spot.zone = from_shape(to_multipolygon(zone), srid=4326)
        spot.kind, spot.name, spot.buffer_m = merged.kind, merged.name, merged.buffer_m
        if merged.active_from is not None:
            spot.active_from = merged.active_from
        spot.active_to = merged.active_to
        for name in ("owner_unit", "owner_name", "owner_phone", "risk_weight"):
            if name in values:
                setattr(spot, name, values[name])
        if "patrol_quota_per_week" in values:
            spot.patrol_quota_per_week = values["patrol_quota_per_week"]
        spot.updated_at = now()
        self.session.flush()
        self.audit.record(by, "hotspot.update", "hotspot", spot.key, before, snapshot(spot))
        return spot

    def end(self, hotspot_id: int, at: datetime | None = None, *, by: Principal) -> Hotspot:
        """End a hotspot at ``at`` (default now), as ``by``: a construction site that finished.

        It no longer matches cases reported afterwards nor shows in current lists; as-of reads
        (``active_at`` before the end) still find it, and past cases keep their match.
        """
        spot = self.get(hotspot_id)
        ScopeArea(self.session, self.settings, by).require(
            [to_shape(spot.geom)], f"hotspot {spot.key}"
        )
        at = at or now()
        if spot.active_to is not None and spot.active_to <= now():
            raise Conflict(
                f"hotspot {spot.key} already ended at {spot.active_to.isoformat()}",
                field="active_to",
            )
        if at <= spot.active_from:
            raise InvalidInput(
                f"the end ({at.isoformat()}) must be after the start of hotspot {spot.key} "
                f"({spot.active_from.isoformat()})",
                field="at",
            )
        before = snapshot(spot)
        spot.active_to = at
        spot.updated_at = now()
        self.session.flush()
        self.audit.record(by, "hotspot.end", "hotspot", spot.key, before, snapshot(spot))
        return spot

    @staticmethod
    def _problem(
        item: HotspotInput, kinds: dict[str, HotspotKind], taken: set[str]
    ) -> dict[str, str] | None:
        if not item.key:
            return {"field": "key", "reason": "key is required (a stable id such as market-01)"}
        if item.key in taken:
            return {"field": "key", "reason": f"key {item.key!r} is already used"}
        if item.kind not in kinds:
            return {
                "field": "kind",
                "reason": f"unknown kind {item.kind!r}; known: {', '.join(sorted(kinds))}",
            }
        geom = item.geometry
        if geom is not None and geom.geom_type not in _GEOMETRY_TYPES:
            return {
                "field": "geometry",
                "reason": f"a hotspot is a point, line or polygon, not a {geom.geom_type}",
            }
        if geom is None or geom.is_empty or not geom.is_valid:
            why = shapely.is_valid_reason(geom) if geom is not None else "missing"
            return {"field": "geometry", "reason": f"geometry is empty or invalid ({why})"}
        minx, miny, maxx, maxy = geom.bounds
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            return {"field": "geometry", "reason": "coordinates out of lon/lat range"}
        if item.buffer_m is not None and item.buffer_m < 0:
            return {"field": "buffer_m", "reason": "buffer_m must be >= 0 metres"}
        if item.active_to and item.active_from and item.active_to <= item.active_from:
            return {"field": "active_to", "reason": "active_to must be after active_from"}
        return None

    def near(
        self, lon: float, lat: float, datum: str, radius_m: float, at: datetime | None = None
    ) -> builtins.list[tuple[Hotspot, float, bool]]:
        """Hotspots whose geometry is within ``radius_m`` metres: (hotspot, metres, in zone)."""
        lon, lat = to_wgs84_point(lon, lat, datum)
        point = func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)
        distance = func.ST_Distance(func.Geography(Hotspot.geom), func.Geography(point))
        stmt = (
            select(Hotspot, distance.label("d"), func.ST_Covers(Hotspot.zone, point))
            .where(
                Hotspot.city == self.city,
                active_at(at or now()),
                within_metres(Hotspot.geom, lon, lat, radius_m),
            )
            .order_by("d", Hotspot.id)
        )
        return [(h, float(d), bool(inside)) for h, d, inside in self.session.execute(stmt)]

    def covering(self, lon: float, lat: float, at: datetime) -> builtins.list[CoveringHotspot]:
        """Active hotspots whose influence zone covers the point, nearest geometry first."""
        rows = self.session.execute(
            _COVERING, {"city": self.city, "lon": lon, "lat": lat, "at": at}
        )
        return [CoveringHotspot(int(i), owner, float(d)) for i, owner, d in rows]

    def grids_touched(
        self, hotspot_id: int, registry: Registry, level: str = "unit"
    ) -> dict[str, Any]:
        """The grids a hotspot's zone touches with the share of the zone (and line) in each."""
        spot = self.get(hotspot_id)
        zone = to_shape(spot.zone)
        grids = registry.repo.list(
            GridFilter(city=self.city, at=now(), level=level, bbox=zone.bounds)
        )
        codes = [g.code for g in grids]
        geoms = [geom_of(g) for g in grids]
        out: dict[str, Any] = {
            "hotspot": spot.id,
            "level": level,
            "zone": share_in_grids(zone, codes, geoms),
        }
        own = to_shape(spot.geom)
        if own.geom_type in ("LineString", "MultiLineString"):
            out["line"] = length_in_grids(own, codes, geoms)
        return out

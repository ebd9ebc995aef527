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


class HotspotService:
    """Hotspot operations for one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city

    def kinds(self) -> list[HotspotKind]:
        """The city's hotspot kinds."""
        stmt = select(HotspotKind).where(HotspotKind.city == self.city).order_by(HotspotKind.key)
        return list(self.session.scalars(stmt))

    def add_kind(
        self, key: str, name: str, default_buffer_m: float, default_risk_weight: float
    ) -> HotspotKind:
        """Add a city-specific kind."""
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
    ) -> builtins.list[Hotspot]:
        """Hotspots (active at ``at`` when given), by kind and bbox (zones meeting it), by id."""
        stmt = self._select(kind, at, bbox).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.scalars(stmt))

    def count(
        self,
        kind: str | None = None,
        at: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> int:
        """How many hotspots :meth:`list` would return without a limit."""
        sub = self._select(kind, at, bbox).subquery()
        return int(self.session.scalar(select(func.count()).select_from(sub)) or 0)

    def _select(
        self,
        kind: str | None,
        at: datetime | None,
        bbox: tuple[float, float, float, float] | None,
    ) -> Select[Hotspot]:
        stmt = select(Hotspot).where(Hotspot.city == self.city).order_by(Hotspot.id)
        if kind:
            stmt = stmt.where(Hotspot.kind == kind)
        if at:
            stmt = stmt.where(active_at(at))
        if bbox:
            stmt = stmt.where(intersects_bbox(Hotspot.zone, bbox))
        return stmt

    def create(self, items: builtins.list[HotspotInput]) -> builtins.list[Hotspot]:
        """Create hotspots, all or nothing; zones are buffered in metres."""
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
        return rows

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

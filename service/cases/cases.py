"""Cases: intake (mapping to grid, hotspots and department), the workflow, and the lists.

Every intake path (JSON API, Open311, bulk import) goes through ``CaseService.intake`` or its
vectorised twin in ``service.cases.importer``, so mapping, routing, deadlines and duplicate checks
are the same whichever way a problem arrives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gis.workclock import Unit
from service.cases.catalogue import load_router
from service.cases.workflow import (
    OPEN_SQL,
    OPEN_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    next_status,
)
from service.clock import now, work_clock
from service.datums import to_wgs84_point
from service.db.models import Case, CaseEvent, Category
from service.db.versions import change_counters
from service.errors import Conflict, InvalidInput, NotFound
from service.grids.registry import Registry
from service.grids.repository import degree_window
from service.hotspots.hotspots import HotspotService
from service.settings import AppSettings

SOURCES = ("patrol", "citizen", "inspector", "open311", "import", "hotline")


@dataclass
class CaseInput:
    """A reported problem as a client sends it."""

    category_code: str
    lon: float
    lat: float
    datum: str = "wgs84"
    source: str = "citizen"
    description: str | None = None
    address: str | None = None
    reporter: dict[str, Any] | None = None
    reported_at: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    photos: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    allow_unassigned: bool = False

    def fingerprint(self) -> str:
        """Hash of the request body (without the key) to spot a reused idempotency key."""
        body = asdict(self)
        body.pop("idempotency_key")
        if body["reported_at"] is not None:
            body["reported_at"] = body["reported_at"].isoformat()
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Action:
    """A workflow step asked by a user."""

    action: str
    actor: str
    note: str | None = None
    photos: list[str] = field(default_factory=list)
    lon: float | None = None
    lat: float | None = None
    datum: str = "wgs84"
    expected_version: int | None = None
    deadline_at: datetime | None = None
    into: int | None = None
    department: str | None = None


# Same category within the duplicate radius (measured on the ellipsoid, found through the GiST
# index with a lon/lat window), nearest first: an open case reported within the window, and a
# case closed within the recurrence window. A fixed text: compiled once, prepared by the driver.
_NEAR_SAME_CATEGORY = (
    "SELECT id FROM cases WHERE city = :city AND category_code = :code"
    " AND geom && ST_Expand(p.g, :dx, :dy) AND ST_DWithin(geography(geom), geography(p.g), :radius)"
    " AND {condition}"
    " ORDER BY ST_Distance(geography(geom), geography(p.g)), id LIMIT 1"
)
_DUPLICATE_AND_RECURRENCE = text(
    "SELECT ("
    + _NEAR_SAME_CATEGORY.format(
        condition=f"status IN {OPEN_SQL} AND duplicate_of IS NULL"
        " AND reported_at BETWEEN :window_from AND :window_to"
    )
    + "), ("
    + _NEAR_SAME_CATEGORY.format(
        condition="status = 'closed' AND closed_at BETWEEN :closed_from AND :closed_to"
    )
    + ") FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g) p"
)


class CaseService:
    """Case operations for one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.registry = Registry(session, settings)
        self.hotspots = HotspotService(session, settings)

    # -- intake ----------------------------------------------------------------------------
    def category(self, code: str) -> Category:
        """The category ``code``, or ``InvalidInput`` naming the catalogue."""
        cat = self.session.get(Category, (self.city, code))
        if cat is None:
            raise InvalidInput(
                f"unknown category {code!r}; see GET /api/categories for the catalogue",
                field="category_code",
            )
        return cat

    def intake(self, item: CaseInput, actor: str = "system") -> tuple[Case, bool]:
        """Register a report; returns (case, created). A retried key returns the first case."""
        fingerprint = item.fingerprint()
        if item.idempotency_key:
            existing = self.by_key(item.idempotency_key)
            if existing is not None:
                if existing.request_hash != fingerprint:
                    raise Conflict(
                        f"idempotency key {item.idempotency_key!r} was used for a different "
                        f"report (case {existing.id}); use a new key for a new report",
                        field="idempotency_key",
                        case_id=existing.id,
                    )
                return existing, False
        counters = change_counters(self.session)  # one read proves the copies in memory
        router = load_router(self.session, self.city, counters)
        cat = router.categories.get(item.category_code) or self.category(item.category_code)
        missing = [f for f in cat.required_fields if not item.fields.get(f)]
        if missing:
            raise InvalidInput(
                f"category {cat.code} ({cat.name}) needs field(s) {', '.join(missing)}",
                field=f"fields.{missing[0]}",
            )
        if item.source not in SOURCES:
            raise InvalidInput(
                f"unknown source {item.source!r}; use one of {', '.join(SOURCES)}", field="source"
            )
        lon, lat = to_wgs84_point(item.lon, item.lat, item.datum)
        t = now()
        reported_at = item.reported_at or t
        if reported_at > t + timedelta(minutes=5):
            raise InvalidInput(
                f"reported_at {reported_at.isoformat()} is in the future", field="reported_at"
            )
        grid, candidates = self._grid(lon, lat, reported_at, item.allow_unassigned)
        spots = self.hotspots.covering(lon, lat, reported_at)
        route = router.route(cat.code, grid.code if grid else None, [h.owner_unit for h in spots])
        # ck_categories_unit keeps deadline_unit to "hours" or "days".
        deadline = work_clock(self.settings).add(
            reported_at, cat.deadline_amount, cast(Unit, cat.deadline_unit)
        )
        duplicate_of, recurring_of = self._duplicate_and_recurrence(cat.code, lon, lat, reported_at)
        case = Case(
            city=self.city,
            category_code=cat.code,
            source=item.source,
            status="reported",
            description=item.description,
            address=item.address,
            reporters=[{**item.reporter, "source": item.source, "at": reported_at.isoformat()}]
            if item.reporter
            else [],
            fields=item.fields,
            photos=item.photos,
            reported_at=reported_at,
            deadline_at=deadline,
            updated_at=t,
            datum=item.datum,
            lon=lon,
            lat=lat,
            grid_id=grid.id if grid else None,
            grid_code=grid.code if grid else None,
            grid_candidates=candidates,
            hotspot_ids=[h.id for h in spots],
            department=route.department,
            routed_by=route.routed_by,
            duplicate_of=duplicate_of,
            recurring_of=recurring_of,
            idempotency_key=item.idempotency_key,
            request_hash=fingerprint,
        )
        self.session.add(case)
        self.session.flush()
        # the report itself is the case row; the history stores the steps after it
        return case, True

    def _grid(self, lon: float, lat: float, at: datetime, allow_unassigned: bool):
        try:
            found = self.registry.locate(
                lon, lat, "wgs84", at=at, radius_m=self.settings.grids.boundary_tolerance_m
            )
        except NotFound as exc:
            if allow_unassigned:
                return None, []
            raise InvalidInput(
                exc.message + "; send allow_unassigned=true to store it without a grid",
                field="lon,lat",
                **exc.extra,
            ) from exc
        # stored only near a boundary: elsewhere the grid itself is the only candidate
        candidates = [{"code": g.code, "distance_m": round(d, 2)} for g, d in found.candidates]
        return found.grid, candidates if len(candidates) > 1 else []

    def _duplicate_and_recurrence(
        self, code: str, lon: float, lat: float, at: datetime
    ) -> tuple[int | None, int | None]:
        """The open case this one duplicates, and the closed one it recurs (one query)."""
        cases = self.settings.cases
        window = timedelta(hours=cases.duplicate_window_hours)
        dx, dy = degree_window(lat, cases.duplicate_radius_m)
        row = self.session.execute(
            _DUPLICATE_AND_RECURRENCE,
            {
                "city": self.city,
                "code": code,
                "lon": lon,
                "lat": lat,
                "dx": dx,
                "dy": dy,
                "radius": cases.duplicate_radius_m,
                "window_from": at - window,
                "window_to": at + window,
                "closed_from": at - timedelta(days=cases.recurrence_days),
                "closed_to": at,
            },
        ).one()
        return row[0], row[1]

    def by_ids(self, ids: list[int]) -> list[Case]:
        """The cases of this city among ``ids`` (unknown ids are skipped), in id order."""
        stmt = select(Case).where(Case.city == self.city, Case.id.in_(ids)).order_by(Case.id)
        return list(self.session.scalars(stmt))

    def by_key(self, key: str) -> Case | None:
        """The case created with idempotency ``key``."""
        return self.session.scalar(
            select(Case).where(Case.city == self.city, Case.idempotency_key == key)
        )

    # -- workflow --------------------------------------------------------------------------
    def get(self, case_id: int, lock: bool = False) -> Case:
        """A case by id (row-locked when ``lock``), or ``NotFound``."""
        stmt = select(Case).where(Case.city == self.city, Case.id == case_id)
        if lock:
            stmt = stmt.with_for_update()
        case = self.session.scalar(stmt)
        if case is None:
            raise NotFound(f"no case {case_id}", field="id")
        return case

    def act(self, case_id: int, step: Action) -> Case:
        """Apply a workflow action; illegal steps and stale versions are ``Conflict``."""
        if step.action not in TRANSITIONS:
            raise InvalidInput(
                f"unknown action {step.action!r}; actions are {', '.join(TRANSITIONS)}",
                field="action",
            )
        case = self.get(case_id, lock=True)
        if step.expected_version is not None and step.expected_version != case.lock_version:
            raise Conflict(
                f"case {case_id} changed since version {step.expected_version} (now "
                f"{case.lock_version}, {case.status}); reload it and try again",
                field="version",
                current_version=case.lock_version,
                status=case.status,
            )
        try:
            target = next_status(case.status, step.action)
        except IllegalTransition as exc:
            raise Conflict(
                str(exc), field="action", status=case.status, allowed=exc.allowed
            ) from exc
        if TRANSITIONS[step.action].needs_note and not (step.note or "").strip():
            raise InvalidInput(f"{step.action} needs a note saying why", field="note")
        location = None
        if step.lon is not None and step.lat is not None:
            location = to_wgs84_point(step.lon, step.lat, step.datum)
        t = now()
        data: dict[str, Any] = {}
        if step.action == "extend":
            data = self._extend(case, step.deadline_at)
        elif step.action == "merge":
            data = self._merge_into(case, step, t)
        elif step.action == "dispatch" and step.department:
            data = {"department": step.department, "previous": case.department}
            case.department = step.department
            case.routed_by = f"dispatcher {step.actor}"
        elif step.action == "verify":
            case.closed_at = t
        elif step.action == "reopen":
            case.closed_at = None
        before = case.status
        case.status = target
        case.updated_at = t
        case.lock_version += 1
        self._event(
            case, step.action, before, target, step.actor, t, step.note, step.photos, location, data
        )
        self.session.flush()
        return case

    def _extend(self, case: Case, deadline_at: datetime | None) -> dict[str, Any]:
        if deadline_at is None:
            raise InvalidInput("extend needs deadline_at, the new deadline", field="deadline_at")
        if case.deadline_at and deadline_at <= case.deadline_at:
            raise InvalidInput(
                f"the new deadline must be later than {case.deadline_at.isoformat()}",
                field="deadline_at",
            )
        old = case.deadline_at
        case.deadline_at = deadline_at
        return {
            "old_deadline": old.isoformat() if old else None,
            "new_deadline": deadline_at.isoformat(),
        }

    def _merge_into(self, case: Case, step: Action, t: datetime) -> dict[str, Any]:
        if step.into is None or step.into == case.id:
            raise InvalidInput("merge needs 'into', the id of another open case", field="into")
        master = self.get(step.into, lock=True)
        if master.status not in OPEN_STATUSES:
            raise Conflict(
                f"case {master.id} is {master.status}; merge into an open case", field="into"
            )
        master.reporters = [*master.reporters, *case.reporters]
        master.lock_version += 1
        master.updated_at = t
        case.duplicate_of = master.id
        self._event(
            master,
            "absorb",
            master.status,
            master.status,
            step.actor,
            t,
            step.note,
            [],
            None,
            {"merged": case.id},
        )
        return {"into": master.id}

    def _event(
        self,
        case: Case,
        action: str,
        before: str | None,
        after: str,
        actor: str,
        at: datetime,
        note: str | None,
        photos: list[str],
        location: tuple[float, float] | None,
        data: dict[str, Any],
    ) -> None:
        self.session.add(
            CaseEvent(
                case_id=case.id,
                action=action,
                from_status=before,
                to_status=after,
                actor=actor,
                at=at,
                note=note,
                photos=photos,
                data=data,
                geom=from_shape(Point(*location), srid=4326) if location else None,
            )
        )

    def history(self, case_id: int) -> tuple[Case, list[CaseEvent]]:
        """The case (its report is the first step) and every later step, oldest first."""
        case = self.get(case_id)
        stmt = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        return case, list(self.session.scalars(stmt))

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
from service.accounts.permissions import ACTION_PERMISSIONS
from service.accounts.principal import Principal
from service.accounts.scope import case_condition, reported_by, sees_case
from service.cases.campaigns import tag_case
from service.cases.catalogue import load_router
from service.cases.workflow import (
    OPEN_SQL,
    OPEN_STATUSES,
    QUALITY_RANGE,
    SATISFACTION_LEVELS,
    TRANSITIONS,
    IllegalTransition,
    next_status,
)
from service.clock import now, work_clock
from service.datums import to_wgs84_point
from service.db.anyof import any_of
from service.db.models import Case, CaseEvent, Category
from service.db.versions import change_counters
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.grids.registry import Registry
from service.grids.repository import degree_window
from service.hotspots.hotspots import HotspotService
from service.notify import publish
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
    grid_code: str | None = None  # the reporter's choice among the boundary candidates

    def fingerprint(self) -> str:
        """Hash of the request body (without the key) to spot a reused idempotency key."""
        body = asdict(self)
        body.pop("idempotency_key")
        if body["grid_code"] is None:  # as bodies were hashed before the field existed
            body.pop("grid_code")
        if body["reported_at"] is not None:
            body["reported_at"] = body["reported_at"].isoformat()
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Action:
    """A workflow step asked by a user.

    ``actor`` is the old free-text name of whoever acted: the history now names the principal
    (``Principal.label``, with its account or key id); a free text is kept only when the
    service itself acts (``SYSTEM``: the demo loader, the CLI) and says on whose behalf.
    """

    action: str
    actor: str | None = None
    note: str | None = None
    photos: list[str] = field(default_factory=list)
    lon: float | None = None
    lat: float | None = None
    datum: str = "wgs84"
    expected_version: int | None = None
    deadline_at: datetime | None = None
    into: int | None = None
    department: str | None = None
    satisfaction: str | None = None
    quality: int | None = None


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

    def intake(self, item: CaseInput, by: Principal) -> tuple[Case, bool]:
        """Register a report by ``by`` (recorded as its reporter when it is an account or an
        API key); returns (case, created). A retried key returns the first case."""
        fingerprint = item.fingerprint()
        if item.idempotency_key:
            existing = self.by_key(item.idempotency_key)
            if existing is not None and not sees_case(by, existing):
                # someone else's report: say the key is taken, show nothing of it
                raise Conflict(
                    f"idempotency key {item.idempotency_key!r} was used for another report; "
                    "use a new key for a new report",
                    field="idempotency_key",
                )
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
        grid, candidates = self._grid(lon, lat, reported_at, item.allow_unassigned, item.grid_code)
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
            reporter_user_id=by.id if by.kind == "user" else None,
            reporter_key_id=by.id if by.kind == "key" else None,
        )
        self.session.add(case)
        self.session.flush()
        tag_case(self.session, case)  # the campaigns (专项行动) it falls in
        # the report itself is the case row; the history stores the steps after it
        return case, True

    def _grid(
        self,
        lon: float,
        lat: float,
        at: datetime,
        allow_unassigned: bool,
        chosen: str | None = None,
    ):
        """The unit grid of a report and its boundary candidates; ``chosen``: the reporter
        confirmed one of the candidates (a point on a shared edge), which then wins."""
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
        grid = found.grid
        if chosen is not None and chosen != grid.code:
            near = {g.code: g for g, _ in found.candidates}
            if chosen not in near:
                raise InvalidInput(
                    f"grid_code {chosen} is not within "
                    f"{self.settings.grids.boundary_tolerance_m:g} m of the position; choose "
                    f"one of {', '.join(near) or grid.code} or leave it out",
                    field="grid_code",
                    candidates=list(near),
                )
            grid = near[chosen]
        return grid, candidates if len(candidates) > 1 else []

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

    def by_ids(self, ids: list[int], by: Principal) -> list[Case]:
        """The cases of this city among ``ids`` that ``by`` may see (unknown ids and cases out
        of scope are skipped alike), in id order."""
        stmt = select(Case).where(Case.city == self.city, any_of(Case.id, ids)).order_by(Case.id)
        scope = case_condition(by)
        if scope is not None:
            stmt = stmt.where(scope)
        return list(self.session.scalars(stmt))

    def by_key(self, key: str) -> Case | None:
        """The case created with idempotency ``key``."""
        return self.session.scalar(
            select(Case).where(Case.city == self.city, Case.idempotency_key == key)
        )

    # -- workflow --------------------------------------------------------------------------
    def get(self, case_id: int, by: Principal) -> Case:
        """A case by id, or ``NotFound`` — also when it lies outside ``by``'s scope, so a
        read never tells whether a case out of scope exists."""
        case = self._row(case_id)
        if case is None or not sees_case(by, case):
            raise NotFound(f"no case {case_id}", field="id")
        return case

    def _row(self, case_id: int, lock: bool = False) -> Case | None:
        stmt = select(Case).where(Case.city == self.city, Case.id == case_id)
        if lock:
            stmt = stmt.with_for_update()
        return self.session.scalar(stmt)

    def _for_write(self, case_id: int, by: Principal, field: str = "id") -> Case:
        """Case ``case_id`` row-locked for a change by ``by``: ``NotFound`` when there is
        none, ``Forbidden`` naming the scope when ``by`` may not see it."""
        case = self._row(case_id, lock=True)
        if case is None:
            raise NotFound(f"no case {case_id}", field=field)
        if not sees_case(by, case):
            raise Forbidden(
                f"case {case_id} lies outside the scope of {by.label}: {by.scope_text()}",
                field="scope",
                scope=list(by.grid_prefixes or ()),
                department=by.department,
            )
        return case

    def act(self, case_id: int, step: Action, by: Principal) -> Case:
        """Apply a workflow action by ``by``.

        ``by`` needs the action's permission (``ACTION_PERMISSIONS``) and the case in its
        scope (403 naming them), and the separation of duties holds (see :meth:`_duties`);
        illegal steps and stale versions are ``Conflict``.
        """
        if step.action not in TRANSITIONS:
            raise InvalidInput(
                f"unknown action {step.action!r}; actions are {', '.join(TRANSITIONS)}",
                field="action",
            )
        if step.action == "evaluate":
            self._check_evaluation(step)
            case = self._for_write(case_id, by)
            # 回访: the user who reported the case may rate it without the permission
            if not (by.kind == "user" and reported_by(by, case)):
                by.require(ACTION_PERMISSIONS[step.action])
        else:
            by.require(ACTION_PERMISSIONS[step.action])
            case = self._for_write(case_id, by)
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
        self._duties(case, step.action, by)
        if step.action == "evaluate" and case.evaluated_at is not None:
            raise Conflict(
                f"case {case_id} was evaluated at {case.evaluated_at.isoformat()} "
                f"({case.satisfaction}, quality {case.quality}); a case is evaluated once",
                field="action",
                status=case.status,
            )
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
            data = self._merge_into(case, step, t, by)
        elif step.action == "dispatch":
            data = self._dispatch(case, step.department, by)
        elif step.action == "return":
            # back to the dispatcher: dispatched to nobody until it is sent on
            data = {"department": case.department}
            case.department = None
            case.routed_by = f"returned by {by.label}"
        elif step.action == "feedback":
            # who fed back, so that the same department never verifies its own work
            data = {"department": by.department or case.department}
        elif step.action == "verify":
            case.closed_at = t
        elif step.action == "reopen":
            case.closed_at = None
        elif step.action == "evaluate":
            data = {"satisfaction": step.satisfaction, "quality": step.quality}
            case.satisfaction, case.quality, case.evaluated_at = step.satisfaction, step.quality, t
        before = case.status
        case.status = target
        case.updated_at = t
        case.lock_version += 1
        self._event(case, step.action, before, target, by, step.actor, t, step, location, data)
        self.session.flush()
        if target == "dispatched" and case.department:
            # in this transaction: the department hears of it exactly when it is committed
            publish(
                self.session,
                "case.dispatched",
                case_payload(case, step.action),
                grid_code=case.grid_code,
                department=case.department,
                city=self.city,
                at=t,
            )
        return case

    @staticmethod
    def _check_evaluation(step: Action) -> None:
        """An evaluation names a satisfaction level and a quality score (``InvalidInput``
        naming the field otherwise), checked before anything is read or written."""
        if step.satisfaction not in SATISFACTION_LEVELS:
            raise InvalidInput(
                f"satisfaction {step.satisfaction!r} must be one of "
                f"{', '.join(SATISFACTION_LEVELS)}",
                field="satisfaction",
            )
        low, high = QUALITY_RANGE
        quality = step.quality
        if isinstance(quality, bool) or not isinstance(quality, int) or not low <= quality <= high:
            raise InvalidInput(
                f"quality {quality!r} must be a whole number of points from {low} to {high}",
                field="quality",
            )

    def _dispatch(self, case: Case, department: str | None, by: Principal) -> dict[str, Any]:
        if not department:
            if case.department is None:
                raise InvalidInput(
                    f"case {case.id} is dispatched to no department (it was sent back or never "
                    "routed); name the department",
                    field="department",
                )
            return {}
        data = {"department": department, "previous": case.department}
        case.department = department
        case.routed_by = f"dispatcher {by.label}"
        return data

    def _duties(self, case: Case, action: str, by: Principal) -> None:
        """Separation of duties, each a ``Forbidden`` naming the rule:

        * a department handles, feeds back and sends back (退单) only the cases dispatched
          to it;
        * verification (verify, or rework when it fails) is done by a principal whose grid
          scope covers the case's grid (a grid worker or supervisor there, or a city-wide
          role holding ``cases.verify``); never by the department that fed the case back,
          nor by the account that fed it back, nor by whoever reported the case.
        """
        if action in ("handle", "feedback", "return"):
            if by.department is not None and case.department != by.department:
                raise Forbidden(
                    f"case {case.id} is dispatched to {case.department or 'no department'}, "
                    f"not to {by.department}: a department handles only its own cases",
                    field="department",
                    department=by.department,
                )
        if action not in ("verify", "rework"):
            return
        if reported_by(by, case):
            raise Forbidden(
                f"{by.label} reported case {case.id} and may not verify it: "
                "a reporter never closes their own report",
                field="duty",
                rule="reporter",
            )
        fed_back = self._last_feedback(case.id)
        fed_department = (fed_back.data or {}).get("department") if fed_back else None
        fed_department = fed_department or case.department
        if by.department is not None and by.department == fed_department:
            raise Forbidden(
                f"{by.department} fed case {case.id} back and may not verify its own work",
                field="duty",
                rule="feedback_department",
            )
        if fed_back is not None and _same_principal(fed_back, by):
            raise Forbidden(
                f"{by.label} fed case {case.id} back and may not verify it",
                field="duty",
                rule="feedback_department",
            )
        if not by.covers_grid(case.grid_code):
            raise Forbidden(
                f"case {case.id} lies in grid {case.grid_code or '(none)'}, outside the grids "
                f"of {by.label} ({by.scope_text()}): it is verified by a grid worker or "
                "supervisor of that grid",
                field="scope",
                rule="grid",
                scope=list(by.grid_prefixes or ()),
            )

    def _last_feedback(self, case_id: int) -> CaseEvent | None:
        stmt = (
            select(CaseEvent)
            .where(
                CaseEvent.city == self.city,
                CaseEvent.case_id == case_id,
                CaseEvent.action == "feedback",
            )
            .order_by(CaseEvent.id.desc())
            .limit(1)
        )
        return self.session.scalar(stmt)

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

    def _merge_into(self, case: Case, step: Action, t: datetime, by: Principal) -> dict[str, Any]:
        if step.into is None or step.into == case.id:
            raise InvalidInput("merge needs 'into', the id of another open case", field="into")
        master = self._for_write(step.into, by, field="into")
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
            by,
            step.actor,
            t,
            Action("absorb", note=step.note),
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
        by: Principal,
        on_behalf: str | None,
        at: datetime,
        step: Action,
        location: tuple[float, float] | None,
        data: dict[str, Any],
    ) -> None:
        # the principal is who acted; a free text only when the service acts for someone
        actor = on_behalf if by.kind == "system" and on_behalf else by.label
        self.session.add(
            CaseEvent(
                city=case.city,
                case_id=case.id,
                action=action,
                from_status=before,
                to_status=after,
                actor=actor,
                actor_user_id=by.id if by.kind == "user" else None,
                actor_key_id=by.id if by.kind == "key" else None,
                at=at,
                note=step.note,
                photos=step.photos,
                data=data,
                geom=from_shape(Point(*location), srid=4326) if location else None,
            )
        )

    def history(self, case_id: int, by: Principal) -> tuple[Case, list[CaseEvent]]:
        """The case (its report is the first step) and every later step, oldest first
        (``NotFound`` for a case out of ``by``'s scope, as :meth:`get`)."""
        case = self.get(case_id, by)
        stmt = (
            select(CaseEvent)
            .where(CaseEvent.city == case.city, CaseEvent.case_id == case_id)
            .order_by(CaseEvent.id)
        )
        return case, list(self.session.scalars(stmt))


def case_payload(case: Case, action: str | None = None) -> dict[str, Any]:
    """What a notification says about ``case``: where, what, whose and by when — never the
    reporters' names or phones."""
    return {
        "case_id": case.id,
        "action": action,
        "status": case.status,
        "category_code": case.category_code,
        "grid_code": case.grid_code,
        "department": case.department,
        "address": case.address,
        "description": case.description,
        "lon": case.lon,
        "lat": case.lat,
        "reported_at": case.reported_at,
        "deadline_at": case.deadline_at,
        "url": f"/api/cases/{case.id}",
    }


def _same_principal(event: CaseEvent, by: Principal) -> bool:
    """Whether ``event`` was written by ``by`` (the same account or the same key)."""
    if by.id is None:
        return False
    if by.kind == "user":
        return event.actor_user_id == by.id
    if by.kind == "key":
        return event.actor_key_id == by.id
    return False

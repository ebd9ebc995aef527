"""Cases as JSON: a case, its report and its history, in the requested datum."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import shapely
from geoalchemy2.shape import to_shape

from gis import datum as datums
from service.accounts.principal import Principal
from service.accounts.privacy import people_for
from service.cases.workflow import LABELS_ZH, OPEN_STATUSES, allowed_actions
from service.db.models import Case, CaseEvent, Category, RoutingRule
from service.http.timeparse import iso


def case_json(
    case: Case, by: Principal, datum: str = "wgs84", tz: str | None = None
) -> dict[str, Any]:
    """A case as JSON for ``by``, with its status label, allowed next actions and overdue
    flag; reporters' names and phones masked unless ``by`` holds ``people.read``."""
    lon, lat = datums.from_wgs84(case.lon, case.lat, datum)
    late = (
        case.status in OPEN_STATUSES
        and case.deadline_at is not None
        and case.deadline_at < datetime.now(UTC)
    )
    return {
        "id": case.id,
        "status": case.status,
        "status_label": LABELS_ZH[case.status],
        # evaluated once: not offered again
        "allowed_actions": [
            a for a in allowed_actions(case.status) if a != "evaluate" or case.evaluated_at is None
        ],
        "version": case.lock_version,
        "category_code": case.category_code,
        "source": case.source,
        "description": case.description,
        "address": case.address,
        "lon": float(lon),
        "lat": float(lat),
        "datum": datum,
        "reported_at": iso(case.reported_at, tz),
        "deadline_at": iso(case.deadline_at, tz),
        "closed_at": iso(case.closed_at, tz),
        "evaluation": {
            "satisfaction": case.satisfaction,
            "quality": case.quality,
            "at": iso(case.evaluated_at, tz),
        }
        if case.evaluated_at is not None
        else None,
        "overdue": late,
        "grid_code": case.grid_code,
        "unassigned": case.grid_code is None,
        "grid_candidates": case.grid_candidates
        or ([{"code": case.grid_code, "distance_m": 0.0}] if case.grid_code else []),
        "near_boundary": len(case.grid_candidates) > 1,
        "hotspot_ids": list(case.hotspot_ids),
        "department": case.department,
        "routed_by": case.routed_by,
        "suspected_duplicate_of": case.duplicate_of if case.status != "merged" else None,
        "merged_into": case.duplicate_of if case.status == "merged" else None,
        "recurring_of": case.recurring_of,
        "reporters": people_for(by, case.reporters),
        "fields": case.fields,
        "photos": case.photos,
    }


def _lonlat(lon: float | None, lat: float | None, datum: str) -> tuple[float | None, float | None]:
    """A WGS 84 position in ``datum`` (a missing position stays missing)."""
    if lon is None or lat is None:
        return None, None
    x, y = datums.from_wgs84(lon, lat, datum)
    return float(x), float(y)


def event_json(event: CaseEvent, datum: str = "wgs84", tz: str | None = None) -> dict[str, Any]:
    """One history step as JSON, its position in ``datum``."""
    # case_events.geom is a POINT column.
    where = cast(shapely.Point, to_shape(event.geom)) if event.geom is not None else None
    lon, lat = _lonlat(where.x, where.y, datum) if where else (None, None)
    return {
        "id": event.id,
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor,
        "actor_user_id": event.actor_user_id,
        "actor_key_id": event.actor_key_id,
        "at": iso(event.at, tz),
        "note": event.note,
        "photos": event.photos,
        "lon": lon,
        "lat": lat,
        "data": event.data,
    }


def report_json(
    case: Case, by: Principal, datum: str = "wgs84", tz: str | None = None
) -> dict[str, Any]:
    """The report that opened a case, as the first history step, its position in ``datum``
    (reporters as ``by`` may see them)."""
    lon, lat = _lonlat(case.lon, case.lat, datum)
    return {
        "id": None,
        "action": "report",
        "from_status": None,
        "to_status": "reported",
        "actor": case.source,
        "actor_user_id": case.reporter_user_id,
        "actor_key_id": case.reporter_key_id,
        "at": iso(case.reported_at, tz),
        "note": case.description,
        "photos": case.photos,
        "lon": lon,
        "lat": lat,
        "data": {"routed_by": case.routed_by, "reporters": people_for(by, case.reporters)},
    }


def category_json(c: Category) -> dict[str, Any]:
    """A category as JSON."""
    return {
        "code": c.code,
        "family": c.family,
        "major_code": c.major_code,
        "major_name": c.major_name,
        "name": c.name,
        "deadline_amount": c.deadline_amount,
        "deadline_unit": c.deadline_unit,
        "department": c.department,
        "required_fields": c.required_fields,
        "local": c.local,
        "patrol_visible": c.patrol_visible,
    }


def rule_json(r: RoutingRule) -> dict[str, Any]:
    """A routing rule as JSON."""
    return {
        "id": r.id,
        "category_prefix": r.category_prefix,
        "area_prefix": r.area_prefix,
        "department": r.department,
        "hotspot_owner_first": r.hotspot_owner_first,
        "priority": r.priority,
    }

"""Open311 GeoReport v2 façade at ``/open311/v2`` for citizen-reporting apps.

Standard fields (service_code, lat, long, address_string, description, media_url, first_name,
last_name, phone, email, attribute[...]) map onto the case intake; every request also answers
the extensions ``grid_code``, ``detailed_status`` and ``detailed_status_label``. POSTs take an
``Idempotency-Key`` header (or an ``idempotency_key`` field) and a ``datum`` field (default
wgs84, as the standard says). Errors use Open311's shape: ``[{"code": 400, "description": …}]``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.bodyguard import GuardedRoute
from service.cases import CaseInput
from service.catalogue import Catalogue
from service.deps import CaseServiceDep, SettingsDep
from service.errors import BadParameter, CitygridError, NotFound, status_for
from service.geojson import case_json
from service.ledger import CaseFilter, Ledger
from service.models import Case
from service.timeparse import aware, iso
from service.workflow import LABELS_ZH, OPEN_STATUSES

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"], route_class=GuardedRoute)


def _error(exc: CitygridError) -> JSONResponse:
    code = status_for(exc)
    return JSONResponse([{"code": code, "description": exc.message}], status_code=code)


def _service(cat: Any) -> dict[str, Any]:
    return {
        "service_code": cat.code,
        "service_name": cat.name,
        "description": f"{cat.major_name} / {cat.name}",
        "metadata": bool(cat.required_fields),
        "type": "realtime",
        "keywords": cat.major_name,
        "group": cat.major_name,
    }


@router.get("/services.json", summary="Service list (the category catalogue)")
def services(cases: CaseServiceDep) -> list[dict[str, Any]]:
    return [_service(c) for c in Catalogue(cases.session, cases.city).categories()]


@router.get("/services/{service_code}.json", summary="Service definition (extra attributes)")
def service_definition(service_code: str, cases: CaseServiceDep) -> JSONResponse:
    try:
        cat = cases.category(service_code)
    except CitygridError as exc:
        return _error(NotFound(exc.message))
    attributes = [
        {
            "variable": True,
            "code": name,
            "datatype": "string",
            "required": True,
            "datatype_description": None,
            "order": i,
            "description": name,
        }
        for i, name in enumerate(cat.required_fields, start=1)
    ]
    return JSONResponse({"service_code": cat.code, "attributes": attributes})


def _request_json(case: Case, names: dict[str, str]) -> dict[str, Any]:
    body = case_json(case)
    return {
        "service_request_id": str(case.id),
        "status": "open" if case.status in OPEN_STATUSES else "closed",
        "status_notes": LABELS_ZH[case.status],
        "service_name": names.get(case.category_code),
        "service_code": case.category_code,
        "description": case.description,
        "agency_responsible": case.department,
        "service_notice": None,
        "requested_datetime": iso(case.reported_at),
        "updated_datetime": iso(case.updated_at),
        "expected_datetime": iso(case.deadline_at),
        "address": case.address,
        "address_id": None,
        "zipcode": None,
        "lat": body["lat"],
        "long": body["lon"],
        "media_url": case.photos[0] if case.photos else None,
        "grid_code": case.grid_code,
        "detailed_status": case.status,
        "detailed_status_label": LABELS_ZH[case.status],
    }


async def _fields(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except json.JSONDecodeError as exc:
            raise BadParameter("body is not valid JSON", field="body") from exc
        if not isinstance(data, dict):
            raise BadParameter("body must be a JSON object", field="body")
        return data
    return dict(await request.form())


def _float(fields: dict[str, Any], name: str) -> float:
    raw = fields.get(name)
    if raw in (None, ""):
        raise BadParameter(f"{name} is required (WGS 84 decimal degrees)", field=name)
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise BadParameter(f"{name} must be a number, got {raw!r}", field=name) from exc


def _case_input(fields: dict[str, Any], key: str | None, tz: str) -> CaseInput:
    code = fields.get("service_code")
    if not code:
        raise BadParameter("service_code is required (see services.json)", field="service_code")
    attributes = {
        k[len("attribute[") : -1]: v
        for k, v in fields.items()
        if k.startswith("attribute[") and k.endswith("]")
    }
    name = " ".join(str(fields[k]) for k in ("first_name", "last_name") if fields.get(k))
    reporter = {
        k: v
        for k, v in {
            "name": name or None,
            "phone": fields.get("phone"),
            "email": fields.get("email"),
            "device_id": fields.get("device_id"),
        }.items()
        if v
    }
    media = fields.get("media_url")
    reported = None
    if fields.get("requested_datetime"):
        try:
            reported = aware(datetime.fromisoformat(str(fields["requested_datetime"])), tz)
        except ValueError as exc:
            raise BadParameter(
                "requested_datetime must be ISO 8601", field="requested_datetime"
            ) from exc
    return CaseInput(
        category_code=str(code),
        lon=_float(fields, "long"),
        lat=_float(fields, "lat"),
        datum=str(fields.get("datum") or "wgs84"),
        source="open311",
        description=fields.get("description"),
        address=fields.get("address_string"),
        reporter=reporter or None,
        reported_at=reported,
        fields=attributes,
        photos=[media] if media else [],
        idempotency_key=key or fields.get("idempotency_key"),
    )


@router.post("/requests.json", summary="Submit a service request")
async def create_request(
    request: Request, cases: CaseServiceDep, settings: SettingsDep
) -> JSONResponse:
    try:
        fields = await _fields(request)
        item = _case_input(fields, request.headers.get("idempotency-key"), settings.grids.timezone)
        case, created = await run_in_threadpool(cases.intake, item, "open311")
    except CitygridError as exc:
        # answered, not raised: roll back here so nothing half-done is committed
        await run_in_threadpool(cases.session.rollback)
        return _error(exc)
    return JSONResponse(
        [
            {
                "service_request_id": str(case.id),
                "service_notice": case.department,
                "account_id": None,
                "grid_code": case.grid_code,
            }
        ],
        status_code=201 if created else 200,
    )


@router.get("/requests.json", summary="Query service requests")
def list_requests(request: Request, cases: CaseServiceDep, settings: SettingsDep) -> JSONResponse:
    q = request.query_params
    ledger = Ledger(cases.session, cases.registry)
    names = {c.code: c.name for c in Catalogue(cases.session, cases.city).categories()}
    try:
        if q.get("service_request_id"):
            ids = [int(i) for i in q["service_request_id"].split(",") if i.strip()]
            rows = cases.by_ids(ids)
            return JSONResponse([_request_json(c, names) for c in rows])
        statuses: tuple[str, ...] = ()
        if q.get("status"):
            wanted = {s.strip() for s in q["status"].split(",")}
            if wanted - {"open", "closed"}:
                raise BadParameter("status must be open and/or closed", field="status")
            statuses = tuple(
                s
                for s in (*OPEN_STATUSES, "closed", "rejected", "merged")
                if ("open" if s in OPEN_STATUSES else "closed") in wanted
            )
        tz = settings.grids.timezone
        start = aware(datetime.fromisoformat(q["start_date"]), tz) if q.get("start_date") else None
        end = aware(datetime.fromisoformat(q["end_date"]), tz) if q.get("end_date") else None
        rows, _ = ledger.page(
            CaseFilter(
                category=q.get("service_code"),
                statuses=statuses,
                reported_from=start,
                reported_to=end,
            ),
            limit=1000,
        )
    except CitygridError as exc:
        return _error(exc)
    except ValueError:
        return _error(BadParameter("service_request_id must be integers; dates ISO 8601"))
    return JSONResponse([_request_json(c, names) for c in rows])


@router.get("/requests/{request_id}.json", summary="One service request")
def get_request(request_id: str, cases: CaseServiceDep) -> JSONResponse:
    try:
        case = cases.get(int(request_id))
    except ValueError:
        return _error(BadParameter("service_request_id must be an integer"))
    except CitygridError as exc:
        return _error(exc)
    names = {c.code: c.name for c in Catalogue(cases.session, cases.city).categories()}
    return JSONResponse([_request_json(case, names)])

"""Open311 GeoReport v2 at ``/open311/v2`` for citizen-reporting apps, discovery at ``/open311``.

Every resource answers XML (``.xml``, the standard's default) and JSON (``.json``). Standard
fields (service_code, lat, long, address_string, description, media_url, first_name, last_name,
phone, email, device_id, account_id, attribute[...]) map onto the case intake. Extensions: every
request also answers ``grid_code``, ``detailed_status`` and ``detailed_status_label``; POSTs
take an ``Idempotency-Key`` header (or ``idempotency_key`` field) and a ``datum`` field, GETs a
``datum`` for the answered lat/long (default wgs84, as the standard says); ``GET requests``
pages with ``page``/``page_size`` and a ``Link: <…>; rel="next"`` header. Errors, whatever
raised them, are Open311's ``errors`` document (see ``service.errors.error_response``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gis.datum import DATUMS, from_wgs84
from service.accounts.principal import ANONYMOUS, Principal
from service.auth import Allow, Anyone, current_principal, public_reports
from service.cases.cases import CaseInput, CaseService
from service.cases.open311.documents import MEDIA_TYPES, SPECIFICATION, Format, document
from service.cases.open311.params import (
    RequestFilter,
    case_input,
    check_jurisdiction,
    given,
    paging,
    request_filter,
    request_ids,
    row_id,
)
from service.cases.open311.queries import changeset
from service.cases.workflow import LABELS_ZH, OPEN_STATUSES
from service.clock import now
from service.db.models import Case, Category
from service.deps import CaseServiceDep, ServiceRequestsDep, SettingsDep, app_cache
from service.errors import BadParameter, InvalidInput, NotFound
from service.http.bodyguard import GuardedRoute
from service.http.ratelimit import RateLimit
from service.http.timeparse import iso
from service.settings import AppSettings

router = APIRouter(prefix="/open311", tags=["Open311 GeoReport v2"], route_class=GuardedRoute)

# reads of service requests: only the cases in the caller's scope (service.accounts.scope);
# the answers carry no reporter's name or phone (GeoReport v2 defines none for reads)
Reader = Annotated[Principal, Allow("cases.read")]

Fmt = Annotated[str, Path(description="xml (the standard's default) or json")]
Jurisdiction = Annotated[
    str | None,
    Query(description="Optional: this server serves one jurisdiction (default: the city key)"),
]
Datum = Annotated[
    str | None,
    Query(
        description="Extension: datum of the answered lat/long, wgs84 (default), gcj02, bd09",
        # checked by _datum (an Open311 error naming the field); the enum documents the choices
        json_schema_extra={"enum": list(DATUMS)},
    ),
]


def _format(fmt: str) -> Format:
    if fmt not in ("xml", "json"):
        raise NotFound(f"GeoReport v2 answers .xml or .json, not .{fmt}", field="format")
    return "xml" if fmt == "xml" else "json"


def _served(settings: AppSettings) -> str:
    return settings.cases.open311_jurisdiction or settings.grids.city


def _datum(value: str | None) -> str:
    datum = given(value) or "wgs84"
    if datum not in DATUMS:
        raise BadParameter(
            f"datum must be one of {', '.join(DATUMS)}, got {datum!r}", field="datum"
        )
    return datum


@router.get("/discovery.{fmt}", summary="Open311 service discovery", dependencies=[Anyone()])
@router.get("/v2/discovery.{fmt}", include_in_schema=False, dependencies=[Anyone()])
def discovery(
    fmt: Fmt, request: Request, requests: ServiceRequestsDep, settings: SettingsDep
) -> Response:
    out = _format(fmt)
    stamp = changeset(requests.categories())
    payload = {
        "changeset": stamp,
        "contact": settings.cases.open311_contact,
        "key_service": (
            "No api_key is needed to submit a service request; reading requests needs one: "
            "ask the operators of this server"
            if settings.auth.public_reports
            else "An api_key is needed (submitting needs the cases.report permission, reading "
            "cases.read): ask the operators of this server for one"
        ),
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": str(request.base_url).rstrip("/") + "/open311/v2",
                "changeset": stamp,
                "type": "production",
                "formats": [MEDIA_TYPES["xml"].split(";")[0], MEDIA_TYPES["json"].split(";")[0]],
            }
        ],
    }
    return document(out, "discovery", payload)


def _service(cat: Category) -> dict[str, Any]:
    return {
        "service_code": cat.code,
        "service_name": cat.name,
        "description": f"{cat.major_name} / {cat.name}",
        "metadata": bool(cat.required_fields),
        "type": "realtime",
        "keywords": cat.major_name,
        "group": cat.major_name,
    }


@router.get(
    "/v2/services.{fmt}", summary="Service list (the category catalogue)", dependencies=[Anyone()]
)
def services(
    fmt: Fmt,
    requests: ServiceRequestsDep,
    settings: SettingsDep,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    out = _format(fmt)
    check_jurisdiction(jurisdiction_id, _served(settings))
    return document(out, "services", [_service(c) for c in requests.categories()])


@router.get(
    "/v2/services/{service_code}.{fmt}",
    summary="Service definition (extra attributes)",
    dependencies=[Anyone()],
)
def service_definition(
    service_code: str,
    fmt: Fmt,
    cases: CaseServiceDep,
    settings: SettingsDep,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    out = _format(fmt)
    check_jurisdiction(jurisdiction_id, _served(settings))
    cat = _category(cases, service_code, fmt)
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
    return document(out, "service_definition", {"service_code": cat.code, "attributes": attributes})


def _category(cases: CaseService, code: str, fmt: str) -> Category:
    try:
        return cases.category(code)
    except InvalidInput as exc:
        raise NotFound(
            f"service_code {code!r} not found; the services are listed at services.{fmt}",
            field="service_code",
        ) from exc


def _request(case: Case, names: dict[str, str], datum: str) -> dict[str, Any]:
    lon, lat = from_wgs84(case.lon, case.lat, datum)
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
        "lat": float(lat),
        "long": float(lon),
        "media_url": case.photos[0] if case.photos else None,
        "grid_code": case.grid_code,
        "detailed_status": case.status,
        "detailed_status_label": LABELS_ZH[case.status],
    }


async def _fields(request: Request) -> dict[str, str]:
    """The POSTed fields: a form (the standard's encoding, or multipart) or a JSON object."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            data = await request.json()  # the shared body guard refuses hostile JSON
        except json.JSONDecodeError as exc:
            raise BadParameter("body is not valid JSON", field="body") from exc
        if not isinstance(data, dict):
            raise BadParameter("body must be a JSON object of fields", field="body")
        return _json_fields(data)
    if media in ("", "application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return {k: v for k, v in form.multi_items() if isinstance(v, str)}
    raise BadParameter(
        "send the service request as application/x-www-form-urlencoded (the standard), "
        f"multipart/form-data or application/json, not {media}",
        field="Content-Type",
    )


def _json_fields(data: dict[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in data.items():
        if key == "attribute" and isinstance(value, dict):
            fields.update(_json_fields({f"attribute[{k}]": v for k, v in value.items()}))
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            fields[key] = str(value)
        elif value is not None:
            raise BadParameter(f"{key} must be a string or a number", field=key)
    return fields


def _intake(cases: CaseService, item: CaseInput, fmt: str, by: Principal) -> tuple[Case, bool]:
    _category(cases, item.category_code, fmt)  # the standard's 404 for an unknown service_code
    return cases.intake(item, by)


_TEXT = {"type": "string"}
POST_FIELDS = {
    "type": "object",
    "required": ["service_code"],
    "properties": {
        "service_code": _TEXT | {"description": "From services.xml"},
        "lat": _TEXT | {"description": "WGS 84 (or datum); required: no geocoding here"},
        "long": _TEXT | {"description": "WGS 84 (or datum); required: no geocoding here"},
        "address_string": _TEXT,
        "description": _TEXT | {"maxLength": 4000},
        "media_url": _TEXT,
        "first_name": _TEXT,
        "last_name": _TEXT,
        "phone": _TEXT,
        "email": _TEXT,
        "device_id": _TEXT,
        "account_id": _TEXT,
        "requested_datetime": _TEXT,
        "jurisdiction_id": _TEXT,
        "api_key": _TEXT
        | {
            "description": "An API key with the cases.report permission (not needed when the "
            "city accepts anonymous reports, CITYGRID_PUBLIC_REPORTS)"
        },
        "datum": _TEXT | {"description": "Extension: wgs84 (default), gcj02, bd09"},
        "idempotency_key": _TEXT | {"description": "Extension: or the Idempotency-Key header"},
    },
    "additionalProperties": _TEXT | {"description": "attribute[code] per service definition"},
}


@router.post(
    "/v2/requests.{fmt}",
    summary="Submit a service request",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": POST_FIELDS},
                "multipart/form-data": {"schema": POST_FIELDS},
                "application/json": {"schema": POST_FIELDS},
            },
        }
    },
    dependencies=[Allow("cases.report", public=public_reports)],
)
async def create_request(
    fmt: Fmt, request: Request, cases: CaseServiceDep, settings: SettingsDep
) -> Response:
    out = _format(fmt)
    if (await current_principal(request)) is ANONYMOUS:
        limit = app_cache(
            request.app,
            "anonymous_reports",
            lambda: RateLimit(f"{settings.auth.public_reports_per_hour}/hour"),
        )
        limit.hit(request.client.host if request.client else "unknown", "anonymous reports")
    by = await current_principal(request)
    fields = await _fields(request)
    query = request.query_params  # some clients send these two in the URL of the POST
    check_jurisdiction(
        fields.get("jurisdiction_id") or query.get("jurisdiction_id"), _served(settings)
    )
    key = given(request.headers.get("idempotency-key"))
    item = case_input(fields, key, settings.grids.timezone)
    case, created = await run_in_threadpool(_intake, cases, item, fmt, by)
    payload = [
        {
            "service_request_id": str(case.id),
            "service_notice": case.department,
            "account_id": None,
            "grid_code": case.grid_code,
        }
    ]
    replayed = None if created else {"Idempotent-Replayed": "true"}
    return document(out, "service_requests", payload, 201 if created else 200, replayed)


@router.get(
    "/v2/requests.{fmt}",
    summary="Query service requests (paged; only those in your scope)",
)
def list_requests(
    fmt: Fmt,
    request: Request,
    cases: CaseServiceDep,
    by: Reader,
    requests: ServiceRequestsDep,
    settings: SettingsDep,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: Annotated[
        str | None, Query(description="Comma-separated ids; overrides every other argument")
    ] = None,
    service_code: Annotated[str | None, Query(description="Comma-separated codes")] = None,
    start_date: Annotated[
        str | None, Query(description="Earliest requested_datetime (default: end_date − 90 days)")
    ] = None,
    end_date: Annotated[
        str | None, Query(description="Latest requested_datetime (default: now); ≤ 90 days span")
    ] = None,
    status: Annotated[str | None, Query(description="open, closed or open,closed")] = None,
    page: Annotated[str | None, Query(description="Extension: page number, from 1")] = None,
    page_size: Annotated[
        str | None, Query(description="Extension: requests per page, 1 to 1000 (default 1000)")
    ] = None,
    datum: Datum = None,
) -> Response:
    out = _format(fmt)
    check_jurisdiction(jurisdiction_id, _served(settings))
    shown = _datum(datum)
    names = {c.code: c.name for c in requests.categories()}
    if given(service_request_id):
        rows = cases.by_ids(request_ids(service_request_id), by)
        return document(out, "service_requests", [_request(c, names, shown) for c in rows])
    flt = request_filter(service_code, status, start_date, end_date, settings.grids.timezone, now())
    number, size = paging(page, page_size)
    rows = requests.find(flt, by, size + 1, (number - 1) * size)
    links = []
    if len(rows) > size:
        links.append(_link(request, flt, number + 1, size, "next"))
    if number > 1:
        links.append(_link(request, flt, number - 1, size, "prev"))
    payload = [_request(c, names, shown) for c in rows[:size]]
    return document(
        out, "service_requests", payload, headers={"Link": ", ".join(links)} if links else None
    )


def _link(request: Request, flt: RequestFilter, number: int, size: int, rel: str) -> str:
    # the window is pinned, so reports arriving meanwhile do not shift the following pages
    url = request.url.include_query_params(
        page=number,
        page_size=size,
        start_date=flt.start.isoformat(),
        end_date=flt.end.isoformat(),
    )
    return f'<{url}>; rel="{rel}"'


@router.get(
    "/v2/requests/{service_request_id}.{fmt}",
    summary="One service request (404 as well when it lies outside your scope)",
)
def get_request(
    service_request_id: str,
    fmt: Fmt,
    cases: CaseServiceDep,
    by: Reader,
    requests: ServiceRequestsDep,
    settings: SettingsDep,
    jurisdiction_id: Jurisdiction = None,
    datum: Datum = None,
) -> Response:
    out = _format(fmt)
    check_jurisdiction(jurisdiction_id, _served(settings))
    shown = _datum(datum)
    ident = row_id(service_request_id)
    if ident is None:
        raise NotFound(f"no service request {service_request_id!r}", field="service_request_id")
    case = cases.get(ident, by)
    names = {c.code: c.name for c in requests.categories()}
    return document(out, "service_requests", [_request(case, names, shown)])

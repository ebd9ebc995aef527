"""The citizen's pages and their public API (随手拍).

Pages (HTML, Chinese first, ``lang=en`` for English): ``/report`` (the report form),
``/report/status`` (a report's status by tracking number) and ``/public/map`` (the problem
map). API: ``POST /api/public/reports`` (a report: the Open311 fields plus the photo as
``media``), ``GET /api/public/reports/{tracking_number}``, ``GET /api/public/categories`` and
``GET /api/public/cases`` (the problem map's GeoJSON, cached).

Open to anyone only when the city says so: ``CITYGRID_PUBLIC_REPORTS`` (report, status,
categories) and ``CITYGRID_PUBLIC_MAP`` (the problem map); otherwise they need the
permissions staff have (``cases.report`` to report, ``cases.read`` to read). Anonymous reports
pass two limits before anything is read: per address (``CITYGRID_PUBLIC_REPORTS_PER_HOUR``,
shared with Open311's anonymous POSTs) and per device (the page's device token, sent as
``device_id``; ``CITYGRID_PUBLIC_REPORTS_PER_DEVICE_PER_HOUR``); duplicates are found by the
intake as for every report.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from layers.citizen import (
    NOT_FOUND,
    CategoryChoice,
    MapPage,
    ReportPage,
    StatusPage,
    StatusView,
    map_page,
    report_page,
    status_page,
)
from layers.i18n import messages
from layers.page import BaseMap
from service.accounts.principal import ANONYMOUS, Principal
from service.auth import Allow, current_principal, public_reports
from service.cases.open311.params import case_input, given
from service.citizen.render import TimedCache, cases_geojson, receipt_json, status_json
from service.citizen.reports import CitizenReports, PublicCase
from service.deps import SessionDep, SettingsDep, app_cache
from service.errors import BadParameter, NotFound, PayloadTooLarge
from service.http.bodyguard import GuardedRoute
from service.http.language import PageLocale
from service.http.params import DatumQuery
from service.http.ratelimit import RateLimit
from service.photos.photos import PhotoUpload
from service.routers.pages import PageRoute
from service.settings import AppSettings

REPORT_PATH = "/report"
STATUS_PATH = "/report/status"
MAP_PATH = "/public/map"
API = "/api/public"
_DEVICE = re.compile(r"^[A-Za-z0-9_-]{16,200}$")
_CHUNK = 1 << 20
_FORM_ALLOWANCE = 64 * 1024  # the text fields and the multipart framing of a report


def public_map(settings: AppSettings) -> bool:
    """Whether this city publishes its problem map."""
    return settings.auth.public_map


Reporter = Annotated[Principal, Allow("cases.report", public=public_reports)]
StatusReader = Annotated[Principal, Allow("cases.read", public=public_reports)]
MapReader = Annotated[Principal, Allow("cases.read", public=public_map)]

router = APIRouter(tags=["citizen"], route_class=GuardedRoute)
page_router = APIRouter(tags=["pages"], route_class=PageRoute)


def _scoped(settings: AppSettings, by: Principal) -> Principal | None:
    """Whose scope limits a status read: nobody's when the city accepts public reports (the
    tracking number is the key), else the reader's (a staff read like any other)."""
    return None if settings.auth.public_reports else by


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _basemap(settings: AppSettings) -> BaseMap:
    return BaseMap(settings.map.basemap, settings.map.tile_url, settings.map.tianditu_key)


def _choices(reports: CitizenReports) -> tuple[CategoryChoice, ...]:
    return tuple(CategoryChoice(c.code, c.name, c.major_name) for c in reports.categories())


def _bounds(reports: CitizenReports, datum: str) -> tuple[float, float, float, float]:
    from gis.datum import from_wgs84

    w, s, e, n = reports.bounds()
    if datum == "wgs84":
        return w, s, e, n
    lon, lat = from_wgs84([w, e], [s, n], datum)
    return float(lon[0]), float(lat[0]), float(lon[1]), float(lat[1])


# -- pages --------------------------------------------------------------------------------------


@page_router.get(
    REPORT_PATH,
    summary="The citizen's report form (HTML, Chinese; lang=en for English)",
    response_class=HTMLResponse,
)
def report_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    by: Reporter,
    locale: PageLocale,
) -> HTMLResponse:
    reports = CitizenReports(session, settings)
    basemap = _basemap(settings)
    base = _base(request)
    page = ReportPage(
        categories=_choices(reports),
        bounds=_bounds(reports, basemap.datum),
        tiles=tuple(basemap.tile_layers()),
        datum=basemap.datum,
        lang=locale,
        timezone=settings.grids.timezone,
        api=f"{base}{API}/reports",
        page_url=f"{base}{REPORT_PATH}",
        status_url=f"{base}{STATUS_PATH}",
        map_url=f"{base}{MAP_PATH}" if settings.auth.public_map else None,
    )
    return HTMLResponse(report_page(page))


@page_router.get(
    STATUS_PATH,
    summary="A report's status by tracking number (HTML; no personal data)",
    response_class=HTMLResponse,
    responses={404: {"content": {"text/html": {}}}},
)
def report_status_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    by: StatusReader,
    locale: PageLocale,
    number: Annotated[str | None, Query(max_length=40, description="Tracking number")] = None,
) -> HTMLResponse:
    base = _base(request)
    tr = messages(locale, settings.grids.timezone)
    page = StatusPage(
        number=(number or "").strip(),
        lang=locale,
        timezone=settings.grids.timezone,
        page_url=f"{base}{STATUS_PATH}",
        report_url=f"{base}{REPORT_PATH}" if settings.auth.public_reports else None,
    )
    if not page.number:
        return HTMLResponse(status_page(page))
    try:
        case = CitizenReports(session, settings).status(page.number, _scoped(settings, by))
    except NotFound:
        error = tr.gettext(NOT_FOUND)
        return HTMLResponse(status_page(dataclasses.replace(page, error=error)), status_code=404)
    view = StatusView(
        tracking_number=page.number.upper(),
        category=case.category_name,
        status=case.status,
        reported_at=case.reported_at,
        updated_at=case.updated_at,
        closed_at=case.closed_at,
        precision_m=settings.public.precision_m,
    )
    return HTMLResponse(status_page(dataclasses.replace(page, found=view)))


@page_router.get(
    MAP_PATH,
    summary="The public problem map (HTML; coarsened positions, no personal data)",
    response_class=HTMLResponse,
)
def problem_map_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    by: MapReader,
    locale: PageLocale,
) -> HTMLResponse:
    reports = CitizenReports(session, settings)
    basemap = _basemap(settings)
    base = _base(request)
    page = MapPage(
        categories=_choices(reports),
        bounds=_bounds(reports, basemap.datum),
        data_url=f"{base}{API}/cases",
        tiles=tuple(basemap.tile_layers()),
        datum=basemap.datum,
        precision_m=settings.public.precision_m,
        days=settings.public.map_days,
        lang=locale,
        timezone=settings.grids.timezone,
        page_url=f"{base}{MAP_PATH}",
        report_url=f"{base}{REPORT_PATH}" if settings.auth.public_reports else None,
    )
    return HTMLResponse(map_page(page))


# -- API ----------------------------------------------------------------------------------------


@router.get(
    f"{API}/categories",
    summary="The categories a citizen may report (code, name, group)",
)
def citizen_categories(
    session: SessionDep, settings: SettingsDep, by: Reporter
) -> list[dict[str, str]]:
    return [
        {"service_code": c.code, "service_name": c.name, "group": c.group}
        for c in _choices(CitizenReports(session, settings))
    ]


REPORT_FIELDS = {
    "type": "object",
    "required": ["service_code", "lat", "long"],
    "properties": {
        "service_code": {"type": "string", "description": "From /api/public/categories"},
        "lat": {"type": "string", "description": "Latitude (in datum)"},
        "long": {"type": "string", "description": "Longitude (in datum)"},
        "datum": {"type": "string", "description": "wgs84 (default), gcj02, bd09"},
        "description": {"type": "string", "maxLength": 4000},
        "phone": {
            "type": "string",
            "description": "Optional contact; only staff with people.read see it unmasked",
        },
        "device_id": {
            "type": "string",
            "description": "The device token (required "
            "without login): 16 to 200 letters, digits, - or _",
        },
        "media": {"type": "string", "format": "binary", "description": "The photo"},
    },
}


@router.post(
    f"{API}/reports",
    status_code=201,
    summary="Report a problem (multipart: Open311 fields and the photo as media)",
    description="Answers the tracking number (201; 200 for a retry with the same "
    "Idempotency-Key and content). Without login only when CITYGRID_PUBLIC_REPORTS is on, "
    "limited per address and per device (429 with Retry-After).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": REPORT_FIELDS}},
        }
    },
)
async def create_report(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    by: Reporter,
    datum: DatumQuery = "wgs84",
) -> JSONResponse:
    _check_length(request, settings)
    form = await request.form(max_files=1, max_fields=40)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    device = None
    if (await current_principal(request)) is ANONYMOUS:
        device = _guard(request, settings, fields)
    photo = await _photo(form.get("media"), settings)
    key = given(request.headers.get("idempotency-key"))
    item = dataclasses.replace(case_input(fields, key, settings.grids.timezone), source="citizen")
    upload = PhotoUpload(data=photo, step="report") if photo is not None else None
    reports = CitizenReports(session, settings)
    receipt = await run_in_threadpool(reports.report, item, upload, by)
    if device is not None and receipt.created:
        _devices(request, settings).count(device)  # a retry or a refusal is not a report
    body = receipt_json(
        receipt, f"{_base(request)}{STATUS_PATH}", datum, settings.public.precision_m
    )
    headers = None if receipt.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(body, status_code=201 if receipt.created else 200, headers=headers)


def _check_length(request: Request, settings: AppSettings) -> None:
    """413 for a body announced larger than one photo and the fields, before it is read (a
    body sent without its length is cut at the photo limit as it is read; a reverse proxy's
    body limit is the way to refuse those at the door)."""
    announced = request.headers.get("content-length", "")
    limit = int(settings.photos.max_mb * 1e6) + _FORM_ALLOWANCE
    if announced.isdigit() and int(announced) > limit:
        raise PayloadTooLarge(
            f"a report is at most {limit / 1e6:.1f} MB: one photo of CITYGRID_PHOTO_MAX_MB "
            "and the fields",
            field="media",
        )


def _devices(request: Request, settings: AppSettings) -> RateLimit:
    return app_cache(
        request.app,
        "citizen_devices",
        lambda: RateLimit(f"{settings.public.reports_per_device_per_hour}/hour"),
    )


def _guard(request: Request, settings: AppSettings, fields: dict[str, str]) -> str:
    """The abuse guard of anonymous reports: a device token, then the per-device and the
    per-address limits (429 with Retry-After past either); the device token.

    The address counts every attempt (it guards the service, as for Open311); the device
    counts the reports taken (it guards the office from one phone's flood), so a citizen
    who marked a place outside the city, or whose answer was lost and who retried, still has
    their reports."""
    device = given(fields.get("device_id"))
    if device is None or not _DEVICE.match(device):
        raise BadParameter(
            "device_id is required without login: the page's device token (16 to 200 "
            "letters, digits, - or _)",
            field="device_id",
        )
    _devices(request, settings).check(device, "reports", "this device")
    per_address = app_cache(  # the same count as Open311's anonymous POSTs
        request.app,
        "anonymous_reports",
        lambda: RateLimit(f"{settings.auth.public_reports_per_hour}/hour"),
    )
    per_address.hit(request.client.host if request.client else "unknown", "anonymous reports")
    return device


async def _photo(value: Any, settings: AppSettings) -> bytes | None:
    """The photo's bytes (None when none was sent), refused (413) past the photo limit."""
    if value is None or isinstance(value, str):
        if isinstance(value, str) and value:
            raise BadParameter("media must be a file (multipart upload)", field="media")
        return None
    upload: UploadFile = value
    limit = int(settings.photos.max_mb * 1e6)
    parts, size = [], 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"photo is larger than {limit / 1e6:g} MB (CITYGRID_PHOTO_MAX_MB)", field="media"
            )
        parts.append(chunk)
    if not parts and not upload.filename:
        return None  # an empty file input
    return b"".join(parts)


@router.get(
    f"{API}/reports/{{tracking_number}}",
    summary="A report's status by tracking number (no personal data; coarsened position)",
)
def report_status(
    tracking_number: Annotated[str, Path(max_length=40)],
    session: SessionDep,
    settings: SettingsDep,
    by: StatusReader,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    case: PublicCase = CitizenReports(session, settings).status(
        tracking_number, _scoped(settings, by)
    )
    return status_json(tracking_number.strip().upper(), case, datum, settings.public.precision_m)


@router.get(
    f"{API}/cases",
    summary="The problem map: recent cases as GeoJSON (coarsened positions, no personal data)",
    description="Cases of the last CITYGRID_PUBLIC_MAP_DAYS days by category and status, each "
    "at the centre of its CITYGRID_PUBLIC_PRECISION_M cell; cached CITYGRID_PUBLIC_MAP_CACHE_S "
    "seconds (ETag, If-None-Match).",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def public_cases(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    by: MapReader,
    datum: DatumQuery = "wgs84",
) -> Response:
    p = settings.public
    tz = settings.grids.timezone
    if not settings.auth.public_map:
        # not published: staff read it, each only the cases of their scope, never cached
        cases = CitizenReports(session, settings).recent(by)
        doc = cases_geojson(cases, datum, p.precision_m, p.map_days, tz)
        return JSONResponse(
            doc, media_type="application/geo+json", headers={"Cache-Control": "private, no-store"}
        )
    cache = app_cache(request.app, "public_map_cache", lambda: TimedCache(p.map_cache_s))

    def make() -> dict[str, Any]:
        cases = CitizenReports(session, settings).recent()
        return cases_geojson(cases, datum, p.precision_m, p.map_days, tz)

    body, etag = cache.get(datum, make)
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={p.map_cache_s}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/geo+json", headers=headers)

"""``/api/cases``: intake, workflow, history, ledger and exports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from service.cases.cases import Action, CaseInput
from service.cases.importer import CaseImporter, read_case_file
from service.cases.ledger import CaseFilter, Ledger, export_csv, export_xlsx
from service.cases.render import case_json, event_json, report_json
from service.cases.schemas import ActionIn, CaseCreate
from service.db.engine import session_scope
from service.deps import CaseServiceDep, SessionsDep, SettingsDep
from service.errors import BadParameter, PreconditionRequired
from service.grids.registry import Registry
from service.http.bodyguard import GuardedRoute
from service.http.params import DatumQuery, IdPath, parse_bbox
from service.http.timeparse import aware
from service.http.uploads import saved_upload

router = APIRouter(prefix="/api/cases", tags=["cases"], route_class=GuardedRoute)


async def case_filter(
    settings: SettingsDep,
    grid: Annotated[str | None, Query(description="Grid code: its whole subtree")] = None,
    category: Annotated[str | None, Query(description="Category code or prefix ('05')")] = None,
    status: Annotated[str | None, Query(description="Comma-separated statuses")] = None,
    source: Annotated[str | None, Query()] = None,
    department: Annotated[str | None, Query()] = None,
    hotspot: Annotated[int | None, Query(description="Cases matched to this hotspot")] = None,
    reported_from: Annotated[datetime | None, Query(alias="from")] = None,
    reported_to: Annotated[datetime | None, Query(alias="to")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    overdue: Annotated[bool | None, Query()] = None,
) -> CaseFilter:
    """Ledger filters from query parameters (naive times are local time)."""
    tz = settings.grids.timezone
    return CaseFilter(
        grid=grid,
        category=category,
        statuses=tuple(s.strip() for s in status.split(",") if s.strip()) if status else (),
        source=source,
        department=department,
        hotspot=hotspot,
        reported_from=aware(reported_from, tz),
        reported_to=aware(reported_to, tz),
        bbox=parse_bbox(bbox),
        overdue=overdue,
    )


FilterDep = Annotated[CaseFilter, Depends(case_filter)]


@router.post("", status_code=201, summary="Report a problem (idempotent with a key)")
def create_case(
    body: CaseCreate,
    cases: CaseServiceDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    item = CaseInput(
        category_code=body.category_code,
        lon=body.lon,
        lat=body.lat,
        datum=body.datum,
        source=body.source,
        description=body.description,
        address=body.address,
        reporter=body.reporter.model_dump(exclude_none=True) if body.reporter else None,
        reported_at=aware(body.reported_at, settings.grids.timezone),
        fields=body.fields,
        photos=body.photos,
        idempotency_key=idempotency_key or body.idempotency_key,
        allow_unassigned=body.allow_unassigned,
    )
    case, created = cases.intake(item, actor=body.source)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return case_json(case, body.datum)


def _ledger(cases: Any) -> Ledger:
    return Ledger(cases.session, cases.registry)


def _csv_stream(
    sessions: Any, settings: Any, flt: CaseFilter, lang: str, datum: str
) -> Iterator[bytes]:
    # the stream runs after the route has returned and its session is gone: it owns one
    with session_scope(sessions) as session:
        registry = Registry(session, settings.scheme, settings.grids.city)
        yield from export_csv(Ledger(session, registry), flt, lang, datum)


def _page(
    cases: Any, flt: CaseFilter, limit: int, cursor: str | None, datum: str
) -> dict[str, Any]:
    rows, nxt = _ledger(cases).page(flt, limit, cursor)
    return {"items": [case_json(c, datum) for c in rows], "next_cursor": nxt}


@router.post(
    "/import",
    summary="Bulk intake from CSV, Parquet or GeoJSON (all or nothing, or per-row errors)",
)
def import_cases(
    cases: CaseServiceDep,
    settings: SettingsDep,
    file: Annotated[
        UploadFile,
        File(
            description="Columns category_code, lon, lat, optional "
            "reported_at, source, datum, description, "
            "address, reporter_name, reporter_phone, "
            "idempotency_key, field_<name>"
        ),
    ],
    mode: Annotated[Literal["all", "rows"], Form()] = "all",
    datum: Annotated[Literal["wgs84", "gcj02", "bd09"], Form()] = "wgs84",
    allow_unassigned: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    with saved_upload(file, settings.grids.max_upload_mb) as path:
        frame = read_case_file(path, settings.grids.file_limits)
    report = CaseImporter(cases.session, settings).run(
        frame, mode=mode, datum=datum, allow_unassigned=allow_unassigned
    )
    return report.as_dict()


@router.get("", summary="The ledger (问题台账): filtered, newest first, keyset paging")
def list_cases(
    cases: CaseServiceDep,
    flt: FilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    return _page(cases, flt, limit, cursor, datum)


@router.get("/overdue", summary="Open cases past their deadline")
def overdue_cases(
    cases: CaseServiceDep,
    flt: FilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query()] = None,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    return _page(cases, replace(flt, overdue=True), limit, cursor, datum)


@router.get("/due", summary="Open cases due within N hours")
def due_cases(
    cases: CaseServiceDep,
    flt: FilterDep,
    within_hours: Annotated[float, Query(gt=0, le=24 * 30)] = 4.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query()] = None,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    return _page(cases, replace(flt, due_within_hours=within_hours), limit, cursor, datum)


@router.get("/counts", summary="Case counts per grid or per hotspot (open, overdue, recurring)")
def case_counts(
    cases: CaseServiceDep,
    flt: FilterDep,
    by: Annotated[Literal["grid", "hotspot"], Query()] = "grid",
    level: Annotated[
        Literal["district", "street", "community", "unit"], Query(description="by=grid")
    ] = "unit",
) -> list[dict[str, Any]]:
    return _ledger(cases).counts(flt, by, level)


@router.get("/export", summary="The ledger as CSV or XLSX (Chinese headers with lang=zh)")
def export_cases(
    cases: CaseServiceDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    flt: FilterDep,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    lang: Annotated[Literal["zh", "en"], Query()] = "zh",
    datum: DatumQuery = "wgs84",
) -> Response:
    ledger = _ledger(cases)
    ledger.check(flt)
    if format == "xlsx":
        return Response(
            export_xlsx(ledger, flt, lang, datum),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="ledger.xlsx"'},
        )
    return StreamingResponse(
        _csv_stream(sessions, settings, flt, lang, datum),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="ledger.csv"'},
    )


@router.get("/{case_id}", summary="One case")
def get_case(
    case_id: IdPath,
    cases: CaseServiceDep,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    return case_json(cases.get(case_id), datum)


@router.post("/{case_id}/actions", summary="Move a case along the workflow")
def act(
    case_id: IdPath,
    body: ActionIn,
    cases: CaseServiceDep,
    settings: SettingsDep,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    version = body.version
    if version is None and if_match:
        try:
            version = int(if_match.strip('W/"'))
        except ValueError as exc:
            raise BadParameter("If-Match must carry the case version", field="If-Match") from exc
    if version is None:
        raise PreconditionRequired(
            "send the case version you acted on (the 'version' field or an If-Match header), "
            "so that two dispatchers never overwrite each other",
            field="version",
        )
    step = Action(
        action=body.action,
        actor=body.actor,
        note=body.note,
        photos=body.photos,
        lon=body.lon,
        lat=body.lat,
        datum=body.datum,
        expected_version=version,
        deadline_at=aware(body.deadline_at, settings.grids.timezone),
        into=body.into,
        department=body.department,
    )
    return case_json(cases.act(case_id, step), body.datum)  # the datum the client speaks


@router.get("/{case_id}/history", summary="Every step of a case (append-only)")
def history(
    case_id: IdPath, cases: CaseServiceDep, datum: DatumQuery = "wgs84"
) -> list[dict[str, Any]]:
    case, events = cases.history(case_id)
    return [report_json(case, datum), *(event_json(e, datum) for e in events)]

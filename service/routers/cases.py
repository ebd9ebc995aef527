"""``/api/cases``: intake, workflow, history, ledger and exports."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from service.accounts.principal import Principal
from service.auth import Allow
from service.cases.cases import Action, CaseInput
from service.cases.files import read_case_file
from service.cases.ledger import CaseFilter, Ledger, export_csv_stream, export_xlsx
from service.cases.render import case_json, event_json, report_json
from service.cases.schemas import ActionIn, CaseCreate
from service.deps import (
    CaseImporterDep,
    CaseServiceDep,
    FilterDep,
    LedgerDep,
    SessionsDep,
    SettingsDep,
)
from service.errors import BadParameter, PreconditionRequired
from service.http.bodyguard import GuardedRoute
from service.http.params import DatumQuery, IdPath
from service.http.timeparse import aware
from service.http.uploads import saved_upload
from service.photos.evidence import evidence_flags

router = APIRouter(prefix="/api/cases", tags=["cases"], route_class=GuardedRoute)

Reader = Annotated[Principal, Allow("cases.read")]
Reporter = Annotated[Principal, Allow("cases.report")]
Exporter = Annotated[Principal, Allow("cases.export")]
# acting starts with seeing the case; the case service then checks the permission the action
# needs (ACTION_PERMISSIONS: a 403 naming it), the scope and the separation of duties
Actor = Annotated[Principal, Allow("cases.read")]


def _with_evidence(
    session: Session, city: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The case JSON ``items`` with ``evidence_flags``: the doubtful-evidence flags of their
    photos, one query for the lot. Composed here because cases know nothing of photos (photos
    are the layer above); the flags never block a step, they are shown."""
    flags = evidence_flags(session, city, [item["id"] for item in items])
    for item in items:
        item["evidence_flags"] = flags.get(item["id"], [])
    return items


@router.post(
    "",
    status_code=201,
    summary="Report a problem (idempotent with a key)",
)
def create_case(
    body: CaseCreate,
    cases: CaseServiceDep,
    by: Reporter,
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
        grid_code=body.grid_code,
    )
    case, created = cases.intake(item, by)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return _with_evidence(cases.session, cases.city, [case_json(case, by, body.datum)])[0]


def _page(
    ledger: Ledger, flt: CaseFilter, by: Principal, limit: int, cursor: str | None, datum: str
) -> dict[str, Any]:
    rows, nxt = ledger.page(flt, by, limit, cursor)
    items = _with_evidence(ledger.session, ledger.city, [case_json(c, by, datum) for c in rows])
    return {"items": items, "next_cursor": nxt}


@router.post(
    "/import",
    summary="Bulk intake from CSV, Parquet or GeoJSON (all or nothing, or per-row errors)",
    dependencies=[Allow("cases.import")],
)
def import_cases(
    importer: CaseImporterDep,
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
    report = importer.run(frame, mode=mode, datum=datum, allow_unassigned=allow_unassigned)
    return report.as_dict()


@router.get(
    "",
    summary="The ledger (问题台账): filtered, newest first, keyset paging",
)
def list_cases(
    ledger: LedgerDep,
    by: Reader,
    flt: FilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    return _page(ledger, flt, by, limit, cursor, datum)


@router.get("/overdue", summary="Open cases past their deadline")
def overdue_cases(
    ledger: LedgerDep,
    by: Reader,
    flt: FilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query()] = None,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    return _page(ledger, replace(flt, overdue=True), by, limit, cursor, datum)


@router.get("/due", summary="Open cases due within N hours")
def due_cases(
    ledger: LedgerDep,
    by: Reader,
    flt: FilterDep,
    within_hours: Annotated[float, Query(gt=0, le=24 * 30)] = 4.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query()] = None,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    return _page(ledger, replace(flt, due_within_hours=within_hours), by, limit, cursor, datum)


@router.get(
    "/counts",
    summary="Case counts per grid or per hotspot (open, overdue, recurring)",
)
def case_counts(
    ledger: LedgerDep,
    reader: Reader,
    flt: FilterDep,
    by: Annotated[Literal["grid", "hotspot"], Query()] = "grid",
    level: Annotated[
        Literal["district", "street", "community", "unit"], Query(description="by=grid")
    ] = "unit",
) -> list[dict[str, Any]]:
    return ledger.counts(flt, reader, by, level)


@router.get(
    "/export",
    summary="The ledger as CSV or XLSX (Chinese headers with lang=zh)",
)
def export_cases(
    ledger: LedgerDep,
    by: Exporter,
    sessions: SessionsDep,
    settings: SettingsDep,
    flt: FilterDep,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    lang: Annotated[Literal["zh", "en"], Query()] = "zh",
    datum: DatumQuery = "wgs84",
) -> Response:
    ledger.check(flt, by)
    if format == "xlsx":
        return Response(
            export_xlsx(ledger, flt, by, lang, datum),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="ledger.xlsx"'},
        )
    return StreamingResponse(
        export_csv_stream(sessions, settings, flt, by, lang, datum),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="ledger.csv"'},
    )


@router.get("/{case_id}", summary="One case (404 as well when it lies outside your scope)")
def get_case(
    case_id: IdPath,
    cases: CaseServiceDep,
    by: Reader,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    item = case_json(cases.get(case_id, by), by, datum)
    return _with_evidence(cases.session, cases.city, [item])[0]


@router.post(
    "/{case_id}/actions",
    summary="Move a case along the workflow",
    description="Each action needs its own permission (register: cases.register, dispatch: "
    "cases.dispatch, return (退单): cases.return, verify/rework: cases.verify, evaluate "
    "(综合评价, with satisfaction and quality): cases.evaluate or being the user who reported "
    "the case …), the case in your scope, and the separation of duties (see the README). "
    "The history names the "
    "account or API key that acted; the body's `actor` is deprecated and ignored.",
)
def act(
    case_id: IdPath,
    body: ActionIn,
    cases: CaseServiceDep,
    by: Actor,
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
        note=body.note,
        photos=body.photos,
        lon=body.lon,
        lat=body.lat,
        datum=body.datum,
        expected_version=version,
        deadline_at=aware(body.deadline_at, settings.grids.timezone),
        into=body.into,
        department=body.department,
        satisfaction=body.satisfaction,
        quality=body.quality,
    )
    item = case_json(cases.act(case_id, step, by), by, body.datum)  # the client's datum
    return _with_evidence(cases.session, cases.city, [item])[0]


@router.get(
    "/{case_id}/history",
    summary="Every step of a case (append-only)",
)
def history(
    case_id: IdPath, cases: CaseServiceDep, by: Reader, datum: DatumQuery = "wgs84"
) -> list[dict[str, Any]]:
    case, events = cases.history(case_id, by)
    return [report_json(case, by, datum), *(event_json(e, datum) for e in events)]

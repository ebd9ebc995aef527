"""``/api/patrol``: workers and their phones, patrol sessions, GPS fixes and tracks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from service.accounts.principal import Principal
from service.auth import Allow
from service.deps import PatrolDep, SessionDep, SettingsDep
from service.errors import InvalidInput
from service.http.bodyguard import GuardedRoute
from service.http.paging import LimitQ, OffsetQ, feature_page, number_matched
from service.http.params import DatumQuery, IdPath
from service.http.timeparse import aware
from service.http.uploads import saved_upload
from service.patrol.fixes import FixIngester, read_fix_file
from service.patrol.render import session_json, worker_json
from service.patrol.schemas import FixBatchIn, SessionEnd, SessionStart, WorkerIn
from service.patrol.workers import WorkerInput

router = APIRouter(prefix="/api/patrol", tags=["patrol"], route_class=GuardedRoute)

Reader = Annotated[Principal, Allow("patrol.read")]
Editor = Annotated[Principal, Allow("patrol.edit")]
Patroller = Annotated[Principal, Allow("patrol.fixes")]


@router.put(
    "/workers/{code}",
    summary="Create or update a worker (assigned grids, phones) in your scope",
)
def save_worker(
    code: str, body: WorkerIn, patrol: PatrolDep, response: Response, by: Editor
) -> dict[str, Any]:
    if code != body.code:
        raise InvalidInput("the code in the path and in the body differ", field="code")
    worker, created = patrol.save_worker(WorkerInput(**body.model_dump()), by)
    response.status_code = 201 if created else 200
    return worker_json(worker, patrol.devices_of([worker.code])[worker.code], by)


@router.get("/workers", summary="Workers in your scope (optionally one team)")
def list_workers(patrol: PatrolDep, by: Reader, team: str | None = None) -> list[dict[str, Any]]:
    workers = patrol.workers(by, team)
    devices = patrol.devices_of([w.code for w in workers])
    return [worker_json(w, devices[w.code], by) for w in workers]


@router.get("/workers/{code}", summary="One worker (404 as well outside your scope)")
def get_worker(code: str, patrol: PatrolDep, by: Reader) -> dict[str, Any]:
    worker = patrol.worker(code, by)
    return worker_json(worker, patrol.devices_of([code])[code], by)


@router.post(
    "/sessions",
    status_code=201,
    summary="Start a patrol session on a phone",
)
def start_session(
    body: SessionStart, patrol: PatrolDep, settings: SettingsDep, by: Patroller
) -> dict[str, Any]:
    started = aware(body.started_at, settings.grids.timezone)
    row = patrol.start_session(body.device_id, by, started)
    return session_json(row, body.device_id)


@router.post(
    "/sessions/{session_id}/end",
    summary="End a patrol session",
)
def end_session(
    session_id: IdPath, body: SessionEnd, patrol: PatrolDep, settings: SettingsDep, by: Patroller
) -> dict[str, Any]:
    row = patrol.end_session(session_id, by, aware(body.ended_at, settings.grids.timezone))
    return session_json(row, patrol.device_of_session(row).device_id)


@router.post(
    "/fixes",
    summary="A batch of GPS fixes (idempotent per device and timestamp)",
    responses={422: {"description": "Bad fixes (listed per row); nothing stored in mode=all"}},
)
def post_fixes(
    body: FixBatchIn, session: SessionDep, settings: SettingsDep, by: Patroller
) -> dict[str, Any]:
    frame = pd.DataFrame(
        {
            "device_id": [f.device_id or body.device_id for f in body.fixes],
            "time": [f.time.isoformat() for f in body.fixes],
            "lon": [f.lon for f in body.fixes],
            "lat": [f.lat for f in body.fixes],
            "accuracy_m": [f.accuracy_m for f in body.fixes],
            "speed_mps": [f.speed_mps for f in body.fixes],
        }
    )
    if frame["device_id"].isna().any():
        raise InvalidInput("give device_id for the batch or for every fix", field="device_id")
    report = FixIngester(session, settings).run(frame, by, mode=body.mode, datum=body.datum)
    return report.as_dict()


@router.post("/fixes/upload", summary="Fixes from a CSV or GPX file")
def upload_fixes(
    session: SessionDep,
    settings: SettingsDep,
    by: Patroller,
    file: Annotated[
        UploadFile,
        File(description="CSV (device_id, time, lon, lat[, accuracy_m, speed_mps, datum]) or GPX"),
    ],
    device_id: Annotated[str | None, Form(description="Required for GPX files")] = None,
    mode: Annotated[Literal["all", "rows"], Form()] = "all",
    datum: Annotated[Literal["wgs84", "gcj02", "bd09"], Form()] = "wgs84",
) -> dict[str, Any]:
    with saved_upload(file, settings.grids.max_upload_mb) as path:
        if path.suffix.lower() == ".gpx" and not device_id:
            raise InvalidInput(
                "a GPX file needs device_id (the phone that recorded it)", field="device_id"
            )
        frame = read_fix_file(path, device_id, settings.grids.file_limits)
    return FixIngester(session, settings).run(frame, by, mode=mode, datum=datum).as_dict()


@router.get(
    "/tracks",
    summary="Cleaned tracks of the workers in your scope overlapping a time range (paged)",
)
def tracks(
    request: Request,
    response: Response,
    patrol: PatrolDep,
    by: Reader,
    settings: SettingsDep,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
    worker: str | None = None,
    device_id: str | None = None,
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    tz = settings.grids.timezone
    args = (by, aware(start, tz), aware(end, tz), worker, device_id)
    features = patrol.tracks(*args, limit=limit, offset=offset, datum=datum)
    matched = number_matched(len(features), limit, offset, lambda: patrol.count_tracks(*args))
    return feature_page(request, response, features, matched=matched, limit=limit, offset=offset)

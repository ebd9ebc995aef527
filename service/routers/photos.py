"""``/api/cases/{case_id}/photos``, ``/api/assessment/rounds/{round_id}/photos`` and
``/api/photos``: photo (and short video) evidence of cases and of inspection scoring.

Uploading is multipart (``file`` and form fields); the step decides the permission
(``report``: cases.report, ``feedback``: cases.feedback, ``verification``: cases.verify) and
the case must be in the caller's scope. Reads need ``cases.read`` and the case in scope;
the flagged list needs ``photos.review``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from service.accounts.principal import Principal
from service.auth import Allow
from service.deps import SessionDep, SettingsDep
from service.errors import PayloadTooLarge
from service.http.bodyguard import GuardedRoute
from service.http.params import DatumQuery, IdPath
from service.http.timeparse import aware
from service.photos.photos import PhotoService, PhotoUpload
from service.photos.render import flagged_json, photo_json
from service.settings import AppSettings

router = APIRouter(tags=["photos"], route_class=GuardedRoute)

Reader = Annotated[Principal, Allow("cases.read")]
# a photo's own routes serve case photos (cases.read) and inspection photos (their scorers and
# the rounds' organisers); the service checks which
PhotoReader = Annotated[Principal, Allow("cases.read", "assessment.score", "assessment.rounds")]
# the step's own permission is checked by the service (a 403 naming it)
Uploader = Annotated[Principal, Allow("cases.report", "cases.feedback", "cases.verify")]
_CHUNK = 1 << 20


@router.post(
    "/api/cases/{case_id}/photos",
    status_code=201,
    summary="Upload a photo or short video of a case (multipart)",
)
def upload_photo(
    case_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    by: Uploader,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP photo; MP4 or MOV video")],
    step: Annotated[str, Form(max_length=20, description="report | feedback | verification")],
    stage: Annotated[
        str | None, Form(max_length=20, description="before | during | after (default by step)")
    ] = None,
    lon: Annotated[float | None, Form(description="Uploader's position")] = None,
    lat: Annotated[float | None, Form()] = None,
    datum: Annotated[str, Form(max_length=8, description="wgs84 | gcj02 | bd09")] = "wgs84",
    accuracy_m: Annotated[float | None, Form()] = None,
) -> dict[str, Any]:
    item = PhotoUpload(
        data=_read(file, settings),
        step=step,
        stage=stage,
        lon=lon,
        lat=lat,
        datum=datum,
        accuracy_m=accuracy_m,
    )
    photo = PhotoService(session, settings).upload(case_id, item, by)
    return photo_json(photo, by, datum, settings.grids.timezone)


def _read(file: UploadFile, settings: AppSettings) -> bytes:
    """The upload's bytes, refused (413) as soon as they pass the larger of the two limits."""
    limit = int(max(settings.photos.max_mb, settings.photos.video_max_mb) * 1e6)
    parts, size = [], 0
    while chunk := file.file.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"upload is larger than {limit / 1e6:g} MB (CITYGRID_PHOTO_MAX_MB, "
                "CITYGRID_PHOTO_VIDEO_MAX_MB)",
                field="file",
            )
        parts.append(chunk)
    return b"".join(parts)


@router.post(
    "/api/assessment/rounds/{round_id}/photos",
    status_code=201,
    summary="Upload a photo of a grid I score in an open inspection round (multipart)",
)
def upload_inspection_photo(
    round_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("assessment.score")],
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP photo; MP4 or MOV video")],
    grid: Annotated[str, Form(min_length=1, max_length=15, description="Grid code scored")],
    stage: Annotated[
        str | None, Form(max_length=20, description="before | during | after (default during)")
    ] = None,
    lon: Annotated[float | None, Form(description="Scorer's position")] = None,
    lat: Annotated[float | None, Form()] = None,
    datum: Annotated[str, Form(max_length=8, description="wgs84 | gcj02 | bd09")] = "wgs84",
    accuracy_m: Annotated[float | None, Form()] = None,
) -> dict[str, Any]:
    item = PhotoUpload(
        data=_read(file, settings),
        step="inspection",
        stage=stage,
        lon=lon,
        lat=lat,
        datum=datum,
        accuracy_m=accuracy_m,
    )
    photo = PhotoService(session, settings).upload_inspection(round_id, grid, item, by)
    return photo_json(photo, by, datum, settings.grids.timezone)


@router.get(
    "/api/assessment/rounds/{round_id}/photos",
    summary="Inspection photos of a round: a scorer's own, or all for its organisers",
)
def round_photos(
    round_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("assessment.score", "assessment.rounds")],
    grid: Annotated[str | None, Query(max_length=15)] = None,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    photos = PhotoService(session, settings).for_round(round_id, grid, by)
    tz = settings.grids.timezone
    return {"round_id": round_id, "items": [photo_json(p, by, datum, tz) for p in photos]}


@router.get("/api/cases/{case_id}/photos", summary="The photos of a case in your scope")
def case_photos(
    case_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    by: Reader,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    photos = PhotoService(session, settings).for_case(case_id, by)
    tz = settings.grids.timezone
    flags = sorted({f for p in photos for f in p.flags or []})
    return {
        "case_id": case_id,
        "flags": flags,
        "items": [photo_json(p, by, datum, tz) for p in photos],
    }


@router.get("/api/photos/flagged", summary="Photos the evidence check flagged, in your scope")
def flagged_photos(
    session: SessionDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("photos.review")],
    since: Annotated[datetime | None, Query(description="Uploaded at or after")] = None,
    flag: Annotated[
        Literal[
            "not_dispatched",
            "taken_before_dispatch",
            "no_position",
            "too_far",
            "reused",
            "reused_similar",
            "exif_time_invalid",
            "exif_position_invalid",
        ]
        | None,
        Query(),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    tz = settings.grids.timezone
    rows = PhotoService(session, settings).flagged(by, aware(since, tz), flag, limit, before_id)
    items = [flagged_json(p, c, by, datum, tz) for p, c in rows]
    return {"items": items, "next_before_id": items[-1]["id"] if len(items) == limit else None}


@router.get("/api/photos/{photo_id}", summary="One photo's metadata and flags")
def photo(
    photo_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    by: PhotoReader,
    datum: DatumQuery = "wgs84",
) -> dict[str, Any]:
    found = PhotoService(session, settings).get(photo_id, by)
    return photo_json(found, by, datum, settings.grids.timezone)


_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}, "video/mp4": {}, "video/quicktime": {}}}
}


@router.get(
    "/api/photos/{photo_id}/image",
    summary="The photo without EXIF (the original or a video: people.read)",
    response_class=Response,
    responses=_IMAGE,
)
def photo_image(
    photo_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    by: PhotoReader,
    original: Annotated[bool, Query(description="As uploaded, EXIF and all")] = False,
) -> Response:
    variant = "original" if original else "image"
    data, media = PhotoService(session, settings).content(photo_id, variant, by)
    return _file(data, media)


@router.get(
    "/api/photos/{photo_id}/thumbnail",
    summary="The photo's thumbnail (JPEG, no EXIF)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def photo_thumbnail(
    photo_id: IdPath, session: SessionDep, settings: SettingsDep, by: PhotoReader
) -> Response:
    data, media = PhotoService(session, settings).content(photo_id, "thumbnail", by)
    return _file(data, media)


def _file(data: bytes, media: str) -> Response:
    # personal data: kept out of shared caches
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})

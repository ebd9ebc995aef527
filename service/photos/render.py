"""Photos as JSON: the metadata everyone in the case's scope sees, and the uploader and the
positions (EXIF, reported) only for ``people.read``, in the datum asked for."""

from __future__ import annotations

from typing import Any

from geoalchemy2.shape import to_shape

from gis import datum as datums
from service.accounts.principal import Principal
from service.accounts.privacy import sees_people
from service.db.models import Case, Photo
from service.http.timeparse import iso
from service.photos.evidence import flag_summary


def photo_json(
    photo: Photo, by: Principal, datum: str = "wgs84", tz: str | None = None
) -> dict[str, Any]:
    """One photo for ``by``: its case (or inspection round and grid), links to its image and
    thumbnail, hashes, times, flags."""
    body: dict[str, Any] = {
        "id": photo.id,
        "case_id": photo.case_id,
        "round_id": photo.round_id,
        "grid_code": photo.grid_code,
        "step": photo.step,
        "stage": photo.stage,
        "kind": photo.kind,
        "mime": photo.mime,
        "bytes": photo.bytes,
        "sha256": photo.sha256,
        "phash": None if photo.phash is None else f"{photo.phash & (2**64 - 1):016x}",
        "width": photo.width,
        "height": photo.height,
        "created_at": iso(photo.created_at, tz),
        "taken_at": iso(photo.taken_at, tz),
        "has_exif_position": photo.exif_geom is not None,
        "distance_m": None if photo.distance_m is None else round(photo.distance_m, 1),
        "reuse_of": photo.reuse_of,
        **flag_summary(photo.flags or []),
        "image_url": f"/api/photos/{photo.id}/image",
        "thumbnail_url": f"/api/photos/{photo.id}/thumbnail",
    }
    if sees_people(by):
        body["uploader"] = photo.uploader
        body["exif_position"] = _position(photo.exif_geom, datum)
        body["reported_position"] = _position(photo.reported_geom, datum)
        body["reported_accuracy_m"] = photo.reported_accuracy_m
        body["datum"] = datum
    return body


def flagged_json(
    photo: Photo, case: Case, by: Principal, datum: str = "wgs84", tz: str | None = None
) -> dict[str, Any]:
    """A flagged photo with what a supervisor needs of its case (grid, department, status)."""
    return {
        **photo_json(photo, by, datum, tz),
        "case": {
            "id": case.id,
            "status": case.status,
            "grid_code": case.grid_code,
            "department": case.department,
            "category_code": case.category_code,
        },
    }


def _position(geom: Any, datum: str) -> dict[str, Any] | None:
    """A GeoJSON point in ``datum`` (rounded to 7 decimals, ~1 cm)."""
    if geom is None:
        return None
    point = to_shape(geom)
    lon, lat = datums.from_wgs84(point.x, point.y, datum)  # type: ignore[attr-defined]
    return {"type": "Point", "coordinates": [round(float(lon), 7), round(float(lat), 7)]}

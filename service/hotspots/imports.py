"""Hotspots from vector files (GeoJSON, GeoPackage, zipped Shapefile, KML): read here, validated by
the hotspot service, all or nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from fastapi import UploadFile

from gis.limits import FileLimits
from service.errors import InvalidInput
from service.grids.imports import import_source, read_vector_file, text_value
from service.hotspots.hotspots import HotspotInput
from service.http.uploads import saved_upload


def hotspots_from_upload(
    file: UploadFile,
    *,
    kind: str | None,
    crs: str | None,
    datum: str,
    max_upload_mb: int,
    limits: FileLimits,
    tz: str,
) -> tuple[list[HotspotInput], dict[str, Any]]:
    """Hotspots described by an uploaded vector file (validated later, all or nothing), and
    what the audit log says of the file."""
    with saved_upload(file, max_upload_mb) as path:
        frame = read_vector_file(path, crs, datum, limits)
        source = import_source(path, file.filename, kind=kind, crs=crs, datum=datum)
    items = []
    for i, (_, row) in enumerate(frame.iterrows()):
        try:
            items.append(
                HotspotInput(
                    key=text_value(row.get("key")) or "",
                    kind=text_value(row.get("kind")) or kind or "",
                    name=text_value(row.get("name")) or text_value(row.get("key")) or "",
                    geometry=row.geometry,
                    buffer_m=_number(row.get("buffer_m")),
                    active_from=_time(row.get("active_from"), tz),
                    active_to=_time(row.get("active_to"), tz),
                    owner_unit=text_value(row.get("owner_unit")),
                    owner_name=text_value(row.get("owner_name")),
                    owner_phone=text_value(row.get("owner_phone")),
                    risk_weight=_number(row.get("risk_weight")),
                    patrol_quota_per_week=_int(row.get("patrol_quota_per_week")),
                )
            )
        except ValueError as exc:
            raise InvalidInput(f"feature {i}: {exc}", field="file", index=i) from exc
    return items, source


def _number(value: Any) -> float | None:
    text = text_value(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a number") from exc


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _time(value: Any, tz: str) -> datetime | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz)
    return stamp.to_pydatetime()

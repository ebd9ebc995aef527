"""Imports of grids from vector files: read, repair, validate, write — all or nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from fastapi import UploadFile

from gis.io import VectorFileError, read_features
from gis.limits import FileLimits
from gis.repair import repair_polygons
from service.accounts.principal import Principal
from service.errors import InvalidInput
from service.grids.registry import ATTRIBUTES, GridInput, Registry
from service.http.uploads import file_refusals, saved_upload


def import_upload(
    registry: Registry,
    file: UploadFile,
    *,
    by: Principal,
    level: str | None,
    crs: str | None,
    datum: str,
    max_upload_mb: int,
    limits: FileLimits,
) -> dict[str, Any]:
    """Import an uploaded file; see ``import_file``."""
    with saved_upload(file, max_upload_mb) as path:
        return import_file(
            registry,
            path,
            by=by,
            level=level,
            crs=crs,
            datum=datum,
            limits=limits,
            file_name=file.filename,
        )


def import_file(
    registry: Registry,
    path: Path,
    *,
    by: Principal,
    level: str | None = None,
    crs: str | None = None,
    datum: str = "wgs84",
    progress: Callable[[int], None] | None = None,
    limits: FileLimits | None = None,
    file_name: str | None = None,
) -> dict[str, Any]:
    """Read ``path`` and write its grids to the registry as ``by`` (nothing stored on any
    error); the audit log gets one row naming the file, its digest and what changed."""
    frame = read_vector_file(path, crs, datum, limits)
    source = import_source(path, file_name, crs=crs, datum=datum, level=level)
    return import_frame(registry, frame, by=by, level=level, progress=progress, source=source)


def import_source(path: Path, file_name: str | None, **options: str | None) -> dict[str, Any]:
    """What the audit log says of an imported file: its name, size, SHA-256 and options."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return {
        "file": file_name or path.name,
        "bytes": path.stat().st_size,
        "sha256": digest.hexdigest(),
        **{k: v for k, v in options.items() if v is not None},
    }


def read_vector_file(
    path: Path, crs: str | None, datum: str, limits: FileLimits | None
) -> gpd.GeoDataFrame:
    """Features of a vector file in WGS 84 (from ``crs`` and ``datum``), within ``limits``;
    unreadable files are ``InvalidInput`` naming ``file``."""
    try:
        with file_refusals():
            return read_features(path, crs=crs, datum=datum, limits=limits)
    except VectorFileError as exc:
        raise InvalidInput(str(exc), field="file") from exc
    except ValueError as exc:  # e.g. unknown datum or CRS text
        raise InvalidInput(str(exc), field="datum" if "datum" in str(exc) else "crs") from exc


def import_frame(
    registry: Registry,
    frame: gpd.GeoDataFrame,
    *,
    by: Principal,
    level: str | None = None,
    progress: Callable[[int], None] | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Repair what can be repaired without changing areas, then write every feature as ``by``
    (one audit row for the import, describing ``source``)."""
    if "code" not in frame.columns:
        raise InvalidInput("features need a 'code' attribute", field="code")
    if "level" not in frame.columns and level is None:
        raise InvalidInput(
            "features have no 'level' attribute; pass level=unit (or another level)",
            field="level",
        )
    repaired = repair_polygons(list(frame.geometry))
    if repaired.errors:
        errors = [
            {
                "index": i,
                "code": text_value(frame.iloc[i].get("code")),
                "field": "geometry",
                "reason": msg,
            }
            for i, msg in repaired.errors
        ]
        raise InvalidInput(
            f"{len(errors)} feature(s) have geometries that cannot be repaired without changing "
            f"their area, nothing stored: {errors[0]['reason']}",
            field="geometry",
            errors=errors,
        )
    items = [
        _item(row, geom, level)
        for (_, row), geom in zip(frame.iterrows(), repaired.geometries, strict=True)
    ]
    batch = {"action": "grid.import", **(source or {}), "repaired": len(repaired.changes)}
    report = registry.write(items, progress=progress, by=by, batch=batch)
    return {
        "features": len(items),
        "created": report.created,
        "versioned": report.versioned,
        "updated": report.updated,
        "repaired": [
            {"index": i, "code": items[i].code, "change": msg} for i, msg in repaired.changes
        ],
    }


def text_value(value: Any) -> str | None:
    """A file's attribute as trimmed text (``None`` for empty or missing values)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _persons(row: pd.Series) -> list[dict[str, Any]]:
    raw = row.get("responsible_persons")
    if isinstance(raw, list):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list):
            return value
    person = text_value(row.get("responsible_person"))
    if person:
        return [{"name": person, "phone": text_value(row.get("phone"))}]
    return []


def _item(row: pd.Series, geom: Any, level: str | None) -> GridInput:
    code = text_value(row.get("code")) or ""
    values = {
        name: text_value(row.get(name)) for name in ATTRIBUTES if name != "responsible_persons"
    }
    return GridInput(
        code=code,
        level=text_value(row.get("level")) or level or "",
        name=values.pop("name") or code,
        geometry=geom,
        parent_code=text_value(row.get("parent_code")),
        responsible_persons=_persons(row),
        **values,
    )

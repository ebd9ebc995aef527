"""Streets from vector files (GeoJSON, GeoPackage, zipped Shapefile, KML), all or nothing.

Each LineString is a street; a MultiLineString becomes one street per part (with the same name
and kind), since road data often joins the pieces of one named road. The name comes from a
``name`` attribute; the kind from ``kind``, or else OpenStreetMap's ``highway`` or Geofabrik's
``fclass``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import UploadFile

from gis.limits import FileLimits
from service.accounts.principal import Principal
from service.errors import InvalidInput
from service.grids.imports import import_source, read_vector_file, text_value
from service.http.uploads import saved_upload
from service.streets.streets import StreetInput, StreetService

KIND_COLUMNS = ("kind", "highway", "fclass")


def import_street_upload(
    streets: StreetService,
    file: UploadFile,
    *,
    by: Principal,
    crs: str | None,
    datum: str,
    replace: bool,
    max_upload_mb: int,
    limits: FileLimits,
) -> dict[str, Any]:
    """Import an uploaded file; see :func:`import_street_file`."""
    with saved_upload(file, max_upload_mb) as path:
        return import_street_file(
            streets,
            path,
            by=by,
            crs=crs,
            datum=datum,
            replace=replace,
            limits=limits,
            file_name=file.filename,
        )


def import_street_file(
    streets: StreetService,
    path: Path,
    *,
    by: Principal,
    crs: str | None = None,
    datum: str = "wgs84",
    replace: bool = False,
    limits: FileLimits | None = None,
    file_name: str | None = None,
) -> dict[str, Any]:
    """Read ``path`` and add (or, with ``replace``, replace the city's streets with) its
    streets as ``by``; nothing is stored on any error. One audit row names the file."""
    frame = read_vector_file(path, crs, datum, limits)
    items: list[StreetInput] = []
    parts_of: list[int] = []  # feature index of each item, for errors
    for i, (_, row) in enumerate(frame.iterrows()):
        geom = row.geometry
        if geom is None or geom.is_empty:
            raise InvalidInput(
                f"feature {i} has no geometry, nothing stored", field="geometry", index=i
            )
        parts = list(geom.geoms) if geom.geom_type == "MultiLineString" else [geom]
        kind = next((text_value(row.get(c)) for c in KIND_COLUMNS if text_value(row.get(c))), None)
        for part in parts:
            items.append(StreetInput(geometry=part, name=text_value(row.get("name")), kind=kind))
            parts_of.append(i)
    source = import_source(path, file_name, crs=crs, datum=datum)
    try:
        rows = streets.create(items, by=by, source=source, replace=replace)
    except InvalidInput as exc:
        for err in exc.extra.get("errors", []):
            err["feature"] = parts_of[err["index"]]
        raise
    return {
        "features": len(frame),
        "created": len(rows),
        "ids": [r.id for r in rows],
        "replace": replace,
    }

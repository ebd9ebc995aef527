"""Grid exports for field teams and GIS tools, with ETags so phones skip unchanged downloads."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from datetime import datetime
from threading import Lock

import geopandas as gpd
from fastapi import Response

from gis.io import VectorFileError, write_features
from service.clock import now
from service.errors import InvalidInput, NotFound
from service.grids.registry import Registry
from service.grids.render import grid_properties
from service.grids.repository import GridFilter, geom_of

_CACHE: OrderedDict[str, tuple[bytes, str, str]] = OrderedDict()
_CACHE_LOCK = Lock()
_CACHE_SIZE = 16


def export_filter(
    registry: Registry, level: str | None, parent: str | None, at: datetime | None
) -> GridFilter:
    """Grids at ``level`` in ``parent``'s subtree (the parent itself excluded), valid at ``at``."""
    at = at or now()
    prefix = None
    if parent:
        root = registry.get(parent, at)
        prefix = root.code[: registry.scheme.prefix_length(root.level)]
    return GridFilter(city=registry.city, at=at, level=level, subtree_prefix=prefix)


def export_frame(registry: Registry, flt: GridFilter, parent: str | None) -> gpd.GeoDataFrame:
    """The filtered grids as a GeoDataFrame in EPSG:4326."""
    rows = [g for g in registry.repo.list(flt) if g.code != parent]
    records = []
    for g in rows:
        props = grid_properties(g)
        props["responsible_persons"] = json.dumps(props["responsible_persons"], ensure_ascii=False)
        records.append(props)
    return gpd.GeoDataFrame(records, geometry=[geom_of(g) for g in rows], crs="EPSG:4326")


def export_response(
    registry: Registry,
    if_none_match: str | None,
    *,
    fmt: str,
    level: str | None,
    parent: str | None,
    datum: str,
    at: datetime | None,
) -> Response:
    """The export file, or 304 when the client's ETag still matches."""
    flt = export_filter(registry, level, parent, at)
    digest = registry.repo.content_digest(flt)
    etag = (
        '"'
        + hashlib.sha256(f"{fmt}|{datum}|{level}|{parent}|{digest}".encode()).hexdigest()[:32]
        + '"'
    )
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    with _CACHE_LOCK:
        cached = _CACHE.get(etag)
    if cached is None:
        frame = export_frame(registry, flt, parent)
        if frame.empty:
            raise NotFound(
                f"no grids match level={level or 'any'}, parent={parent or 'any'} at "
                f"{flt.at.isoformat()}; nothing to export",
                field="level" if level else "parent",
            )
        try:
            cached = write_features(frame, fmt, layer_name=level or "grids", datum=datum)
        except VectorFileError as exc:
            raise InvalidInput(str(exc), field="format") from exc
        with _CACHE_LOCK:
            _CACHE[etag] = cached
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    body, media_type, filename = cached
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(content=body, media_type=media_type, headers=headers)

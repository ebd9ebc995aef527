"""Bulk point → unit grid assignment with an in-memory index of the current unit grids.

The index is cached per process and rebuilt when the registry's fingerprint of unit grids
(count, newest row, latest closing) changes, so any new version or retirement invalidates it.
"""

from __future__ import annotations

import io
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np
import pandas as pd
from fastapi import UploadFile

from gis import datum as datums
from gis.locate import GridIndex
from service.errors import InvalidInput, NotFound
from service.registry import Registry, now
from service.repository import GridFilter, geom_of
from service.uploads import saved_upload

_LOCK = Lock()
_CACHE: dict[str, tuple[tuple[Any, ...], GridIndex, np.ndarray]] = {}


def unit_index(registry: Registry) -> tuple[GridIndex, np.ndarray]:
    """The cached index of current unit grids and their codes (rebuilt on change)."""
    fingerprint = registry.repo.fingerprint(registry.city, "unit")
    with _LOCK:
        hit = _CACHE.get(registry.city)
        if hit and hit[0] == fingerprint:
            return hit[1], hit[2]
    rows = registry.repo.list(GridFilter(city=registry.city, at=now(), level="unit"))
    if not rows:
        raise NotFound("no unit grids are registered yet; import or generate them first")
    codes = np.array([g.code for g in rows], dtype=object)
    index = GridIndex(list(codes), [geom_of(g) for g in rows])
    with _LOCK:
        _CACHE[registry.city] = (fingerprint, index, codes)
    return index, codes


def locate_points(registry: Registry, lon: np.ndarray, lat: np.ndarray, datum: str) -> np.ndarray:
    """Codes of the unit grids covering each point (``None`` where none does)."""
    try:
        datums.check_datum(datum)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="datum") from exc
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"{int(bad.sum())} point(s) have missing or out-of-range coordinates "
            f"(first at row {first + 1}: lon={lon[first]}, lat={lat[first]})",
            field="lon,lat",
        )
    lon, lat = datums.to_wgs84(lon, lat, datum)
    index, codes = unit_index(registry)
    found = index.locate(lon, lat)
    out = np.full(len(found), None, dtype=object)
    hit = found >= 0
    out[hit] = codes[found[hit]]
    return out


def read_points(path: Path) -> pd.DataFrame:
    """A table with ``lon`` and ``lat`` columns from CSV or (Geo)Parquet."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".geoparquet"):
            frame = _read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"cannot read the points file: {exc}", field="file") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    for alias, name in (
        ("lng", "lon"),
        ("longitude", "lon"),
        ("x", "lon"),
        ("latitude", "lat"),
        ("y", "lat"),
    ):
        if alias in frame.columns and name not in frame.columns:
            frame = frame.rename(columns={alias: name})
    if "lon" not in frame.columns or "lat" not in frame.columns:
        raise InvalidInput(
            "points need 'lon' and 'lat' columns (or a point geometry)", field="file"
        )
    frame["lon"] = pd.to_numeric(frame["lon"], errors="coerce")
    frame["lat"] = pd.to_numeric(frame["lat"], errors="coerce")
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    if b"geo" in meta:
        import geopandas as gpd

        gdf = gpd.read_parquet(path)
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs(4326)
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        frame["lon"] = gdf.geometry.x.to_numpy()
        frame["lat"] = gdf.geometry.y.to_numpy()
        return frame
    return table.to_pandas()


def bulk_locate_upload(
    registry: Registry, file: UploadFile, datum: str, max_upload_mb: int
) -> tuple[bytes, str]:
    """Locate every point of an uploaded CSV/Parquet; answer in the same format + ``grid_code``."""
    with saved_upload(file, max_upload_mb) as path:
        frame = read_points(path)
        frame["grid_code"] = locate_points(
            registry, frame["lon"].to_numpy(), frame["lat"].to_numpy(), datum
        )
        if path.suffix.lower() in (".parquet", ".geoparquet"):
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)
            return buf.getvalue(), "application/vnd.apache.parquet"
        return frame.to_csv(index=False).encode(), "text/csv"

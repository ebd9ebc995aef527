"""Bulk point → unit grid assignment with the in-memory index of the current unit grids
(``service.grids.index``: cached per process, reloaded when a unit-grid version is added or
closed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi import UploadFile

from gis import datum as datums
from gis.limits import FileLimits, check_csv, check_parquet
from service.errors import InvalidInput
from service.grids.index import current_unit_index
from service.grids.registry import Registry
from service.http.uploads import file_refusals, saved_upload


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
    index = current_unit_index(registry)
    codes = np.asarray(index.codes, dtype=object)
    found = index.locate(lon, lat)
    out = np.full(len(found), None, dtype=object)
    hit = found >= 0
    out[hit] = codes[found[hit]]
    return out


def read_points(path: Path, limits: FileLimits | None = None) -> pd.DataFrame:
    """A table with ``lon`` and ``lat`` columns from CSV or (Geo)Parquet, within ``limits``."""
    suffix = path.suffix.lower()
    limits = limits or FileLimits()
    try:
        with file_refusals():
            if suffix in (".parquet", ".geoparquet"):
                check_parquet(path, limits)
                frame = _read_parquet(path)
            else:
                check_csv(path, limits)
                # never by the name: pandas would gunzip or unzip a file called .gz or .zip
                frame = pd.read_csv(path, compression=None)
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
    registry: Registry, file: UploadFile, datum: str, max_upload_mb: int, limits: FileLimits
) -> tuple[bytes, str]:
    """Locate every point of an uploaded CSV/Parquet; answer in the same format + ``grid_code``."""
    with saved_upload(file, max_upload_mb) as path:
        frame = read_points(path, limits)
        frame["grid_code"] = locate_points(
            registry, frame["lon"].to_numpy(), frame["lat"].to_numpy(), datum
        )
        if path.suffix.lower() in (".parquet", ".geoparquet"):
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)
            return buf.getvalue(), "application/vnd.apache.parquet"
        return frame.to_csv(index=False).encode(), "text/csv"

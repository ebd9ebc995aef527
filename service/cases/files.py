"""Reading case tables from uploaded or local files: CSV, (Geo)Parquet and vector files, within the
file limits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from pyogrio.errors import DataLayerError, DataSourceError

from gis.io import read_features
from gis.limits import FileLimits, check_csv, check_parquet
from service.errors import InvalidInput
from service.http.uploads import file_refusals


def read_case_file(path: Path, limits: FileLimits | None = None) -> pd.DataFrame:
    """A case table from CSV, (Geo)Parquet or a vector file (GeoJSON, GPKG …), within
    ``limits``."""
    suffix = path.suffix.lower()
    try:
        with file_refusals():
            frame = _read_table(path, suffix, limits or FileLimits())
    except (pa.ArrowInvalid, ValueError, OSError, DataSourceError, DataLayerError) as exc:
        raise InvalidInput(
            f"cannot read the case file (CSV, Parquet or a vector file such as GeoJSON): {exc}",
            field="file",
        ) from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def _read_table(path: Path, suffix: str, limits: FileLimits) -> pd.DataFrame:
    if suffix == ".csv":
        check_csv(path, limits)
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={
                    "category_code": pa.string(),
                    "idempotency_key": pa.string(),
                    "reporter_phone": pa.string(),
                },
                strings_can_be_null=True,
            ),
        ).to_pandas()
    if suffix in (".parquet", ".geoparquet"):
        check_parquet(path, limits)
        return pd.read_parquet(path)
    gdf = read_features(path, limits=limits)  # lon/lat from the file's CRS
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    frame["lon"], frame["lat"] = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    return frame

"""Every upload endpoint refuses hostile and oversized files before expanding them: 413 naming
the ``CITYGRID_*`` setting to raise, 422 for a hostile structure, and nothing stored."""

from __future__ import annotations

import io
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import Case, GpsFix, Grid, Hotspot
from service.settings import AppSettings
from tests.helpers.accounts import admin_client
from tests.helpers.hostile_files import (
    LAUGHING_GPX,
    LAUGHING_KML,
    MiB,
    add_cross_join_view,
    gzip_bomb,
    kmz_bomb,
    parquet_dictionary_bomb,
    parquet_rows_bomb,
    peak_growth,
    shapefile_bomb,
    small,
    write_zip,
)

VECTOR_ENDPOINTS = ["/api/grids/import", "/api/hotspots/import", "/api/cases/import"]


@pytest.fixture
def stored(session: Session, settings: AppSettings) -> Callable[[], dict[str, int]]:
    """Rows of the test city in every table an upload can write."""

    def count() -> dict[str, int]:
        return {
            model.__tablename__: session.scalar(
                select(func.count()).select_from(model).where(model.city == settings.grids.city)
            )
            for model in (Grid, Hotspot, Case, GpsFix)
        }

    return count


NOTHING = {"grids": 0, "hotspots": 0, "cases": 0, "gps_fixes": 0}


def post(client: TestClient, endpoint: str, path: Path, name: str | None = None, **form):
    with path.open("rb") as file:
        return client.post(endpoint, files={"file": (name or path.name, file)}, data=form)


def assert_refused(response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == "file"
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


def assert_too_large(response, setting: str) -> None:
    body = assert_refused(response, 413, setting)
    assert body["setting"] == setting
    assert "split the file or raise" in body["detail"] or "if the file is genuine" in body["detail"]


@pytest.fixture
def strict_client(
    settings: AppSettings, sessions: sessionmaker[Session], session: Session
) -> Iterator[TestClient]:
    """A client whose files may hold 5 rows or features."""
    strict = replace(settings, grids=settings.grids.model_copy(update={"max_rows": 5}))
    with admin_client(strict, sessions, session) as c:
        yield c


# --- archives -------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", VECTOR_ENDPOINTS)
@pytest.mark.parametrize("bomb", ["grids.zip", "grids.kmz"])
def test_zip_and_kmz_bombs_are_413_and_store_nothing(client, stored, tmp_path, endpoint, bomb):
    assert stored() == NOTHING
    path = tmp_path / bomb
    (shapefile_bomb if bomb.endswith(".zip") else kmz_bomb)(path)
    assert path.stat().st_size < 5 * MiB
    response = post(client, endpoint, path)
    assert_too_large(response, "CITYGRID_MAX_UNCOMPRESSED_MB")
    assert "1,100 MB uncompressed, more than the limit of 256 MB" in response.json()["detail"]
    assert stored() == NOTHING


@pytest.mark.parametrize("endpoint", VECTOR_ENDPOINTS)
@pytest.mark.parametrize(
    ("member", "fragment"),
    [
        ("liar", "'grids.shp' cannot be unzipped"),
        ("../../grids.prj", "member '../../grids.prj' points outside the zip's folder"),
        ("link", "member 'grids.cpg' is a symbolic link"),
    ],
)
def test_hostile_zips_are_422_naming_the_member(
    client, stored, tmp_path, endpoint, member, fragment
):
    assert stored() == NOTHING
    if member == "liar":
        path = shapefile_bomb(tmp_path / "grids.zip", declared=MiB)
    else:
        extra = (
            small("grids.cpg", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)
            if member == "link"
            else small(member, b"GEOGCS")
        )
        parts = [small("grids.shp"), small("grids.shx"), small("grids.dbf"), extra]
        path = write_zip(tmp_path / "grids.zip", parts)
    assert_refused(post(client, endpoint, path), 422, fragment)
    assert stored() == NOTHING


def test_zip_with_too_many_members_is_413(client, stored, tmp_path):
    path = write_zip(tmp_path / "many.zip", [small(f"tile{i}.png") for i in range(1001)])
    assert_too_large(post(client, "/api/grids/import", path), "CITYGRID_MAX_ARCHIVE_MEMBERS")
    assert stored() == NOTHING


@pytest.mark.parametrize("endpoint", VECTOR_ENDPOINTS)
def test_billion_laughs_kml_is_422(client, stored, tmp_path, endpoint):
    path = tmp_path / "laughs.kml"
    path.write_bytes(LAUGHING_KML)
    assert_refused(post(client, endpoint, path), 422)
    assert stored() == NOTHING


def test_geopackage_view_is_422(client, stored, tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": [f"{i}" for i in range(100)]},
        geometry=shapely.points([(113.65 + i * 1e-4, 34.75) for i in range(100)]),
        crs=4326,
    )
    path = tmp_path / "grids.gpkg"
    frame.to_file(path, layer="pts")
    add_cross_join_view(path, "pts")
    assert_refused(post(client, "/api/grids/import", path), 422, "SQL views (boom)")
    assert stored() == NOTHING


# --- tables ---------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/api/grids/locate/bulk", "/api/cases/import"])
def test_parquet_dictionary_bomb_is_413(client, stored, tmp_path, endpoint):
    path = parquet_dictionary_bomb(tmp_path / "points.parquet")
    assert_too_large(post(client, endpoint, path), "CITYGRID_MAX_UNCOMPRESSED_MB")
    assert stored() == NOTHING


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [
        ("/api/grids/locate/bulk", "points.csv"),
        ("/api/grids/locate/bulk", "points.csv.gz"),
        ("/api/cases/import", "cases.csv"),
        ("/api/patrol/fixes/upload", "fixes.csv"),
    ],
)
def test_gzip_bomb_is_422_whatever_its_name(client, stored, tmp_path, endpoint, name):
    path = gzip_bomb(tmp_path / "bomb.gz")
    assert_refused(post(client, endpoint, path, name=name), 422, "gzip-compressed")
    assert stored() == NOTHING


def test_billion_laughs_gpx_fixes_are_422(client, stored, tmp_path):
    path = tmp_path / "walk.gpx"
    path.write_bytes(LAUGHING_GPX)
    response = post(client, "/api/patrol/fixes/upload", path, device_id="phone-1")
    assert_refused(response, 422, "cannot read the fix file")
    assert stored() == NOTHING


CSV_ROWS = (
    "lon,lat,category_code,device_id,time\n" + "113.65,34.75,0101,p1,2026-11-20T08:00:00\n" * 6
)


@pytest.mark.parametrize(
    "endpoint", ["/api/grids/locate/bulk", "/api/cases/import", "/api/patrol/fixes/upload"]
)
def test_rows_over_the_limit_are_413(strict_client, stored, endpoint):
    files = {"file": ("rows.csv", io.BytesIO(CSV_ROWS.encode()))}
    response = strict_client.post(endpoint, files=files)
    assert_too_large(response, "CITYGRID_MAX_ROWS")
    assert "more than 5 rows" in response.json()["detail"]
    assert stored() == NOTHING


def test_parquet_and_features_over_the_limit_are_413(strict_client, stored, tmp_path):
    path = parquet_rows_bomb(tmp_path / "points.parquet", 6)
    assert_too_large(post(strict_client, "/api/grids/locate/bulk", path), "CITYGRID_MAX_ROWS")
    frame = gpd.GeoDataFrame(
        {"code": [f"4101020010010{i}" for i in range(6)], "level": "unit"},
        geometry=[
            shapely.box(113.65 + i * 1e-3, 34.75, 113.651 + i * 1e-3, 34.751) for i in range(6)
        ],
        crs=4326,
    )
    grids = tmp_path / "grids.geojson"
    frame.to_file(grids)
    response = post(strict_client, "/api/grids/import", grids)
    assert_too_large(response, "CITYGRID_MAX_ROWS")
    assert "more than 5 features" in response.json()["detail"]
    assert stored() == NOTHING


# --- memory ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bomb", "call"),
    [
        ("points.parquet", "read_points(Path(PATH))"),
        ("cases.parquet", "read_case_file(Path(PATH))"),
        ("points.csv.gz", "read_points(Path(PATH))"),
        ("cases.zip", "read_case_file(Path(PATH))"),
        ("fixes.csv", "read_fix_file(Path(PATH))"),
    ],
)
def test_service_readers_refuse_bombs_in_little_memory(tmp_path, bomb, call):
    path = tmp_path / bomb
    if bomb.endswith(".parquet"):
        parquet_dictionary_bomb(path)
    elif bomb.endswith(".zip"):
        shapefile_bomb(path)
    else:
        gzip_bomb(path)
    setup = (
        "from pathlib import Path\n"
        "from service.grids.bulk_locate import read_points\n"
        "from service.cases.files import read_case_file\n"
        "from service.patrol.fixes import read_fix_file\n"
        f"PATH = {str(path)!r}"
    )
    result = peak_growth(setup, call)
    assert result["outcome"].startswith(("PayloadTooLarge", "InvalidInput")), result
    assert result["growth_mb"] < 100, result  # each bomb is 1,100 MB once expanded

"""Import from files and export for field teams, through the API."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from gis.datum import transform_geometries
from service.accounts.principal import SYSTEM
from service.grids.registry import Registry
from tests.helpers.city import COMM_A, COMM_B, lonlat, mbox, small_city, unit_code


def _frame(items=None) -> gpd.GeoDataFrame:
    items = items if items is not None else small_city()
    return gpd.GeoDataFrame(
        {
            "code": [i.code for i in items],
            "level": [i.level for i in items],
            "name": [i.name for i in items],
        },
        geometry=[i.geometry for i in items],
        crs="EPSG:4326",
    )


def _upload(client: TestClient, path: Path, **form) -> dict:
    with path.open("rb") as fh:
        return client.post("/api/grids/import", files={"file": (path.name, fh)}, data=form)


def _count(client: TestClient, level: str = "unit") -> int:
    return len(client.get("/api/grids", params={"level": level}).json()["features"])


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".kml"])
def test_import_whole_city_in_one_file(client: TestClient, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"city{suffix}"
    _frame().to_file(path, driver={".geojson": "GeoJSON", ".gpkg": "GPKG", ".kml": "KML"}[suffix])
    r = _upload(client, path)
    assert r.status_code == 200, r.text
    assert len(r.json()["created"]) == len(small_city())
    got = client.get(f"/api/grids/{unit_code(COMM_A, 1)}").json()
    source = next(i.geometry for i in small_city() if i.code == unit_code(COMM_A, 1))
    assert shapely.geometry.shape(got["geometry"]).symmetric_difference(source).area < 1e-12


def test_import_zipped_shapefile_in_projected_crs(client: TestClient, tmp_path: Path) -> None:
    frame = _frame().to_crs(32649)
    shp_dir = tmp_path / "shp" / "grids"
    shp_dir.mkdir(parents=True)
    frame.to_file(shp_dir / "grids.shp", encoding="utf-8")
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in shp_dir.iterdir():
            zf.write(f, f"grids/{f.name}")
    r = _upload(client, archive)
    assert r.status_code == 200, r.text
    unit = client.get(f"/api/grids/{unit_code(COMM_A, 2)}").json()
    assert unit["properties"]["name"] == "甲社区第02网格"
    assert abs(unit["properties"]["area_m2"] - 10_000) < 20


def test_import_in_gcj02_is_stored_in_wgs84(client: TestClient, tmp_path: Path) -> None:
    frame = _frame()
    frame["geometry"] = transform_geometries(frame.geometry.values, "wgs84", "gcj02")
    path = tmp_path / "gcj.geojson"
    frame.to_file(path)
    assert _upload(client, path, datum="gcj02").status_code == 200
    got = shapely.geometry.shape(client.get(f"/api/grids/{COMM_B}").json()["geometry"])
    source = next(i.geometry for i in small_city() if i.code == COMM_B)
    assert shapely.hausdorff_distance(got, source) < 1e-7


def test_repairable_ring_is_repaired_and_reported(client: TestClient, tmp_path: Path) -> None:
    items = small_city()
    # unit A-01 drawn with a zero-width spike: invalid, but the repair keeps its area
    unit = next(i for i in items if i.code == unit_code(COMM_A, 1))
    x = shapely.get_coordinates(unit.geometry.exterior)
    spiky = shapely.Polygon([*x[:2], x[1], (x[1] + x[2]) / 2, x[1], *x[2:]])
    assert not spiky.is_valid
    unit.geometry = spiky
    path = tmp_path / "spike.gpkg"
    _frame(items).to_file(path)
    r = _upload(client, path)
    assert r.status_code == 200, r.text
    repaired = r.json()["repaired"]
    assert [x["code"] for x in repaired] == [unit_code(COMM_A, 1)]


def test_bowtie_rejects_the_whole_import(client: TestClient, tmp_path: Path) -> None:
    items = small_city()
    unit = next(i for i in items if i.code == unit_code(COMM_A, 8))
    (a, b, c, d, _) = shapely.get_coordinates(unit.geometry.exterior)
    unit.geometry = shapely.Polygon([a, c, b, d, a])  # figure-of-eight
    path = tmp_path / "bowtie.geojson"
    _frame(items).to_file(path)
    r = _upload(client, path)
    assert r.status_code == 422
    body = r.json()
    assert body["errors"][0]["code"] == unit_code(COMM_A, 8)
    assert _count(client, "city") == 0  # nothing stored, not even the valid parents


def test_overlapping_import_is_409_and_nothing_stored(client: TestClient, tmp_path: Path) -> None:
    items = small_city()
    items.append(
        type(items[0])(unit_code(COMM_A, 9), "unit", "重叠", lonlat(mbox(50, 50, 150, 150)))
    )
    path = tmp_path / "overlap.geojson"
    _frame(items).to_file(path)
    r = _upload(client, path)
    assert r.status_code == 409
    assert unit_code(COMM_A, 9) in r.json()["detail"]
    assert _count(client, "city") == 0


def test_reimport_with_changed_boundary_creates_versions(
    client: TestClient, tmp_path: Path
) -> None:
    path = tmp_path / "v1.geojson"
    _frame().to_file(path)
    assert _upload(client, path).status_code == 200
    items = [i for i in small_city() if i.code == unit_code(COMM_A, 1)]
    items[0].geometry = lonlat(mbox(0, 110, 100, 200))
    path2 = tmp_path / "v2.geojson"
    _frame(items).to_file(path2)
    r = _upload(client, path2)
    assert r.json()["versioned"] == [unit_code(COMM_A, 1)]
    assert client.get(f"/api/grids/{unit_code(COMM_A, 1)}").json()["properties"]["version"] == 2


@pytest.mark.parametrize(
    ("name", "content", "status", "fragment"),
    [
        ("empty.geojson", b"", 422, "empty"),
        ("none.geojson", b'{"type":"FeatureCollection","features":[]}', 422, "no features"),
        ("table.csv", b"code,name\n1,a\n", 422, "geometry"),
        ("notes.txt", b"hello", 422, ""),
        ("broken.gpkg", b"not a geopackage at all", 422, ""),
    ],
)
def test_bad_files_are_4xx_and_nothing_stored(
    client: TestClient, name: str, content: bytes, status: int, fragment: str
) -> None:
    r = client.post("/api/grids/import", files={"file": (name, io.BytesIO(content))})
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]
    assert r.json()["field"] == "file"
    assert _count(client, "city") == 0


def test_features_without_level_need_the_level_field(client: TestClient, tmp_path: Path) -> None:
    frame = _frame().drop(columns=["level"])
    path = tmp_path / "nolevel.geojson"
    frame.to_file(path)
    r = _upload(client, path)
    assert r.status_code == 422 and r.json()["field"] == "level"


def test_upload_over_the_limit_is_413(client: TestClient) -> None:
    big = io.BytesIO(b" " * (51 * 1024 * 1024))  # the test settings allow 50 MB
    r = client.post("/api/grids/import", files={"file": ("big.geojson", big)})
    assert r.status_code == 413 and "50 MB" in r.json()["detail"]


# -- exports ---------------------------------------------------------------------------------
@pytest.fixture
def city(registry: Registry) -> Registry:
    registry.write(small_city(), by=SYSTEM)
    registry.session.commit()
    return registry


def _units_of(community: str) -> dict[str, shapely.Geometry]:
    return {
        i.code: i.geometry
        for i in small_city()
        if i.level == "unit" and i.code.startswith(community[:12])
    }


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "kml", "shp"])
def test_export_round_trips_through_gdal(
    client: TestClient, city: Registry, tmp_path: Path, fmt: str
) -> None:
    r = client.get("/api/grids/export", params={"format": fmt, "level": "unit", "parent": COMM_A})
    assert r.status_code == 200, r.text
    path = tmp_path / r.headers["content-disposition"].split('"')[1]
    path.write_bytes(r.content)
    # GDAL's own CLI reads the file: feature count as an independent check
    source = str(path) if fmt != "shp" else f"/vsizip/{path}"
    info = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-so", source], capture_output=True, text=True, check=True
    ).stdout
    assert "Feature Count: 8" in info
    frame = pyogrio.read_dataframe(source)
    codes = frame["code"].astype(str).tolist()
    expected = _units_of(COMM_A)
    assert sorted(codes) == sorted(expected)
    for code, geom in zip(codes, frame.geometry, strict=True):
        # RFC 7946 GeoJSON keeps 7 decimals (~1 cm); the other formats keep full precision
        assert shapely.hausdorff_distance(geom, expected[code]) < 2e-7


@pytest.mark.filterwarnings("ignore:Value .* parsed incompletely:RuntimeWarning")
def test_gpx_export_has_tracks_with_codes(client: TestClient, city: Registry, tmp_path) -> None:
    r = client.get("/api/grids/export", params={"format": "gpx", "level": "unit", "parent": COMM_A})
    path = tmp_path / "grids.gpx"
    path.write_bytes(r.content)
    tracks = pyogrio.read_dataframe(path, layer="tracks", columns=["desc"])
    assert sorted(tracks["desc"]) == sorted(_units_of(COMM_A))


def test_gcj02_export_is_shifted_like_amap(client: TestClient, city: Registry) -> None:
    wgs = client.get("/api/grids/export", params={"format": "geojson", "level": "community"})
    gcj = client.get(
        "/api/grids/export", params={"format": "geojson", "level": "community", "datum": "gcj02"}
    )
    a = {
        f["properties"]["code"]: shapely.geometry.shape(f["geometry"])
        for f in json.loads(wgs.content)["features"]
    }
    b = {
        f["properties"]["code"]: shapely.geometry.shape(f["geometry"])
        for f in json.loads(gcj.content)["features"]
    }
    expected = transform_geometries(a[COMM_A], "wgs84", "gcj02")
    assert shapely.hausdorff_distance(b[COMM_A], expected) < 1e-6
    assert shapely.hausdorff_distance(b[COMM_A], a[COMM_A]) > 1e-3  # hundreds of metres


def test_export_etag_gives_304_until_data_changes(client: TestClient, city: Registry) -> None:
    params = {"format": "geojson", "level": "unit"}
    first = client.get("/api/grids/export", params=params)
    etag = first.headers["etag"]
    again = client.get("/api/grids/export", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304
    client.patch(f"/api/grids/{unit_code(COMM_A, 1)}", json={"name": "改名"})
    changed = client.get("/api/grids/export", params=params, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    other = client.get("/api/grids/export", params={**params, "format": "kml"})
    assert other.headers["etag"] != changed.headers["etag"]


@pytest.mark.parametrize("fmt", ["geojson", "gpx", "shp"])
def test_export_of_nothing_is_404_not_an_empty_file(
    client: TestClient, city: Registry, fmt: str
) -> None:
    r = client.get(
        "/api/grids/export", params={"format": fmt, "level": "city", "at": "2000-01-01T00:00:00Z"}
    )
    assert r.status_code == 404 and "nothing to export" in r.json()["detail"]


def test_export_bad_parameters_are_4xx(client: TestClient, city: Registry) -> None:
    assert client.get("/api/grids/export", params={"format": "dwg"}).status_code == 422
    assert client.get("/api/grids/export", params={"parent": "41019999999900"}).status_code == 404
    assert client.get("/api/grids/export", params={"datum": "xyz"}).status_code == 422

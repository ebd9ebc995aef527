"""Behaviour of gis.io: vector file import/export, checked against geopandas, shapely, pyproj
and the GDAL command-line tools (a separate GDAL build from the one inside pyogrio)."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import shape

from gis.datum import from_wgs84, wgs84_to_gcj02
from gis.io import VectorFileError, read_features, write_features

needs_gdal_cli = pytest.mark.skipif(
    shutil.which("ogr2ogr") is None, reason="GDAL command-line tools not installed"
)

PERSONS = [{"name": "张三", "phone": "13800000000"}, {"name": "李四", "role": "网格员"}]


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    """Three grids in Zhengzhou: a plain polygon, one with a hole, a two-part multipolygon."""
    x, y = 113.6512345678, 34.7523456789
    plain = shapely.box(x, y, x + 0.0011, y + 0.0009)
    holed = shapely.Polygon(
        [(x + 0.002, y), (x + 0.0031, y), (x + 0.0031, y + 0.0009), (x + 0.002, y + 0.0009)],
        [[(x + 0.0024, y + 0.0003), (x + 0.0027, y + 0.0003), (x + 0.0027, y + 0.0006)]],
    )
    multi = shapely.MultiPolygon(
        [
            shapely.box(x, y + 0.002, x + 0.001, y + 0.0028),
            shapely.box(x + 0.0015, y + 0.002, x + 0.0025, y + 0.0028),
        ]
    )
    return gpd.GeoDataFrame(
        {
            "code": ["41010200100107", "41010200100108", "41010200100109"],
            "name": ["金水区花园路网格一", "经三路社区第二网格", "北林路·网格三"],
            "responsible_persons": [PERSONS, [], None],
        },
        geometry=[plain, holed, multi],
        crs=4326,
    )


def save(tmp_path: Path, written: tuple[bytes, str, str]) -> Path:
    data, _, name = written
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_same_geometries(got, expected, tolerance: float) -> None:
    """Equal up to ``tolerance`` degrees per vertex, whatever the ring start or winding.

    A one-part MultiPolygon equals its Polygon: GeoPackage layers hold one geometry type, so a
    mix of polygons and multipolygons is written as multipolygons.
    """
    got, expected = list(got), list(expected)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        a, b = shapely.normalize(single(a)), shapely.normalize(single(b))
        assert shapely.equals_exact(a, b, tolerance=tolerance), (a.wkt, b.wkt)


def assert_same_shapes(got, expected, tolerance: float) -> None:
    """Each shape within ``tolerance`` degrees of the other (Hausdorff). A file in a projected
    CRS comes back with its edges densified along their straight lines in that CRS, a fraction
    of a millimetre (~1e-9°) off the lon/lat lines of the originals."""
    got, expected = list(got), list(expected)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert shapely.hausdorff_distance(single(a), single(b)) <= tolerance, (a.wkt, b.wkt)


def single(geom):
    parts = shapely.get_parts(geom)
    return parts[0] if geom.geom_type == "MultiPolygon" and len(parts) == 1 else geom


def persons(value):
    """responsible_persons as read back: JSON text, or already parsed (GeoJSON), or empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value if isinstance(value, list) else json.loads(value)


def gdal_cli_features(path: str, layer: str | None = None) -> list[dict]:
    """Features as the GDAL command-line tools read them (ogr2ogr to GeoJSON on stdout)."""
    args = ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", path] + ([layer] if layer else [])
    out = subprocess.run(args, check=True, capture_output=True, timeout=60).stdout
    return json.loads(out)["features"]


def gdal_cli_summary(path: str) -> str:
    args = ["ogrinfo", "-al", "-so", path]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


# --- round trips ----------------------------------------------------------------------------

# Coordinate precision of each format: RFC 7946 GeoJSON keeps 7 decimals (a vertex moves up to
# 0.5e-7 in x and y, 0.71e-7 apart), KML 14 significant digits.
ROUND_TRIP = {"geojson": 1e-7, "kml": 1e-10, "gpkg": 0.0, "shp": 0.0}


@pytest.mark.parametrize("fmt", list(ROUND_TRIP))
def test_round_trip_keeps_geometry_codes_chinese_names_and_json_lists(tmp_path, grids, fmt):
    path = save(tmp_path, write_features(grids, fmt))
    back = read_features(path)
    assert back.crs.to_epsg() == 4326
    assert_same_geometries(back.geometry, grids.geometry, ROUND_TRIP[fmt])
    assert back["code"].tolist() == grids["code"].tolist()
    assert back["name"].tolist() == grids["name"].tolist()
    # Shapefile column names are cut to 10 characters
    column = "responsibl" if fmt == "shp" else "responsible_persons"
    assert [persons(v) for v in back[column]][:2] == [PERSONS, []]
    assert persons(back[column].iloc[2]) is None


def test_media_types_and_file_names(grids):
    expected = {
        "geojson": ("application/geo+json", "grids.geojson"),
        "kml": ("application/vnd.google-earth.kml+xml", "grids.kml"),
        "gpkg": ("application/geopackage+sqlite3", "grids.gpkg"),
        "shp": ("application/zip", "grids.zip"),
        "gpx": ("application/gpx+xml", "grids.gpx"),
    }
    for fmt, (media_type, name) in expected.items():
        data, got_type, got_name = write_features(grids, fmt)
        assert (got_type, got_name) == (media_type, name) and len(data) > 0
    assert write_features(grids, "gpkg", layer_name="金水区")[2] == "金水区.gpkg"


def test_geojson_export_is_rfc7946(grids):
    doc = json.loads(write_features(grids, "geojson")[0])
    assert "crs" not in doc  # RFC 7946: always WGS 84, no crs member
    first = doc["features"][0]
    assert first["properties"]["name"] == "金水区花园路网格一"
    # exterior rings counter-clockwise (right-hand rule), 7 decimals at most
    ring = shapely.LinearRing(first["geometry"]["coordinates"][0])
    assert ring.is_ccw
    assert all(round(c, 7) == c for xy in first["geometry"]["coordinates"][0] for c in xy)


@needs_gdal_cli
def test_geopackage_export_reads_in_gdal_command_line_tools(tmp_path, grids):
    path = save(tmp_path, write_features(grids, "gpkg", layer_name="grids"))
    summary = gdal_cli_summary(str(path))
    assert "Layer name: grids" in summary and "Feature Count: 3" in summary
    assert 'ID["EPSG",4326]' in summary
    features = gdal_cli_features(str(path))
    assert [f["properties"]["name"] for f in features] == grids["name"].tolist()
    assert [f["properties"]["code"] for f in features] == grids["code"].tolist()
    assert_same_geometries([shape(f["geometry"]) for f in features], grids.geometry, 1e-12)


@needs_gdal_cli
def test_kml_export_names_placemarks_and_reads_in_gdal_command_line_tools(tmp_path, grids):
    data, _, _ = write_features(grids, "kml")
    text = data.decode("utf-8")
    assert "<name>金水区花园路网格一</name>" in text
    assert '<SimpleData name="code">41010200100107</SimpleData>' in text
    path = save(tmp_path, (data, "", "grids.kml"))
    features = gdal_cli_features(str(path))
    assert [f["properties"]["Name"] for f in features] == grids["name"].tolist()
    assert [f["properties"]["code"] for f in features] == grids["code"].tolist()
    assert_same_geometries([shape(f["geometry"]) for f in features], grids.geometry, 1e-10)


def test_kml_without_name_column_uses_the_code_as_placemark_name(grids):
    text = write_features(grids.drop(columns="name"), "kml")[0].decode("utf-8")
    assert "<name>41010200100107</name>" in text


@needs_gdal_cli
def test_zipped_shapefile_export_is_utf8_and_reads_in_gdal_command_line_tools(tmp_path, grids):
    path = save(tmp_path, write_features(grids, "shp"))
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"grids{s}" for s in (".cpg", ".dbf", ".prj", ".shp", ".shx"))
        assert archive.read("grids.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
    features = gdal_cli_features(f"/vsizip/{path}/grids.shp")
    assert [f["properties"]["name"] for f in features] == grids["name"].tolist()
    assert_same_geometries([shape(f["geometry"]) for f in features], grids.geometry, 1e-12)


@needs_gdal_cli
def test_gpx_export_writes_boundaries_as_named_tracks(tmp_path, grids):
    path = save(tmp_path, write_features(grids, "gpx"))
    features = gdal_cli_features(str(path), "tracks")
    assert [f["properties"]["name"] for f in features] == grids["name"].tolist()
    # GDAL readers clamp a 14-digit extension value to a 32-bit integer; <desc> keeps the code
    assert [f["properties"]["desc"] for f in features] == grids["code"].tolist()
    exteriors = [
        shapely.MultiLineString([p.exterior for p in shapely.get_parts(g)]) for g in grids.geometry
    ]
    tracks = [shape(f["geometry"]) for f in features]
    assert all(t.geom_type == "MultiLineString" for t in tracks)
    assert_same_geometries(tracks, exteriors, 1e-12)
    assert "<ogr:code>41010200100107</ogr:code>" in path.read_text(encoding="utf-8")


def test_gpx_round_trip_gives_polygons_of_the_exterior_rings_and_keeps_codes(tmp_path, grids):
    path = save(tmp_path, write_features(grids, "gpx"))
    back = read_features(path)
    expected = [
        shapely.MultiPolygon([shapely.Polygon(p.exterior) for p in shapely.get_parts(g)])
        if g.geom_type == "MultiPolygon"
        else shapely.Polygon(g.exterior)
        for g in grids.geometry
    ]
    assert_same_geometries(back.geometry, expected, 1e-12)
    assert back["code"].tolist() == grids["code"].tolist()  # not clamped to 2147483647
    assert back["name"].tolist() == grids["name"].tolist()
    assert [persons(v) for v in back["responsible_persons"]] == [PERSONS, [], None]


def test_other_crs_is_reprojected_before_writing(grids):
    utm = grids.to_crs(32649)
    doc = json.loads(write_features(utm, "geojson")[0])
    got = [shape(f["geometry"]) for f in doc["features"]]
    assert_same_geometries(got, grids.geometry, 1e-7)


# --- datums ---------------------------------------------------------------------------------


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_export_in_chinese_datum_shifts_every_vertex_like_gis_datum(grids, datum):
    doc = json.loads(write_features(grids, "geojson", datum=datum)[0])
    got = [shape(f["geometry"]) for f in doc["features"]]
    expected = shapely.transform(
        grids.geometry.values, lambda xy: np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], datum))
    )
    assert_same_geometries(got, expected, 1e-7)
    # the shift is hundreds of metres, far more than the precision of the file
    shift = shapely.hausdorff_distance(got[0], grids.geometry.iloc[0])
    assert shift > 0.002


def test_gcj02_export_still_declares_epsg_4326(tmp_path, grids):
    # GCJ-02 is no CRS: the file says WGS 84 while its numbers carry the GCJ-02 shift
    path = save(tmp_path, write_features(grids, "gpkg", datum="gcj02"))
    assert pyogrio.read_info(path)["crs"] == "EPSG:4326"
    expected = shapely.transform(
        grids.geometry.values, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
    )
    assert_same_geometries(pyogrio.read_dataframe(path).geometry, expected, 1e-12)


def test_importing_a_gcj02_file_converts_back_to_wgs84(tmp_path, grids):
    shifted = grids.drop(columns="responsible_persons").copy()
    shifted.geometry = shapely.transform(
        grids.geometry.values, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
    )
    path = tmp_path / "amap.geojson"
    shifted.to_file(path, driver="GeoJSON", engine="pyogrio")
    back = read_features(path, datum="gcj02")
    assert_same_geometries(back.geometry, grids.geometry, 1e-6)
    plain = read_features(path)
    assert shapely.hausdorff_distance(plain.geometry.iloc[0], grids.geometry.iloc[0]) > 0.002


# --- CRS of imported files ------------------------------------------------------------------


def write_zipped_shapefile(frame, tmp_path: Path, folder: str, stem="grids", prj=True) -> Path:
    """A zipped Shapefile written by geopandas, its files under ``folder`` in the zip."""
    out = tmp_path / f"shp-{stem}-{folder.replace('/', '_')}"
    out.mkdir()
    frame.to_file(out / f"{stem}.shp", engine="pyogrio", encoding="UTF-8")
    target = tmp_path / f"{stem}-{folder.replace('/', '_')}.zip"
    with zipfile.ZipFile(target, "a") as archive:
        for part in sorted(out.iterdir()):
            if prj or part.suffix != ".prj":
                archive.write(part, f"{folder}/{part.name}" if folder else part.name)
    return target


def test_utm_shapefile_zipped_in_a_sub_folder_is_reprojected(tmp_path, grids):
    utm = grids.drop(columns="responsible_persons").to_crs(32649)
    path = write_zipped_shapefile(utm, tmp_path, "导出/金水区")
    back = read_features(path)
    assert back.crs.to_epsg() == 4326
    assert_same_shapes(back.geometry, grids.geometry, 1e-8)
    assert back["name"].tolist() == grids["name"].tolist()


def test_shapefile_without_prj_needs_a_crs(tmp_path, grids):
    utm = grids.drop(columns="responsible_persons").to_crs(32649)
    path = write_zipped_shapefile(utm, tmp_path, "", prj=False)
    with pytest.raises(VectorFileError, match=r"file has no CRS; pass crs=EPSG:xxxx"):
        read_features(path)
    back = read_features(path, crs="EPSG:32649")
    assert_same_shapes(back.geometry, grids.geometry, 1e-8)


def test_geopackage_without_crs_needs_a_crs(tmp_path, grids):
    path = tmp_path / "nocrs.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyogrio: "'crs' was not provided"
        pyogrio.write_dataframe(
            grids[["code", "geometry"]].set_crs(None, allow_override=True), path
        )
    assert pyogrio.read_info(path)["crs"] is None
    with pytest.raises(VectorFileError, match=r"file has no CRS; pass crs=EPSG:xxxx"):
        read_features(path)
    back = read_features(path, crs="EPSG:4326")
    assert_same_geometries(back.geometry, grids.geometry, 0.0)


def test_crs_argument_overrides_a_wrong_declared_crs(tmp_path, grids):
    utm = grids[["code", "geometry"]].to_crs(32649).set_crs(4326, allow_override=True)
    path = tmp_path / "mislabelled.gpkg"
    utm.to_file(path, engine="pyogrio")
    with pytest.raises(VectorFileError, match="out of the lon/lat range"):
        read_features(path)
    back = read_features(path, crs="EPSG:32649")
    assert_same_shapes(back.geometry, grids.geometry, 1e-8)


def test_geojson_without_crs_is_taken_as_wgs84(tmp_path):
    path = tmp_path / "plain.geojson"
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": shapely.geometry.mapping(shapely.box(113.6, 34.7, 113.61, 34.71)),
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    back = read_features(path)
    assert back.crs.to_epsg() == 4326
    assert_same_geometries(back.geometry, [shapely.box(113.6, 34.7, 113.61, 34.71)], 0.0)


# --- KML, KMZ and columns -------------------------------------------------------------------

KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>网格</name>
<Folder><name>花园路街道</name>
  <Placemark><name>网格一</name><description>沿街商铺</description>
    <ExtendedData><Data name="CODE"><value>41010200100107</value></Data>
      <Data name="Grid_Level"><value>unit</value></Data></ExtendedData>
    <Polygon><outerBoundaryIs><LinearRing><coordinates>
      113.65,34.75,0 113.651,34.75,0 113.651,34.751,0 113.65,34.751,0 113.65,34.75,0
    </coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
</Folder>
<Folder><name>经八路街道</name>
  <Placemark><name>网格二</name>
    <ExtendedData><Data name="CODE"><value>41010200200101</value></Data>
      <Data name="Grid_Level"><value>unit</value></Data></ExtendedData>
    <Polygon><outerBoundaryIs><LinearRing><coordinates>
      113.66,34.75 113.661,34.75 113.661,34.751 113.66,34.751 113.66,34.75
    </coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
</Folder></Document></kml>
"""


def check_kml_import(frame: gpd.GeoDataFrame) -> None:
    assert frame["name"].tolist() == ["网格一", "网格二"]
    assert frame["code"].tolist() == ["41010200100107", "41010200200101"]
    assert frame["grid_level"].tolist() == ["unit", "unit"]
    assert frame["description"].iloc[0] == "沿街商铺"
    assert not {"tessellate", "extrude", "visibility", "altitudemode", "id"} & set(frame.columns)
    expected = [
        shapely.box(113.65, 34.75, 113.651, 34.751),
        shapely.box(113.66, 34.75, 113.661, 34.751),
    ]
    assert_same_geometries(shapely.force_2d(frame.geometry.values), expected, 1e-12)


def test_kml_placemarks_of_all_folders_are_read_with_their_extended_data(tmp_path):
    path = tmp_path / "grids.kml"
    path.write_text(KML, encoding="utf-8")
    check_kml_import(read_features(path))
    one = read_features(path, layer="经八路街道")
    assert one["name"].tolist() == ["网格二"]


def test_kmz_is_read_like_its_doc_kml(tmp_path):
    path = tmp_path / "grids.kmz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("doc.kml", KML)
        archive.writestr("files/readme.txt", "icons would be here")
    check_kml_import(read_features(path))


def test_column_names_are_lower_cased(tmp_path):
    frame = gpd.GeoDataFrame(
        {"CODE": ["41010200100107"], "Name": ["网格"], "AreaM2": [10000.5]},
        geometry=[shapely.box(113.6, 34.7, 113.61, 34.71)],
        crs=4326,
    )
    path = tmp_path / "upper.gpkg"
    frame.to_file(path, engine="pyogrio")
    back = read_features(path)
    assert list(back.columns) == ["code", "name", "aream2", "geometry"]
    assert back["aream2"].iloc[0] == 10000.5


def test_columns_differing_only_in_case_are_refused(tmp_path):
    path = tmp_path / "clash.geojson"
    feature = {
        "type": "Feature",
        "properties": {"Name": "a", "NAME": "b"},
        "geometry": {"type": "Point", "coordinates": [113.6, 34.7]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(VectorFileError, match="upper/lower case"):
        read_features(path)


def test_file_type_is_recognised_from_content_when_the_extension_is_unknown(tmp_path, grids):
    data, _, _ = write_features(grids, "gpkg")
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    assert read_features(path)["code"].tolist() == grids["code"].tolist()


# --- layers ---------------------------------------------------------------------------------


def test_zip_with_several_shapefiles_needs_a_layer(tmp_path, grids):
    frame = grids.drop(columns="responsible_persons")
    path = tmp_path / "two.zip"
    for stem, part in (("streets", frame.iloc[:1]), ("units", frame.iloc[1:])):
        folder = tmp_path / stem
        folder.mkdir()
        part.to_file(folder / f"{stem}.shp", engine="pyogrio", encoding="UTF-8")
        with zipfile.ZipFile(path, "a") as archive:
            for f in folder.iterdir():
                archive.write(f, f"data/{f.name}")
    with pytest.raises(VectorFileError, match=r"2 Shapefiles .*streets\.shp.*units\.shp.*layer="):
        read_features(path)
    assert read_features(path, layer="units")["code"].tolist() == grids["code"].tolist()[1:]
    with pytest.raises(VectorFileError, match="no single Shapefile named 'roads'"):
        read_features(path, layer="roads")


def test_geopackage_with_several_layers_needs_a_layer(tmp_path, grids):
    path = tmp_path / "layers.gpkg"
    frame = grids.drop(columns="responsible_persons")
    frame.iloc[:1].to_file(path, layer="streets", engine="pyogrio")
    frame.iloc[1:].to_file(path, layer="units", engine="pyogrio")
    with pytest.raises(VectorFileError, match=r"2 layers \(streets, units\); pass layer=NAME"):
        read_features(path)
    assert read_features(path, layer="units")["code"].tolist() == grids["code"].tolist()[1:]
    with pytest.raises(VectorFileError, match="no layer 'roads'; the layers are streets, units"):
        read_features(path, layer="roads")


def test_geopackage_spatial_layer_is_chosen_next_to_a_plain_table(tmp_path, grids):
    path = tmp_path / "mixed.gpkg"
    grids[["code", "geometry"]].to_file(path, layer="grids", engine="pyogrio")
    pyogrio.write_dataframe(pd.DataFrame({"note": ["x"]}), path, layer="notes", append=False)
    assert read_features(path)["code"].tolist() == grids["code"].tolist()
    with pytest.raises(VectorFileError, match="layer 'notes' has no geometry column"):
        read_features(path, layer="notes")


# --- errors ---------------------------------------------------------------------------------


def test_empty_files_have_no_features(tmp_path):
    zero = tmp_path / "zero.geojson"
    zero.write_bytes(b"")
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    for path in (zero, empty):
        with pytest.raises(VectorFileError, match="file has no features"):
            read_features(path)


def test_features_without_geometry_are_refused(tmp_path):
    path = tmp_path / "nogeom.geojson"
    feature = {"type": "Feature", "properties": {"code": "1"}, "geometry": None}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(VectorFileError, match="no feature has a geometry"):
        read_features(path)


def test_non_spatial_files_are_refused(tmp_path):
    csv = tmp_path / "grids.csv"
    csv.write_text("code,name\n41010200100107,网格\n", encoding="utf-8")
    with pytest.raises(VectorFileError, match="no geometry column"):
        read_features(csv)
    table = tmp_path / "table.gpkg"
    pyogrio.write_dataframe(pd.DataFrame({"code": ["41010200100107"]}), table, layer="codes")
    with pytest.raises(VectorFileError, match="no geometry column"):
        read_features(table)
    text = tmp_path / "grids.geojson"
    text.write_text("code,name\n41010200100107,网格\n", encoding="utf-8")
    with pytest.raises(VectorFileError, match="cannot read the file as GeoJSON"):
        read_features(text)


def test_corrupt_files_are_refused(tmp_path, grids):
    data, _, _ = write_features(grids, "gpkg")
    broken = tmp_path / "broken.gpkg"
    broken.write_bytes(b"\x00" * 64 + data[len(data) // 2 :])
    with pytest.raises(VectorFileError, match="cannot read the file as GeoPackage"):
        read_features(broken)
    bad_zip = tmp_path / "broken.zip"
    bad_zip.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(VectorFileError, match="not a readable zip file"):
        read_features(bad_zip)


def test_unknown_file_type_lists_the_supported_ones(tmp_path):
    path = tmp_path / "drawing.dwg"
    path.write_bytes(b"AC1032\x00\x00binary")
    with pytest.raises(
        VectorFileError, match=r"unsupported file type \.dwg.*\.geojson.*\.gpkg.*\.zip.*\.kml"
    ):
        read_features(path)


def test_zip_without_shapefile_or_with_parts_missing_is_refused(tmp_path, grids):
    no_shp = tmp_path / "docs.zip"
    with zipfile.ZipFile(no_shp, "w") as archive:
        archive.writestr("readme.txt", "no data")
    with pytest.raises(VectorFileError, match=r"no \.shp file"):
        read_features(no_shp)
    complete = write_zipped_shapefile(grids[["code", "geometry"]], tmp_path, "x")
    partial = tmp_path / "partial.zip"
    with zipfile.ZipFile(complete) as src, zipfile.ZipFile(partial, "w") as dst:
        for name in src.namelist():
            if not name.endswith(".dbf"):
                dst.writestr(name, src.read(name))
    with pytest.raises(VectorFileError, match=r"lacks its \.dbf file"):
        read_features(partial)


def test_coordinates_outside_lon_lat_range_are_refused(tmp_path):
    path = tmp_path / "metres.geojson"
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": shapely.geometry.mapping(shapely.box(750000, 3850000, 750100, 3850100)),
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(VectorFileError, match="out of the lon/lat range.*pass crs=EPSG:xxxx"):
        read_features(path)


def test_bad_arguments_are_refused(tmp_path, grids):
    path = save(tmp_path, write_features(grids, "geojson"))
    with pytest.raises(VectorFileError, match="unknown CRS"):
        read_features(path, crs="EPSG:not-a-code")
    with pytest.raises(ValueError, match="unknown datum"):
        read_features(path, datum="wgs72")
    with pytest.raises(VectorFileError, match="no such file"):
        read_features(tmp_path / "missing.geojson")
    with pytest.raises(VectorFileError, match="unknown format 'dxf'"):
        write_features(grids, "dxf")
    with pytest.raises(VectorFileError, match="cannot be a file name"):
        write_features(grids, "gpkg", layer_name="../grids")
    points = grids.set_geometry(shapely.centroid(grids.geometry.values))
    with pytest.raises(VectorFileError, match="GPX export takes polygons or lines"):
        write_features(points, "gpx")

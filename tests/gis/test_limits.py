"""Hostile and oversized files are refused before they are expanded, and cheaply."""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from gis.io import VectorFileError, read_features, write_features
from gis.limits import (
    FileLimits,
    FileTooLarge,
    UnsafeFile,
    check_csv,
    check_parquet,
    extract_members,
    zip_members,
)
from tests.helpers.hostile_files import (
    LAUGHING_GPX,
    LAUGHING_KML,
    Member,
    MiB,
    add_cross_join_view,
    kmz_bomb,
    parquet_dictionary_bomb,
    parquet_rows_bomb,
    peak_growth,
    shapefile_bomb,
    small,
    write_zip,
    zeros,
)


def points(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [f"p{i}" for i in range(n)]},
        geometry=shapely.points(113.65 + np.arange(n) * 1e-4, np.full(n, 34.75)),
        crs=4326,
    )


def zipped_shapefile(tmp_path: Path, frame: gpd.GeoDataFrame, extra: list[Member]) -> Path:
    """A real zipped Shapefile of ``frame`` with ``extra`` members added."""
    data, _, _ = write_features(frame, "shp")
    real = tmp_path / "real.zip"
    real.write_bytes(data)
    with zipfile.ZipFile(real) as archive:
        members = [small(i.filename, archive.read(i)) for i in archive.infolist()]
    return write_zip(tmp_path / "mixed.zip", members + extra)


# --- zip: the central directory ---------------------------------------------------------------


def test_zip_bomb_is_refused_from_its_declared_sizes(tmp_path):
    bomb = shapefile_bomb(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 2 * MiB
    with pytest.raises(
        FileTooLarge, match=r"1,100 MB uncompressed, more than the limit of 256 MB"
    ) as e:
        read_features(bomb)
    assert e.value.limit == "max_uncompressed_mb"


def test_kmz_bomb_is_refused_from_its_declared_sizes(tmp_path):
    with pytest.raises(FileTooLarge, match="1,100 MB uncompressed") as e:
        read_features(kmz_bomb(tmp_path / "bomb.kmz"))
    assert e.value.limit == "max_uncompressed_mb"


def test_zip_lying_about_its_sizes_stops_at_the_declared_size(tmp_path):
    # the central directory says 1 MiB; the data expands to 1.1 GB (GDAL's /vsizip/ reads it all)
    liar = shapefile_bomb(tmp_path / "liar.zip", declared=MiB)
    with pytest.raises(UnsafeFile, match="'grids.shp' cannot be unzipped .*sizes do not match"):
        read_features(liar)
    folder = tmp_path / "out"
    folder.mkdir()
    (info,) = [i for i in zip_members(liar, FileLimits()) if i.filename == "grids.shp"]
    with pytest.raises(UnsafeFile):
        extract_members(liar, [info], folder, FileLimits())
    assert (folder / "grids.shp").stat().st_size <= MiB


@pytest.mark.parametrize(
    "name",
    ["../grids.shp", "../../etc/grids.shp", "/tmp/grids.shp", "C:\\grids.shp", "a/../../x.shp",
     "..\\..\\grids.shp"],
)  # fmt: skip
def test_members_leaving_the_folder_are_refused_by_name(tmp_path, name):
    zipped = zipped_shapefile(tmp_path, points(3), [small(name, b"evil")])
    with pytest.raises(UnsafeFile, match=f"member {re.escape(repr(name))} points outside"):
        read_features(zipped)


def test_members_are_unzipped_by_base_name_into_the_folder_only(tmp_path):
    zipped = write_zip(tmp_path / "z.zip", [small("../../escape.txt", b"evil")])
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    infos = zipfile.ZipFile(zipped).infolist()
    assert extract_members(zipped, infos, folder, FileLimits()) == [folder / "escape.txt"]
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("escape.txt")] == [
        Path("a/b/escape.txt")
    ]


def test_symbolic_link_member_is_refused(tmp_path):
    link = small("grids.cpg", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)
    zipped = zipped_shapefile(tmp_path, points(3), [link])
    with pytest.raises(UnsafeFile, match="'grids.cpg' is a symbolic link"):
        read_features(zipped)


def test_encrypted_and_duplicate_members_are_refused(tmp_path):
    locked = write_zip(tmp_path / "locked.zip", [Member("grids.shp", head=b"x", flags=1)])
    with pytest.raises(UnsafeFile, match="encrypted; zip it without a password"):
        zip_members(locked, FileLimits())
    twice = write_zip(tmp_path / "twice.zip", [small("a/grids.shp"), small("a/grids.shp")])
    with pytest.raises(UnsafeFile, match="appears twice"):
        zip_members(twice, FileLimits())


def test_member_count_is_limited(tmp_path):
    many = write_zip(tmp_path / "many.zip", [small(f"f{i}.txt") for i in range(1001)])
    with pytest.raises(FileTooLarge, match="1,001 entries, more than the limit of 1,000") as e:
        read_features(many)
    assert e.value.limit == "max_archive_members"
    assert len(zip_members(many, FileLimits(max_archive_members=1001))) == 1001


def test_compression_ratio_is_limited_per_member(tmp_path):
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("grids.dbf", b"\0" * (4 * MiB))  # bzip2: ~100,000 times
    with pytest.raises(FileTooLarge, match="'grids.dbf' expands .* more than the limit") as e:
        zip_members(path, FileLimits())
    assert e.value.limit == "max_compression_ratio"


def test_real_shapefile_with_a_highly_compressible_dbf_is_read(tmp_path):
    # Shapefile text fields are padded with spaces: a real .dbf zips 100 times or more
    n = 8000
    frame = points(n).assign(name="第一社区第二网格", note="")
    data, _, _ = write_features(frame, "shp")
    path = tmp_path / "city.zip"
    path.write_bytes(data)
    dbf = zipfile.ZipFile(path).getinfo("grids.dbf")
    assert dbf.file_size > MiB and dbf.file_size / dbf.compress_size > 50
    got = read_features(path)
    assert len(got) == n and set(got["name"]) == {"第一社区第二网格"}


def test_zip_inside_the_zip_is_not_opened(tmp_path):
    inner = shapefile_bomb(tmp_path / "inner.zip")
    outer = write_zip(tmp_path / "outer.zip", [small("inner.zip", inner.read_bytes())])
    with pytest.raises(VectorFileError, match=r"a zip inside the zip is not opened: inner.zip"):
        read_features(outer)


def test_members_read_are_unzipped_outside_gdal_and_give_the_same_features(tmp_path):
    frame = points(5)
    zipped = zipped_shapefile(tmp_path, frame, [small("readme.txt", b"notes")])
    got = read_features(zipped)
    assert got["code"].tolist() == frame["code"].tolist()
    assert shapely.equals_exact(got.geometry.values, frame.geometry.values, 1e-9).all()


# --- XML ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"), [("laughs.kml", LAUGHING_KML), ("laughs.gpx", LAUGHING_GPX)]
)
def test_billion_laughs_is_refused_by_the_xml_parsers(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VectorFileError, match="cannot read the file"):
        read_features(path)


def test_billion_laughs_in_a_kmz_is_refused(tmp_path):
    kmz = write_zip(tmp_path / "laughs.kmz", [small("doc.kml", LAUGHING_KML)])
    with pytest.raises(VectorFileError, match="cannot read the file as KML"):
        read_features(kmz)


# --- features, GeoPackage, compressed vector files -----------------------------------------------


def test_max_rows_limits_the_features_read(tmp_path):
    path = tmp_path / "three.gpkg"
    path.write_bytes(write_features(points(3), "gpkg")[0])
    with pytest.raises(FileTooLarge, match="more than 2 features") as e:
        read_features(path, limits=FileLimits(max_rows=2))
    assert e.value.limit == "max_rows"
    assert len(read_features(path, limits=FileLimits(max_rows=3))) == 3


def test_geopackage_whose_stored_count_lies_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "liar.gpkg"
    path.write_bytes(write_features(points(50), "gpkg")[0])
    with sqlite3.connect(path) as con:
        con.execute("UPDATE gpkg_ogr_contents SET feature_count = 2")
    with pytest.raises(UnsafeFile, match="holds more features than its header declares"):
        read_features(path)


def test_geopackage_views_are_refused(tmp_path):
    path = tmp_path / "view.gpkg"
    path.write_bytes(write_features(points(2000), "gpkg", layer_name="pts")[0])
    add_cross_join_view(path, "pts")  # 8 billion rows from 2,000
    with pytest.raises(UnsafeFile, match=r"SQL views \(boom\); export the layers as tables"):
        read_features(path, layer="pts")


def test_compressed_vector_files_are_refused(tmp_path):
    import gzip

    path = tmp_path / "grids.geojson.gz"
    path.write_bytes(gzip.compress(write_features(points(2), "geojson")[0]))
    with pytest.raises(VectorFileError, match="gzip-compressed files are not read"):
        read_features(path)


# --- CSV ------------------------------------------------------------------------------------


def test_csv_rows_are_counted_before_parsing(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat\n" + "113.6,34.7\n" * 5)
    check_csv(path, FileLimits(max_rows=5))
    with pytest.raises(FileTooLarge, match="more than 4 rows") as e:
        check_csv(path, FileLimits(max_rows=4))
    assert e.value.limit == "max_rows"


def test_csv_newlines_inside_quotes_are_no_rows(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('lon,lat,note\n113.6,34.7,"a\nb\nc"\n113.6,34.7,"第\n二"\n', encoding="gbk")
    check_csv(path, FileLimits(max_rows=2))  # 6 newlines, 2 rows
    with pytest.raises(FileTooLarge):
        check_csv(path, FileLimits(max_rows=1))


def test_compressed_csv_is_refused(tmp_path):
    import gzip

    path = tmp_path / "p.csv"
    path.write_bytes(gzip.compress(b"lon,lat\n113.6,34.7\n"))
    with pytest.raises(UnsafeFile, match="gzip-compressed; send the table uncompressed"):
        check_csv(path, FileLimits())


# --- Parquet --------------------------------------------------------------------------------


def test_parquet_dictionary_bomb_is_measured_without_decoding(tmp_path):
    bomb = parquet_dictionary_bomb(tmp_path / "bomb.parquet")
    assert bomb.stat().st_size < 10_000
    with pytest.raises(FileTooLarge, match="1,100 MB uncompressed") as e:
        check_parquet(bomb, FileLimits())
    assert e.value.limit == "max_uncompressed_mb"


def test_parquet_dictionary_of_an_extension_type_is_measured_too(tmp_path):
    # JSON columns are read as an extension type, which pyarrow would decode, not keep as a
    # dictionary: 20 rows of one 1 MiB document, stored once
    path = tmp_path / "json.parquet"
    text = pa.array(['"' + "x" * MiB + '"'] * 20)
    pq.write_table(pa.table({"doc": pa.ExtensionArray.from_storage(pa.json_(), text)}), path)
    assert pq.ParquetFile(path).metadata.row_group(0).total_byte_size < 2 * MiB
    with pytest.raises(FileTooLarge, match="20 MB uncompressed, more than the limit of 10 MB"):
        check_parquet(path, FileLimits(max_uncompressed_mb=10))


def test_parquet_rows_come_from_the_footer(tmp_path):
    path = parquet_rows_bomb(tmp_path / "rows.parquet", 1001)
    check_parquet(path, FileLimits(max_rows=1001))
    with pytest.raises(FileTooLarge, match="more than 1,000 rows"):
        check_parquet(path, FileLimits(max_rows=1000))


def test_parquet_declared_and_fixed_width_sizes_are_checked(tmp_path):
    path = tmp_path / "wide.parquet"
    rng = np.random.default_rng(1)
    pq.write_table(pa.table({"blob": [rng.bytes(MiB) for _ in range(3)]}), path)
    with pytest.raises(FileTooLarge, match="3 MB uncompressed, more than the limit of 2 MB"):
        check_parquet(path, FileLimits(max_uncompressed_mb=2))
    zeros_path = parquet_rows_bomb(tmp_path / "zeros.parquet", 200_000)  # 3.2 MB of doubles
    with pytest.raises(FileTooLarge, match="more than the limit of 3 MB"):
        check_parquet(zeros_path, FileLimits(max_uncompressed_mb=3))
    check_parquet(zeros_path, FileLimits(max_uncompressed_mb=4))


def test_parquet_nested_and_prefix_shared_columns_are_refused(tmp_path):
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"lon": [1.0], "tags": [["a", "b"]]}), nested)
    with pytest.raises(UnsafeFile, match="tags hold lists or maps"):
        check_parquet(nested, FileLimits())
    shared = tmp_path / "delta.parquet"
    pq.write_table(
        pa.table({"note": ["abc", "abd"]}),
        shared,
        use_dictionary=False,
        column_encoding={"note": "DELTA_BYTE_ARRAY"},
    )
    with pytest.raises(UnsafeFile, match="note use DELTA_BYTE_ARRAY"):
        check_parquet(shared, FileLimits())


# --- memory ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bomb", ["shapefile", "liar", "kmz"])
def test_reading_a_bomb_takes_little_memory(tmp_path, bomb):
    path = {
        "shapefile": lambda: shapefile_bomb(tmp_path / "bomb.zip"),
        "liar": lambda: shapefile_bomb(tmp_path / "liar.zip", declared=MiB),
        "kmz": lambda: kmz_bomb(tmp_path / "bomb.kmz"),
    }[bomb]()
    result = peak_growth("from gis.io import read_features", f"read_features({str(path)!r})")
    assert result["outcome"].startswith(("FileTooLarge", "UnsafeFile")), result
    assert result["growth_mb"] < 100, result  # the data would be 1,100 MB


def test_the_memory_measure_sees_an_unguarded_expansion(tmp_path):
    """The bound above means something: unzipping such a member naively costs its size."""
    bomb = write_zip(tmp_path / "bomb.zip", [zeros("grids.shp", mib=300)])
    naive = peak_growth("import zipfile", f"zipfile.ZipFile({str(bomb)!r}).read('grids.shp')")
    assert naive["outcome"] == "read" and naive["growth_mb"] > 250, naive

"""What reading a file may cost, checked before (and while) it is read.

A small file can hold a lot: a zip of 2 MB can expand to gigabytes, a Parquet column can repeat
one long dictionary value in every row, a GeoPackage view can compute millions of rows from
nothing. Every reader of uploaded or imported files (vector files in ``gis.io``; point, case and
fix tables in ``service``) checks them here first, against one set of :class:`FileLimits`:

- **zip** (zipped Shapefiles, KMZ): the member count, the declared total size and each member's
  compression ratio are read from the central directory, and names that would leave a folder,
  symbolic links, encrypted and duplicate members are refused — all before anything is
  decompressed. The members that are read are then copied out by a streaming copy that stops at
  the declared sizes: GDAL's ``/vsizip/`` reads past a member's declared size, so it never opens
  an uploaded zip. A zip inside the zip is never opened.
- **Parquet**: the row count, the declared uncompressed size and the decoded size of the
  fixed-width columns from the footer; then a streaming pass measures the decoded text and
  binary columns (dictionary values are counted per row, not decoded). Nested columns (lists,
  maps) and prefix-shared text (``DELTA_BYTE_ARRAY``) are refused: their decoded size cannot be
  bounded before decoding.
- **CSV**: compressed content is refused and the rows are counted by streaming (a newline count,
  and an exact CSV count only when the newlines exceed the limit) before the table is parsed.
- **GeoPackage**: SQL views are refused (a view computes its rows when read).
- **any vector layer** (``gis.io``): features are counted before reading and the read stops one
  feature past the count, so a stored count that lies costs no more than the truth.

Plain files (CSV, GeoJSON, KML, GPX, GeoPackage) hold no more than their size, which the upload
limit bounds; XML entity expansion in KML/GPX is refused by the parsers (libkml rejects a DTD,
GDAL's GPX reader and Python's expat refuse entity amplification).
"""

from __future__ import annotations

import csv
import re
import sqlite3
import stat
import zipfile
import zlib
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MB = 1 << 20
_CHUNK = 1 << 20
# Members smaller than this are not held to the ratio: a small, highly compressible file (a
# .cpg, a .prj, a .dbf of few rows) costs nothing to expand.
_RATIO_FLOOR = 1 << 20
_BATCH_ROWS = 65_536
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
}
_DRIVE = re.compile(r"^[A-Za-z]:")


class FileRefused(Exception):
    """A file refused for what reading it would cost or do; the message says what was found."""


class FileTooLarge(FileRefused):
    """A file exceeds a limit; ``limit`` names the :class:`FileLimits` field that allows more."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class UnsafeFile(FileRefused):
    """A file whose structure is hostile or broken: a path leaving the folder, a link, sizes
    that do not match the data, encryption, an unbounded encoding."""


@dataclass(frozen=True)
class FileLimits:
    """What one file may hold (the defaults serve a city of 30,000 unit grids several times over:
    its zipped Shapefile is 25-100 MB uncompressed; a million cases as Parquet decode to ~120 MB).

    Attributes
    ----------
    max_uncompressed_mb : float
        Most data a compressed file may hold once unzipped or decoded (zip members, Parquet).
    max_archive_members : int
        Most entries in a zip.
    max_compression_ratio : float
        Most a zip member of 1 MB or more may expand (uncompressed / compressed size). The
        default sits just under Deflate's ceiling (~1,030): it refuses members of near-constant
        bytes and bzip2/LZMA bombs, not real files (a space-padded .dbf zips 100-150 times).
    max_rows : int
        Most rows (tables) or features (vector files) per file.
    """

    max_uncompressed_mb: float = 256
    max_archive_members: int = 1000
    max_compression_ratio: float = 1000
    max_rows: int = 5_000_000

    def check_rows(self, count: int, what: str = "rows") -> None:
        """Refuse ``count`` rows (or features) over ``max_rows``."""
        if count > self.max_rows:
            raise FileTooLarge(
                f"the file holds more than {self.max_rows:,} {what} (the limit)", "max_rows"
            )

    def check_uncompressed(self, size: float, what: str) -> None:
        """Refuse ``size`` bytes of ``what`` over ``max_uncompressed_mb``."""
        if size > self.max_uncompressed_mb * MB:
            raise FileTooLarge(
                f"{what} {size / MB:,.0f} MB uncompressed, more than the limit of "
                f"{self.max_uncompressed_mb:g} MB",
                "max_uncompressed_mb",
            )


# --- zip -----------------------------------------------------------------------------------


def zip_members(path: Path, limits: FileLimits) -> list[zipfile.ZipInfo]:
    """The members of a zip, after checking its central directory; nothing is decompressed.

    Raises
    ------
    FileTooLarge
        Too many members, too much declared data, or a member expanding more than the ratio.
    UnsafeFile
        A member name that is absolute, has a drive letter or ``..``; a symbolic link; an
        encrypted or a duplicate member. (A file that is no zip raises ``zipfile.BadZipFile``.)
    """
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    if len(infos) > limits.max_archive_members:
        raise FileTooLarge(
            f"{path.name}: the zip holds {len(infos):,} entries, more than the limit of "
            f"{limits.max_archive_members:,}",
            "max_archive_members",
        )
    seen: set[str] = set()
    for info in infos:
        _check_member(path, info, seen)
    limits.check_uncompressed(sum(i.file_size for i in infos), f"{path.name}: the zip holds")
    for info in infos:
        _check_ratio(path, info, limits)
    return infos


def _check_member(path: Path, info: zipfile.ZipInfo, seen: set[str]) -> None:
    name = info.filename
    slashed = name.replace("\\", "/")
    if slashed.startswith("/") or _DRIVE.match(slashed) or ".." in PurePosixPath(slashed).parts:
        raise UnsafeFile(
            f"{path.name}: member {name!r} points outside the zip's folder; zip the files "
            "with paths relative to one folder"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeFile(
            f"{path.name}: member {name!r} is a symbolic link; zip the files themselves"
        )
    if info.flag_bits & 0x1:
        raise UnsafeFile(f"{path.name}: member {name!r} is encrypted; zip it without a password")
    if slashed in seen:
        raise UnsafeFile(f"{path.name}: member {name!r} appears twice in the zip")
    seen.add(slashed)


def _check_ratio(path: Path, info: zipfile.ZipInfo, limits: FileLimits) -> None:
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= _RATIO_FLOOR and ratio > limits.max_compression_ratio:
        raise FileTooLarge(
            f"{path.name}: member {info.filename!r} expands {ratio:,.0f} times "
            f"({info.file_size / MB:,.0f} MB), more than the limit of "
            f"{limits.max_compression_ratio:g} times",
            "max_compression_ratio",
        )


def extract_members(
    path: Path, members: list[zipfile.ZipInfo], folder: Path, limits: FileLimits
) -> list[Path]:
    """Copy ``members`` (checked by :func:`zip_members`) into ``folder`` under their base names.

    The copy streams and counts: it stops when a member yields more than it declares or the
    members together exceed ``max_uncompressed_mb``, whatever the central directory said.
    Member paths are never used to write: files land in ``folder`` by base name only.
    """
    total = 0
    out_paths = []
    with zipfile.ZipFile(path) as archive:
        for info in members:
            target = folder / PurePosixPath(info.filename.replace("\\", "/")).name
            written = 0
            try:
                with archive.open(info) as source, target.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        if written > info.file_size:
                            raise UnsafeFile(
                                f"{path.name}: member {info.filename!r} holds more data than "
                                "the zip declares; the zip is damaged or crafted"
                            )
                        limits.check_uncompressed(total, f"{path.name}: the zip holds")
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise UnsafeFile(
                    f"{path.name}: member {info.filename!r} cannot be unzipped ({exc}); the "
                    "zip is damaged or its sizes do not match its data"
                ) from exc
            out_paths.append(target)
    return out_paths


# --- tables --------------------------------------------------------------------------------


def compression_of(head: bytes) -> str | None:
    """The compression format whose magic number starts ``head`` (gzip, zip, ...), or None."""
    return next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)


def check_csv(path: Path, limits: FileLimits) -> None:
    """Refuse a compressed CSV and one with more than ``max_rows`` rows, before it is parsed.

    Newlines are counted in blocks (a CSV holds no more data rows than newlines); only when
    they exceed the limit are the records counted exactly (quoted values may hold newlines).
    """
    with path.open("rb") as file:
        kind = compression_of(file.read(8))
        if kind:
            raise UnsafeFile(f"{path.name} is {kind}-compressed; send the table uncompressed")
        file.seek(0)
        newlines = 0
        while block := file.read(_CHUNK):
            newlines += block.count(b"\n")
            if newlines > limits.max_rows:
                break
    if newlines > limits.max_rows:
        limits.check_rows(_count_records(path, limits.max_rows + 1) - 1)


def _count_records(path: Path, stop: int) -> int:
    """Non-empty CSV records (header included), counting no further than ``stop + 1``."""
    # Latin-1 maps every byte to one character: quotes, commas and newlines are ASCII and no
    # byte of a UTF-8 or GBK character is one of them, so any encoding counts the same.
    with path.open(encoding="latin-1", newline="") as text:
        count = 0
        for row in csv.reader(text):
            count += bool(row)
            if count > stop:
                break
    return count


def check_parquet(path: Path, limits: FileLimits) -> None:
    """Check a Parquet file's rows and decoded size before it is read.

    From the footer: the row count, the declared uncompressed size, and rows × width of the
    fixed-width columns. Then one streaming pass, in batches, measures the decoded text and
    binary values; dictionary-encoded ones are read as dictionaries and counted per row, so a
    long value repeated in every row is never expanded.

    Raises
    ------
    FileTooLarge
        Too many rows or too much data once decoded.
    UnsafeFile
        Nested columns or ``DELTA_BYTE_ARRAY`` text, whose decoded size has no bound before
        decoding. Unreadable files raise pyarrow's own errors.
    """
    # extension types (JSON, UUID ...) read as what they are stored as: dictionaries stay such
    file = pq.ParquetFile(path, arrow_extensions_enabled=False)
    meta, schema = file.metadata, file.schema_arrow
    limits.check_rows(meta.num_rows)
    nested = [f.name for f in schema if _nested(f.type)]
    if nested:
        raise UnsafeFile(
            f"{path.name}: column(s) {', '.join(nested)} hold lists or maps; send flat columns "
            "(points as WKB or x/y)"
        )
    chunks = [
        meta.row_group(g).column(c)
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    ]
    shared = sorted({c.path_in_schema for c in chunks if "DELTA_BYTE_ARRAY" in c.encodings})
    if shared:
        raise UnsafeFile(
            f"{path.name}: column(s) {', '.join(shared)} use DELTA_BYTE_ARRAY encoding, whose "
            "decoded size cannot be checked first; write the file with dictionary or plain "
            "encoding (the default of pyarrow, pandas, GDAL and DuckDB)"
        )
    what = f"{path.name}: the Parquet data is"
    limits.check_uncompressed(sum(c.total_uncompressed_size for c in chunks), what)
    limits.check_uncompressed(meta.num_rows * sum(_width(f.type) for f in schema), what)
    text = [f.name for f in schema if _variable(f.type)]
    decoded = 0
    scan = pq.ParquetFile(path, read_dictionary=text, arrow_extensions_enabled=False)
    for batch in scan.iter_batches(_BATCH_ROWS):
        decoded += sum(_decoded_bytes(column) for column in batch.columns)
        limits.check_uncompressed(decoded, what)


def _storage(kind: pa.DataType) -> pa.DataType:
    """The type an extension type (JSON, GeoArrow WKB ...) is stored as."""
    return kind.storage_type if isinstance(kind, pa.BaseExtensionType) else kind


def _nested(kind: pa.DataType) -> bool:
    kind = _storage(kind)
    if pa.types.is_struct(kind):
        return any(_nested(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_dictionary(kind):
        return _nested(kind.value_type)
    return bool(
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_list_view(kind)
        or pa.types.is_large_list_view(kind)
        or pa.types.is_map(kind)
        or pa.types.is_union(kind)
    )


def _variable(kind: pa.DataType) -> bool:
    kind = _storage(kind)
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_binary_view(kind)
    )


def _width(kind: pa.DataType) -> float:
    """Bytes per row a column takes at least once decoded (an offset for text)."""
    kind = _storage(kind)
    if pa.types.is_struct(kind):
        return sum(_width(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_dictionary(kind):
        return _width(kind.value_type)
    if _variable(kind) or pa.types.is_null(kind):
        return 4.0
    return kind.bit_width / 8


def _decoded_bytes(column: pa.Array) -> int:
    if isinstance(column, pa.ExtensionArray):
        column = column.storage
    if pa.types.is_dictionary(column.type) and _variable(column.type.value_type):
        lengths = pc.binary_length(column.dictionary)
        values = pc.sum(pc.take(lengths, column.indices)).as_py() or 0
        return int(values) + 4 * len(column)
    if pa.types.is_dictionary(column.type):
        return int(column.dictionary_decode().nbytes)
    return int(column.nbytes)


# --- GeoPackage ----------------------------------------------------------------------------


def check_geopackage(path: Path) -> None:
    """Refuse a GeoPackage holding SQL views.

    A view computes its rows when read, so a file of a few kilobytes can describe an answer of
    any size (a table joined with itself a few times); only tables are imported. Only the
    schema table is read (a view named like a GeoPackage table could compute too).
    """
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as con:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
            views = [name for (name,) in rows]
    except sqlite3.DatabaseError:
        return  # not a database SQLite can read; GDAL says why
    if views:
        raise UnsafeFile(
            f"{path.name}: the GeoPackage holds SQL views ({', '.join(views)}); export the "
            "layers as tables"
        )

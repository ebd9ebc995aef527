"""Hostile files for the tests: zip bombs (honest and lying about their sizes), traversal and
link members, a Parquet dictionary bomb, a gzip bomb, billion-laughs XML, a GeoPackage view.

The bombs are small on disk and cheap to build: a deflate stream is made of independently
compressed segments (each ends in a full flush), so one compressed megabyte-segment repeated a
thousand times is a valid stream expanding to a gigabyte.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import struct
import subprocess
import sys
import zlib
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MiB = 1 << 20
BOMB_MIB = 1100  # what the bombs expand to: 1.1 GB, as in the issue


@dataclass(frozen=True)
class Member:
    """One zip entry: ``head`` + ``unit`` × ``repeat`` + ``tail``; ``declared`` overrides the
    uncompressed size written in the headers (a zip that lies); ``mode`` the Unix file type;
    ``flags`` the general-purpose bits (1: encrypted)."""

    name: str
    head: bytes = b""
    unit: bytes = b""
    repeat: int = 0
    tail: bytes = b""
    declared: int | None = None
    mode: int = stat.S_IFREG | 0o644
    flags: int = 0

    @property
    def size(self) -> int:
        return len(self.head) + len(self.unit) * self.repeat + len(self.tail)


def _segment(data: bytes, last: bool) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


@cache
def _crc_of_repeats(unit: bytes, repeat: int, start: int) -> int:
    crc = start
    for _ in range(repeat):
        crc = zlib.crc32(unit, crc)
    return crc


def deflated(member: Member) -> tuple[bytes, int]:
    """The raw deflate stream of a member and its CRC-32."""
    body = _segment(member.head, False)
    if member.repeat:
        body += _segment(member.unit, False) * member.repeat
    body += _segment(member.tail, True)
    crc = zlib.crc32(member.head)
    crc = _crc_of_repeats(member.unit, member.repeat, crc) if member.repeat else crc
    return body, zlib.crc32(member.tail, crc)


def write_zip(path: Path, members: list[Member]) -> Path:
    """A zip of deflated members, with the names, sizes and file types given (none checked)."""
    local, central = bytearray(), bytearray()
    for m in members:
        data, crc = deflated(m)
        name = m.name.encode()
        size = m.size if m.declared is None else m.declared
        offset = len(local)
        local += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, m.flags, 8, 0, 0x21, crc, len(data), size, len(name), 0
        )
        local += name + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50, 0x031E, 20, m.flags, 8, 0, 0x21, crc, len(data), size,
            len(name), 0, 0, 0, 0, m.mode << 16, offset,
        )  # fmt: skip
        central += name
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def zeros(name: str, mib: int = BOMB_MIB, declared: int | None = None) -> Member:
    """A member of ``mib`` MiB of zero bytes."""
    return Member(name, unit=b"\0" * MiB, repeat=mib, declared=declared)


def small(name: str, data: bytes = b"x", mode: int = stat.S_IFREG | 0o644) -> Member:
    return Member(name, head=data, mode=mode)


def shapefile_bomb(path: Path, declared: int | None = None) -> Path:
    """A "Shapefile" zip whose .shp expands to 1.1 GB (declaring it, or ``declared`` bytes)."""
    return write_zip(
        path,
        [zeros("grids.shp", declared=declared), small("grids.shx"), small("grids.dbf"),
         small("grids.prj", b'GEOGCS["WGS 84"]')],
    )  # fmt: skip


_PLACEMARKS = (
    b"<Placemark><name>boom</name><Point><coordinates>113.7,34.8</coordinates></Point>"
    b"</Placemark>\n"
) * 10_000


def kmz_bomb(path: Path) -> Path:
    """A KMZ whose doc.kml (valid KML) expands to about 1.1 GB of placemarks."""
    head = b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>\n'
    repeat = BOMB_MIB * MiB // len(_PLACEMARKS)
    tail = b"</Document></kml>"
    return write_zip(path, [Member("doc.kml", head, _PLACEMARKS, repeat, tail)])


def gzip_bomb(path: Path, head: bytes = b"lon,lat\n") -> Path:
    """A gzip file (e.g. ``points.csv.gz``) expanding to 1.1 GB: a CSV header, then zeros."""
    member = Member("", head=head, unit=b"\0" * MiB, repeat=BOMB_MIB)
    data, crc = deflated(member)
    path.write_bytes(
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
        + data
        + struct.pack("<II", crc, member.size & 0xFFFFFFFF)
    )
    return path


def parquet_dictionary_bomb(path: Path, mib: int = BOMB_MIB) -> Path:
    """A Parquet file of a few hundred bytes whose ``note`` column repeats one 1 MiB dictionary
    value in each of ``mib`` rows: 1.1 GB once decoded by default (the footer declares ~1 MB)."""
    n = mib
    note = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int32)), pa.array([b"x" * MiB], pa.binary())
    )
    table = pa.table({"lon": np.full(n, 113.65), "lat": np.full(n, 34.75), "note": note})
    # without the stored Arrow schema readers decode the column instead of keeping a dictionary
    pq.write_table(table, path, store_schema=False, compression="zstd")
    return path


def parquet_rows_bomb(path: Path, rows: int) -> Path:
    """A small Parquet file of ``rows`` identical points (run-length encoded)."""
    table = pa.table({"lon": np.full(rows, 113.65), "lat": np.full(rows, 34.75)})
    pq.write_table(table, path, compression="zstd")
    return path


def billion_laughs(root_open: str, root_close: str, levels: int = 10) -> bytes:
    """XML whose one entity expands to 10**levels * 3 characters."""
    entities = ['<!ENTITY lol0 "lollollollollollollollollollol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE doc [\n'
        + "\n".join(entities)
        + "\n]>\n"
        + root_open
        + f"&lol{levels - 1};"
        + root_close
    ).encode()


LAUGHING_KML = billion_laughs(
    '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>',
    "</name><Point><coordinates>113.65,34.75</coordinates></Point></Placemark></Document></kml>",
)
LAUGHING_GPX = billion_laughs(
    '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>',
    '</name><trkseg><trkpt lat="34.75" lon="113.65"><time>2026-11-20T08:00:00Z</time></trkpt>'
    "</trkseg></trk></gpx>",
)


def add_cross_join_view(gpkg: Path, table: str) -> None:
    """Register a layer in ``gpkg`` that is a view joining ``table`` with itself three times
    (n**3 rows from n stored ones)."""
    with closing(sqlite3.connect(gpkg)) as con, con:
        con.execute(
            f"CREATE VIEW boom AS SELECT a.fid AS fid, a.geom AS geom "
            f"FROM {table} a, {table} b, {table} c"
        )
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
            "VALUES ('boom', 'features', 'boom', 4326)"
        )
        con.execute(
            "INSERT INTO gpkg_geometry_columns VALUES ('boom', 'geom', 'POINT', 4326, 0, 0)"
        )


def peak_growth(setup: str, call: str) -> dict:
    """Run ``call`` in a fresh Python process after ``setup`` (imports); answer the growth of the
    process's peak resident memory in MB and the outcome (``"read"`` or the exception).

    The peak is the process's own ``VmHWM`` (Linux): ``ru_maxrss`` would start at the parent's
    size, which exec passes on, and hide anything smaller than the test run itself.
    """
    script = (
        "import json, re\n"
        "def peak():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
        f"{setup}\n"
        "before = peak()\n"
        "try:\n"
        f"    {call}\n"
        "    outcome = 'read'\n"
        "except Exception as exc:\n"
        "    outcome = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps({'growth_mb': (peak() - before) / 1024, 'outcome': outcome}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])

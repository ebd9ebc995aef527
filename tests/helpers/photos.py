"""Photos for tests: JPEGs made with Pillow, with EXIF time and GPS written by Pillow's own
``Image.Exif`` (so what the service reads was written by an independent path)."""

from __future__ import annotations

import io
from datetime import datetime
from fractions import Fraction

import numpy as np
from PIL import Image
from pyproj import Geod

GEOD = Geod(ellps="WGS84")


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A picture unlike another seed's: blocks of random grey levels (distinct pHashes)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = (value - d - m / 60) * 3600
    return Fraction(d), Fraction(m), Fraction(s).limit_denominator(10000)


def _exif(
    taken: datetime | None, gps: tuple[float, float] | None, raw_gps: dict[int, object] | None
) -> bytes:
    exif = Image.Exif()
    if taken is not None:
        offset = taken.strftime("%z")
        exif[0x8769] = {
            0x9003: taken.strftime("%Y:%m:%d %H:%M:%S"),
            0x9011: f"{offset[:3]}:{offset[3:]}",
        }
    if gps is not None:
        lon, lat = gps
        exif[0x8825] = {
            1: "N" if lat >= 0 else "S",
            2: _dms(lat),
            3: "E" if lon >= 0 else "W",
            4: _dms(lon),
        }
    if raw_gps is not None:
        exif[0x8825] = raw_gps
    return exif.tobytes()


def jpeg(
    seed: int = 0,
    *,
    size: tuple[int, int] = (320, 240),
    taken: datetime | None = None,
    gps: tuple[float, float] | None = None,
    raw_gps: dict[int, object] | None = None,
    image: Image.Image | None = None,
    quality: int = 85,
) -> bytes:
    """A JPEG; ``taken`` (aware) as DateTimeOriginal with its offset; ``gps`` (lon, lat) as
    the GPS IFD, or ``raw_gps`` written as is (impossible values)."""
    img = image or picture(seed, size)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, exif=_exif(taken, gps, raw_gps))
    return out.getvalue()


def heic(
    seed: int = 0,
    *,
    size: tuple[int, int] = (320, 240),
    taken: datetime | None = None,
    gps: tuple[float, float] | None = None,
    image: Image.Image | None = None,
    exif: Image.Exif | None = None,
) -> bytes:
    """A HEIC (HEVC-coded HEIF, as iPhones save) written by pillow-heif's encoder, with EXIF
    like :func:`jpeg`'s, or ``exif`` as given."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    img = image or picture(seed, size)
    out = io.BytesIO()
    raw = exif.tobytes() if exif is not None else _exif(taken, gps, None)
    img.save(out, "HEIF", quality=80, exif=raw)
    return out.getvalue()


def offset_point(
    lon: float, lat: float, metres: float, azimuth: float = 90.0
) -> tuple[float, float]:
    """The point ``metres`` from (lon, lat) towards ``azimuth`` on the WGS 84 ellipsoid."""
    x, y, _ = GEOD.fwd(lon, lat, azimuth, metres)
    return float(x), float(y)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Ellipsoidal distance between two lon/lat points (pyproj, independent of PostGIS)."""
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def exif_of(data: bytes) -> dict[int, object]:
    """The EXIF tags (top level, EXIF and GPS IFDs together) of an image."""
    exif = Image.open(io.BytesIO(data)).getexif()
    tags: dict[int, object] = dict(exif)
    for ifd in (0x8769, 0x8825):
        tags.update(exif.get_ifd(ifd))
    return tags


def bomb_png(side: int = 20000) -> bytes:
    """A tiny PNG claiming ``side`` × ``side`` pixels (a decompression bomb)."""
    img = Image.new("1", (side, side))
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


def mp4(brand: bytes = b"isom", size: int = 2048) -> bytes:
    """The start of an MP4 (an ``ftyp`` box) padded to ``size`` bytes."""
    box = (24).to_bytes(4, "big") + b"ftyp" + brand + b"\0\0\2\0" + b"isomiso2"
    return box + b"\0\0\0\x08free" + b"\0" * (size - len(box) - 8)

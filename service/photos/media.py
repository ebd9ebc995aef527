"""What an uploaded file is, read from its bytes (never its name): a JPEG, PNG, WebP or
HEIC/HEIF photo (decoded by Pillow, HEIF through the ``pillow-heif`` plugin, with a
decompression-bomb guard) or an MP4/QuickTime video (its ``ftyp`` box); the photo's EXIF time
and position, perceptual hash, EXIF-free copy and thumbnail.

No HTTP and no database here: errors are :class:`service.errors.InvalidInput` naming ``file``.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import imagehash
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from service.errors import InvalidInput, PayloadTooLarge

# HEIC/HEIF (iPhones' default) as a Pillow format named "HEIF"; its thumbnails are not needed
register_heif_opener(thumbnails=False)

PHOTO_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "HEIF": "image/heif",
}
# ftyp major brands of phone videos, and of HEIF stills (same box, decoded as photos)
_QUICKTIME_BRANDS = {b"qt  "}
_MP4_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V "}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}  # HEVC-coded: image/heic
_HEIF_BRANDS = {*_HEIC_BRANDS, b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
# EXIF times before digital cameras were common are a reset clock, not a time
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class Media:
    """An accepted upload: its bytes, what it is, and what was read from it.

    ``flags`` holds what was wrong but ignored (``exif_position_invalid``,
    ``exif_time_invalid``): the photo is still evidence, its bad metadata is not used.
    """

    data: bytes
    kind: str  # image | video
    mime: str
    sha256: str
    width: int | None = None
    height: int | None = None
    phash: int | None = None  # 64 bits, signed (a PostgreSQL bigint)
    taken_at: datetime | None = None
    exif_lon: float | None = None
    exif_lat: float | None = None
    display: bytes = b""  # what is served: EXIF-free, upright (photos); empty for videos
    thumbnail: bytes = b""
    flags: list[str] = field(default_factory=list)


def read_media(
    data: bytes,
    *,
    max_mb: float,
    video_max_mb: float,
    max_pixels: int,
    thumbnail_px: int,
    tz: str,
    now: datetime,
) -> Media:
    """Check and read one upload (``InvalidInput``/``PayloadTooLarge`` naming ``file``)."""
    if not data:
        raise InvalidInput("uploaded file is empty (0 bytes)", field="file")
    sha = hashlib.sha256(data).hexdigest()
    video = _video_mime(data)
    if video is not None:
        if len(data) > video_max_mb * 1e6:
            raise PayloadTooLarge(
                f"video is {len(data) / 1e6:.1f} MB, more than CITYGRID_PHOTO_VIDEO_MAX_MB "
                f"({video_max_mb:g} MB)",
                field="file",
            )
        return Media(data, "video", video, sha, thumbnail=video_placeholder(thumbnail_px))
    if len(data) > max_mb * 1e6:
        raise PayloadTooLarge(
            f"photo is {len(data) / 1e6:.1f} MB, more than CITYGRID_PHOTO_MAX_MB ({max_mb:g} MB)",
            field="file",
        )
    image = _open_image(data, max_pixels)
    mime = PHOTO_FORMATS[str(image.format)]
    if image.format == "HEIF" and data[8:12] in _HEIC_BRANDS:
        mime = "image/heic"
    media = Media(data, "image", mime, sha)
    media.width, media.height = image.size
    _read_exif(image, media, tz, now)
    try:
        upright = ImageOps.exif_transpose(image)
        rgb = _rgb(upright)
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt pixel data
        raise InvalidInput(f"the image cannot be decoded: {exc}", field="file") from exc
    media.phash = _signed(int(str(imagehash.phash(rgb)), 16))
    media.display = _jpeg(rgb, quality=90)
    rgb.thumbnail((thumbnail_px, thumbnail_px))
    media.thumbnail = _jpeg(rgb, quality=80)
    return media


def _video_mime(data: bytes) -> str | None:
    """``video/mp4`` or ``video/quicktime`` when ``data`` starts with an ISO-BMFF ``ftyp``
    box of a video brand; None for a HEIF still (a photo) or no ``ftyp`` box;
    ``InvalidInput`` for AVIF (no decoder installed)."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    brand = data[8:12]
    if brand in _HEIF_BRANDS:
        return None
    if brand in _AVIF_BRANDS:
        raise InvalidInput(
            "AVIF photos are not accepted; send JPEG, PNG, WebP or HEIC",
            field="file",
        )
    if brand in _QUICKTIME_BRANDS:
        return "video/quicktime"
    if brand in _MP4_BRANDS:
        return "video/mp4"
    raise InvalidInput(f"unknown video brand {brand!r}; send MP4 or MOV", field="file")


def _open_image(data: bytes, max_pixels: int) -> Image.Image:
    """The decoded image, refused when it is no photo we accept or has too many pixels."""
    # Pillow refuses at twice its limit and only warns above it: warnings become errors here
    # and the pixel count is checked from the header, before any decoding
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(PHOTO_FORMATS))
            if image.width * image.height > max_pixels:
                raise Image.DecompressionBombError("too many pixels")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(
            f"the image has more pixels than CITYGRID_PHOTO_MAX_PIXELS ({max_pixels}): refused "
            "as a possible decompression bomb",
            field="file",
        ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidInput(
            "the file is not a JPEG, PNG, WebP or HEIC photo nor an MP4/MOV video (its "
            "content was read, not its name)",
            field="file",
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInput(f"the image cannot be decoded: {exc}", field="file") from exc
    return image


def _read_exif(image: Image.Image, media: Media, tz: str, now: datetime) -> None:
    """EXIF time and GPS position into ``media`` when present and plausible; flagged and
    ignored when present but impossible."""
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - a broken EXIF block is ignored like a missing one
        return
    sub = _ifd(exif, _EXIF_IFD)
    raw_time = sub.get(_DATETIME_ORIGINAL) or exif.get(0x0132)  # DateTimeOriginal, DateTime
    if raw_time:
        taken = _exif_time(str(raw_time), sub.get(_OFFSET_TIME_ORIGINAL), tz)
        if taken is None or taken < _EARLIEST or taken > now + timedelta(days=1):
            media.flags.append("exif_time_invalid")
        else:
            media.taken_at = taken
    gps = _ifd(exif, _GPS_IFD)
    if gps.get(2) is not None or gps.get(4) is not None:
        position = _gps_position(gps)
        if position is None:
            media.flags.append("exif_position_invalid")
        else:
            media.exif_lon, media.exif_lat = position


def _ifd(exif: Image.Exif, tag: int) -> dict[int, object]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # noqa: BLE001
        return {}


def _exif_time(raw: str, offset: object, tz: str) -> datetime | None:
    """EXIF's ``YYYY:MM:DD HH:MM:SS`` in its own offset, else in the city's time zone."""
    try:
        local = datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if isinstance(offset, str):
        try:
            return datetime.strptime(
                f"{local:%Y-%m-%d %H:%M:%S}{offset.strip(chr(0))}", "%Y-%m-%d %H:%M:%S%z"
            )
        except ValueError:
            pass
    return local.replace(tzinfo=ZoneInfo(tz))


def _gps_position(gps: dict[int, object]) -> tuple[float, float] | None:
    """(lon, lat) of a GPS IFD, or None when it cannot be a place on Earth (out of range,
    minutes or seconds of 60 or more, an unknown reference, or exactly 0, 0: no fix)."""
    try:
        lat = _degrees(gps[2], str(gps.get(1, "N")).strip("\x00 "), "N", "S")
        lon = _degrees(gps[4], str(gps.get(3, "E")).strip("\x00 "), "E", "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lon, lat


def _degrees(value: object, ref: str, positive: str, negative: str) -> float:
    d, m, s = (float(v) for v in value)  # type: ignore[attr-defined]
    if ref not in (positive, negative) or not (0 <= m < 60 and 0 <= s < 60) or d < 0:
        raise ValueError("impossible EXIF coordinate")
    degrees = d + m / 60 + s / 3600
    return -degrees if ref == negative else degrees


def _rgb(image: Image.Image) -> Image.Image:
    """The image as RGB (transparency on white), ready for JPEG."""
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        back = Image.new("RGB", rgba.size, "white")
        back.paste(rgba, mask=rgba.getchannel("A"))
        return back
    return image.convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    """JPEG bytes without any metadata (no EXIF, no ICC, no comment)."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_PLACEHOLDERS: dict[int, bytes] = {}


def video_placeholder(size: int) -> bytes:
    """The thumbnail of every video: a grey square with a play triangle (videos are not
    decoded: no ffmpeg dependency)."""
    if size not in _PLACEHOLDERS:
        image = Image.new("RGB", (size, size), (96, 96, 96))
        s = size
        ImageDraw.Draw(image).polygon(
            [(s * 0.38, s * 0.3), (s * 0.38, s * 0.7), (s * 0.7, s * 0.5)], fill="white"
        )
        _PLACEHOLDERS[size] = _jpeg(image, quality=80)
    return _PLACEHOLDERS[size]

"""Reading and writing vector files for grid import and export (GDAL through pyogrio).

Import takes GeoJSON, GeoPackage, zipped Shapefile, KML/KMZ and GPX, in any CRS the file
declares, and returns lon/lat in EPSG:4326 (WGS 84). Export writes GeoJSON (RFC 7946), KML,
GeoPackage, zipped Shapefile (UTF-8) and GPX (grid boundaries as tracks).

Chinese web and phone maps (AMap, Tencent, WeChat: GCJ-02; Baidu: BD-09) use shifted
coordinates that no CRS describes: GCJ-02 is an obfuscation of WGS 84, not a datum with an EPSG
code. So the ``datum`` argument says which shift the lon/lat numbers carry; files always declare
EPSG:4326, whatever shift their numbers have.
"""

from __future__ import annotations

import json
import tempfile
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis.datum import check_datum, transform_geometries
from gis.limits import (
    FileLimits,
    UnsafeFile,
    check_geopackage,
    compression_of,
    extract_members,
    zip_members,
)
from gis.metric import densify

#: Input file types by extension, with the format name used in messages.
READ_SUFFIXES: dict[str, str] = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".zip": "zipped Shapefile",
    ".kml": "KML",
    ".kmz": "KMZ",
    ".gpx": "GPX",
}

#: Output formats: GDAL driver, media type, file name extension.
WRITE_FORMATS: dict[str, tuple[str, str, str]] = {
    "geojson": ("GeoJSON", "application/geo+json", ".geojson"),
    "kml": ("KML", "application/vnd.google-earth.kml+xml", ".kml"),
    "gpkg": ("GPKG", "application/geopackage+sqlite3", ".gpkg"),
    "shp": ("ESRI Shapefile", "application/zip", ".zip"),
    "gpx": ("GPX", "application/gpx+xml", ".gpx"),
}

_KIND_OF_SUFFIX = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".zip": "zip",
    ".kmz": "zip",
    ".kml": "kml",
    ".gpx": "gpx",
}
_KIND_NAMES = {
    "geojson": "GeoJSON",
    "gpkg": "GeoPackage",
    "shp": "Shapefile",
    "kml": "KML",
    "gpx": "GPX",
}
# Formats whose specification fixes the CRS to WGS 84 lon/lat.
_LONLAT_KINDS = ("geojson", "kml", "gpx")
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xls", ".xlsx", ".ods", ".dbf")
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
# LIBKML turns KML presentation into columns; they are no attributes of the grid.
_KML_PRESENTATION = (
    "id",
    "altitudemode",
    "tessellate",
    "extrude",
    "visibility",
    "draworder",
    "icon",
    "snippet",
)
_KML_IF_EMPTY = ("description", "timestamp", "begin", "end")
_GPX_IF_EMPTY = ("cmt", "desc", "src", "number", "type") + tuple(
    f"link{i}_{part}" for i in (1, 2) for part in ("href", "text", "type")
)
_GDAL_ERRORS = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FieldError,
    pyogrio.errors.FeatureError,
    pyogrio.errors.GeometryError,
    pyogrio.errors.CRSError,
)


class VectorFileError(ValueError):
    """A vector file cannot be imported or exported; the message says why and what to do."""


def read_features(
    path: str | Path,
    *,
    crs: str | None = None,
    datum: str = "wgs84",
    layer: str | None = None,
    limits: FileLimits | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector file into a GeoDataFrame in EPSG:4326 (WGS 84 lon/lat).

    The format is taken from the extension (or, for an unknown one, from the content):
    GeoJSON (``.geojson``, ``.json``), GeoPackage (``.gpkg``), zipped Shapefile (``.zip`` with
    ``.shp``, ``.shx``, ``.dbf`` and ``.prj``, possibly in a sub-folder), KML (``.kml``), KMZ
    (``.kmz``) and GPX (``.gpx``). KML folders are read together as one table, keeping the
    placemark ``name`` and ``description`` and the ExtendedData fields. GPX reads the tracks
    (else the routes); a track whose segments are all closed becomes a polygon.

    The source CRS is the one the file declares; ``crs`` overrides it (for a Shapefile without
    or with a wrong ``.prj``). A file without a CRS is WGS 84 for GeoJSON, KML and GPX (their
    specifications say so) and an error for GeoPackage and Shapefile. After reprojection,
    coordinates in the GCJ-02 or BD-09 datum (``datum``) are shifted back to WGS 84.

    What the file may cost is checked first (``gis.limits``): a zip's central directory before
    anything is decompressed, then only the members read are unzipped, by a copy that stops at
    their declared sizes; GeoPackage views are refused; features are counted before reading and
    the read stops past ``limits.max_rows``.

    Column names are lower-cased; attribute values are kept as they come.

    Parameters
    ----------
    path : str or Path
        The file.
    crs : str, optional
        Source CRS (e.g. ``"EPSG:32649"``), overriding the file's.
    datum : {"wgs84", "gcj02", "bd09"}, default "wgs84"
        The datum of the lon/lat numbers after reprojection.
    layer : str, optional
        Layer to read: a layer name in a GeoPackage, KML or GPX file, or the name (without
        ``.shp``) or path of one Shapefile in a zip holding several.
    limits : FileLimits, optional
        Size, member, ratio and feature limits (default: ``FileLimits()``).

    Returns
    -------
    geopandas.GeoDataFrame
        Features in EPSG:4326 with lower-case column names and a ``geometry`` column.

    Raises
    ------
    VectorFileError
        Unreadable, empty or non-spatial file, unsupported type, ambiguous or unknown layer,
        missing CRS, or coordinates outside the lon/lat range.
    gis.limits.FileTooLarge
        More features, zip members or uncompressed data than ``limits`` allow.
    gis.limits.UnsafeFile
        A zip member leaving its folder, a link, sizes that lie; a GeoPackage view.
    """
    path = Path(path)
    check_datum(datum)
    source_crs = _parse_crs(crs)
    limits = limits or FileLimits()
    with tempfile.TemporaryDirectory(prefix="citygrid-unzip-") as unzipped:
        kind, gdal_path, layer = _locate(path, layer, limits, Path(unzipped))
        with _gdal_warnings(kind):
            layers = _choose_layers(gdal_path, kind, layer)
            counts = _feature_counts(gdal_path, layers, limits)
            frame = _concat([_read_layer(gdal_path, kind, n, counts[n]) for n in layers])
    frame = _to_wgs84(frame, kind, source_crs, datum)
    return _tidy_columns(frame, kind)


def write_features(
    gdf: gpd.GeoDataFrame,
    fmt: str,
    *,
    layer_name: str = "grids",
    datum: str = "wgs84",
) -> tuple[bytes, str, str]:
    """Write features to a file in memory: GeoJSON, KML, GeoPackage, zipped Shapefile or GPX.

    Coordinates are converted to ``datum`` first (GCJ-02 for AMap/Tencent, BD-09 for Baidu
    phone apps); the file still declares EPSG:4326, because GCJ-02 and BD-09 are no CRS.
    List and dict values (e.g. ``responsible_persons``) are written as JSON text.

    - ``geojson``: RFC 7946 (7 decimals, about 1 cm; rings wound counter-clockwise).
    - ``kml``: placemark name from the ``name`` column (or ``code`` when there is no ``name``);
      the other columns go to ExtendedData.
    - ``gpkg``: one layer called ``layer_name``.
    - ``shp``: a zip of ``.shp .shx .dbf .prj .cpg``, text in UTF-8. Shapefile limits apply:
      column names are cut to 10 characters and text values to 254 bytes (84 Chinese
      characters).
    - ``gpx``: each grid's boundary as a track (exterior rings only; holes are left out), the
      ``name`` column as the track name, the ``code`` column also as the track description
      (GDAL-based readers take a 14-digit code in ``<extensions>`` for a clamped 32-bit number),
      all columns in ``<extensions>``.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Features in EPSG:4326 (another CRS is reprojected; none is taken as EPSG:4326).
    fmt : {"geojson", "kml", "gpkg", "shp", "gpx"}
        Output format.
    layer_name : str, default "grids"
        Layer name and file name stem.
    datum : {"wgs84", "gcj02", "bd09"}, default "wgs84"
        Datum of the written lon/lat numbers.

    Returns
    -------
    tuple of (bytes, str, str)
        File content, media type, file name.
    """
    if fmt not in WRITE_FORMATS:
        raise VectorFileError(f"unknown format {fmt!r}; use one of {', '.join(WRITE_FORMATS)}")
    driver, media_type, suffix = WRITE_FORMATS[fmt]
    _check_layer_name(layer_name)
    frame = _prepare_for_writing(gdf, check_datum(datum))
    with tempfile.TemporaryDirectory(prefix="citygrid-export-") as tmp:
        target = Path(tmp) / f"{layer_name}{suffix}"
        if fmt == "shp":
            _write_shapefile_zip(frame, target, layer_name)
        elif fmt == "gpx":
            _write_gdal(_as_gpx_tracks(frame), target, driver, layer_name, fmt)
        else:
            _write_gdal(frame, target, driver, layer_name, fmt)
        data = target.read_bytes()
    return data, media_type, target.name


# --- reading: locating the data -----------------------------------------------------------


@contextmanager
def _gdal_warnings(kind: str) -> Iterator[None]:
    """Silence GDAL warnings that are handled here.

    GPX: numbers clamped while reading ``<extensions>``, re-read as text by
    _gpx_fix_extensions. Any kind: a GeoPackage recognised by content under another extension
    (an upload saved under a temporary name).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "File .* non conformant file extension", RuntimeWarning)
        if kind == "gpx":
            warnings.filterwarnings("ignore", "Value .* parsed incompletely", RuntimeWarning)
        yield


def _parse_crs(crs: str | None) -> CRS | None:
    if crs is None:
        return None
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise VectorFileError(f"unknown CRS {crs!r}; give it as EPSG:xxxx") from exc


def _locate(
    path: Path, layer: str | None, limits: FileLimits, unzipped: Path
) -> tuple[str, str, str | None]:
    """The kind of data, the path GDAL opens, and the layer still to choose inside it.

    A zip's members are unzipped into ``unzipped``: GDAL never opens an uploaded zip.
    """
    if not path.is_file():
        raise VectorFileError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise VectorFileError(f"{path.name}: file has no features (it is empty)")
    kind = _KIND_OF_SUFFIX.get(path.suffix.lower()) or _sniff(path)
    if kind == "zip":
        return _locate_in_zip(path, layer, limits, unzipped)
    if kind == "gpkg":
        check_geopackage(path)
    return kind, str(path), layer


def _sniff(path: Path) -> str:
    """Kind of a file with an unknown extension, from its first bytes."""
    with path.open("rb") as file:
        head = file.read(1024)
    text = head.lstrip().lower()
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if text.startswith(b"{"):
        return "geojson"
    if text.startswith(b"<") and b"<kml" in text:
        return "kml"
    if text.startswith(b"<") and b"<gpx" in text:
        return "gpx"
    supported = ", ".join(f"{name} ({suffix})" for suffix, name in READ_SUFFIXES.items())
    suffix = path.suffix.lower() or "(no extension)"
    compressed = compression_of(head)
    if compressed:
        raise VectorFileError(
            f"{path.name}: {compressed}-compressed files are not read (a zipped Shapefile and "
            f"KMZ excepted); send the file uncompressed, as one of: {supported}"
        )
    if suffix in _TABLE_SUFFIXES:
        raise VectorFileError(
            f"{path.name}: a {suffix} table has no geometry column; "
            f"export the grids as one of: {supported}"
        )
    raise VectorFileError(f"{path.name}: unsupported file type {suffix}; use one of: {supported}")


def _locate_in_zip(
    path: Path, layer: str | None, limits: FileLimits, unzipped: Path
) -> tuple[str, str, str | None]:
    """Find the Shapefile (or the KML of a KMZ) inside a zip and unzip it into ``unzipped``;
    ``layer`` picks one of several Shapefiles."""
    try:
        listed = zip_members(path, limits)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise VectorFileError(f"{path.name}: not a readable zip file ({exc})") from exc
    infos = {
        PurePosixPath(info.filename.replace("\\", "/")): info
        for info in listed
        if not info.is_dir() and "__MACOSX" not in info.filename
    }
    members = [m for m in infos if not m.name.startswith(".")]
    shps = [m for m in members if m.suffix.lower() == ".shp"]
    if shps:
        shp = _pick_shapefile(path, shps, layer)
        _check_shapefile_parts(path, shp, members)
        parts = [m for m in members if m.parent == shp.parent and m.stem == shp.stem]
        extract_members(path, [infos[m] for m in parts], unzipped, limits)
        return "shp", str(unzipped / shp.name), None
    kmls = sorted((m for m in members if m.suffix.lower() == ".kml"), key=_doc_kml_first)
    if kmls:
        extract_members(path, [infos[kmls[0]]], unzipped, limits)
        return "kml", str(unzipped / kmls[0].name), layer
    nested = [str(m) for m in members if m.suffix.lower() in (".zip", ".kmz")]
    raise VectorFileError(
        f"{path.name}: the zip contains no .shp file; zip the .shp, .shx, .dbf and .prj "
        "files of the Shapefile together"
        + (f" (a zip inside the zip is not opened: {', '.join(nested)})" if nested else "")
    )


def _doc_kml_first(member: PurePosixPath) -> tuple[bool, int, str]:
    # a KMZ's main document is doc.kml at the root; other .kml files are linked resources
    return (member.name.lower() != "doc.kml", len(member.parts), str(member))


def _pick_shapefile(path: Path, shps: list[PurePosixPath], layer: str | None) -> PurePosixPath:
    if layer is None:
        if len(shps) == 1:
            return shps[0]
        raise VectorFileError(
            f"{path.name}: the zip holds {len(shps)} Shapefiles "
            f"({', '.join(str(s) for s in shps)}); pass layer=NAME to choose one"
        )
    matches = [s for s in shps if layer in (str(s), s.stem, str(s.with_suffix("")))]
    if len(matches) != 1:
        raise VectorFileError(
            f"{path.name}: no single Shapefile named {layer!r} in the zip; "
            f"it holds {', '.join(str(s) for s in shps)}"
        )
    return matches[0]


def _check_shapefile_parts(path: Path, shp: PurePosixPath, members: list[PurePosixPath]) -> None:
    present = {(m.with_suffix(""), m.suffix.lower()) for m in members}
    missing = [ext for ext in (".shx", ".dbf") if (shp.with_suffix(""), ext) not in present]
    if missing:
        raise VectorFileError(
            f"{path.name}: {shp} lacks its {' and '.join(missing)} file; zip all the files "
            "of the Shapefile (.shp, .shx, .dbf, .prj, .cpg) together"
        )


def _choose_layers(gdal_path: str, kind: str, layer: str | None) -> list[str]:
    """The layers to read: the requested one, the only spatial one, or all KML folders."""
    name = Path(gdal_path).name
    try:
        listed = pyogrio.list_layers(gdal_path)
    except _GDAL_ERRORS as exc:
        raise VectorFileError(
            f"{name}: cannot read the file as {_KIND_NAMES[kind]}; it may be damaged ({exc})"
        ) from exc
    geometry_of = {str(n): g for n, g in listed}
    if layer is not None:
        if layer not in geometry_of:
            raise VectorFileError(
                f"{name}: no layer {layer!r}; the layers are {', '.join(geometry_of)}"
            )
        if geometry_of[layer] is None:
            raise VectorFileError(f"{name}: layer {layer!r} has no geometry column")
        return [layer]
    spatial = [n for n, g in geometry_of.items() if g is not None]
    if kind == "gpx":
        return _gpx_default_layer(gdal_path, spatial)
    if not spatial:
        raise VectorFileError(f"{name}: no geometry column; the file holds no spatial layer")
    if kind == "kml" or len(spatial) == 1:
        return spatial
    raise VectorFileError(
        f"{name}: the file has {len(spatial)} layers ({', '.join(spatial)}); "
        "pass layer=NAME to choose one"
    )


def _gpx_default_layer(gdal_path: str, spatial: list[str]) -> list[str]:
    for candidate in ("tracks", "routes"):
        if candidate in spatial and _count(gdal_path, candidate) > 0:
            return [candidate]
    return ["tracks"]


def _count(gdal_path: str, layer: str) -> int:
    try:
        return int(pyogrio.read_info(gdal_path, layer=layer, force_feature_count=True)["features"])
    except _GDAL_ERRORS as exc:
        raise VectorFileError(
            f"{Path(gdal_path).name}: cannot read layer {layer!r} ({exc})"
        ) from exc


def _feature_counts(gdal_path: str, layers: list[str], limits: FileLimits) -> dict[str, int]:
    """Features per layer, refused when there are none or more than ``limits.max_rows``."""
    counts = {layer: _count(gdal_path, layer) for layer in layers}
    if sum(counts.values()) == 0:
        raise VectorFileError(f"{Path(gdal_path).name}: file has no features")
    limits.check_rows(sum(counts.values()), "features")
    return counts


# --- reading: data ------------------------------------------------------------------------


def _read_layer(gdal_path: str, kind: str, layer: str, count: int) -> gpd.GeoDataFrame:
    """Read at most one feature more than counted: a stored count that lies (a GeoPackage's
    ``gpkg_ogr_contents``, a Shapefile's header) then costs no more than the truth would."""
    name = Path(gdal_path).name
    try:
        # pyogrio allocates max_features rows up front: give the count, not the limit
        frame = pyogrio.read_dataframe(gdal_path, layer=layer, max_features=count + 1)
    except _GDAL_ERRORS as exc:
        raise VectorFileError(
            f"{name}: cannot read layer {layer!r}; the file may be damaged ({exc})"
        ) from exc
    if len(frame) > count:
        raise UnsafeFile(
            f"{name}: layer {layer!r} holds more features than its header declares; the file "
            "is damaged or crafted"
        )
    if kind == "gpx":
        frame = _gpx_fix_extensions(frame, gdal_path, layer)
        frame = frame.set_geometry(_close_tracks(frame.geometry.values))
    return frame


def _concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    if len(frames) == 1:
        return frames[0]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def _gpx_fix_extensions(frame: gpd.GeoDataFrame, gdal_path: str, layer: str) -> gpd.GeoDataFrame:
    """Take ``<extensions>`` values as text from the XML.

    GDAL guesses the type of extension values from their text, so a 14-digit grid code is read
    as a 32-bit integer and clamped to 2147483647 (and leading zeros would be lost). The XML is
    streamed, each track dropped once read: a whole-document tree takes ~10 times the file.
    """
    element = {"tracks": "trk", "routes": "rte", "waypoints": "wpt"}.get(layer)
    if element is None:
        return frame
    prefixes: dict[str, str] = {}
    rows = []
    depth = 0
    root = None
    try:
        for event, item in ET.iterparse(gdal_path, events=("start-ns", "start", "end")):
            if event == "start-ns":
                prefix, uri = item
                prefixes[uri] = prefix
            elif event == "start":
                depth += 1
                root = item if root is None else root
            else:
                depth -= 1
                if depth == 1 and root is not None:  # a child of <gpx> is complete
                    if _local(item.tag) == element:
                        rows.append(_extension_values(item, prefixes))
                    root.clear()
    except ET.ParseError:
        return frame  # GDAL read what XML parsing refuses; keep GDAL's values
    if len(rows) != len(frame):
        return frame  # not the document GDAL read; keep GDAL's values
    text = pd.DataFrame(rows, index=frame.index, dtype=object)
    frame = frame.copy()
    for column in text.columns.intersection(frame.columns):
        frame[column] = text[column]
    return frame


def _extension_values(item: ET.Element, prefixes: dict[str, str]) -> dict[str, str | None]:
    values = {}
    for ext in (e for e in item if _local(e.tag) == "extensions"):
        for field in ext:
            # GDAL names the column "prefix_element", e.g. ogr_code for <ogr:code>
            uri = field.tag[1:].split("}")[0] if field.tag.startswith("{") else ""
            prefix = prefixes.get(uri)
            key = f"{prefix}_{_local(field.tag)}" if prefix else _local(field.tag)
            values[key] = field.text
    return values


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _close_tracks(geoms: np.ndarray) -> np.ndarray:
    """Turn tracks whose segments are all closed rings into (multi)polygons."""
    out = np.asarray(geoms, dtype=object).copy()
    for i, geom in enumerate(out):
        if geom is None or geom.is_empty:
            continue
        lines = shapely.get_parts(geom)
        if all(shapely.is_closed(lines)) and all(len(line.coords) >= 4 for line in lines):
            polygons = [shapely.Polygon(line.coords) for line in lines]
            out[i] = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
    return out


def _to_wgs84(
    frame: gpd.GeoDataFrame, kind: str, source_crs: CRS | None, datum: str
) -> gpd.GeoDataFrame:
    """Reproject to EPSG:4326, check the lon/lat range, undo a GCJ-02 / BD-09 shift."""
    name = _KIND_NAMES[kind]
    if (frame.geometry.isna() | frame.geometry.is_empty).all():
        raise VectorFileError(f"{name} file: no feature has a geometry")
    source = source_crs or frame.crs
    if source is None:
        if kind not in _LONLAT_KINDS:
            raise VectorFileError(
                f"{name} file has no CRS; pass crs=EPSG:xxxx (e.g. EPSG:4326 for lon/lat, "
                "EPSG:4490 for CGCS2000, EPSG:32649 for UTM zone 49N)"
            )
        source = CRS.from_epsg(4326)
    try:
        frame = frame.set_crs(source, allow_override=True)
        if frame.crs.is_projected:  # edges drawn straight in metres stay straight in lon/lat
            densified = densify(np.asarray(frame.geometry.values, dtype=object), frame.crs)
            frame[frame.geometry.name] = gpd.GeoSeries(densified, index=frame.index, crs=source)
        frame = frame.to_crs(4326)
    except Exception as exc:  # pyproj raises several types for impossible transformations
        raise VectorFileError(f"cannot reproject from {source} to EPSG:4326 ({exc})") from exc
    _check_lonlat_range(frame, source)
    if datum != "wgs84":
        frame = frame.set_geometry(
            gpd.GeoSeries(
                transform_geometries(np.asarray(frame.geometry.values), datum, "wgs84"),
                index=frame.index,
                crs=4326,
            )
        )
    return frame


def _check_lonlat_range(frame: gpd.GeoDataFrame, source: CRS) -> None:
    xy = shapely.get_coordinates(np.asarray(frame.geometry.values))
    if len(xy) and np.isfinite(xy).all():
        lon, lat = xy[:, 0], xy[:, 1]
        if lon.min() >= -180 and lon.max() <= 180 and lat.min() >= -90 and lat.max() <= 90:
            return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        corners = np.nanmin(xy, axis=0).tolist() + np.nanmax(xy, axis=0).tolist()
    bounds = ", ".join(f"{v:.6g}" for v in corners)
    raise VectorFileError(
        f"coordinates are out of the lon/lat range after reprojection from {source.to_string()} "
        f"(bounds {bounds}); the file's CRS is probably wrong: pass crs=EPSG:xxxx"
    )


def _tidy_columns(frame: gpd.GeoDataFrame, kind: str) -> gpd.GeoDataFrame:
    """Lower-case column names; drop KML/GPX presentation columns that carry no attributes."""
    frame = frame.rename_geometry("geometry") if frame.geometry.name != "geometry" else frame
    lowered = [str(c).lower() for c in frame.columns]
    clashes = sorted({c for c in lowered if lowered.count(c) > 1})
    if clashes:
        raise VectorFileError(
            f"columns differ only in upper/lower case ({', '.join(clashes)}); rename them"
        )
    frame = frame.set_axis(lowered, axis=1)
    drop: list[str] = []
    if kind == "kml":
        drop = [c for c in _KML_PRESENTATION if c in frame]
        drop += [c for c in _KML_IF_EMPTY if c in frame and frame[c].isna().all()]
    elif kind == "gpx":
        drop = [c for c in _GPX_IF_EMPTY if c in frame and frame[c].isna().all()]
        rename = {c: c[4:] for c in frame.columns if c.startswith("ogr_") and c[4:] not in frame}
        frame = frame.rename(columns=rename)
    return frame.drop(columns=drop)


# --- writing ------------------------------------------------------------------------------


def _check_layer_name(layer_name: str) -> None:
    if (
        not isinstance(layer_name, str)
        or not layer_name.strip()
        or layer_name.startswith(".")
        or any(c in layer_name for c in '/\\:*?"<>|\0')
    ):
        raise VectorFileError(
            f"layer_name {layer_name!r} cannot be a file name; use letters, digits, - and _"
        )


def _prepare_for_writing(gdf: gpd.GeoDataFrame, datum: str) -> gpd.GeoDataFrame:
    """EPSG:4326 copy in ``datum`` with list/dict values as JSON text."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise VectorFileError("write_features needs a GeoDataFrame")
    frame = gdf.set_crs(4326) if gdf.crs is None else gdf.to_crs(4326)
    frame = frame.copy()
    if datum != "wgs84":
        geoms = transform_geometries(np.asarray(frame.geometry.values), "wgs84", datum)
        frame[frame.geometry.name] = gpd.GeoSeries(geoms, index=frame.index, crs=4326)
    for column in frame.columns:
        if column != frame.geometry.name and frame[column].dtype == object:
            frame[column] = frame[column].map(_json_if_container)
    return frame


def _json_if_container(value):
    """Lists, dicts, tuples, sets and arrays as JSON text; GDAL would write Python's repr."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, set):
        value = sorted(value, key=str)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _write_gdal(frame: gpd.GeoDataFrame, target: Path, driver: str, layer: str, fmt: str) -> None:
    dataset_options: dict[str, str] = {}
    layer_options: dict[str, str] = {}
    if fmt == "geojson":
        layer_options["RFC7946"] = "YES"
    elif fmt == "kml":
        label = "name" if "name" in frame else "code" if "code" in frame else None
        if label:
            dataset_options["NameField"] = label
    elif fmt == "gpx":
        dataset_options["GPX_USE_EXTENSIONS"] = "YES"
        layer_options["FORCE_GPX_TRACK"] = "YES"
    elif fmt == "shp":
        layer_options["ENCODING"] = "UTF-8"  # also writes the .cpg that tells readers so
    try:
        pyogrio.write_dataframe(
            frame,
            target,
            layer=layer,
            driver=driver,
            dataset_options=dataset_options,
            layer_options=layer_options,
        )
    except _GDAL_ERRORS as exc:
        raise VectorFileError(f"cannot write {fmt}: {exc}") from exc


def _write_shapefile_zip(frame: gpd.GeoDataFrame, target: Path, layer: str) -> None:
    folder = target.parent / "shp"
    folder.mkdir()
    with warnings.catch_warnings():
        # GDAL warns for each column name cut to 10 characters, a documented Shapefile limit
        warnings.filterwarnings("ignore", message="Normalized/laundered field name")
        _write_gdal(frame, folder / f"{layer}.shp", "ESRI Shapefile", layer, "shp")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for suffix in _SHAPEFILE_PARTS:
            part = folder / f"{layer}{suffix}"
            if part.exists():
                archive.write(part, part.name)


def _as_gpx_tracks(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Boundaries as MultiLineStrings (exterior rings), the code also as the description."""
    geoms = np.asarray(frame.geometry.values)
    tracks = np.empty(len(geoms), dtype=object)
    for i, geom in enumerate(geoms):
        tracks[i] = _track(geom)
    out = frame.set_geometry(gpd.GeoSeries(tracks, index=frame.index, crs=4326))
    if "code" in out and "desc" not in out:
        out["desc"] = out["code"]
    return out


def _track(geom):
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return shapely.MultiLineString([p.exterior for p in shapely.get_parts(geom)])
    if geom.geom_type in ("LineString", "MultiLineString"):
        return shapely.MultiLineString(list(shapely.get_parts(geom)))
    raise VectorFileError(f"GPX export takes polygons or lines, not a {geom.geom_type}")

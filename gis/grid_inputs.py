"""Validation of unit-grid inputs: codes with their lon/lat (Multi)Polygons.

One validator for every function that takes grids as ``(codes, geoms)`` — the statistics of
:mod:`gis.density` and :mod:`gis.gi_star`, the point → grid index of :mod:`gis.locate` and the
hotspot shares of :mod:`gis.hotspots` — so a bad grid set is refused with the same words
wherever it goes. Each message names the first offender and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

__all__ = ["POLYGONAL", "check_lonlat", "geometry_array", "validated_grids"]

POLYGONAL = (shapely.Polygon, shapely.MultiPolygon)


def validated_grids(
    codes: Sequence[str],
    geoms: Sequence[shapely.Geometry],
    *,
    names: tuple[str, str] = ("grid_codes", "grid_geoms"),
) -> tuple[list[str], np.ndarray]:
    """Grid codes as a list and their geometries as an object array, or ``ValueError``.

    Parameters
    ----------
    codes : sequence of str
        Grid codes: non-empty strings, unique.
    geoms : sequence of shapely Polygon or MultiPolygon
        The grids in EPSG:4326 lon/lat, same order as ``codes``: non-empty, finite
        coordinates within ±180° / ±90°, OGC-valid.
    names : (str, str), default ("grid_codes", "grid_geoms")
        The caller's names of the two arguments, used in the message when their lengths differ.

    Returns
    -------
    (list of str, numpy.ndarray of object)
        The codes and the geometries, in the order given.

    Raises
    ------
    ValueError
        Naming the first problem: lengths differ, a code is empty, not a string or repeated, a
        geometry is not a (Multi)Polygon, is empty, is not in lon/lat degrees, or is invalid.
    """
    code_list = list(codes)
    geom_arr = geometry_array(geoms)
    if len(code_list) != len(geom_arr):
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same length, got {len(code_list)} codes "
            f"and {len(geom_arr)} geometries"
        )
    bad = [c for c in code_list if not isinstance(c, str) or not c]
    if bad:
        raise ValueError(f"grid codes must be non-empty strings, got {bad[0]!r}")
    seen: set[str] = set()
    for code in code_list:
        if code in seen:
            raise ValueError(f"grid codes must be unique; {code!r} appears more than once")
        seen.add(code)
    for code, geom in zip(code_list, geom_arr, strict=True):
        if not isinstance(geom, POLYGONAL):
            kind = type(geom).__name__
            raise ValueError(f"grid {code}: geometry must be a Polygon or MultiPolygon, got {kind}")
    check_lonlat(geom_arr, code_list, "grid")
    return code_list, geom_arr


def geometry_array(geoms: Sequence[shapely.Geometry]) -> np.ndarray:
    """A sequence of geometries as a 1-D object array, one geometry per item.

    Raises
    ------
    ValueError
        If ``geoms`` is not a sequence (a single geometry, say).
    """
    try:
        n = len(geoms)
    except TypeError:
        raise ValueError(f"expected a sequence of geometries, got {type(geoms).__name__}") from None
    arr = np.empty(n, dtype=object)  # object dtype even when there are none
    arr[:] = list(geoms)
    return arr


def check_lonlat(geoms: np.ndarray, labels: Sequence[str], kind: str) -> None:
    """Refuse empty, non-lon/lat or invalid geometries, naming the first as ``{kind} {label}``.

    Parameters
    ----------
    geoms : numpy.ndarray of object
        Geometries (any type) that must be non-empty, OGC-valid, with every coordinate finite
        and within ±180° longitude / ±90° latitude.
    labels : sequence of str
        What names each geometry in a message (its code, id or position); ``""`` for one
        geometry named by ``kind`` alone.
    kind : str
        What the geometries are ("grid", "hotspot", "zone" …).

    Raises
    ------
    ValueError
        For the first empty geometry, then the first coordinate that is not lon/lat degrees,
        then the first invalid geometry (with GEOS's reason and how many are invalid).
    """
    if not len(geoms):
        return
    name = [f"{kind} {label}".strip() for label in labels]
    empty = np.flatnonzero(shapely.is_empty(geoms))
    if empty.size:
        raise ValueError(f"{name[empty[0]]}: geometry is empty; drop it or give it a shape")
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    bad = ~((np.abs(coords[:, 0]) <= 180.0) & (np.abs(coords[:, 1]) <= 90.0))  # NaN fails too
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        xy = tuple(coords[first].tolist())
        raise ValueError(
            f"{name[owner[first]]}: coordinate {xy} is not finite lon/lat degrees; fix it or "
            "reproject to EPSG:4326 first"
        )
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if invalid.size:
        i = invalid[0]
        total = f" ({invalid.size} invalid in total)" if invalid.size > 1 else ""
        raise ValueError(
            f"{name[i]}: invalid geometry ({shapely.is_valid_reason(geoms[i])}); repair it "
            f"(e.g. gis.repair.repair_polygons or shapely.make_valid) first{total}"
        )

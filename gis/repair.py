"""Repair of invalid grid polygons, accepted only when the repair keeps the area the user drew.

A polygon drawn by hand or exported from CAD is often invalid in the OGC sense: a ring that
touches itself, a spike that goes out and back along the same line, a hole that pokes through
its shell. GEOS ``make_valid`` turns any of them into a valid geometry, but not always into the
one the user meant: a bow-tie ring becomes two triangles, overlapping parts of a multipolygon
are merged. So a repair is kept only when its area, measured in metres, is within a small
relative tolerance of the area the rings were drawn to enclose (see ``_intended_area``);
otherwise the geometry is rejected with a message that tells where the fault is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis import metric

_POLYGONAL = ("Polygon", "MultiPolygon")
# is_valid_reason answers e.g. "Ring Self-intersection[113.65 34.75]".
_REASON = re.compile(r"^(?P<what>[^\[]*)(?:\[(?P<x>\S+) (?P<y>\S+)(?: \S+)?\])?$")


@dataclass
class RepairResult:
    """Outcome of ``repair_polygons``, aligned with the input.

    Attributes
    ----------
    geometries : list of shapely geometry or None
        The valid Polygon or MultiPolygon for each input, ``None`` where the input was rejected.
    changes : list of (int, str)
        ``(index, message)`` for each input that was altered (repaired, Z dropped).
    errors : list of (int, str)
        ``(index, message)`` for each rejected input, saying why and what to fix.
    """

    geometries: list[BaseGeometry | None] = field(default_factory=list)
    changes: list[tuple[int, str]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


class _Rejected(Exception):
    """Internal signal: the geometry at hand cannot be used; the message says why."""


def repair_polygons(
    geoms: Iterable[BaseGeometry | None], max_area_change: float = 0.001
) -> RepairResult:
    """Validate lon/lat polygons and repair the invalid ones when the repair keeps their area.

    A valid Polygon or MultiPolygon is kept as it is (Z coordinates, if any, are dropped and the
    drop is reported). An invalid one is repaired with ``shapely.make_valid`` (the "structure"
    method where GEOS has it), keeping only the polygonal parts of the result. The repair is
    accepted only when its area differs from the *intended* area by at most ``max_area_change``
    (relative). The intended area is the shoelace area of the rings as drawn, in metres: for each
    part, the absolute area of the exterior ring minus the absolute areas of its holes, every ring
    measured on its own as ``shapely.area(Polygon(ring))``, summed over the parts. So a ring that
    touches itself at a point or has a spike repairs at no change of area, while a bow-tie (its two
    lobes cancel in the signed area) or a multipolygon whose parts overlap (make_valid merges
    them) changes area and is rejected.

    Points, lines, empty or missing geometries and rings with fewer than four coordinates (three
    distinct corners and the closing one) are rejected.

    Parameters
    ----------
    geoms : iterable of shapely geometry or None
        Geometries in EPSG:4326 lon/lat (a list, numpy array or GeoSeries).
    max_area_change : float, default 0.001
        Largest accepted relative change of area caused by a repair (0.001 = 0.1 %).

    Returns
    -------
    RepairResult
        One entry in ``geometries`` per input; ``changes`` and ``errors`` by input index.
    """
    if not max_area_change >= 0:
        raise ValueError(f"max_area_change must be >= 0, got {max_area_change!r}")
    result = RepairResult()
    for index, geom in enumerate(geoms):
        try:
            fixed, notes = _repair_one(geom, max_area_change)
        except _Rejected as exc:
            result.geometries.append(None)
            result.errors.append((index, str(exc)))
            continue
        result.geometries.append(fixed)
        result.changes.extend((index, note) for note in notes)
    return result


def _repair_one(geom: BaseGeometry | None, max_area_change: float) -> tuple[BaseGeometry, list]:
    """Return the usable geometry and the notes describing what changed, or raise _Rejected."""
    _check_kind(geom)
    assert geom is not None  # _check_kind rejects None
    notes: list[str] = []
    if shapely.has_z(geom):
        geom = shapely.force_2d(geom)
        notes.append("Z coordinates dropped")
    _check_ring_sizes(geom)
    reason = shapely.is_valid_reason(geom)
    if reason == "Valid Geometry":
        return geom, notes
    what, where = _describe(reason)
    fix = "fix the ring"
    if geom.geom_type == "MultiPolygon" and shapely.is_valid(shapely.get_parts(geom)).all():
        # GEOS calls overlapping parts a "self-intersection"; say what the user can fix
        what, fix = "overlapping or touching parts", "merge or separate the parts"
    if what.startswith("invalid coordinate"):
        raise _Rejected(f"{what}{where}: coordinates must be finite numbers")
    repaired = _polygonal_part(_make_valid(geom))
    if repaired.is_empty:
        raise _Rejected(f"{what}{where}: the rings enclose no area; redraw the polygon")
    intended, got = _areas_m2(geom, repaired)
    change = abs(got - intended) / intended if intended > 0 else np.inf
    if change > max_area_change:
        raise _Rejected(
            f"{what}{where}: repair would change the area by {_percent(change)} "
            f"({intended:,.1f} m² drawn, {got:,.1f} m² repaired); {fix}"
        )
    notes.append(f"{what}{where} repaired; area change {change:.2%}")
    return repaired, notes


def _check_kind(geom: BaseGeometry | None) -> None:
    """Reject anything but a non-empty Polygon or MultiPolygon."""
    if geom is None or not isinstance(geom, BaseGeometry):
        raise _Rejected("missing geometry; every grid needs a polygon")
    if geom.geom_type not in _POLYGONAL:
        raise _Rejected(f"a {geom.geom_type} is not a polygon; a grid must be a (Multi)Polygon")
    if geom.is_empty:
        raise _Rejected("empty polygon; every grid needs a boundary with an area")


def _check_ring_sizes(geom: BaseGeometry) -> None:
    """Reject rings with fewer than 4 coordinates once consecutive repeats are removed."""
    for ring in shapely.get_rings(shapely.get_parts(geom)):
        n = len(shapely.get_coordinates(shapely.remove_repeated_points(ring)))
        if n < 4:
            x, y = shapely.get_coordinates(ring)[0]
            raise _Rejected(
                f"ring at ({_num(x)} {_num(y)}) has {max(n - 1, 0)} distinct corners; "
                "a ring needs at least 3 corners and the closing point"
            )


def _make_valid(geom: BaseGeometry) -> BaseGeometry:
    """``make_valid`` with the "structure" method (GEOS >= 3.10), else the default one."""
    try:
        return shapely.make_valid(geom, method="structure", keep_collapsed=False)
    except (TypeError, ValueError, shapely.errors.UnsupportedGEOSVersionError):
        return shapely.make_valid(geom)


def _polygonal_part(geom: BaseGeometry) -> BaseGeometry:
    """The Polygon or MultiPolygon made of the polygons in ``geom`` (possibly empty)."""
    # make_valid may nest collections; flatten down to single-part geometries first
    parts = shapely.get_parts(geom)
    while (shapely.get_type_id(parts) >= 4).any():
        parts = shapely.get_parts(parts)
    polygons = parts[(shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)]
    if len(polygons) == 0:
        return shapely.Polygon()
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def _areas_m2(original: BaseGeometry, repaired: BaseGeometry) -> tuple[float, float]:
    """Intended area of ``original`` and area of ``repaired``, both in m² in one UTM zone."""
    crs = metric.utm_crs_for_geometries(original)
    return (
        _intended_area(metric.to_metric(original, crs)),
        float(shapely.area(metric.to_metric(repaired, crs))),
    )


def _intended_area(geom: BaseGeometry) -> float:
    """Shoelace area of the rings as drawn: per part |exterior| - sum |holes|, ring by ring.

    Measuring every ring on its own, as the polygon it outlines, is what the user drew even when
    the rings cross each other: a bow-tie's lobes cancel, a hole outside its shell still counts
    as removed area, overlapping parts count twice.
    """
    total = 0.0
    for part in shapely.get_parts(geom):
        total += shapely.area(shapely.Polygon(part.exterior))
        total -= sum(shapely.area(shapely.Polygon(ring)) for ring in part.interiors)
    return float(total)


def _describe(reason: str) -> tuple[str, str]:
    """Split a GEOS validity reason into a readable fault and its " at (x y)" location."""
    match = _REASON.match(reason)
    what = (match["what"] if match else reason).strip()
    what = {
        "Self-intersection": "self-intersecting ring",
        "Ring Self-intersection": "ring self-intersection",
    }.get(what, what.lower())
    if not match or match["x"] is None:
        return what, ""
    return what, f" at ({_num(float(match['x']))} {_num(float(match['y']))})"


def _num(value: float) -> str:
    """A coordinate with up to 6 decimals (about 0.1 m in lon/lat), without trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _percent(change: float) -> str:
    """A relative change for a message: whole percent when large, two decimals when small."""
    if change > 10:
        return "more than 1000% (the rings as drawn enclose almost no net area)"
    return f"{change:.0%}" if change >= 0.01 else f"{change:.2%}"

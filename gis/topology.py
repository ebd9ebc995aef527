"""Topology check for the grids of one level under one parent.

Finds invalid geometries, codes used twice, overlapping grids, parts of the parent that no grid
covers (gaps) and parts of grids that stick out of the parent. Overlaps, gaps and outside parts
are found by overlaying the grids as stored, in lon/lat, and only then measured in metres in the
UTM zone of the data (see :mod:`gis.metric`): grids that share their parent's edges exactly leave
nothing to report, however long the edges. Each finding carries its location in lon/lat so that
it can be shown on a map as a GeoJSON feature.

Invalid geometries are reported once and then repaired with :func:`shapely.make_valid` (keeping
only polygonal parts) for the other checks, so one broken ring does not hide or fake other
problems. An invalid parent is repaired the same way.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.metric import WGS84, area_m2, utm_crs_for_geometries

FindingKind = Literal["invalid", "duplicate_code", "overlap", "gap", "outside_parent"]
KINDS: tuple[FindingKind, ...] = ("invalid", "duplicate_code", "overlap", "gap", "outside_parent")

# Overlays snap to a grid of about a micrometre (in degrees): grids converted from metres (generated
# cells, say) meet their neighbours and parent with nanometre slivers, which would otherwise chain
# separate gaps into one ring-shaped finding.
GRID_SIZE_DEG = 1e-11  # about a micrometre
# Default tolerance: overlaps, gaps and outside parts up to this many m² are rounding, not
# mistakes. The registry refuses writes with the same rule.
TOLERANCE_M2 = 1.0

_POLYGONAL_TYPE_IDS = (3, 6)  # Polygon, MultiPolygon
_REASON_POINT = re.compile(r"\[(\S+) (\S+)\]")


@dataclass(frozen=True)
class Finding:
    """One topology problem.

    Attributes
    ----------
    kind : {"invalid", "duplicate_code", "overlap", "gap", "outside_parent"}
        What is wrong (see :data:`KINDS`).
    codes : tuple of str
        Codes of the grids involved. For a gap: the grids that touch it, even only at a
        corner (possibly none).
    area_m2 : float or None
        Area of the problem in square metres; None for ``invalid`` and ``duplicate_code``.
    message : str
        Human-readable description that names the grids and what to do.
    geometry : shapely.Geometry
        Where the problem is, in lon/lat (EPSG:4326).
    """

    kind: FindingKind
    codes: tuple[str, ...]
    area_m2: float | None
    message: str
    geometry: BaseGeometry

    def to_geojson_feature(self) -> dict[str, Any]:
        """The finding as a GeoJSON Feature (properties: kind, codes, area_m2, message)."""
        geometry = None
        if self.geometry is not None and not self.geometry.is_empty:
            geometry = json.loads(shapely.to_geojson(self.geometry))
        return {
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "kind": self.kind,
                "codes": list(self.codes),
                "area_m2": self.area_m2,
                "message": self.message,
            },
        }


def check_topology(
    grids: gpd.GeoDataFrame,
    parent: shapely.Geometry | None = None,
    tolerance_m2: float = TOLERANCE_M2,
) -> list[Finding]:
    """Check that grids of one level are valid, uniquely coded and tile their parent.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        One row per grid with a ``code`` column and polygon geometries in lon/lat (EPSG:4326;
        a frame without CRS is taken to be lon/lat).
    parent : shapely.Polygon, shapely.MultiPolygon or None, default None
        The parent in lon/lat; an invalid one is repaired with make_valid. Without it, only
        invalid, duplicate_code and overlap are checked.
    tolerance_m2 : float, default 1.0
        Overlaps, gaps and outside parts up to this many square metres are ignored (they are
        digitising noise, not mistakes).

    Returns
    -------
    list of Finding
        Ordered by kind as in :data:`KINDS`, then by the order of the grids.

    Raises
    ------
    ValueError
        If ``grids`` is not a GeoDataFrame with a ``code`` column in EPSG:4326, ``parent`` is
        not a non-empty (Multi)Polygon, or ``tolerance_m2`` is negative.
    """
    _check_arguments(grids, parent, tolerance_m2)
    codes = _codes(grids["code"])
    geoms = np.asarray(grids.geometry.to_numpy(), dtype=object)
    findings = _invalid_findings(geoms, codes)
    repaired = _polygonal(geoms)
    parent_ll = None if parent is None else _polygonal(np.array([parent], dtype=object))[0]
    findings += _duplicate_findings(repaired, codes)
    crs = _metric_crs(repaired, parent_ll)
    if crs is None:
        return findings
    tree = shapely.STRtree(repaired)
    findings += _overlap_findings(repaired, tree, codes, crs, tolerance_m2)
    if parent_ll is not None:
        findings += _gap_findings(repaired, tree, parent_ll, codes, crs, tolerance_m2)
        findings += _outside_findings(repaired, parent_ll, codes, crs, tolerance_m2)
    return findings


def _check_arguments(grids: object, parent: object, tolerance_m2: float) -> None:
    if not isinstance(grids, gpd.GeoDataFrame):
        raise ValueError(f"grids must be a geopandas GeoDataFrame, got {type(grids).__name__}")
    if "code" not in grids.columns:
        raise ValueError("grids has no 'code' column; name the grid code column 'code'")
    if grids.crs is not None and CRS.from_user_input(grids.crs) != WGS84:
        raise ValueError(
            f"grids are in {grids.crs.to_string()}, expected lon/lat; "
            "reproject them with grids.to_crs(4326) first"
        )
    if parent is not None and (
        not isinstance(parent, shapely.Polygon | shapely.MultiPolygon) or parent.is_empty
    ):
        raise ValueError(
            "parent must be a non-empty shapely Polygon or MultiPolygon in lon/lat, "
            f"got {parent!r:.80}; pass None to skip the gap and outside checks"
        )
    if not (math.isfinite(tolerance_m2) and tolerance_m2 >= 0):
        raise ValueError(f"tolerance_m2 must be a non-negative number, got {tolerance_m2}")


def _codes(column: pd.Series) -> list[str]:
    # A missing code becomes "" so that it still shows in messages and never matches a real one.
    return ["" if pd.isna(value) else str(value) for value in column]


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Valid polygonal version of each geometry (empty Polygon when nothing polygonal is left)."""
    out = np.array([shapely.Polygon()] * len(geoms), dtype=object)
    present = ~shapely.is_missing(geoms)
    fixed = geoms[present].copy()
    invalid = ~shapely.is_valid(fixed)
    fixed[invalid] = shapely.make_valid(fixed[invalid])
    out[present] = [_keep_polygons(g) for g in fixed]
    return out


def _keep_polygons(geom: BaseGeometry) -> BaseGeometry:
    type_id = shapely.get_type_id(geom)
    if type_id in _POLYGONAL_TYPE_IDS:
        return geom
    if type_id == 7:  # GeometryCollection: keep its areas, drop collapsed lines and points
        parts = [_keep_polygons(part) for part in shapely.get_parts(geom)]
        parts = [p for p in parts if not p.is_empty]
        return shapely.union_all(parts) if parts else shapely.Polygon()
    return shapely.Polygon()


def _metric_crs(repaired: np.ndarray, parent: shapely.Geometry | None) -> CRS | None:
    everything = (
        repaired if parent is None else np.append(repaired, np.array([parent], dtype=object))
    )
    everything = everything[~shapely.is_empty(everything)]
    return utm_crs_for_geometries(everything) if everything.size else None


def _invalid_findings(geoms: np.ndarray, codes: list[str]) -> list[Finding]:
    findings = []
    for geom, code in zip(geoms, codes, strict=True):
        problem = _geometry_problem(geom)
        if problem is not None:
            message = (
                f"grid {code or '(no code)'} has an invalid geometry: {problem}; "
                "fix it in the source data (e.g. shapely.make_valid or ST_MakeValid)"
            )
            findings.append(Finding("invalid", (code,), None, message, _invalid_location(geom)))
    return findings


def _geometry_problem(geom: BaseGeometry | None) -> str | None:
    if geom is None:
        return "geometry is missing"
    if geom.is_empty:
        return "geometry is empty"
    if shapely.get_type_id(geom) not in _POLYGONAL_TYPE_IDS:
        return f"geometry is a {geom.geom_type}, not a Polygon or MultiPolygon"
    if not geom.is_valid:
        return shapely.is_valid_reason(geom)
    return None


def _invalid_location(geom: BaseGeometry | None) -> BaseGeometry:
    """The point GEOS names in its validity reason, else a point on the geometry."""
    if geom is None or geom.is_empty:
        return shapely.Point()
    match = _REASON_POINT.search(shapely.is_valid_reason(geom) or "")
    if match:
        try:
            return shapely.Point(float(match.group(1)), float(match.group(2)))
        except ValueError:
            pass  # not a coordinate pair after all; fall back below
    try:
        return shapely.point_on_surface(geom)
    except shapely.errors.GEOSException:
        # Some broken rings defeat point_on_surface; any vertex still shows where it is.
        return shapely.Point(shapely.get_coordinates(geom)[0])


def _duplicate_findings(repaired: np.ndarray, codes: list[str]) -> list[Finding]:
    rows_by_code: dict[str, list[int]] = {}
    for row, code in enumerate(codes):
        if code:
            rows_by_code.setdefault(code, []).append(row)
    findings = []
    for code, rows in rows_by_code.items():
        if len(rows) > 1:
            message = f"code {code} is used by {len(rows)} grids; give each grid its own code"
            location = shapely.union_all(repaired[rows])
            findings.append(Finding("duplicate_code", (code,), None, message, location))
    return findings


def _overlap_findings(
    geoms: np.ndarray, tree: shapely.STRtree, codes: list[str], crs: CRS, tolerance_m2: float
) -> list[Finding]:
    """Pairs whose interiors intersect by more than the tolerance.

    Neighbours in a clean tiling only touch, so candidate pairs are "intersects but does not
    touch"; the costly intersection is computed only for those.
    """
    first, second = _pairs(tree.query(geoms, predicate="intersects"))
    touch_first, touch_second = _pairs(tree.query(geoms, predicate="touches"))
    n = len(geoms)
    keep = ~np.isin(first * n + second, touch_first * n + touch_second)
    first, second = first[keep], second[keep]
    overlaps = shapely.intersection(geoms[first], geoms[second], grid_size=GRID_SIZE_DEG)
    overlaps = _polygon_only(overlaps)
    areas = _measure(overlaps, crs)
    findings = []
    for a, b, overlap, area in zip(first, second, overlaps, areas, strict=True):
        if area > tolerance_m2:
            message = (
                f"grids {codes[a]} and {codes[b]} overlap by {area:.1f} m²; "
                "move their shared edge so that each place belongs to one grid"
            )
            pair = (codes[a], codes[b])
            findings.append(Finding("overlap", pair, float(area), message, overlap))
    return findings


def _pairs(query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unordered index pairs (a < b) from an STRtree self-query, sorted."""
    a, b = query
    lo, hi = np.minimum(a, b)[a != b], np.maximum(a, b)[a != b]
    unique = np.unique(np.column_stack([lo, hi]), axis=0) if lo.size else np.empty((0, 2), int)
    return unique[:, 0], unique[:, 1]


def _polygon_only(geoms: np.ndarray) -> np.ndarray:
    return np.array([_keep_polygons(g) for g in geoms], dtype=object)


def _measure(pieces: np.ndarray, crs: CRS) -> np.ndarray:
    """Areas in m² of lon/lat pieces, all measured in the one ``crs`` of the check."""
    return np.asarray(area_m2(pieces, crs), dtype=np.float64).reshape(-1)


def _gap_findings(
    geoms: np.ndarray,
    tree: shapely.STRtree,
    parent: shapely.Geometry,
    codes: list[str],
    crs: CRS,
    tolerance_m2: float,
) -> list[Finding]:
    """Each polygon of (parent − union of grids) above the tolerance, with its bordering grids."""
    covered = shapely.union_all(geoms, grid_size=GRID_SIZE_DEG)
    uncovered = shapely.difference(parent, covered, grid_size=GRID_SIZE_DEG)
    gaps = shapely.get_parts(_keep_polygons(uncovered))
    areas = _measure(gaps, crs)
    big = areas > tolerance_m2
    gaps, areas = gaps[big], areas[big]
    bordering = _bordering(tree, gaps)
    findings = []
    for gap, area, rows in zip(gaps, areas.tolist(), bordering, strict=True):
        near = tuple(codes[r] for r in rows)
        message = f"{area:.1f} m² of the parent is covered by no grid"
        if near:
            message += f" (next to {', '.join(near)})"
        message += "; extend a neighbouring grid over it or add a grid"
        findings.append(Finding("gap", near, area, message, gap))
    return findings


def _bordering(tree: shapely.STRtree, gaps: np.ndarray) -> list[list[int]]:
    """For each gap, the sorted rows of the grids that touch it.

    "Touch" allows a few grid units of distance because the gap was snapped to the grid.
    """
    if gaps.size == 0:
        return []
    gap_index, rows = tree.query(gaps, predicate="dwithin", distance=10.0 * GRID_SIZE_DEG)
    return [sorted(rows[gap_index == g].tolist()) for g in range(len(gaps))]


def _outside_findings(
    geoms: np.ndarray, parent: shapely.Geometry, codes: list[str], crs: CRS, tolerance_m2: float
) -> list[Finding]:
    shapely.prepare(parent)
    candidates = np.flatnonzero(~shapely.covers(parent, geoms) & ~shapely.is_empty(geoms))
    outside = shapely.difference(geoms[candidates], parent, grid_size=GRID_SIZE_DEG)
    outside = _polygon_only(outside)
    areas = _measure(outside, crs)
    findings = []
    for row, part, area in zip(candidates, outside, areas, strict=True):
        if area > tolerance_m2:
            message = (
                f"{area:.1f} m² of grid {codes[row]} lies outside the parent; "
                "clip the grid to the parent or move it under the right parent"
            )
            code = (codes[row],)
            findings.append(Finding("outside_parent", code, float(area), message, part))
    return findings

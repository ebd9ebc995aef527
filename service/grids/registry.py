"""Grid registry rules: codes, hierarchy, containment, overlaps, versions, locate.

Functions here take a session and plain values, enforce the rules and raise domain errors
(``service.errors``); they know nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from gis.codes import LEVELS, CodeError, CodeScheme, parent_level
from gis.metric import area_m2, outside_area_m2, shared_area_m2
from gis.topology import TOLERANCE_M2
from service.accounts.audit import AuditLog, snapshot
from service.accounts.principal import Principal
from service.clock import now
from service.datums import to_wgs84_point
from service.db.models import Grid
from service.errors import Conflict, InvalidInput, NotFound
from service.grids.repository import GridFilter, GridRepository, geom_of, new_grid, to_multipolygon
from service.grids.snapshot import snapshot_for
from service.settings import AppSettings

# Areas below this (m²) are rounding noise between neighbouring boundaries, not real overlaps;
# the topology check uses the same rule, so a write accepted here reports clean there.
AREA_TOLERANCE_M2 = TOLERANCE_M2
ATTRIBUTES = ("name", "responsible_unit", "responsible_persons", "land_use", "management_grade")
# An audit row of a batch write lists at most this many codes per outcome (the registry's
# versions say the rest); the counts are always complete.
AUDIT_CODES = 1000


@dataclass
class GridInput:
    """One grid to write, as given by a client or a file."""

    code: str
    level: str
    name: str
    geometry: BaseGeometry
    parent_code: str | None = None
    responsible_unit: str | None = None
    responsible_persons: list[dict[str, Any]] = field(default_factory=list)
    land_use: str | None = None
    management_grade: str | None = None

    def attributes(self) -> dict[str, Any]:
        """The descriptive attributes (everything but code, level and geometry)."""
        return {name: getattr(self, name) for name in ATTRIBUTES}


def derived_parent_code(scheme: CodeScheme, code: str, level: str) -> str | None:
    """The parent's code implied by ``code`` (its prefix padded with zeros)."""
    if level == "city":
        return None
    n = scheme.prefix_length(parent_level(level))
    return code[:n] + "0" * (scheme.width - n)


def check_code(scheme: CodeScheme, item: GridInput) -> str | None:
    """Validate level and code, and return the parent code (derived when not given)."""
    try:
        if item.level not in LEVELS:
            raise CodeError(f"unknown level {item.level!r}; use one of {', '.join(LEVELS)}")
        derived = derived_parent_code(scheme, item.code, item.level) if item.code else None
        scheme.validate(item.code, item.level, item.parent_code or derived)
    except CodeError as exc:
        raise InvalidInput(str(exc), field="code" if item.level in LEVELS else "level") from exc
    if item.parent_code and item.parent_code != derived:
        raise InvalidInput(
            f"parent_code {item.parent_code!r} does not match code {item.code!r}; "
            f"its parent must be {derived!r}",
            field="parent_code",
        )
    return derived


def check_geometry(geom: BaseGeometry, label: str) -> BaseGeometry:
    """A valid (Multi)Polygon with lon/lat in range, or ``InvalidInput``."""
    if geom is None or geom.is_empty:
        raise InvalidInput(f"{label}: geometry is empty", field="geometry")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidInput(
            f"{label}: geometry must be a Polygon or MultiPolygon, got {geom.geom_type}",
            field="geometry",
        )
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise InvalidInput(
            f"{label}: coordinates out of range (lon -180..180, lat -90..90); "
            "send WGS 84 lon/lat or name the datum",
            field="geometry",
        )
    if shapely.has_z(geom):
        geom = shapely.force_2d(geom)
    if not geom.is_valid:
        raise InvalidInput(
            f"{label}: invalid geometry ({shapely.is_valid_reason(geom)}); fix the ring",
            field="geometry",
        )
    return geom


class Registry:
    """Grid registry operations for one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.scheme = settings.scheme
        self.city = settings.grids.city
        self.repo = GridRepository(session)
        self.audit = AuditLog(session, settings)

    # -- reads -----------------------------------------------------------------------------
    def get(self, code: str, at: datetime | None = None) -> Grid:
        """The version of ``code`` valid at ``at`` (default now), or ``NotFound``."""
        grid = self.repo.get(self.city, code, at or now())
        if grid is None:
            when = f" at {at.isoformat()}" if at else ""
            raise NotFound(f"no grid with code {code!r}{when}", field="code")
        return grid

    def subtree_prefix(self, code: str, field: str = "grid") -> str:
        """The code prefix shared by ``code`` and every grid below it (``NotFound`` naming
        ``field`` when no such grid is valid now)."""
        try:
            root = self.get(code)
        except NotFound as exc:
            raise NotFound(exc.message, field=field) from exc
        return root.code[: self.scheme.prefix_length(root.level)]

    def grids(self, flt: GridFilter, limit: int | None = None, offset: int = 0) -> list[Grid]:
        """Grids matching ``flt``, by code."""
        return self.repo.list(flt, limit=limit, offset=offset)

    def count(self, flt: GridFilter) -> int:
        """How many grids match ``flt``."""
        return self.repo.count(flt)

    def extent(self, flt: GridFilter) -> tuple[float, float, float, float] | None:
        """Bounding box (minlon, minlat, maxlon, maxlat) of the grids matching ``flt``."""
        return self.repo.extent(flt)

    def versions(self, code: str) -> list[Grid]:
        """Every version of ``code``."""
        rows = self.repo.versions(self.city, code)
        if not rows:
            raise NotFound(f"no grid with code {code!r}", field="code")
        return rows

    # -- writes ----------------------------------------------------------------------------
    def write(
        self,
        items: Sequence[GridInput],
        at: datetime | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        by: Principal,
        batch: dict[str, Any] | None = None,
    ) -> WriteReport:
        """Create or version every item, all or nothing, as ``by``.

        Items may include their own parents (written first, by level). An item whose code
        already exists creates a new version when its boundary differs, else updates the
        attributes of the current version. Any rule broken anywhere raises ``InvalidInput``
        or ``Conflict`` listing every offending item, and nothing is written; a code outside
        ``by``'s grid scope is ``Forbidden`` naming the scope. ``progress`` is called with the
        number of items checked so far, for progress bars.

        The audit log gets one row per grid (before and after) — or, when ``batch`` describes
        an import or a generation (its ``action`` and what the auditor needs: file name,
        digest …), one row for the whole write with its counts and codes, so that a file of
        ten thousand grids does not copy the registry into the log.
        """
        at = at or now()
        order = sorted(
            range(len(items)),
            key=lambda i: LEVELS.index(items[i].level) if items[i].level in LEVELS else -1,
        )
        errors: list[dict[str, Any]] = []
        parents: dict[str, str | None] = {}
        seen: dict[str, int] = {}
        for i in order:
            item = items[i]
            try:
                parents[item.code] = check_code(self.scheme, item)
                item.geometry = check_geometry(item.geometry, f"grid {item.code}")
            except InvalidInput as exc:
                errors.append(
                    {"index": i, "code": item.code, "field": exc.field, "reason": exc.message}
                )
                continue
            if item.code in seen:
                errors.append(
                    {
                        "index": i,
                        "code": item.code,
                        "field": "code",
                        "reason": f"code {item.code} appears twice (also item {seen[item.code]})",
                    }
                )
            seen[item.code] = i
        if errors:
            raise InvalidInput(_summary(errors), field=_field(errors, items), errors=errors)
        outside = [code for code in seen if not by.covers_grid(code)]
        if outside:
            what = "grid" if len(items) == 1 else f"{len(outside)} grid(s) of this write, e.g."
            by.require_grid(outside[0], what=what)

        existing = self.repo.current_by_codes(
            self.city, [*seen, *(p for p in parents.values() if p)], at
        )
        in_write = {items[i].code: items[i] for i in order}
        conflicts: list[dict[str, Any]] = []
        for i in order:
            item = items[i]
            errors.extend(
                self._hierarchy_errors(i, item, parents[item.code], in_write, existing, at)
            )
        conflicts.extend(self._overlap_conflicts(items, order, at, progress))
        if errors:
            raise InvalidInput(_summary(errors), field=_field(errors, items), errors=errors)
        if conflicts:
            raise Conflict(_summary(conflicts), field=_field(conflicts, items), errors=conflicts)

        report = WriteReport()
        each = batch is None
        for i in order:
            item = items[i]
            current = existing.get(item.code)
            if current is None:
                row = self._insert(
                    item, parents[item.code], at, version=self._next_version(item.code)
                )
                report.created.append(item.code)
                if each:
                    self.audit.record(by, "grid.create", "grid", item.code, None, snapshot(row))
            elif shapely.equals_exact(
                geom_of(current).normalize(), to_multipolygon(item.geometry).normalize(), 1e-12
            ):
                before = snapshot(current) if each else None
                for name, value in item.attributes().items():
                    setattr(current, name, value)
                report.updated.append(item.code)
                if each:
                    self.session.flush()
                    self.audit.record(
                        by, "grid.update", "grid", item.code, before, snapshot(current)
                    )
            else:
                if current.valid_from >= at:
                    raise Conflict(
                        f"grid {item.code} version {current.version} starts at "
                        f"{current.valid_from.isoformat()}, not before {at.isoformat()}",
                        field="valid_from",
                    )
                before = snapshot(current) if each else None
                self.repo.close_version(current, at)
                row = self._insert(item, parents[item.code], at, version=current.version + 1)
                report.versioned.append(item.code)
                if each:
                    self.audit.record(by, "grid.version", "grid", item.code, before, snapshot(row))
        self.session.flush()
        if batch is not None:
            self._audit_batch(by, batch, report, len(items), at)
        return report

    def _audit_batch(
        self,
        by: Principal,
        batch: dict[str, Any],
        report: WriteReport,
        total: int,
        at: datetime,
    ) -> None:
        details = dict(batch)
        action = str(details.pop("action", "grid.import"))
        key = details.get("file") or details.get("parent")
        after: dict[str, Any] = {**details, "at": at.isoformat(), "features": total}
        for outcome in ("created", "versioned", "updated"):
            codes: list[str] = getattr(report, outcome)
            after[outcome] = len(codes)
            after[f"{outcome}_codes"] = codes[:AUDIT_CODES]
            if len(codes) > AUDIT_CODES:
                after[f"{outcome}_codes_truncated"] = True
        self.audit.record(by, action, "grids", None if key is None else str(key), None, after)

    def change(
        self,
        code: str,
        values: dict[str, Any],
        geometry: BaseGeometry | None = None,
        *,
        by: Principal,
    ) -> Grid:
        """Change attributes of ``code`` as ``by``; a new ``geometry`` makes a new version.

        Attributes change in place on the current version; a boundary change goes through
        ``write`` (all rules apply) and returns the new version. Either way the audit log
        gets the grid before and after.
        """
        grid = self.get(code)
        by.require_grid(code, "grid")
        unknown = set(values) - set(ATTRIBUTES)
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidInput(f"{name!r} cannot be changed here", field=name)
        if geometry is None:
            before = snapshot(grid)
            for name, value in values.items():
                setattr(grid, name, value)
            self.session.flush()
            after = snapshot(grid)
            if after != before:  # an empty PATCH changes nothing and records nothing
                self.audit.record(by, "grid.update", "grid", code, before, after)
            return grid
        attrs = {name: getattr(grid, name) for name in ATTRIBUTES} | values
        self.write(
            [
                GridInput(
                    code=code,
                    level=grid.level,
                    geometry=geometry,
                    parent_code=grid.parent_code,
                    **attrs,
                )
            ],
            by=by,
        )
        return self.get(code)

    def _next_version(self, code: str) -> int:
        rows = self.repo.versions(self.city, code)
        return rows[-1].version + 1 if rows else 1

    def _insert(self, item: GridInput, parent: str | None, at: datetime, version: int) -> Grid:
        return self.repo.add(
            new_grid(
                city=self.city,
                code=item.code,
                version=version,
                level=item.level,
                parent_code=parent,
                area_m2=round(float(area_m2(item.geometry)), 2),
                valid_from=at,
                valid_to=None,
                geom=item.geometry,
                **item.attributes(),
            )
        )

    def _hierarchy_errors(
        self,
        index: int,
        item: GridInput,
        parent_code: str | None,
        batch: dict[str, GridInput],
        existing: dict[str, Grid],
        at: datetime,
    ) -> list[dict[str, Any]]:
        if parent_code is None:
            return []
        if parent_code in batch:
            parent_geom, parent_lvl = batch[parent_code].geometry, batch[parent_code].level
        elif parent_code in existing:
            parent_geom, parent_lvl = geom_of(existing[parent_code]), existing[parent_code].level
        else:
            return [
                {
                    "index": index,
                    "code": item.code,
                    "field": "parent_code",
                    "reason": f"parent {parent_code} does not exist; create it first or "
                    "include it in the same import",
                }
            ]
        if parent_lvl != parent_level(item.level):
            return [
                {
                    "index": index,
                    "code": item.code,
                    "field": "level",
                    "reason": f"parent {parent_code} is a {parent_lvl}, a {item.level} "
                    f"needs a {parent_level(item.level)}",
                }
            ]
        outside = float(outside_area_m2(item.geometry, parent_geom))
        if outside > AREA_TOLERANCE_M2:
            return [
                {
                    "index": index,
                    "code": item.code,
                    "field": "geometry",
                    "reason": f"{outside:.1f} m² of grid {item.code} lies outside its parent "
                    f"{parent_code}; a {item.level} must lie inside its "
                    f"{parent_lvl}",
                    "outside_m2": round(outside, 2),
                }
            ]
        return []

    def _overlap_conflicts(
        self,
        items: Sequence[GridInput],
        order: Sequence[int],
        at: datetime,
        progress: Callable[[int], None] | None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        codes = [items[i].code for i in order]
        geoms = np.array([items[i].geometry for i in order], dtype=object)
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        for a, b in zip(left, right, strict=True):
            ia, ib = order[a], order[b]
            if a >= b or items[ia].level != items[ib].level:
                continue
            area = float(shared_area_m2(items[ia].geometry, items[ib].geometry))
            if area > AREA_TOLERANCE_M2:
                out.append(
                    {
                        "index": ia,
                        "code": codes[a],
                        "field": "geometry",
                        "reason": f"grid {codes[a]} overlaps grid {codes[b]} in the same "
                        f"file by {area:.1f} m²",
                        "overlap_m2": round(area, 2),
                        "other": codes[b],
                    }
                )
        batch_codes = set(codes)
        for done, i in enumerate(order, start=1):
            item = items[i]
            if progress is not None:
                progress(done)
            for other in self.repo.overlapping(
                self.city, item.level, item.geometry, at, exclude=[item.code]
            ):
                if other.code in batch_codes:
                    continue  # being replaced in the same write; checked against the file above
                area = float(shared_area_m2(item.geometry, geom_of(other)))
                if area > AREA_TOLERANCE_M2:
                    out.append(
                        {
                            "index": i,
                            "code": item.code,
                            "field": "geometry",
                            "reason": f"grid {item.code} overlaps stored grid {other.code} "
                            f"by {area:.1f} m²",
                            "overlap_m2": round(area, 2),
                            "other": other.code,
                        }
                    )
        return out

    # -- locate ----------------------------------------------------------------------------
    def locate(
        self,
        lon: float,
        lat: float,
        datum: str = "wgs84",
        at: datetime | None = None,
        radius_m: float = 15.0,
    ) -> LocateResult:
        """The unit grid covering a point, its chain, and every grid within ``radius_m``.

        A point on an edge shared by several grids goes to the one with the lowest code.
        """
        lon, lat = to_wgs84_point(lon, lat, datum)
        grids = snapshot_for(self.session, self.city, at) or _StoredGrids(self.repo, self.city, at)
        return locate_in(grids, lon, lat, radius_m)


class GridSource(Protocol):
    """Where locate looks: a snapshot in memory, or PostGIS for a past moment."""

    def near(self, lon: float, lat: float, radius_m: float) -> list[tuple[Grid, float, bool]]:
        """Unit grids within ``radius_m``: (grid, metres, covers), covering ones first."""
        ...

    def nearest(self, lon: float, lat: float) -> tuple[Grid, float] | None:
        """The nearest unit grid and its distance in metres."""
        ...

    def chain(self, grid: Grid) -> list[Grid]:
        """``grid``'s ancestors up to the city, nearest first."""
        ...


def locate_in(grids: GridSource, lon: float, lat: float, radius_m: float) -> LocateResult:
    """The unit grid covering a WGS 84 point (lowest code on a shared edge), its chain, and
    every grid within ``radius_m``; ``NotFound`` naming the nearest grid when none covers it."""
    near = grids.near(lon, lat, radius_m)
    covering = [g for g, _, covers in near if covers]
    if not covering:
        nearest = grids.nearest(lon, lat)
        extra: dict[str, Any] = {"lon": lon, "lat": lat}
        msg = f"point ({lon:.6f}, {lat:.6f}) lies outside every unit grid"
        if nearest is not None:
            grid, dist = nearest
            extra.update(
                nearest_code=grid.code,
                nearest_name=grid.name,
                nearest_distance_m=round(dist, 2),
            )
            msg += f"; nearest is {grid.code} ({grid.name}) {dist:.1f} m away"
        raise NotFound(msg, field="lon,lat", **extra)
    grid = min(covering, key=lambda g: g.code)
    return LocateResult(
        lon=lon,
        lat=lat,
        grid=grid,
        chain=grids.chain(grid),
        candidates=[(g, d) for g, d, _ in near],
    )


class _StoredGrids:
    """Unit grids valid at a past moment, read from PostGIS (the snapshot's slow twin)."""

    def __init__(self, repo: GridRepository, city: str, at: datetime | None) -> None:
        self.repo, self.city, self.at = repo, city, at or now()

    def near(self, lon: float, lat: float, radius_m: float) -> list[tuple[Grid, float, bool]]:
        return self.repo.near_point(self.city, "unit", lon, lat, radius_m, self.at)

    def nearest(self, lon: float, lat: float) -> tuple[Grid, float] | None:
        return self.repo.nearest(self.city, "unit", lon, lat, self.at)

    def chain(self, grid: Grid) -> list[Grid]:
        return self.repo.chain(grid, self.at)[1:]


@dataclass
class WriteReport:
    """What a write did, by code."""

    created: list[str] = field(default_factory=list)
    versioned: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LocateResult:
    """Answer of ``Registry.locate``."""

    lon: float
    lat: float
    grid: Grid
    chain: list[Grid]
    candidates: list[tuple[Grid, float]]


def _field(errors: list[dict[str, Any]], items: Sequence[GridInput]) -> str:
    """The offending field when one grid was written; ``features`` for a batch."""
    return str(errors[0]["field"]) if len(items) == 1 else "features"


def _summary(errors: list[dict[str, Any]]) -> str:
    head = "; ".join(e["reason"] for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"{len(errors)} problem(s), nothing stored: {head}{more}"

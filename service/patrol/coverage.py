"""Patrol coverage per unit grid and hotspot, per hour / day / week, stored and kept fresh.

A period's coverage is computed from the stored tracks (``gis.coverage``) the first time it is
read and stored in ``coverage_runs`` / ``grid_coverage`` / ``hotspot_coverage``; a later read
recomputes it only when the tracks overlapping the period, the unit grids or the streets have
changed since (a fingerprint of them is kept with the run).

Periods start on local boundaries (``CITYGRID_TIMEZONE``): an hour on the hour, a day at
midnight, a week on Monday at midnight. The grids are the unit grids valid at the period's start
(or, for periods before the registry existed, the grids valid now).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from geoalchemy2.shape import to_shape
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from gis.coverage import CoverageRaster, FixTable, grid_coverage, zone_coverage
from gis.metric import to_metric, to_metric_xy
from service.accounts.principal import Principal
from service.accounts.scope import grid_condition
from service.clock import now
from service.db.models import (
    Case,
    CoverageRun,
    Grid,
    GridCoverage,
    Hotspot,
    HotspotCoverage,
    PatrolTrack,
    Street,
)
from service.errors import InvalidInput, NotFound
from service.grids.index import index_for
from service.grids.registry import Registry
from service.grids.repository import GridFilter, geom_of
from service.hotspots.hotspots import active_at
from service.patrol.tracks import read_tracks
from service.settings import AppSettings

PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
_RASTERS: dict[tuple[frozenset[int], float], CoverageRaster] = {}
_RASTER_LOCK = Lock()
_MAX_RASTERS = 4
_LOCK_SPACE = 0x6376  # advisory-lock namespace of coverage runs ("cv")
_RESULTS: dict[tuple[str, datetime, datetime, str], Coverage] = {}
_MAX_RESULTS = 16


def period_bounds(period: str, start: datetime, tz: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a period, checking that ``start`` is on the period's boundary."""
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}", field="period")
    local = start.astimezone(ZoneInfo(tz)) if start.tzinfo else start.replace(tzinfo=ZoneInfo(tz))
    floor = local.replace(minute=0, second=0, microsecond=0)
    if period != "hour":
        floor = floor.replace(hour=0)
    if period == "week":
        floor -= timedelta(days=floor.weekday())
    if floor != local:
        raise InvalidInput(
            f"a {period} starts at {floor.isoformat()}, not {local.isoformat()}; "
            "give the start of the period",
            field="start",
        )
    return local, local + PERIODS[period]


@dataclass
class Coverage:
    """One computed period."""

    grids: pd.DataFrame  # one row per unit grid (gis.coverage.grid_coverage columns)
    hotspots: pd.DataFrame  # one row per active hotspot, with hotspot_id and quota_visits


class CoverageService:
    """Coverage reads for one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.registry = Registry(session, settings)

    # -- reads ----------------------------------------------------------------------------------
    def run(self, period: str, start: datetime) -> CoverageRun:
        """The stored run of a period, computed now if missing or stale."""
        begin, end = period_bounds(period, start, self.settings.grids.timezone)
        # two readers of a stale period at once: the second waits and reuses the first's run
        self.session.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
            {"space": _LOCK_SPACE, "key": f"{self.city}/{period}/{begin.isoformat()}"},
        )
        fingerprint = self.fingerprint(begin, end)
        run = self.session.scalars(
            select(CoverageRun).where(
                CoverageRun.city == self.city,
                CoverageRun.period == period,
                CoverageRun.period_start == begin,
            )
        ).first()
        if run is not None and run.fingerprint == fingerprint:
            return run
        if run is not None:
            self.session.delete(run)
            self.session.flush()
        result = self._compute(begin, end)
        run = CoverageRun(
            city=self.city,
            period=period,
            period_start=begin,
            period_end=end,
            computed_at=now(),
            fingerprint=fingerprint,
            radius_m=self.settings.patrol.coverage_radius_m,
        )
        self.session.add(run)
        self.session.flush()
        self._store(run, result)
        return run

    def grid_rows(
        self, period: str, start: datetime, by: Principal, grid: str | None = None
    ) -> tuple[CoverageRun, list[dict[str, Any]]]:
        """Coverage of the unit grids of a period in ``by``'s grid scope (optionally one
        grid's subtree)."""
        run = self.run(period, start)
        stmt = (
            select(GridCoverage)
            .where(GridCoverage.city == run.city, GridCoverage.run_id == run.id)
            .order_by(GridCoverage.grid_code)
        )
        scope = grid_condition(by, GridCoverage.grid_code)
        if scope is not None:
            stmt = stmt.where(scope)
        if grid:
            prefix = self.registry.subtree_prefix(grid)
            stmt = stmt.where(GridCoverage.grid_code.startswith(prefix, autoescape=True))
        grids = {g.code: g for g in self.unit_grids(run.period_start)}
        rows = []
        for cov in self.session.scalars(stmt):
            g = grids[cov.grid_code]
            rows.append(_grid_row(cov, g.name, g.area_m2, run.period_end))
        return run, rows

    def unit_grids(self, at: datetime) -> list[Grid]:
        """The unit grids coverage is measured on at ``at``: those valid then, or — for
        periods before the registry existed — those valid now."""
        rows = self.registry.repo.list(GridFilter(city=self.city, at=at, level="unit"))
        if not rows:
            rows = self.registry.repo.list(GridFilter(city=self.city, at=now(), level="unit"))
        if not rows:
            raise NotFound("no unit grids are registered; import or generate grids first")
        return rows

    def hotspot_rows(
        self, period: str, start: datetime, by: Principal
    ) -> tuple[CoverageRun, list[dict[str, Any]]]:
        """Coverage of the hotspots active in a period (those touching ``by``'s grids),
        against their patrol quota."""
        run = self.run(period, start)
        stmt = (
            select(HotspotCoverage, Hotspot)
            .join(
                Hotspot,
                (Hotspot.city == HotspotCoverage.city) & (Hotspot.id == HotspotCoverage.hotspot_id),
            )
            .where(HotspotCoverage.city == run.city, HotspotCoverage.run_id == run.id)
            .order_by(Hotspot.id)
        )
        mine = self.hotspots_in_scope(by)
        if mine is not None:
            stmt = stmt.where(Hotspot.id.in_(mine))
        return run, [_hotspot_row(c, h, run.period_end) for c, h in self.session.execute(stmt)]

    def hotspots_in_scope(self, by: Principal) -> list[int] | None:
        """Ids of the hotspots whose influence zone touches a current unit grid in ``by``'s
        grid scope (``None``: every hotspot)."""
        scope = grid_condition(by, Grid.code)
        if scope is None:
            return None
        stmt = (
            select(Hotspot.id)
            .join(Grid, func.ST_Intersects(Grid.geom, Hotspot.zone))
            .where(
                Hotspot.city == self.city,
                Grid.city == self.city,
                Grid.level == "unit",
                Grid.valid_to.is_(None),
                scope,
            )
            .distinct()
        )
        return list(self.session.scalars(stmt))

    def blind_spots(
        self, hours: float, by: Principal, at: datetime | None = None, grid: str | None = None
    ) -> dict[str, Any]:
        """Unit grids and hotspots in ``by``'s scope nobody visited in the ``hours`` before
        ``at`` (default now)."""
        if not 0 < hours <= 24 * 31:
            raise InvalidInput("hours must be in (0, 744]", field="hours")
        end = at or now()
        start = end - timedelta(hours=hours)
        result = self.compute(start, end)
        frame = result.grids
        if grid:
            prefix = self.registry.subtree_prefix(grid)
            frame = frame[frame["code"].str.startswith(prefix)]
        if not by.city_wide:
            frame = frame[[by.covers_grid(c) for c in frame["code"]]]
        unseen = frame[frame["visits"] == 0]
        names = self._grid_names(list(unseen["code"]), start)
        spots = result.hotspots
        mine = self.hotspots_in_scope(by)
        if mine is not None:
            spots = spots[spots["hotspot_id"].isin(mine)]
        return {
            "from": start,
            "to": end,
            "grids": [{"code": c, "name": names.get(c)} for c in unseen["code"]],
            "grids_checked": int(len(frame)),
            "hotspots": [
                {"id": int(h), "name": n}
                for h, n in zip(
                    spots.loc[spots["visits"] == 0, "hotspot_id"],
                    spots.loc[spots["visits"] == 0, "name"],
                    strict=True,
                )
            ],
        }

    def problems_per_patrol_hour(
        self, period: str, start: datetime, by: Principal, grid: str | None = None
    ) -> tuple[CoverageRun, list[dict[str, Any]]]:
        """Cases reported in each unit grid of ``by``'s grid scope per patrol hour there,
        highest first: grids with cases and no patrol at all come first ("high problems, low
        patrol"). Every case of a grid in scope is in scope too (its grid is)."""
        run, rows = self.grid_rows(period, start, by, grid)
        counts = dict(
            self.session.execute(
                select(Case.grid_code, func.count())
                .where(
                    Case.city == self.city,
                    Case.reported_at >= run.period_start,
                    Case.reported_at < run.period_end,
                    Case.grid_code.is_not(None),
                )
                .group_by(Case.grid_code)
            ).all()
        )
        out = []
        for row in rows:
            cases = int(counts.get(row["code"], 0))
            hours = row["effort_worker_minutes"] / 60.0
            out.append(
                {
                    "code": row["code"],
                    "name": row["name"],
                    "cases": cases,
                    "patrol_hours": round(hours, 3),
                    "cases_per_patrol_hour": round(cases / hours, 3) if hours > 0 else None,
                    "unpatrolled": hours == 0,
                }
            )
        out.sort(
            key=lambda r: (
                not (r["unpatrolled"] and r["cases"] > 0),
                -(r["cases_per_patrol_hour"] or 0.0),
                r["code"],
            )
        )
        return run, out

    # -- computation ----------------------------------------------------------------------------
    def compute(self, start: datetime, end: datetime) -> Coverage:
        """Coverage of ``[start, end)`` from the stored tracks (nothing stored; the last few
        results are kept in memory while their fingerprint holds)."""
        key = (self.city, start, end, self.fingerprint(start, end))
        with _RASTER_LOCK:
            hit = _RESULTS.get(key)
        if hit is not None:
            return hit
        result = self._compute(start, end)
        with _RASTER_LOCK:
            if len(_RESULTS) >= _MAX_RESULTS:
                _RESULTS.pop(next(iter(_RESULTS)))
            _RESULTS[key] = result
        return result

    def _compute(self, start: datetime, end: datetime) -> Coverage:
        rows = self.unit_grids(start)
        index, ids = index_for(rows)
        raster = self._raster(rows, index, ids)
        fixes, lon, lat = self._fixes(raster, start, end)
        grid_of_fix = index.locate(lon, lat)
        p = self.settings.patrol
        covered = raster.covered(fixes, p.coverage_radius_m)
        grids = grid_coverage(
            raster,
            fixes,
            grid_of_fix,
            radius_m=p.coverage_radius_m,
            streets=self._streets(raster),
            merge_s=p.visit_merge_s,
            covered=covered,
        )
        return Coverage(grids, self._hotspots(raster, fixes, start, end, covered))

    def warm(self) -> None:
        """Build today's grid index and coverage raster now (a few seconds for a district), so
        the first map or coverage request after a start does not wait for them."""
        rows = self.registry.repo.list(GridFilter(city=self.city, at=now(), level="unit"))
        # the rows are loaded: end the read-only transaction so its connection goes back to
        # the pool instead of idling through seconds of raster work
        self.session.commit()
        if rows:
            index, ids = index_for(rows)
            self._raster(rows, index, ids)

    def _raster(self, rows: list[Grid], index: Any, ids: np.ndarray) -> CoverageRaster:
        cell = self.settings.patrol.coverage_cell_m
        key = (frozenset(int(i) for i in ids), cell)
        with _RASTER_LOCK:
            hit = _RASTERS.get(key)
        if hit is not None:
            return hit
        # the cached index may list the same grids in another order: follow its order
        by_code = {r.code: r for r in rows}
        codes = list(index.codes)
        geoms = np.array([geom_of(by_code[c]) for c in codes], dtype=object)
        raster = CoverageRaster.build(codes, geoms, cell, index)
        with _RASTER_LOCK:
            if len(_RASTERS) >= _MAX_RASTERS:
                _RASTERS.clear()
            _RASTERS[key] = raster
        return raster

    def _fixes(
        self, raster: CoverageRaster, start: datetime, end: datetime
    ) -> tuple[FixTable, np.ndarray, np.ndarray]:
        tracks = read_tracks(self.session, self.city, start, end)
        worker_codes, worker_no = np.unique(tracks.worker_code.astype(str), return_inverse=True)
        keep = (tracks.t >= start.timestamp()) & (tracks.t < end.timestamp())
        lon, lat = tracks.lon[keep], tracks.lat[keep]
        x, y = to_metric_xy(lon, lat, raster.crs)
        vertex_track = tracks.vertex_track[keep]
        fixes = FixTable(vertex_track, worker_no[vertex_track], tracks.t[keep], x, y)
        return fixes, lon, lat

    def _streets(self, raster: CoverageRaster) -> np.ndarray | None:
        rows = self.session.scalars(select(Street).where(Street.city == self.city)).all()
        if not rows:
            return None
        return np.asarray(
            to_metric(np.array([to_shape(r.geom) for r in rows], dtype=object), raster.crs)
        )

    def _hotspots(
        self,
        raster: CoverageRaster,
        fixes: FixTable,
        start: datetime,
        end: datetime,
        covered: np.ndarray,
    ) -> pd.DataFrame:
        spots = self.session.scalars(
            select(Hotspot)
            .where(Hotspot.city == self.city, Hotspot.active_from < end)
            .where((Hotspot.active_to.is_(None)) | (Hotspot.active_to > start))
            .order_by(Hotspot.id)
        ).all()
        if not spots:
            return pd.DataFrame(columns=["hotspot_id", "name", "visits", "quota_visits"])
        zones = to_metric(np.array([to_shape(s.zone) for s in spots], dtype=object), raster.crs)
        p = self.settings.patrol
        table = zone_coverage(
            raster, fixes, np.asarray(zones), p.coverage_radius_m, p.visit_merge_s, covered
        )
        weeks = (end - start) / timedelta(days=7)
        table.insert(0, "hotspot_id", [s.id for s in spots])
        table.insert(1, "name", [s.name for s in spots])
        table["quota_visits"] = [
            None if s.patrol_quota_per_week is None else s.patrol_quota_per_week * weeks
            for s in spots
        ]
        return table

    def fingerprint(self, start: datetime, end: datetime) -> str:
        """Changes whenever the coverage of ``[start, end)`` could: its tracks, the unit
        grids, the active hotspots, the streets or the coverage settings."""
        tracks = self.session.execute(
            select(func.count(), func.max(PatrolTrack.id), func.max(PatrolTrack.built_at)).where(
                PatrolTrack.city == self.city,
                PatrolTrack.started_at < end,
                PatrolTrack.ended_at >= start,
            )
        ).one()
        # updated_at: an edited street line or hotspot zone changes the answer too
        streets = self.session.execute(
            select(func.count(), func.max(Street.id), func.max(Street.updated_at)).where(
                Street.city == self.city
            )
        ).one()
        spots = self.session.execute(
            select(func.count(), func.max(Hotspot.id), func.max(Hotspot.updated_at)).where(
                Hotspot.city == self.city, active_at(start)
            )
        ).one()
        grids = self.registry.repo.fingerprint(self.city, "unit")
        p = self.settings.patrol
        text = repr((tracks, streets, spots, grids, p.coverage_radius_m, p.coverage_cell_m))
        return hashlib.sha256(text.encode()).hexdigest()

    def _store(self, run: CoverageRun, result: Coverage) -> None:
        g = result.grids
        if len(g):
            self.session.execute(
                insert(GridCoverage),
                [
                    {
                        "city": run.city,
                        "run_id": run.id,
                        "grid_code": r.code,
                        "covered_share": _num(r.covered_share) or 0.0,
                        "street_share": _num(r.street_share),
                        "visits": int(r.visits),
                        "workers": int(r.workers),
                        "dwell_s": float(r.dwell_s),
                        "first_visit_at": _when(r.first_visit_t),
                        "last_visit_at": _when(r.last_visit_t),
                        "mean_revisit_s": _num(r.mean_revisit_s),
                    }
                    for r in _records(g)
                ],
            )
        h = result.hotspots
        if len(h):
            self.session.execute(
                insert(HotspotCoverage),
                [
                    {
                        "city": run.city,
                        "run_id": run.id,
                        "hotspot_id": int(r.hotspot_id),
                        "covered_share": _num(r.covered_share),
                        "visits": int(r.visits),
                        "workers": int(r.workers),
                        "dwell_s": float(r.dwell_s),
                        "last_visit_at": _when(r.last_visit_t),
                        "quota_visits": _num(r.quota_visits),
                    }
                    for r in _records(h)
                ],
            )
        self.session.flush()

    def _grid_names(self, codes: list[str], at: datetime) -> dict[str, str]:
        wanted = set(codes)
        return {r.code: r.name for r in self.unit_grids(at) if r.code in wanted} if codes else {}


def _records(frame: pd.DataFrame) -> list[Any]:
    """Rows as attribute records (typed ``Any``: the columns are known by construction)."""
    return list(frame.itertuples())


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _when(seconds: Any) -> datetime | None:
    return None if seconds is None or pd.isna(seconds) else datetime.fromtimestamp(seconds, UTC)


def _hours_since(last: datetime | None, end: datetime) -> float | None:
    return None if last is None else round((end - last).total_seconds() / 3600.0, 2)


def _grid_row(cov: GridCoverage, name: str, area_m2: float, end: datetime) -> dict[str, Any]:
    return {
        "code": cov.grid_code,
        "name": name,
        "area_m2": round(area_m2, 1),
        "covered_share": round(cov.covered_share, 4),
        "street_share": None if cov.street_share is None else round(cov.street_share, 4),
        "visits": cov.visits,
        "workers": cov.workers,
        "effort_worker_minutes": round(cov.dwell_s / 60.0, 2),
        "dwell_minutes_per_visit": round(cov.dwell_s / 60.0 / cov.visits, 2)
        if cov.visits
        else None,
        "first_visit_at": cov.first_visit_at,
        "last_visit_at": cov.last_visit_at,
        "hours_since_last_visit": _hours_since(cov.last_visit_at, end),
        "mean_revisit_hours": None
        if cov.mean_revisit_s is None
        else round(cov.mean_revisit_s / 3600.0, 2),
    }


def _hotspot_row(cov: HotspotCoverage, spot: Hotspot, end: datetime) -> dict[str, Any]:
    quota = cov.quota_visits
    return {
        "id": spot.id,
        "key": spot.key,
        "kind": spot.kind,
        "name": spot.name,
        "covered_share": None if cov.covered_share is None else round(cov.covered_share, 4),
        "visits": cov.visits,
        "workers": cov.workers,
        "effort_worker_minutes": round(cov.dwell_s / 60.0, 2),
        "last_visit_at": cov.last_visit_at,
        "hours_since_last_visit": _hours_since(cov.last_visit_at, end),
        "quota_visits": None if quota is None else round(quota, 2),
        "quota_met": None if quota is None else cov.visits >= quota,
    }

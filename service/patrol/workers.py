"""Grid workers, their phones and patrol sessions; reading tracks back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from gis import datum as datums
from service.accounts.principal import Principal
from service.clock import now
from service.db.models import Device, Grid, PatrolSession, PatrolTrack, Worker
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.http.timeparse import iso
from service.settings import AppSettings


@dataclass
class WorkerInput:
    """A worker to create or update, with the phones they carry."""

    code: str
    name: str
    team: str | None = None
    phone: str | None = None
    grid_codes: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    active: bool = True


def sees_worker(by: Principal, grid_codes: list[str]) -> bool:
    """Whether ``by`` may see a worker assigned to ``grid_codes``: a city-wide principal sees
    every worker, a grid-scoped one those with at least one grid in its subtrees."""
    if by.city_wide:
        return True
    return any(by.covers_grid(c) for c in grid_codes)


def edits_worker(by: Principal, grid_codes: list[str]) -> bool:
    """Whether ``by`` may change a worker assigned to ``grid_codes`` (or upload their fixes):
    every one of the grids must lie in its subtrees; a worker without grids belongs to the
    whole city."""
    if by.city_wide:
        return True
    return bool(grid_codes) and all(by.covers_grid(c) for c in grid_codes)


def _outside(by: Principal, what: str) -> Forbidden:
    return Forbidden(
        f"{what} lies outside the scope of {by.label}: {by.scope_text()}",
        field="scope",
        scope=list(by.grid_prefixes or ()),
    )


class PatrolService:
    """Workers, devices, sessions and tracks of one city on one session.

    Reads show the workers (and their tracks) whose grids lie in the caller's scope; writes
    need every grid of the worker in it (403 naming the scope)."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city

    # -- workers and devices --------------------------------------------------------------------
    def save_worker(self, item: WorkerInput, by: Principal) -> tuple[Worker, bool]:
        """Create or update a worker as ``by``; returns it and whether it was created.

        Assigned grids must be current unit grids; a device may belong to one worker only.
        The worker's grids, before and after, must lie in ``by``'s scope.
        """
        self._check_grids(item.grid_codes)
        worker = self.session.get(Worker, (self.city, item.code))
        if worker is not None and not edits_worker(by, list(worker.grid_codes)):
            raise _outside(by, f"worker {item.code!r}")
        if not edits_worker(by, item.grid_codes):
            raise _outside(by, f"worker {item.code!r} with grids {', '.join(item.grid_codes)}")
        created = worker is None
        if worker is None:
            worker = Worker(city=self.city, code=item.code)
            self.session.add(worker)
        worker.name, worker.team, worker.phone = item.name, item.team, item.phone
        worker.grid_codes, worker.active = list(item.grid_codes), item.active
        self.session.flush()
        for device_id in item.devices:
            self._attach_device(device_id, item.code)
        return worker, created

    def _check_grids(self, codes: list[str]) -> None:
        if not codes:
            return
        found = set(
            self.session.scalars(
                select(Grid.code).where(
                    Grid.city == self.city,
                    Grid.level == "unit",
                    Grid.valid_to.is_(None),
                    Grid.code.in_(codes),
                )
            )
        )
        missing = [c for c in codes if c not in found]
        if missing:
            raise InvalidInput(
                f"grid_codes must be current unit grids; unknown: {', '.join(missing[:5])}",
                field="grid_codes",
            )

    def _attach_device(self, device_id: str, worker_code: str) -> None:
        device = self.session.scalars(
            select(Device).where(Device.city == self.city, Device.device_id == device_id)
        ).first()
        if device is None:
            self.session.add(Device(city=self.city, device_id=device_id, worker_code=worker_code))
            self.session.flush()
        elif device.worker_code != worker_code:
            raise Conflict(
                f"device {device_id!r} belongs to worker {device.worker_code!r}; "
                "remove it there first",
                field="devices",
            )

    def worker(self, code: str, by: Principal) -> Worker:
        """A worker by code, or ``NotFound`` (also when outside ``by``'s scope)."""
        worker = self.session.get(Worker, (self.city, code))
        if worker is None or not sees_worker(by, list(worker.grid_codes)):
            raise NotFound(f"no worker {code!r}", field="code")
        return worker

    def workers(self, by: Principal, team: str | None = None) -> list[Worker]:
        """The city's workers in ``by``'s scope (optionally one team), by code."""
        stmt = select(Worker).where(Worker.city == self.city).order_by(Worker.code)
        if team:
            stmt = stmt.where(Worker.team == team)
        # a city has thousands of workers at most: the scope is checked on the loaded rows
        return [w for w in self.session.scalars(stmt) if sees_worker(by, list(w.grid_codes))]

    def _check_device_scope(self, device: Device, by: Principal) -> None:
        worker = self.session.get(Worker, (self.city, device.worker_code))
        if worker is None or not edits_worker(by, list(worker.grid_codes)):
            raise _outside(by, f"device {device.device_id!r} (worker {device.worker_code!r})")

    def devices_of(self, codes: list[str]) -> dict[str, list[str]]:
        """Device ids per worker code."""
        rows = self.session.execute(
            select(Device.worker_code, Device.device_id)
            .where(Device.city == self.city, Device.worker_code.in_(codes))
            .order_by(Device.device_id)
        )
        out: dict[str, list[str]] = {c: [] for c in codes}
        for code, device_id in rows:
            out[code].append(device_id)
        return out

    def device(self, device_id: str) -> Device:
        """A registered device, or ``NotFound`` telling how to register it."""
        device = self.session.scalars(
            select(Device).where(Device.city == self.city, Device.device_id == device_id)
        ).first()
        if device is None:
            raise NotFound(
                f"unknown device {device_id!r}; add it to a worker's devices first",
                field="device_id",
            )
        return device

    def device_of_session(self, row: PatrolSession) -> Device:
        """The device a session runs on."""
        device = self.session.get(Device, row.device_key)
        assert device is not None  # sessions reference devices by foreign key
        return device

    # -- sessions --------------------------------------------------------------------------------
    def start_session(
        self, device_id: str, by: Principal, at: datetime | None = None
    ) -> PatrolSession:
        """Open a patrol session on a device (one open session per device); the device's
        worker must lie in ``by``'s scope."""
        device = self.device(device_id)
        self._check_device_scope(device, by)
        open_one = self.session.scalars(
            select(PatrolSession).where(
                PatrolSession.device_key == device.id, PatrolSession.ended_at.is_(None)
            )
        ).first()
        if open_one is not None:
            raise Conflict(
                f"device {device_id!r} already has open session {open_one.id}; end it first",
                field="device_id",
                session_id=open_one.id,
            )
        row = PatrolSession(city=self.city, device_key=device.id, started_at=at or now())
        self.session.add(row)
        self.session.flush()
        return row

    def end_session(
        self, session_id: int, by: Principal, at: datetime | None = None
    ) -> PatrolSession:
        """Close a session; tracks never run across its end. The device's worker must lie in
        ``by``'s scope."""
        row = self.session.get(PatrolSession, session_id)
        if row is None or row.city != self.city:
            raise NotFound(f"no patrol session {session_id}", field="id")
        self._check_device_scope(self.device_of_session(row), by)
        if row.ended_at is not None:
            raise Conflict(f"session {session_id} already ended", field="id")
        end = at or now()
        if end <= row.started_at:
            raise InvalidInput("ended_at must be after the session's start", field="ended_at")
        row.ended_at = end
        self.session.flush()
        return row

    # -- tracks ----------------------------------------------------------------------------------
    def tracks(
        self,
        by: Principal,
        start: datetime,
        end: datetime,
        worker: str | None = None,
        device_id: str | None = None,
        limit: int = 1000,
        offset: int = 0,
        datum: str = "wgs84",
    ) -> list[dict[str, Any]]:
        """Tracks of the workers in ``by``'s scope overlapping ``[start, end)`` as GeoJSON
        features (oldest first), in ``datum``."""
        stmt = (
            self._tracks(by, start, end, worker, device_id)
            .add_columns(Device.device_id, func.ST_AsBinary(PatrolTrack.geom))
            .order_by(PatrolTrack.started_at, PatrolTrack.id)
            .limit(limit)
            .offset(offset)
        )
        return [_track_feature(t, d, g, datum) for t, d, g in self.session.execute(stmt)]

    def count_tracks(
        self,
        by: Principal,
        start: datetime,
        end: datetime,
        worker: str | None = None,
        device_id: str | None = None,
    ) -> int:
        """How many tracks :meth:`tracks` finds without a limit."""
        sub = self._tracks(by, start, end, worker, device_id).subquery()
        return int(self.session.scalar(select(func.count()).select_from(sub)) or 0)

    def _tracks(
        self,
        by: Principal,
        start: datetime,
        end: datetime,
        worker: str | None,
        device_id: str | None,
    ) -> Select[PatrolTrack]:
        if end <= start:
            raise InvalidInput("'to' must be after 'from'", field="to")
        stmt = (
            select(PatrolTrack)
            .join(Device, (Device.city == PatrolTrack.city) & (Device.id == PatrolTrack.device_key))
            .where(
                PatrolTrack.city == self.city,
                PatrolTrack.started_at < end,
                PatrolTrack.ended_at >= start,
            )
        )
        if worker:
            self.worker(worker, by)
            stmt = stmt.where(PatrolTrack.worker_code == worker)
        if device_id:
            stmt = stmt.where(PatrolTrack.device_key == self.device(device_id).id)
        if not by.city_wide:
            stmt = stmt.where(PatrolTrack.worker_code.in_([w.code for w in self.workers(by)]))
        return stmt

    def worker_codes(self, by: Principal) -> list[str] | None:
        """Codes of the workers in ``by``'s scope (``None``: every worker)."""
        return None if by.city_wide else [w.code for w in self.workers(by)]

    def check_fix_scope(self, worker_codes: list[str], by: Principal) -> None:
        """``Forbidden`` naming the scope unless every worker in ``worker_codes`` (of one batch
        of fixes) lies in ``by``'s scope: a batch for a worker elsewhere stores nothing."""
        if by.city_wide or not worker_codes:
            return
        rows = self.session.scalars(
            select(Worker).where(Worker.city == self.city, Worker.code.in_(set(worker_codes)))
        )
        outside = sorted(w.code for w in rows if not edits_worker(by, list(w.grid_codes)))
        if outside:
            raise _outside(by, f"the fixes of worker(s) {', '.join(outside[:5])}")


def _track_feature(track: PatrolTrack, device_id: str, wkb: bytes, datum: str) -> dict[str, Any]:
    coords = shapely.get_coordinates(shapely.from_wkb(bytes(wkb)), include_m=True)
    lon, lat = datums.from_wgs84(coords[:, 0], coords[:, 1], datum)
    xy = np.column_stack([lon, lat]).round(7)
    return {
        "type": "Feature",
        "id": track.id,
        "geometry": {"type": "LineString", "coordinates": xy.tolist()},
        "properties": {
            "worker": track.worker_code,
            "device_id": device_id,
            "started_at": iso(track.started_at),
            "ended_at": iso(track.ended_at),
            "n_fixes": track.n_fixes,
            "length_m": round(track.length_m, 1),
            # GeoJSON has no M: the vertex times (Unix seconds) go in a property
            "times": coords[:, 2].tolist(),
        },
    }

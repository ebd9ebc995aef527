"""Patrol answers as JSON and CSV: workers, sessions, coverage runs and their rows."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from fastapi import Response
from geoalchemy2.shape import to_shape

from service.accounts.principal import Principal
from service.accounts.privacy import phone_for
from service.db.models import CoverageRun, PatrolSession, Worker
from service.http.geojson import geometry_json
from service.http.tables import BOM
from service.http.timeparse import iso
from service.patrol.coverage import CoverageService


def run_json(run: CoverageRun) -> dict[str, Any]:
    """A coverage run: its period, when it was computed and with which parameters."""
    return {
        "period": run.period,
        "from": iso(run.period_start),
        "to": iso(run.period_end),
        "computed_at": iso(run.computed_at),
        "radius_m": run.radius_m,
    }


def plain_row(row: dict[str, Any]) -> dict[str, Any]:
    """A coverage row with its date-times as ISO 8601 strings."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def csv_response(rows: list[dict[str, Any]], name: str) -> Response:
    """Rows as a CSV download named ``name``."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        BOM + buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def coverage_geometries(
    cov: CoverageService, codes: list[str], at: datetime, datum: str
) -> dict[str, Any]:
    """GeoJSON geometries of the unit grids ``codes`` valid at ``at``, in ``datum``."""
    wanted = set(codes)
    return {
        g.code: geometry_json(to_shape(g.geom), datum)
        for g in cov.unit_grids(at)
        if g.code in wanted
    }


def worker_json(worker: Worker, devices: list[str], by: Principal) -> dict[str, Any]:
    """A worker with the phones they carry (their phone number masked unless ``by`` holds
    ``people.read``; the name stays: a grid worker is named on the grid's public sign)."""
    return {
        "code": worker.code,
        "name": worker.name,
        "team": worker.team,
        "phone": phone_for(by, worker.phone),
        "grid_codes": list(worker.grid_codes),
        "devices": devices,
        "active": worker.active,
    }


def session_json(row: PatrolSession, device_id: str) -> dict[str, Any]:
    """A patrol session on a phone."""
    return {
        "id": row.id,
        "device_id": device_id,
        "started_at": iso(row.started_at),
        "ended_at": iso(row.ended_at),
    }

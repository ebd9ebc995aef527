"""Single-case intake latency through the API (p50/p99 over 2,000 POST /api/cases).

Runs a live server on a throw-away database with the demo city (grids, catalogue, hotspots,
routing rules). Baseline in the same run: ``CaseService.intake`` called directly (no HTTP), so
the figure shows what the API adds. Run: ``python bench/bench_case_api.py [--requests 2000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import httpx2 as httpx
import numpy as np
from common import live_server, machine_line, scratch_database
from sqlalchemy.orm import Session

from gis.demo_hotspots import generate_cases
from service.cases import CaseInput, CaseService
from service.catalogue import seed_catalogue
from service.demo_world import load_demo_grids, load_demo_hotspots
from service.factory import AppSettings


def _stats(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):6.2f} ms   p99 {np.percentile(ms, 99):6.2f} ms"


def main(argv: list[str] | None = None) -> int:
    """Load the demo world, time direct and HTTP intake, print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    opts = parser.parse_args(argv)
    print(machine_line())
    with scratch_database() as (engine, url):
        os.environ["CITYGRID_DATABASE_URL"] = url
        settings = AppSettings()
        with Session(engine) as session:
            load_demo_grids(session, settings)
            seed_catalogue(session, settings.grids.city)
            load_demo_hotspots(session, settings)
            session.commit()
        rows = generate_cases(3 * opts.requests, seed=5, start="2026-11-01", end="2026-11-20")
        rows = rows[~rows["category_code"].isin(["0303", "0203"])]  # no extra fields needed
        direct_rows = rows.iloc[: opts.requests]
        http_rows = rows.iloc[opts.requests : 2 * opts.requests]

        direct: list[float] = []
        with Session(engine) as session:
            service = CaseService(session, settings)
            for row in direct_rows.itertuples():
                t = time.perf_counter()
                try:
                    service.intake(
                        CaseInput(
                            row.category_code,
                            row.lon,
                            row.lat,
                            reported_at=row.reported_at.to_pydatetime(),
                            allow_unassigned=True,
                        )
                    )
                    session.commit()
                except Exception:  # noqa: BLE001 - a rejected row still costs its time
                    session.rollback()
                direct.append(time.perf_counter() - t)

        latencies: list[float] = []
        statuses: dict[int, int] = {}
        with live_server() as base, httpx.Client(base_url=base, timeout=30) as client:
            for row in http_rows.itertuples():
                body = {
                    "category_code": row.category_code,
                    "lon": row.lon,
                    "lat": row.lat,
                    "reported_at": row.reported_at.isoformat(),
                    "source": row.source,
                    "description": row.description,
                    "allow_unassigned": True,
                    "idempotency_key": row.idempotency_key,
                }
                t = time.perf_counter()
                r = client.post("/api/cases", json=body)
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    print(f"single-case intake, {len(latencies)} sequential requests")
    print(f"  HTTP POST /api/cases      : {_stats(latencies)}   statuses {statuses}")
    print(f"  baseline CaseService.intake: {_stats(direct)}   (same kind of rows, no HTTP)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

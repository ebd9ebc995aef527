"""Locate endpoint latency (p50/p99 over 2,000 requests) against a running server.

Baseline in the same run: the same lookups straight against PostGIS (no HTTP), so the figure
shows what the API adds. Run: ``python bench/bench_locate_api.py [--requests 2000]``.
"""

from __future__ import annotations

import argparse
import os
import time

import httpx2 as httpx
import numpy as np
from common import demo_engine, live_server
from sqlalchemy.orm import Session

from service.registry import Registry, now
from service.repository import GridFilter


def _points(engine, settings, n: int) -> np.ndarray:
    with Session(engine) as session:
        registry = Registry(session, settings.scheme, settings.grids.city)
        box = registry.repo.extent(GridFilter(city=settings.grids.city, at=now(), level="unit"))
    rng = np.random.default_rng(11)
    return np.column_stack([rng.uniform(box[0], box[2], n), rng.uniform(box[1], box[3], n)])


def _stats(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):6.2f} ms   p99 {np.percentile(ms, 99):6.2f} ms"


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--requests", type=int, default=2000)
    opts = args.parse_args(argv)
    engine, settings = demo_engine()
    points = _points(engine, settings, opts.requests)

    direct: list[float] = []
    with Session(engine) as session:
        registry = Registry(session, settings.scheme, settings.grids.city)
        for lon, lat in points:
            t = time.perf_counter()
            try:
                registry.locate(float(lon), float(lat))
            except Exception:  # noqa: BLE001 - points outside the district answer NotFound
                pass
            direct.append(time.perf_counter() - t)

    os.environ.setdefault("CITYGRID_DATABASE_URL", str(engine.url.render_as_string(False)))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    with live_server() as base, httpx.Client(base_url=base) as client:
        for lon, lat in points[:50]:  # warm-up
            client.get("/api/grids/locate", params={"lon": lon, "lat": lat})
        for lon, lat in points:
            t = time.perf_counter()
            r = client.get("/api/grids/locate", params={"lon": lon, "lat": lat})
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    print(f"locate endpoint, {opts.requests} sequential requests on {os.cpu_count()} cores")
    print(f"  HTTP  GET /api/grids/locate : {_stats(latencies)}   statuses {statuses}")
    print(f"  baseline Registry.locate     : {_stats(direct)}   (same points, no HTTP)")
    engine.dispose()


if __name__ == "__main__":
    main()

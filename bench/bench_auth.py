"""What authentication and scoping cost: locate, case intake and tiles answered to different
callers in the same run, and the plans of the scoped queries.

One server (``--workers`` processes) on a throw-away database with the demo world and grid
boundaries published (``CITYGRID_PUBLIC_GRIDS=true``), so that the same locate and grid-tile
requests can be sent by nobody (no credential to check: the baseline), with a bearer token, with
an API key, and by users whose scope is a street or six unit grids. The callers take turns
request by request inside one open-loop run, so the machine's noise falls on all of them alike.

The plans: every SQL statement that a scoped dispatcher's case list, case tile and heat layer
run is captured and EXPLAINed; a sequential scan of ``cases`` would mean scoping lost the
index. The in-process cost of resolving each kind of credential is printed too.

Run: ``python bench/bench_auth.py [--seconds 30] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

import numpy as np
from bench_tiles import _tiles
from common import bench_credentials, live_server, machine_line, scratch_database
from loadgen import Report, Request, constant_rate, run_load
from shapely import wkb
from shapely.geometry import Point
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, sessionmaker

from demo.cases import generate_cases
from service.clock import now
from service.db.models import Grid
from service.demo import load_demo_world
from service.grids.repository import GridFilter, GridRepository
from service.settings import AppSettings

Headers = tuple[tuple[str, str], ...]


def _line(name: str, report: Report) -> None:
    ms = report.latencies_ms(None)
    ok = [o for o in report.outcomes if 200 <= o.status < 300]
    p50, p99 = np.percentile(ms, [50, 99]) if ms.size else (np.nan, np.nan)
    print(
        f"  {name:<38} p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  "
        f"({len(ok)}/{len(report.outcomes)} answered 2xx; {report.statuses()})"
    )


def _interleaved(
    base: str,
    rate: float,
    seconds: float,
    callers: dict[str, Headers],
    make: Callable[[int, Headers], Request],
) -> None:
    """One open-loop run at ``rate``; request ``i`` goes out as caller ``i % len(callers)``."""
    names = list(callers)
    report = run_load(
        base,
        lambda i: make(i, callers[names[i % len(names)]]),
        constant_rate(rate, seconds),
    )
    for k, name in enumerate(names):
        _line(name, Report(report.outcomes[k :: len(names)]))


def locate(base: str, engine, settings: AppSettings, creds: dict[str, Headers], seconds, rng):
    """GET /api/grids/locate at 200/s: nobody vs bearer vs API key vs scoped users."""
    with Session(engine) as session:
        box = GridRepository(session).extent(
            GridFilter(city=settings.grids.city, at=now(), level="unit")
        )
    assert box is not None
    n = int(200 * seconds)
    lon, lat = rng.uniform(box[0], box[2], n), rng.uniform(box[1], box[3], n)
    callers = {
        "anonymous (public grids: no check)": (),
        "bearer token, admin": creds["bearer admin"],
        "API key": creds["API key"],
        "bearer token, worker (6 grids)": creds["bearer bench-worker"],
    }
    print("GET /api/grids/locate at 200/s, callers taking turns:")
    _interleaved(
        base,
        200,
        seconds,
        callers,
        lambda i, h: Request(f"/api/grids/locate?lon={lon[i]:.7f}&lat={lat[i]:.7f}", headers=h),
    )


def _points_in(engine, settings: AppSettings, codes: list[str], n: int, rng) -> np.ndarray:
    """``n`` random points inside the unit grids ``codes`` (for reports a scoped worker may
    make)."""
    with Session(engine) as session:
        shapes = [
            wkb.loads(bytes(g))
            for g in session.scalars(
                select(Grid.geom.ST_AsBinary()).where(
                    Grid.city == settings.grids.city, Grid.code.in_(codes), Grid.valid_to.is_(None)
                )
            )
        ]
    out = []
    while len(out) < n:
        shape = shapes[len(out) % len(shapes)]
        x0, y0, x1, y1 = shape.bounds
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if shape.contains(Point(x, y)):
            out.append((x, y))
    return np.array(out)


def intake(base: str, engine, settings: AppSettings, creds: dict[str, Headers], seconds, rng):
    """POST /api/cases at 50/s: bearer (admin, scoped worker) vs API key."""
    rows = generate_cases(int(60 * seconds) + 100, seed=21, start="2026-11-01", end="2026-11-20")
    rows = rows[~rows["category_code"].isin(["0303", "0203"])].reset_index(drop=True)
    with Session(engine) as session:
        worker_grids = list(
            session.scalars(
                text(
                    "SELECT unnest(scope_grids) FROM users WHERE login = 'bench-worker' "
                    "AND city = :city"
                ),
                {"city": settings.grids.city},
            )
        )
    inside = _points_in(engine, settings, worker_grids, len(rows), rng)
    callers = {
        "bearer token, admin": creds["bearer admin"],
        "API key (hotline)": creds["API key"],
        "bearer token, worker (own grids)": creds["bearer bench-worker"],
    }
    stamp = int(time.time())

    def make(i: int, headers: Headers) -> Request:
        row = rows.iloc[i]
        lon, lat = (
            inside[i]
            if headers is callers["bearer token, worker (own grids)"]
            else (row.lon, row.lat)
        )
        body = {
            "category_code": row.category_code,
            "lon": float(lon),
            "lat": float(lat),
            "source": "patrol",
            "description": row.description,
            "allow_unassigned": True,
            "idempotency_key": f"auth-{stamp}-{i}",
        }
        return Request(
            "/api/cases",
            method="POST",
            body=json.dumps(body).encode(),
            headers=(("content-type", "application/json"), *headers),
        )

    print("POST /api/cases at 50/s, callers taking turns:")
    _interleaved(base, 50, seconds, callers, make)


def tiles(base: str, engine, settings: AppSettings, creds: dict[str, Headers], seconds, rng):
    """Grid tiles (nobody vs bearer) and case tiles (whole city vs a street's dispatcher),
    cold (every URL new to the server's cache) at 100/s."""
    with Session(engine) as session:
        extent = GridRepository(session).extent(
            GridFilter(city=settings.grids.city, at=now(), level="district")
        )
    assert extent is not None
    coords = _tiles(extent, range(13, 17))
    rng.shuffle(coords)
    n = min(len(coords), int(100 * seconds))
    # a tile URL is new to the cache for each caller: the cases layer is cached per scope, and
    # the grid tiles of the two callers are two halves of the shuffled list
    print(f"tiles, cold cache, 100/s ({n} requests per run), callers taking turns:")
    callers = {"grids: anonymous (public)": (), "grids: bearer token, admin": creds["bearer admin"]}
    _interleaved(
        base,
        100,
        n / 100,
        callers,
        lambda i, h: Request("/tiles/grids/{}/{}/{}.mvt".format(*coords[i]), headers=h),
    )
    callers = {
        "cases: bearer admin (whole city)": creds["bearer admin"],
        "cases: bearer dispatcher (street)": creds["bearer bench-dispatcher"],
    }
    _interleaved(
        base,
        100,
        n / 100,
        callers,
        lambda i, h: Request("/tiles/cases/{}/{}/{}.mvt".format(*coords[i]), headers=h),
    )


def credential_cost(engine, settings: AppSettings, creds: dict[str, Headers]) -> None:
    """Resolving each kind of credential in this process, cache warm (what every request pays)."""
    import asyncio

    from fastapi.testclient import TestClient
    from starlette.requests import Request as StarletteRequest

    from service.auth import current_principal
    from service.factory import create_app

    app = create_app(settings)  # its own engine and change listener, as when served
    print("resolving the caller in this process (cache warm, 2000 calls each):")

    async def measure(headers: Headers) -> list[float]:
        out = []
        for _ in range(2000):
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/api/grids/locate",
                "query_string": b"",
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
                "app": app,
            }
            t = time.perf_counter()
            await current_principal(StarletteRequest(scope))
            out.append(time.perf_counter() - t)
        return out

    kinds = {name: creds[name] for name in ("bearer admin", "bearer bench-worker", "API key")}
    with TestClient(app):  # runs the app's start-up: its sessions and change listener
        time.sleep(1)  # the listener connects
        for name, headers in {**kinds, "anonymous": ()}.items():
            ms = np.array(asyncio.run(measure(headers))[100:]) * 1000
            p50, p99 = np.percentile(ms, [50, 99])
            print(f"  {name:<38} p50 {p50:6.3f} ms  p99 {p99:6.3f} ms")


def plans(engine, settings: AppSettings, creds: dict[str, Headers]) -> None:
    """EXPLAIN every statement on ``cases`` that a scoped dispatcher's reads run."""
    from fastapi.testclient import TestClient

    from service.factory import create_app

    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if " cases" in statement and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    with Session(engine) as session:
        extent = GridRepository(session).extent(
            GridFilter(city=settings.grids.city, at=now(), level="district")
        )
    assert extent is not None
    z, x, y = _tiles(extent, range(14, 15))[0]
    headers = dict(creds["bearer bench-dispatcher"])
    event.listen(engine, "before_cursor_execute", capture)
    try:
        with TestClient(create_app(settings, sessions=sessionmaker(engine))) as client:
            for path in (
                "/api/cases?limit=100",
                f"/tiles/cases/{z}/{x}/{y}.mvt",
                "/api/heat/grids",
            ):
                answer = client.get(path, headers=headers)
                print(f"{path} as a street's dispatcher: {answer.status_code}")
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    seen = set()
    with engine.connect() as conn:
        for statement, parameters in captured:
            if statement in seen:
                continue
            seen.add(statement)
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = [row[0] for row in cursor.fetchall()]
            scans = [p.strip() for p in plan if "Scan" in p and " on " in p]
            first = " ".join(statement.split())[:90]
            flag = "SEQ SCAN OF cases" if any("Seq Scan on cases" in s for s in scans) else "ok"
            print(f"  [{flag}] {first}…")
            for s in scans:
                print(f"      {s}")
        conn.rollback()


def main(argv: list[str] | None = None) -> int:
    """Load the demo world on a scratch database, serve it, measure each caller."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", type=int, default=20_000)
    opts = parser.parse_args(argv)
    print(machine_line())
    rng = np.random.default_rng(5)
    with scratch_database() as (engine, url):
        os.environ["CITYGRID_DATABASE_URL"] = url
        os.environ["CITYGRID_PUBLIC_GRIDS"] = "true"
        settings = AppSettings()
        with Session(engine) as session:
            load_demo_world(session, settings, cases=opts.cases)
            session.execute(text("ANALYZE"))
            session.commit()
        creds = bench_credentials(engine, settings)
        print(
            f"demo world ({opts.cases} cases), grids public; server: {opts.workers} worker "
            "process(es); open-loop load, latency from the scheduled send time"
        )
        credential_cost(engine, settings, creds)
        with live_server(workers=opts.workers) as base:
            time.sleep(3)  # let the workers warm their grid snapshots
            for scenario in (locate, intake, tiles):
                scenario(base, engine, settings, creds, opts.seconds, rng)
        print("plans of the scoped reads (EXPLAIN of every statement on cases):")
        plans(engine, settings, creds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

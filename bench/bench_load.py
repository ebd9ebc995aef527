"""The service under open-loop load: locate at 200/s, case intake at 50/s, tiles at 200/s (cold
and warm), and the recovery after a 10× burst.

Requests leave on a fixed schedule whatever the server does (``loadgen``); latency runs from the
scheduled send time to the last byte, so queueing anywhere counts. The server is
``uvicorn service.app:app`` with ``--workers`` processes on a throw-away database holding the
demo world. Baselines in the same run: ``Registry.locate`` and ``CaseService.intake`` called
directly in this process, and the tiles' ST_AsMVT SQL alone.

Run: ``python bench/bench_load.py [--seconds 60] [--workers 2] [--only locate,intake,tiles,burst]``.
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
from common import admin_headers, live_server, machine_line, scratch_database
from loadgen import Report, Request, constant_rate, phases, run_load
from sqlalchemy import text
from sqlalchemy.orm import Session

from demo.cases import generate_cases
from service.accounts.principal import SYSTEM
from service.cases.cases import CaseInput, CaseService
from service.clock import now
from service.demo import load_demo_world
from service.errors import CitygridError
from service.grids.registry import Registry
from service.grids.repository import GridFilter, GridRepository
from service.maps.tiles import TileService, tile_request
from service.settings import AppSettings


def _ms(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):6.2f} ms  p99 {np.percentile(ms, 99):6.2f} ms"


def _seconds(report: Report) -> str:
    """p99 per 5-second slice: where in the run the slow answers were."""
    out = []
    end = max(o.due for o in report.outcomes)
    for t0 in np.arange(0, end, 5):
        ms = [o.latency * 1000 for o in report.outcomes if t0 <= o.due < t0 + 5 and o.status]
        if ms:
            out.append(f"{np.percentile(ms, 99):.0f}")
    return "p99 by 5 s: " + " ".join(out)


def _line(name: str, report: Report, target: str = "") -> None:
    answered = [o for o in report.outcomes if o.status]
    ms = np.array([o.latency * 1000 for o in answered])
    p50, p99 = np.percentile(ms, [50, 99]) if ms.size else (np.nan, np.nan)
    print(
        f"  {name:<34} p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  max {ms.max():8.1f} ms"
        f"  {report.statuses()} {target}"
    )
    print(f"  {'':<34} {_seconds(report)} ms")


def _direct(label: str, calls: Callable[[int], None], n: int) -> None:
    times = []
    for i in range(n):
        t = time.perf_counter()
        try:
            calls(i)
        except CitygridError:
            pass  # a point outside every grid still costs its time
        times.append(time.perf_counter() - t)
    print(f"  baseline {label:<25} {_ms(times)}  (in this process, no HTTP)")


def locate(base: str, engine, settings: AppSettings, seconds: float, rng) -> None:
    with Session(engine) as session:
        registry = Registry(session, settings)
        box = registry.repo.extent(GridFilter(city=registry.city, at=now(), level="unit"))
        assert box is not None
        n = int(200 * seconds)
        lon, lat = rng.uniform(box[0], box[2], n), rng.uniform(box[1], box[3], n)
        _direct("Registry.locate", lambda i: registry.locate(lon[i], lat[i]), min(n, 4000))
    report = run_load(
        base,
        lambda i: Request(f"/api/grids/locate?lon={lon[i]:.7f}&lat={lat[i]:.7f}"),
        constant_rate(200, seconds),
        headers=AUTH,
    )
    _line("GET /api/grids/locate at 200/s", report, "(target p99 <= 10 ms)")


def intake(base: str, engine, settings: AppSettings, seconds: float, rng) -> None:
    rows = generate_cases(int(120 * seconds) + 4000, seed=9, start="2026-11-01", end="2026-11-20")
    rows = rows[~rows["category_code"].isin(["0303", "0203"])]  # no required extra fields
    direct_rows, http_rows = rows.iloc[:1000], rows.iloc[1000:]
    with Session(engine) as session:
        cases = CaseService(session, settings)

        def one(i: int) -> None:
            row = direct_rows.iloc[i]
            cases.intake(
                CaseInput(row.category_code, row.lon, row.lat, allow_unassigned=True), SYSTEM
            )
            session.commit()

        _direct("CaseService.intake", one, len(direct_rows))

    def request(i: int) -> Request:
        row = http_rows.iloc[i]
        return _intake_request(row, f"load-{row.idempotency_key}")

    report = run_load(base, request, constant_rate(50, seconds), headers=AUTH)
    _line("POST /api/cases at 50/s", report, "(target p99 <= 10 ms)")


def tiles(base: str, engine, settings: AppSettings, seconds: float, rng) -> None:
    with Session(engine) as session:
        extent = GridRepository(session).extent(
            GridFilter(city=settings.grids.city, at=now(), level="district")
        )
        assert extent is not None
        coords = _tiles(extent, range(12, 17))
        categories = list(
            session.scalars(text("SELECT DISTINCT category_code FROM cases ORDER BY 1"))
        )
        service = TileService(session, settings)
        sample = [coords[i] for i in rng.choice(len(coords), size=min(200, len(coords)))]
        _direct(
            "ST_AsMVT (cases tile)",
            lambda i: service.render(
                tile_request("cases", *sample[i % len(sample)]), (None, None), now(), SYSTEM
            ),
            len(sample),
        )
    n = int(200 * seconds)
    # cold: every URL is new to the server's tile cache (the cases layer filtered by each
    # category makes distinct tiles); warm: the same URLs again
    urls = [f"/tiles/grids/{z}/{x}/{y}.mvt" for z, x, y in coords]
    urls += [f"/tiles/cases/{z}/{x}/{y}.mvt" for z, x, y in coords]
    urls += [f"/tiles/cases/{z}/{x}/{y}.mvt?category={c}" for c in categories for z, x, y in coords]
    rng.shuffle(urls)
    cold = urls[:n]
    report = run_load(
        base, lambda i: Request(cold[i]), constant_rate(200, len(cold) / 200), headers=AUTH
    )
    _line(f"tiles cold ({len(cold)} misses) at 200/s", report)
    warm = [cold[i] for i in rng.integers(0, len(cold), n)]
    report = run_load(base, lambda i: Request(warm[i]), constant_rate(200, seconds), headers=AUTH)
    _line("tiles warm (cache hits) at 200/s", report)


def _intake_request(row, key: str) -> Request:
    body = {
        "category_code": row.category_code,
        "lon": float(row.lon),
        "lat": float(row.lat),
        "source": row.source,
        "description": row.description,
        "allow_unassigned": True,
        "idempotency_key": key,
    }
    return Request(
        "/api/cases",
        method="POST",
        body=json.dumps(body).encode(),
        headers=(("content-type", "application/json"),),
    )


def burst(base: str, engine, settings: AppSettings, seconds: float, rng) -> None:
    """Case intake at 50/s, then ten times that for 2 s, then 50/s again: is the burst shed
    quickly, and how soon after it are answers back to what they were before?"""
    schedule = phases((50, 5), (500, 2), (50, 10))
    rows = generate_cases(2 * len(schedule), seed=13, start="2026-11-01", end="2026-11-20")
    rows = rows[~rows["category_code"].isin(["0303", "0203"])].iloc[: len(schedule)]
    report = run_load(
        base,
        lambda i: _intake_request(rows.iloc[i], f"burst-{i}-{rng.integers(1 << 30)}"),
        schedule,
        headers=AUTH,
    )
    before = [o for o in report.outcomes if o.due < 5]
    during = [o for o in report.outcomes if 5 <= o.due < 7]
    after = [o for o in report.outcomes if o.due >= 7]
    steady = float(np.percentile([o.latency for o in before if o.status == 201], 99))
    limit = max(2 * steady, 0.05)
    # back to normal: the first half-second window after the burst from which on every window
    # is answered (no 503, no failure) within twice the steady p99
    windows = np.arange(7, 17, 0.5)
    bad = [
        any(o.status != 201 or o.latency > limit for o in after if w <= o.due < w + 0.5)
        for w in windows
    ]
    last_bad = max((i for i, b in enumerate(bad) if b), default=-1)
    recovered_s = (windows[last_bad] + 0.5 - 7) if last_bad >= 0 else 0.0
    shed = sum(o.status == 503 for o in during)
    print(
        f"  10x burst of case intake (500/s for 2 s between 50/s): {shed} of {len(during)} "
        f"shed with 503 + Retry-After, {sum(o.status == 0 for o in report.outcomes)} "
        f"unanswered; back to normal (p99 <= {limit * 1000:.0f} ms, no errors) "
        f"{recovered_s:.1f} s after the burst (target <= 1 s)"
    )
    _line("intake at 50/s after the burst", Report(after))


# credentials every HTTP request carries (the admin's token, made once the database exists)
AUTH: dict[str, str] = {}

SCENARIOS = {"locate": locate, "intake": intake, "tiles": tiles, "burst": burst}


def main(argv: list[str] | None = None) -> int:
    """Load the demo world on a scratch database, serve it, run the chosen scenarios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    opts = parser.parse_args(argv)
    print(machine_line())
    rng = np.random.default_rng(3)
    with scratch_database() as (engine, url):
        os.environ["CITYGRID_DATABASE_URL"] = url
        settings = AppSettings()
        with Session(engine) as session:
            load_demo_world(session, settings, cases=opts.cases)
            session.execute(text("ANALYZE"))
            session.commit()
        print(
            f"demo world ({opts.cases} cases) on a scratch database; server: {opts.workers} "
            f"worker process(es); open-loop load, latency from the scheduled send time"
        )
        AUTH.update(admin_headers(engine, settings))  # every request as the city's admin
        with live_server(workers=opts.workers) as base:
            time.sleep(3)  # let the workers warm their grid snapshots
            for name in opts.only.split(","):
                print(f"{name}:")
                SCENARIOS[name](base, engine, settings, opts.seconds, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())

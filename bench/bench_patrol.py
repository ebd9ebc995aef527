"""Patrol benchmarks: GPS fix intake into PostGIS, and one day of coverage for 5,000 workers.

Part 1 — intake (demo city, throw-away database): generated fixes in a CSV file → validated,
stored with binary COPY, tracks cleaned and rebuilt, committed. Figure: fixes/s end to end and
for the store step alone. Baseline in the same run: row-by-row ORM inserts (``session.add`` and
a flush per fix, as a naive per-request handler does) on a sample.

Part 2 — coverage scaling (no database): a synthetic city of square 100 m unit grids (~30,000,
the size DESIGN.md plans for) and one working day of fixes every 10 s for N workers (5,000
workers ≈ 15M fixes). Each N runs in a fresh process: cleaning and track splitting
(``gis.patrol``), locating fixes (``GridIndex``) and per-grid coverage (``gis.coverage``),
with its time and peak memory (max RSS).

Part 3 (``--db-day``) — the service path for the same day on the demo city: bulk intake of
the day's fixes for N workers, then ``CoverageService.compute`` reading the tracks back.

Run: ``python bench/bench_patrol.py [--fixes 1000000] [--workers 500,1000,2000,5000]
[--db-day 5000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from common import machine_line, scratch_database
from sqlalchemy.orm import Session

DAY = "2026-11-17"
SHIFTS = (("08:00", "12:00"), ("13:30", "18:00"))  # 8.5 h: ~3,060 fixes per worker


def walkers(n_workers: int, x0: float, y0: float, size_m: float, seed: int = 7) -> pd.DataFrame:
    """One day of 10 s fixes for ``n_workers`` walking at 1.2 m/s in a metric square.

    Each worker keeps to a ~600 m patch, turns every minute, and stands still now and then;
    phones add 4 m noise, 2 % poor-accuracy fixes and the odd 500 m jump.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for a, b in SHIFTS:
        t0 = pd.Timestamp(f"{DAY} {a}", tz="Asia/Shanghai").tz_convert("UTC")
        n = int((pd.Timestamp(f"{DAY} {b}") - pd.Timestamp(f"{DAY} {a}")).total_seconds() // 10)
        heading = np.repeat(rng.uniform(0, 2 * np.pi, (n_workers, n // 6 + 1)), 6, axis=1)[:, :n]
        moving = np.repeat(rng.random((n_workers, n // 30 + 1)) > 0.1, 30, axis=1)[:, :n]
        step = 12.0 * moving
        dx, dy = np.cos(heading) * step, np.sin(heading) * step
        home_x = rng.uniform(x0 + 300, x0 + size_m - 300, n_workers)[:, None]
        home_y = rng.uniform(y0 + 300, y0 + size_m - 300, n_workers)[:, None]
        # a random walk folded back into the worker's 600 m patch
        x = home_x + _fold(np.cumsum(dx, axis=1), 300.0)
        y = home_y + _fold(np.cumsum(dy, axis=1), 300.0)
        x += rng.normal(0, 4, x.shape)
        y += rng.normal(0, 4, y.shape)
        jump = rng.random(x.shape) < 0.002
        x[jump] += 500
        acc = rng.uniform(4, 15, x.shape).astype(np.float32)
        acc[rng.random(x.shape) < 0.02] = 120
        t = t0.value // 1000 + np.arange(n) * 10_000_000  # µs
        frames.append(
            pd.DataFrame(
                {
                    "device": np.repeat(np.arange(n_workers), n),
                    "at_us": np.tile(t, n_workers),
                    "x": x.ravel(),
                    "y": y.ravel(),
                    "accuracy_m": acc.ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _fold(v: np.ndarray, half: float) -> np.ndarray:
    """Reflect values into [-half, half] (a walker bouncing off its patch's edge)."""
    period = 4 * half
    w = np.mod(v + half, period)
    return np.where(w < 2 * half, w, period - w) - half


def _demo_with_workers(engine, url: str, n_workers: int):
    """Settings on ``url``, with the demo grids and ``n_workers`` workers with phone-<i>."""
    from service.accounts.principal import SYSTEM
    from service.demo import load_demo_grids
    from service.patrol.workers import PatrolService, WorkerInput
    from service.settings import AppSettings

    os.environ["CITYGRID_DATABASE_URL"] = url
    settings = AppSettings()
    with Session(engine) as session:
        load_demo_grids(session, settings)
        patrol = PatrolService(session, settings)
        for d in range(n_workers):
            patrol.save_worker(
                WorkerInput(code=f"W{d}", name=f"w{d}", devices=[f"phone-{d}"]), SYSTEM
            )
        session.commit()
    return settings


# -- part 1: intake --------------------------------------------------------------------------------
def intake(n_fixes: int, orm_sample: int) -> dict[str, float]:
    """Fixes/s end to end into PostGIS, beside row-by-row ORM inserts."""
    from demo.city import build_demo_city
    from gis import metric
    from service.accounts.principal import SYSTEM
    from service.db.models import GpsFix
    from service.patrol.fixes import FixIngester, read_fix_file

    city = build_demo_city()
    units = city[city["level"] == "unit"]
    crs = metric.utm_crs_for_geometries(np.asarray(units.geometry))
    minx, miny, maxx, maxy = metric.to_metric(np.asarray(units.geometry), crs)[0].bounds
    x0, y0 = np.asarray(metric.to_metric(np.asarray(units.geometry), crs)[0].centroid.coords)[0]
    n_workers = max(1, n_fixes // 3060)
    fixes = walkers(n_workers, x0 - 1500, y0 - 1500, 3000).head(n_fixes)
    lon, lat = metric._transformer(crs, metric.WGS84).transform(fixes["x"], fixes["y"])
    times = pd.to_datetime(fixes["at_us"], unit="us", utc=True)
    table = pd.DataFrame(
        {
            "device_id": "phone-" + fixes["device"].astype(str),
            "time": times.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
            "accuracy_m": fixes["accuracy_m"].round(1),
        }
    ).sort_values(["device_id", "time"], kind="stable")
    out: dict[str, float] = {"fixes": float(len(table)), "devices": float(n_workers)}
    with scratch_database() as (engine, url), tempfile.TemporaryDirectory() as tmp:
        settings = _demo_with_workers(engine, url, n_workers)
        path = Path(tmp) / "fixes.csv"
        table.to_csv(path, index=False)
        out["csv_mb"] = path.stat().st_size / 1e6
        t0 = time.perf_counter()
        with Session(engine) as session:
            report = FixIngester(session, settings).run(read_fix_file(path), SYSTEM, mode="rows")
            session.commit()
        out["total_s"] = time.perf_counter() - t0
        out["stored"] = report.stored
        out["tracks"] = report.tracks
        out.update({f"{k}_s": v for k, v in report.seconds.items()})

        sample = table.head(orm_sample)
        device_key = {f"phone-{d}": d + 1 for d in range(n_workers)}
        rows = list(sample.itertuples())
        t0 = time.perf_counter()
        with Session(engine) as session:
            for r in rows:
                session.add(
                    GpsFix(
                        city="990999",
                        device_key=device_key[r.device_id],
                        at=datetime.fromisoformat(r.time),
                        lon=r.lon,
                        lat=r.lat,
                        accuracy_m=r.accuracy_m,
                    )
                )
                session.flush()
            session.commit()
        out["orm_rows"] = len(rows)
        out["orm_s"] = time.perf_counter() - t0
    return out


# -- part 2: coverage scaling (child process) -----------------------------------------------------
def coverage_day(n_workers: int) -> dict[str, float]:
    """Clean, split, locate and cover one day for ``n_workers`` on ~30,000 square grids."""
    import shapely

    from gis import metric
    from gis.coverage import CoverageRaster, FixTable, grid_coverage
    from gis.locate import GridIndex
    from gis.patrol import clean_fixes

    crs = metric.utm_crs_for(113.65, 34.75)
    x0, y0 = 760_000.0, 3_840_000.0
    side = 173  # 173 x 173 = 29,929 grids of 100 m
    xs, ys = np.meshgrid(np.arange(side) * 100.0 + x0, np.arange(side) * 100.0 + y0)
    boxes = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 100, ys.ravel() + 100)
    geoms = metric.to_wgs84(boxes, crs)
    codes = [f"410105{i:08d}" for i in range(len(geoms))]
    out: dict[str, float] = {"workers": n_workers, "grids": len(codes)}

    t0 = time.perf_counter()
    index = GridIndex(codes, list(geoms))
    raster = CoverageRaster.build(codes, np.asarray(geoms), cell_m=2.0, index=index)
    out["raster_s"] = time.perf_counter() - t0
    out["raster_cells"] = raster.labels.size

    fixes = walkers(n_workers, x0, y0, side * 100.0)
    out["fixes"] = len(fixes)
    t0 = time.perf_counter()
    device, at_us = fixes["device"].to_numpy(), fixes["at_us"].to_numpy()
    x, y = fixes["x"].to_numpy(), fixes["y"].to_numpy()
    cleaned = clean_fixes(device, (at_us - at_us.min()) / 1e6, x, y, fixes["accuracy_m"].to_numpy())
    out["clean_s"] = time.perf_counter() - t0
    out["kept"] = int(cleaned.kept.sum())
    out["tracks"] = cleaned.n_tracks

    t0 = time.perf_counter()
    kept = np.flatnonzero(cleaned.kept)
    order = kept[np.lexsort((at_us[kept], cleaned.track[kept]))]
    table = FixTable(cleaned.track[order], device[order], at_us[order] / 1e6, x[order], y[order])
    lon, lat = metric._transformer(crs, metric.WGS84).transform(table.x, table.y)
    grid = index.locate(np.asarray(lon), np.asarray(lat))
    cov = grid_coverage(raster, table, grid, radius_m=25.0)
    out["coverage_s"] = time.perf_counter() - t0
    out["mean_share"] = float(cov["covered_share"].mean())
    out["unvisited"] = int((cov["visits"] == 0).sum())
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


# -- part 3: the service path for a day -----------------------------------------------------------
def db_day(n_workers: int) -> dict[str, float]:
    """Bulk intake of a day for ``n_workers`` on the demo city, then compute its coverage."""
    from demo.city import build_demo_city
    from gis import metric
    from service.accounts.principal import SYSTEM
    from service.patrol.coverage import CoverageService, period_bounds
    from service.patrol.fixes import FixIngester

    city = build_demo_city()
    units = np.asarray(city[city["level"] == "unit"].geometry)
    crs = metric.utm_crs_for_geometries(units)
    x0, y0 = np.asarray(metric.to_metric(units, crs)[0].centroid.coords)[0]
    fixes = walkers(n_workers, x0 - 1500, y0 - 1500, 3000)
    lon, lat = metric._transformer(crs, metric.WGS84).transform(fixes["x"], fixes["y"])
    frame = pd.DataFrame(
        {
            "device_id": "phone-" + fixes["device"].astype(str),
            "time": fixes["at_us"] / 1e6,  # Unix seconds: numeric times are read as UTC
            "lon": lon,
            "lat": lat,
            "accuracy_m": fixes["accuracy_m"],
        }
    ).sort_values(["device_id", "time"], kind="stable", ignore_index=True)
    out: dict[str, float] = {"workers": n_workers, "fixes": len(frame)}
    with scratch_database() as (engine, url):
        settings = _demo_with_workers(engine, url, n_workers)
        t0 = time.perf_counter()
        with Session(engine) as session:
            report = FixIngester(session, settings).run(frame, SYSTEM, mode="rows")
            session.commit()
        out["intake_s"] = time.perf_counter() - t0
        out["tracks"] = report.tracks
        t0 = time.perf_counter()
        with Session(engine) as session:
            start, end = period_bounds("day", datetime.fromisoformat(DAY), settings.grids.timezone)
            result = CoverageService(session, settings).compute(start, end)
        out["coverage_s"] = time.perf_counter() - t0
        out["mean_share"] = float(result.grids["covered_share"].mean())
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _child(part: str, n: int) -> dict[str, float]:
    """Run one measurement in a fresh process, so peak memory is its own."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", part, str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the parts and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixes", type=int, default=1_000_000)
    parser.add_argument("--orm-sample", type=int, default=10_000)
    parser.add_argument("--workers", default="500,1000,2000,5000")
    parser.add_argument("--db-day", type=int, default=0, help="workers for part 3 (0: skip)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child:
        part, n = opts.child[0], int(opts.child[1])
        result = coverage_day(n) if part == "coverage" else db_day(n)
        print(json.dumps(result))
        return 0

    print(machine_line())
    if opts.fixes:
        r = intake(opts.fixes, opts.orm_sample)
        rate = r["stored"] / r["total_s"]
        store_rate = r["stored"] / r["store_s"]
        orm_rate = r["orm_rows"] / r["orm_s"]
        print(
            f"\nIntake: {int(r['fixes']):,} fixes from {int(r['devices'])} phones, "
            f"CSV {r['csv_mb']:.0f} MB, demo city"
        )
        print(
            f"  end to end (read, validate, COPY, clean, {int(r['tracks'])} tracks, commit): "
            f"{r['total_s']:.1f} s = {rate:,.0f} fixes/s"
        )
        print(
            f"    validate {r['validate_s']:.1f} s, store (binary COPY) {r['store_s']:.1f} s "
            f"= {store_rate:,.0f} fixes/s, tracks {r['tracks_s']:.1f} s"
        )
        print(
            f"  baseline row-by-row ORM inserts ({r['orm_rows']:,} fixes): {r['orm_s']:.1f} s "
            f"= {orm_rate:,.0f} fixes/s -> end to end is {rate / orm_rate:.0f}x"
        )

    if opts.workers:
        print("\nCoverage of one day, ~30,000 unit grids of 100 m, 2 m raster, 25 m radius:")
        print(
            f"  {'workers':>7} {'fixes':>11} {'tracks':>7} {'clean':>7} {'coverage':>9} "
            f"{'total':>7} {'peak RSS':>9}  (raster built once: s)"
        )
        for n in [int(v) for v in opts.workers.split(",") if v]:
            r = _child("coverage", n)
            total = r["clean_s"] + r["coverage_s"]
            print(
                f"  {n:>7,} {int(r['fixes']):>11,} {int(r['tracks']):>7,} {r['clean_s']:>6.1f}s "
                f"{r['coverage_s']:>8.1f}s {total:>6.1f}s {r['peak_rss_mb']:>7,.0f}MB  "
                f"({r['raster_s']:.1f} s, {int(r['raster_cells']):,} cells; mean share "
                f"{r['mean_share']:.2f}, unvisited {int(r['unvisited']):,})"
            )
    if opts.db_day:
        r = _child("db", opts.db_day)
        print(
            f"\nService path, demo city: {int(r['fixes']):,} fixes of {opts.db_day:,} workers -> "
            f"bulk intake {r['intake_s']:.1f} s ({r['fixes'] / r['intake_s']:,.0f} fixes/s, "
            f"{int(r['tracks']):,} tracks), coverage from PostGIS {r['coverage_s']:.1f} s, "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

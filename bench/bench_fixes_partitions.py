"""GPS fixes in day partitions: intake across midnight, coverage per day, retention under load.

On the demo city in a throw-away database, three past local days (D1, D2, D3 = three days ago
… yesterday) of patrol fixes: day shifts 08:00-12:00 and 13:30-18:00, and a tenth of the
workers on a night shift 22:00-02:00 that crosses midnight. Every fix goes through the real
intake path (``FixIngester``: validate, binary COPY into ``gps_fixes``, rebuild tracks, commit)
in time-ordered batches, as phones' uploads arrive.

1. **Baseline, same run**: the same fixes as bare binary COPY into the partitioned table and
   into an unpartitioned copy of it (``CREATE TABLE … (LIKE gps_fixes INCLUDING ALL)``).
2. **Rollover**: D1's partition and the two days ahead of it are made first (as the server's
   upkeep does on D1); D1 and D2 are loaded in one stream that crosses midnight into D2's
   partition. Figure: fixes/s end to end.
3. **Coverage** of each day from the stored tracks (``CoverageService.compute``).
4. **Retention under load**: two intake threads (own sessions) load D3 while the main thread
   drops D1's partition (``drop_expired_partitions``); failed requests are counted, and D1's
   coverage is read again from its tracks.
5. The plan of the intake's read of one device's day (pruned to one partition).

Run: ``python bench/bench_fixes_partitions.py [--fixes-per-day 300000] [--batch-fixes 250000]``
(``--fixes-per-day 15000000`` is the large city DESIGN.md plans for: ~4,900 workers).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
from bench_patrol import _demo_with_workers, _fold
from common import machine_line, scratch_database
from sqlalchemy import text
from sqlalchemy.orm import Session

DAY_SHIFTS = (("08:00", 4 * 360), ("13:30", 4.5 * 360))  # start, fixes (one every 10 s)
NIGHT_SHIFT = ("22:00", 4 * 360)  # crosses midnight
PER_DAY_WORKER = sum(n for _, n in DAY_SHIFTS)  # 3,060 fixes


def day_fixes(
    day: date, n_workers: int, tz: str, box: tuple[float, float, float], seed: int
) -> pd.DataFrame:
    """One day of fixes every 10 s: ``device`` (index), ``at_us``, metric ``x``/``y``,
    ``accuracy_m``; walkers in 600 m patches of the square ``box`` (x0, y0, size)."""
    rng = np.random.default_rng(seed)
    x0, y0, size = box
    home_x = rng.uniform(x0 + 300, x0 + size - 300, n_workers)
    home_y = rng.uniform(y0 + 300, y0 + size - 300, n_workers)
    night = np.flatnonzero(rng.random(n_workers) < 0.1)
    frames = []
    shifts = [(s, int(n), np.arange(n_workers)) for s, n in DAY_SHIFTS]
    shifts.append((NIGHT_SHIFT[0], int(NIGHT_SHIFT[1]), night))
    for start, n, who in shifts:
        if who.size == 0:
            continue
        t0 = pd.Timestamp(f"{day} {start}", tz=tz).tz_convert("UTC").value // 1000
        heading = np.repeat(rng.uniform(0, 2 * np.pi, (who.size, n // 6 + 1)), 6, axis=1)[:, :n]
        step = 12.0 * np.repeat(rng.random((who.size, n // 30 + 1)) > 0.1, 30, axis=1)[:, :n]
        x = home_x[who, None] + _fold(np.cumsum(np.cos(heading) * step, axis=1), 300.0)
        y = home_y[who, None] + _fold(np.cumsum(np.sin(heading) * step, axis=1), 300.0)
        x += rng.normal(0, 4, x.shape)
        y += rng.normal(0, 4, y.shape)
        frames.append(
            pd.DataFrame(
                {
                    "device": np.repeat(who, n),
                    "at_us": np.tile(t0 + np.arange(n) * 10_000_000, who.size),
                    "x": x.ravel(),
                    "y": y.ravel(),
                    "accuracy_m": rng.uniform(4, 15, x.size).astype(np.float32),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def batches(fixes: pd.DataFrame, to_lonlat, batch_fixes: int):
    """Time-ordered upload batches as the intake reads them (device_id, Unix time, lon, lat)."""
    fixes = fixes.sort_values(["at_us", "device"], kind="stable", ignore_index=True)
    names = np.array([f"phone-{d}" for d in range(int(fixes["device"].max()) + 1)], dtype=object)
    for a in range(0, len(fixes), batch_fixes):
        part = fixes.iloc[a : a + batch_fixes]
        lon, lat = to_lonlat(part["x"].to_numpy(), part["y"].to_numpy())
        yield pd.DataFrame(
            {
                "device_id": names[part["device"].to_numpy()],
                "time": part["at_us"].to_numpy() / 1e6,  # Unix seconds: read as UTC
                "lon": lon,
                "lat": lat,
                "accuracy_m": part["accuracy_m"].to_numpy(),
            }
        )


def fix_table(fixes: pd.DataFrame, city: str, to_lonlat) -> pa.Table:
    """The rows the intake COPYs, for the bare COPY baseline (devices keyed 1…N)."""
    lon, lat = to_lonlat(fixes["x"].to_numpy(), fixes["y"].to_numpy())
    n = len(fixes)
    return pa.table(
        {
            "city": pa.array([city] * n, pa.string()),
            "device_key": pa.array(fixes["device"].to_numpy() + 1, pa.int64()),
            "at": pa.array(fixes["at_us"].to_numpy(), pa.timestamp("us", tz="UTC")),
            "lon": pa.array(lon, pa.float64()),
            "lat": pa.array(lat, pa.float64()),
            "accuracy_m": pa.array(fixes["accuracy_m"].to_numpy(), pa.float32()),
            "speed_mps": pa.nulls(n, pa.float32()),
        }
    )


_JOB: dict = {}


def _split(fixes: pd.DataFrame, streams: int, to_lonlat, batch_fixes: int) -> list[list]:
    """Upload batches per stream (phones split between the server processes), made before
    any clock starts: the phones' work, not the intake's."""
    return [
        list(batches(fixes[fixes["device"] % streams == k], to_lonlat, batch_fixes))
        for k in range(streams)
    ]


def _stream(k: int) -> dict:
    """One intake process (a server worker): its batches in order, a transaction each."""
    from service.accounts.principal import SYSTEM
    from service.db.engine import make_engine
    from service.patrol.fixes import FixIngester

    engine = make_engine(_JOB["url"])
    out: dict = {"stored": 0, "requests": 0, "refused": 0, "failures": [], "steps": {}}
    for i, frame in enumerate(_JOB["frames"][k]):
        try:
            with Session(engine) as session:
                report = FixIngester(session, _JOB["settings"]).run(frame, SYSTEM, mode="rows")
                session.commit()
            out["stored"] += report.stored
            out["refused"] += report.error_count
            for step, seconds in report.seconds.items():
                out["steps"][step] = out["steps"].get(step, 0.0) + seconds
        except Exception as exc:  # noqa: BLE001 - counted and shown
            out["failures"].append(f"{type(exc).__name__}: {exc}"[:200])
        out["requests"] += 1
        if i == 0 and _JOB["barrier"] is not None:
            _JOB["barrier"].wait()
    engine.dispose()
    return out


def run_streams(url, settings, frames, barrier=None, during=None):
    """Run one intake process per list of ``frames`` (forked: they share the prepared
    batches), and ``during`` in this process meanwhile; (seconds, results, during's)."""
    _JOB.update(url=url, settings=settings, frames=frames, barrier=barrier)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(len(frames), mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(_stream, k) for k in range(len(frames))]
        extra = during() if during is not None else None
        results = [f.result() for f in futures]
    return time.perf_counter() - t0, results, extra


def _partition_counts(engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM gps_fixes GROUP BY 1 ORDER BY 1")
        ).all()
    return {name.removeprefix("partitions."): n for name, n in rows}


def run(opts: argparse.Namespace) -> None:
    """Every part, printed as it goes."""
    from demo.city import build_demo_city
    from gis import metric
    from service.db.engine import driver_cursor
    from service.db.pgcopy import copy_arrow
    from service.patrol.coverage import CoverageService
    from service.patrol.fixes import stored_fixes_query
    from service.patrol.partitions import (
        day_bounds,
        drop_expired_partitions,
        ensure_partitions,
    )
    from service.settings import PatrolSettings

    city = build_demo_city()
    boundary = np.asarray(city[city["level"] == "city"].geometry)
    crs = metric.utm_crs_for_geometries(boundary)
    cx, cy = np.asarray(metric.to_metric(boundary, crs)[0].centroid.coords)[0]
    transformer = metric._transformer(crs, metric.WGS84)

    def to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = transformer.transform(x, y)
        return np.asarray(lon), np.asarray(lat)

    n_workers = max(2, round(opts.fixes_per_day / PER_DAY_WORKER))
    with scratch_database() as (engine, url):
        settings = _demo_with_workers(engine, url, n_workers)
        tz = settings.grids.timezone
        zone = ZoneInfo(tz)
        today = datetime.now(UTC).astimezone(zone).date()
        days = [today - timedelta(days=k) for k in (3, 2, 1)]
        box = (cx - 1500, cy - 1500, 3000.0)
        data = [day_fixes(d, n_workers, tz, box, seed=k) for k, d in enumerate(days)]
        total = sum(len(f) for f in data)
        print(
            f"\n{n_workers:,} workers, days {days[0]} … {days[-1]} ({tz}): "
            + ", ".join(f"{len(f):,}" for f in data)
            + f" fixes; upload batches of {opts.batch_fixes:,}"
        )
        with Session(engine) as session:
            made = ensure_partitions(session, 2, tz, datetime.combine(days[0], dtime(12), zone))
            session.commit()
        print(f"  partitions made ahead on D1: {', '.join(made.created)}")

        # 1. bare COPY: partitioned table vs an unpartitioned copy (same rows, same run)
        tables = [fix_table(f, "990998", to_lonlat) for f in data]
        with Session(engine) as session:
            session.execute(text("CREATE TABLE gps_fixes_flat (LIKE gps_fixes INCLUDING ALL)"))
            session.commit()
        rates = {}
        for target in ("gps_fixes_flat", "gps_fixes"):
            t0 = time.perf_counter()
            with Session(engine) as session:
                with driver_cursor(session) as cur:
                    for table in tables:
                        copy_arrow(cur, target, table)
                session.commit()
            rates[target] = total / (time.perf_counter() - t0)
        with Session(engine) as session:
            session.execute(text("DROP TABLE gps_fixes_flat"))
            session.execute(text("TRUNCATE gps_fixes"))
            session.commit()
        print(
            f"\nBare binary COPY of {total:,} fixes: partitioned (3 day partitions) "
            f"{rates['gps_fixes']:,.0f} fixes/s; baseline unpartitioned table "
            f"{rates['gps_fixes_flat']:,.0f} fixes/s "
            f"({rates['gps_fixes'] / rates['gps_fixes_flat']:.2f}x)"
        )

        # 2. rollover: D1 and D2 in time order across midnight, one stream per server process
        rollover = pd.concat(data[:2], ignore_index=True)
        engine.dispose()  # no pooled connection crosses the fork
        took, results, _ = run_streams(
            url, settings, _split(rollover, opts.streams, to_lonlat, opts.batch_fixes)
        )
        stored = sum(r["stored"] for r in results)
        steps: dict[str, float] = {}
        for r in results:
            for step, seconds in r["steps"].items():
                steps[step] = steps.get(step, 0.0) + seconds
        print(
            f"\nIntake across midnight (D1 then D2; real path: validate, COPY, tracks, commit; "
            f"{opts.streams} processes with their own phones): {stored:,} fixes in {took:.1f} s "
            f"= {stored / took:,.0f} fixes/s end to end (target 150,000)"
        )
        print(
            f"  {sum(r['requests'] for r in results)} requests, "
            f"{sum(len(r['failures']) for r in results)} failed, "
            f"{sum(r['refused'] for r in results)} fixes refused; time in steps (all processes): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
            + f"; COPY step {stored / steps['store']:,.0f} fixes/s per process"
        )
        total_steps = sum(steps.values()) or 1.0
        print(
            "  share of intake time per stage (validate; plan: locks, windows, reads of stored "
            "fixes and tracks; store: COPY of fixes; tracks: cleaning and writing tracks): "
            + ", ".join(f"{k} {v / total_steps:.0%}" for k, v in steps.items())
        )
        print(f"  rows per partition: {_partition_counts(engine)}")

        # 3. coverage per day
        shares = {}
        for d in days[:2]:
            t0 = time.perf_counter()
            with Session(engine) as session:
                cov = CoverageService(session, settings).compute(*day_bounds(d, tz))
            shares[d] = float(cov.grids["covered_share"].mean())
            print(
                f"  coverage of {d}: {time.perf_counter() - t0:.1f} s, mean covered share "
                f"{shares[d]:.3f}"
            )

        # 4. D3 by the intake processes while D1's partition is dropped
        short = replace(settings, patrol=PatrolSettings(fix_retention_days=2))  # D1 expires
        barrier = mp.get_context("fork").Barrier(opts.streams + 1)
        drop: dict[str, object] = {}

        def drop_oldest() -> None:
            barrier.wait()  # every intake process has stored a batch and goes on
            attempts, d0 = 0, time.perf_counter()
            while not drop.get("dropped") and attempts < 10:
                attempts += 1
                with Session(engine) as session:
                    result = drop_expired_partitions(session, short)
                    session.commit()
                drop["dropped"], drop["skipped"] = result.dropped, result.skipped
            drop["attempts"], drop["s"] = attempts, time.perf_counter() - d0

        engine.dispose()
        took, results, _ = run_streams(
            url,
            settings,
            _split(data[2], opts.streams, to_lonlat, opts.batch_fixes // opts.streams),
            barrier=barrier,
            during=drop_oldest,
        )
        stored = sum(r["stored"] for r in results)
        failures = [f for r in results for f in r["failures"]]
        print(
            f"\nRetention under load: {stored:,} fixes of {days[2]} by {opts.streams} intake "
            f"processes in {took:.1f} s = {stored / took:,.0f} fixes/s, "
            f"{sum(r['requests'] for r in results)} requests, {len(failures)} failed"
        )
        print(
            f"  dropped {', '.join(drop.get('dropped') or []) or 'nothing'} after "
            f"{drop['attempts']} attempt(s), {drop['s']:.2f} s, while intake ran"
        )
        for f in failures[:5]:
            print(f"  failure: {f}")
        print(f"  rows per partition: {_partition_counts(engine)}")
        with Session(engine) as session:
            cov = CoverageService(session, settings).compute(*day_bounds(days[0], tz))
        again = float(cov.grids["covered_share"].mean())
        print(
            f"  coverage of {days[0]} after its fixes were dropped (from tracks): mean share "
            f"{again:.3f} (before: {shares[days[0]]:.3f})"
        )

        # 5. the plan of one device's day
        lo, hi = day_bounds(days[1], tz)
        windows = pd.DataFrame(
            {
                "device_key": [1],
                "lo": [int((lo + timedelta(hours=8)).timestamp() * 1e6)],
                "hi": [int((lo + timedelta(hours=18)).timestamp() * 1e6)],
            }
        )
        sql, params = stored_fixes_query(settings.grids.city, windows)
        with Session(engine) as session, driver_cursor(session) as cur:
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
            plan = [r[0] for r in cur.fetchall()]
        print(f"\nPlan of the intake's read of one device's day ({days[1]} 08:00-18:00):")
        for line in plan:
            print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    """Parse the sizes and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixes-per-day", type=int, default=300_000)
    parser.add_argument("--batch-fixes", type=int, default=250_000)
    parser.add_argument("--streams", type=int, default=2, help="intake processes")
    opts = parser.parse_args(argv)
    print(machine_line())
    run(opts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

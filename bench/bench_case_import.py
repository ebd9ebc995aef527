"""Bulk case intake: 1M generated cases into PostGIS, mapped to grid + hotspots, end to end.

Runs in a throw-away database on the configured (or embedded) server with the demo city. The
figure: rows/s from a CSV file on disk to committed rows (read, validate, map to the grid
version valid at report time with boundary candidates, hotspots, routing, working-time
deadlines, duplicate/recurrence links, binary COPY, commit). The baseline, measured in the
same run on the same rows: the naive path — COPY the raw rows into the same ``cases`` table,
then ``UPDATE … FROM grids WHERE ST_Contains`` — which maps the grid only (no hotspots,
routing, deadlines or duplicate checks).

Besides wall-clock phases it prints the CPU seconds of this process and of the PostgreSQL
backend that ran the COPY (when the server is on this machine), and the load average: the
machine has 2 cores, shared with other work, so a busy neighbour shows up there first.

Run: ``python bench/bench_case_import.py [--rows 1000000] [--naive-rows 200000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import machine_line, scratch_database
from sqlalchemy.orm import Session

from demo.cases import generate_cases
from service.cases.catalogue import seed_catalogue
from service.cases.files import read_case_file
from service.cases.importer import CaseImporter
from service.demo import load_demo_grids, load_demo_hotspots
from service.settings import AppSettings


def _settings(url: str) -> AppSettings:
    os.environ["CITYGRID_DATABASE_URL"] = url
    return AppSettings()


def main(argv: list[str] | None = None) -> int:
    """Generate, import, compare with the naive path; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=200_000)
    opts = parser.parse_args(argv)
    print(machine_line())
    with scratch_database() as (engine, url), tempfile.TemporaryDirectory() as tmp:
        settings = _settings(url)
        with Session(engine) as session:
            load_demo_grids(session, settings)
            seed_catalogue(session, settings.grids.city)
            load_demo_hotspots(session, settings)
            session.commit()
        frame = generate_cases(opts.rows, seed=7)
        frame["field_site_name"] = (
            frame["category_code"]
            .where(frame["category_code"] != "0303", "工地")
            .where(frame["category_code"] == "0303")
        )
        frame["field_shop_name"] = (
            frame["category_code"]
            .where(frame["category_code"] != "0203", "商铺")
            .where(frame["category_code"] == "0203")
        )
        path = Path(tmp) / "cases.csv"
        frame.to_csv(path, index=False)
        size_mb = path.stat().st_size / 1e6

        load_before = os.getloadavg()
        t0 = time.perf_counter()
        with Session(engine) as session:
            backend = _cpu_clock(session.connection().exec_driver_sql("SELECT pg_backend_pid()"))
            backend_start, python_start = backend(), time.process_time()
            table = read_case_file(path)
            read_s = time.perf_counter() - t0
            report = CaseImporter(session, settings).run(table, mode="rows")
            commit_start = time.perf_counter()
            session.commit()
            commit_s = time.perf_counter() - commit_start
            backend_s, python_s = backend() - backend_start, time.process_time() - python_start
        total = time.perf_counter() - t0
        rate = report.created / total
        load_after = os.getloadavg()

        naive_n = min(opts.naive_rows, opts.rows)
        naive_s = _naive(engine, frame.head(naive_n), settings.grids.city)
        naive_rate = naive_n / naive_s

    print(
        f"{opts.rows:,} generated cases, CSV {size_mb:.0f} MB; demo city 1,494 unit grids, "
        f"30 hotspots\n"
    )
    print(f"{'path':<58} {'rows':>10} {'seconds':>8} {'rows/s':>10}")
    print(
        f"{'citygrid bulk intake (file → mapped, committed rows)':<58} "
        f"{report.created:>10,} {total:>8.1f} {rate:>10,.0f}"
    )
    phases = {"read file": read_s, **report.seconds, "commit": commit_s}
    for phase, secs in phases.items():
        print(f"    {phase:<54} {'':>10} {secs:>8.1f}")
    print(
        f"    (other {total - sum(phases.values()):.1f} s; rejected rows {report.error_count:,}"
        f" outside every grid)"
    )
    backend_note = f"{backend_s:.1f} s" if backend_s >= 0 else "n/a (server not on this machine)"
    print(
        f"    CPU: this process {python_s:.1f} s, PostgreSQL backend {backend_note}; load "
        f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(
        f"{'naive: COPY raw into cases, UPDATE … FROM grids ST_Contains':<58} "
        f"{naive_n:>10,} {naive_s:>8.1f} {naive_rate:>10,.0f}"
    )
    print(
        f"\nspeed-up over the naive path: {rate / naive_rate:.1f}x "
        f"(goals: >= 100,000 rows/s and >= 5x)"
    )
    return 0


def _cpu_clock(pid_result):
    """CPU seconds (user + system) of the backend with this pid, read from /proc; -1 when the
    server runs elsewhere."""
    stat = Path(f"/proc/{pid_result.scalar()}/stat")

    def seconds() -> float:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return -1.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return seconds


def _naive(engine, frame, city: str) -> float:
    """What one writes first: COPY the raw rows into ``cases`` (same table, same indexes),
    then map them with one spatial ``UPDATE … FROM grids WHERE ST_Contains``."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        rows = frame[["category_code", "lon", "lat", "reported_at"]].assign(
            city="naive", source="import", status="reported", updated_at=frame["reported_at"]
        )
        csv = (
            rows[
                [
                    "city",
                    "category_code",
                    "source",
                    "status",
                    "lon",
                    "lat",
                    "reported_at",
                    "updated_at",
                ]
            ]
            .to_csv(index=False, header=False)
            .encode()
        )
        t0 = time.perf_counter()
        with cur.copy(
            "COPY cases (city, category_code, source, status, lon, lat, reported_at, "
            "updated_at) FROM STDIN WITH (FORMAT csv)"
        ) as copy:
            copy.write(csv)
        cur.execute(
            "UPDATE cases c SET grid_id = g.id, grid_code = g.code FROM grids g "
            "WHERE c.city = 'naive' AND g.city = %s AND g.level = 'unit' "
            "AND ST_Contains(g.geom, c.geom) AND g.valid_from <= c.reported_at "
            "AND (g.valid_to IS NULL OR g.valid_to > c.reported_at)",
            (city,),
        )
        raw.commit()
        return time.perf_counter() - t0
    finally:
        raw.close()


if __name__ == "__main__":
    sys.exit(main())

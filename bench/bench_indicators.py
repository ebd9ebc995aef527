"""Assessment indicators over 1M cases: a month's figures for every grid of every level and
every department in one pass each, against a naive per-subject query loop, and one subject's
drill-down.

Runs in a throw-away database on the configured (or embedded) server. The city is a
30,000-unit-grid code space (1 city, 10 districts, 100 streets, 1,000 communities, 30 unit
grids each — small squares, codes as CJ/T 213 builds them). Cases get the catalogue's
categories and deadlines, sources weighted like the demo generator's, report times spread
over ``--months`` months, and legal workflow paths (closed, reworked, re-dispatched,
extended, still open, rejected, never registered) with departments that differ in how late
they are; cases and their histories go in by binary COPY (``service.db.pgcopy``).

The naive loop asks each subject on its own (the same definitions and SQL, filtered to the
subject, through the indexes). Looping over all 31,111 grids would take far too long, so it
times a sample of each level and extrapolates — the printout says so.

Run: ``python bench/bench_indicators.py [--cases 1000000] [--months 6] [--sample 40]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from common import machine_line, scratch_database
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.assessment.figures import GRID_LEVELS, IndicatorEngine
from service.assessment.lists import ListService
from service.assessment.periods import parse_period
from service.cases.catalogue import CATEGORY_SEED, seed_catalogue
from service.db.engine import driver_cursor
from service.db.pgcopy import copy_arrow
from service.settings import AppSettings

DISTRICTS, STREETS, COMMUNITIES, UNITS = 10, 10, 10, 30
CITY_CODE = "4101"
SOURCES = np.array(["patrol", "citizen", "hotline", "inspector", "open311"])
SOURCE_P = [0.62, 0.18, 0.12, 0.05, 0.03]
# (name, actions, share)
PATHS = (
    ("closed", ("register", "dispatch", "handle", "feedback", "verify"), 0.79),
    (
        "reworked",
        ("register", "dispatch", "handle", "feedback", "rework", "feedback", "verify"),
        0.04,
    ),
    ("redispatched", ("register", "dispatch", "dispatch", "handle", "feedback", "verify"), 0.03),
    ("extended", ("register", "dispatch", "extend", "handle", "feedback", "verify"), 0.02),
    ("handling", ("register", "dispatch", "handle"), 0.05),
    ("fed_back", ("register", "dispatch", "handle", "feedback"), 0.02),
    ("rejected", ("reject",), 0.04),
    ("reported", (), 0.01),
)
NEXT = {
    "register": "registered",
    "dispatch": "dispatched",
    "handle": "handling",
    "feedback": "fed_back",
    "verify": "closed",
    "rework": "handling",
    "reject": "rejected",
}


def _settings(url: str) -> AppSettings:
    os.environ["CITYGRID_DATABASE_URL"] = url
    return AppSettings()


def _grids(session: Session, city: str) -> list[str]:
    """The code space: one small square per grid, all levels, valid since 2020."""
    session.execute(
        text(
            """
WITH d AS (SELECT i FROM generate_series(1, :nd) i),
s AS (SELECT d.i AS di, j FROM d, generate_series(1, :ns) j),
c AS (SELECT di, j, k FROM s, generate_series(1, :nc) k),
u AS (SELECT di, j, k, m FROM c, generate_series(1, :nu) m),
codes AS (
  SELECT 'city' AS level, :cc || '0000000000' AS code, NULL AS parent, 0 AS n
  UNION ALL SELECT 'district', :cc || lpad(i::text, 2, '0') || '00000000', :cc || '0000000000', i
    FROM d
  UNION ALL SELECT 'street', :cc || lpad(di::text, 2, '0') || lpad(j::text, 3, '0') || '00000',
    :cc || lpad(di::text, 2, '0') || '00000000', di * 100 + j FROM s
  UNION ALL SELECT 'community', :cc || lpad(di::text, 2, '0') || lpad(j::text, 3, '0')
    || lpad(k::text, 3, '0') || '00', :cc || lpad(di::text, 2, '0') || lpad(j::text, 3, '0')
    || '00000', (di * 100 + j) * 100 + k FROM c
  UNION ALL SELECT 'unit', :cc || lpad(di::text, 2, '0') || lpad(j::text, 3, '0')
    || lpad(k::text, 3, '0') || lpad(m::text, 2, '0'), :cc || lpad(di::text, 2, '0')
    || lpad(j::text, 3, '0') || lpad(k::text, 3, '0') || '00', ((di * 100 + j) * 100 + k) * 100 + m
    FROM u
)
INSERT INTO grids (city, code, level, parent_code, name, area_m2, valid_from, geom)
SELECT :city, code, level, parent, level || ' ' || code, 10000, '2020-01-01+08',
  ST_Multi(ST_MakeEnvelope(113 + (n % 1000) * 0.001, 34 + (n / 1000) * 0.001,
    113 + (n % 1000) * 0.001 + 0.0009, 34 + (n / 1000) * 0.001 + 0.0009, 4326))
FROM codes"""
        ),
        {
            "city": city,
            "cc": CITY_CODE,
            "nd": DISTRICTS,
            "ns": STREETS,
            "nc": COMMUNITIES,
            "nu": UNITS,
        },
    )
    return list(
        session.scalars(
            text("SELECT code FROM grids WHERE city = :city AND level = 'unit' ORDER BY code"),
            {"city": city},
        )
    )


def _generate(n: int, units: list[str], start: datetime, months: int, seed: int = 7):
    """Cases and their histories as Arrow tables (plus extension rows needing JSON data)."""
    rng = np.random.default_rng(seed)
    span_s = months * 30.4 * 86400
    reported = np.sort(rng.uniform(0, span_s, n))
    t0 = np.datetime64(start.replace(tzinfo=None), "us")
    rep = t0 + (reported * 1e6).astype("timedelta64[us]")
    cats = np.array([row[0] for row in CATEGORY_SEED])
    days = np.array([row[5] if row[6] == "days" else row[5] / 24 for row in CATEGORY_SEED])
    cat_i = rng.integers(0, len(cats), n)
    deadline = rep + (days[cat_i] * 86400e6).astype("timedelta64[us]")
    departments = np.array([f"部门{i:02d}" for i in range(40)])
    dept_i = rng.integers(0, len(departments), n)
    # a few slow departments and grids with many reworks stand out in the figures
    slowness = np.where(dept_i % 13 == 0, 3.0, 1.0)
    ids = np.arange(1, n + 1, dtype=np.int64)
    grid_codes = np.array(units)[rng.integers(0, len(units), n)]
    shares = np.array([p[2] for p in PATHS])
    path_i = rng.choice(len(PATHS), size=n, p=shares / shares.sum())
    status = np.empty(n, dtype=object)
    closed = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    updated = rep.copy()
    deadline_final = deadline.copy()
    ev_case, ev_action, ev_from, ev_to, ev_at, ev_actor = [], [], [], [], [], []
    extensions = []
    dispatchers = np.array([f"派遣员{i:02d}" for i in range(20)])
    for k, (_name, steps, _) in enumerate(PATHS):
        sel = np.flatnonzero(path_i == k)
        m = len(sel)
        if m == 0:
            continue
        if not steps:
            status[sel] = "reported"
            continue
        # hours between steps: the department's work takes most of the deadline
        gaps = rng.exponential(1.0, (m, len(steps))) * 0.15 * days[cat_i[sel], None] * 24
        gaps *= slowness[sel, None]
        at = rep[sel, None] + (np.cumsum(gaps, axis=1) * 3600e6).astype("timedelta64[us]")
        st, froms, tos = "reported", [], []
        for step in steps:
            froms.append(st)
            st = st if step == "extend" else NEXT[step]
            tos.append(st)
        ev_case.append(np.repeat(ids[sel], len(steps)))
        ev_action.append(np.tile(np.array(steps), m))
        ev_from.append(np.tile(np.array(froms), m))
        ev_to.append(np.tile(np.array(tos), m))
        ev_at.append(at.reshape(-1))
        ev_actor.append(
            np.where(
                np.tile(np.array(steps), m) == "dispatch",
                dispatchers[rng.integers(0, len(dispatchers), m * len(steps))],
                "bench",
            )
        )
        status[sel] = st
        updated[sel] = at[:, -1]
        if st == "closed":
            closed[sel] = at[:, -1]
        if "extend" in steps:
            j = steps.index("extend")
            new = deadline[sel] + np.timedelta64(3, "D")
            deadline_final[sel] = new
            extensions.append((ids[sel], at[:, j], deadline[sel], new))
    # a few cases recur an earlier one nearby (the id is only a mark here)
    rec = np.where(rng.random(n) < 0.02, np.maximum(ids - 1000, 1), 0)
    cases = pa.table(
        {
            "id": ids,
            "city": pa.array(["410100"] * n),
            "category_code": cats[cat_i],
            "source": SOURCES[rng.choice(len(SOURCES), size=n, p=SOURCE_P)],
            "status": status.astype(str),
            "reported_at": pa.array(rep, pa.timestamp("us", tz="UTC")),
            "deadline_at": pa.array(deadline_final, pa.timestamp("us", tz="UTC")),
            "closed_at": pa.array(closed, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array(updated, pa.timestamp("us", tz="UTC")),
            "lon": np.full(n, 113.5),
            "lat": np.full(n, 34.5),
            "grid_code": grid_codes,
            "department": departments[dept_i],
            "recurring_of": pa.array(rec, pa.int64(), mask=rec == 0),
        }
    )
    events = pa.table(
        {
            "case_id": np.concatenate(ev_case),
            "action": np.concatenate(ev_action),
            "from_status": np.concatenate(ev_from),
            "to_status": np.concatenate(ev_to),
            "actor": np.concatenate(ev_actor),
            "at": pa.array(np.concatenate(ev_at), pa.timestamp("us", tz="UTC")),
        }
    )
    # extend events go in through SQL (their data carries the old and new deadline)
    # the history is appended in time order, as the service writes it
    non_ext = pc.not_equal(events.column("action"), "extend")
    return cases, events.filter(non_ext).sort_by("at"), extensions


def _load(session: Session, cases: pa.Table, events: pa.Table, extensions, city: str) -> None:
    with driver_cursor(session) as cur:
        # bulk load of a scratch database: skip per-row foreign-key and append-only triggers
        cur.execute("SET session_replication_role = replica")
        copy_arrow(cur, "cases", cases)
        copy_arrow(cur, "case_events", events.append_column("city", pa.array([city] * len(events))))
        ids, at, old, new = (np.concatenate(x) for x in zip(*extensions, strict=True))
        ext = pa.table(
            {
                "case_id": ids,
                "at": pa.array(at, pa.timestamp("us", tz="UTC")),
                "old": pa.array(old, pa.timestamp("us", tz="UTC")),
                "new": pa.array(new, pa.timestamp("us", tz="UTC")),
            }
        )
        cur.execute(
            "CREATE TEMP TABLE ext (case_id bigint, at timestamptz, old timestamptz,"
            " new timestamptz)"
        )
        copy_arrow(cur, "ext", ext)
        cur.execute(
            "INSERT INTO case_events (city, case_id, action, from_status, to_status, actor, at,"
            " data)"
            " SELECT %s, case_id, 'extend', 'dispatched', 'dispatched', 'bench', at,"
            " jsonb_build_object('old_deadline', old, 'new_deadline', new) FROM ext",
            (city,),
        )
        cur.execute("SET session_replication_role = origin")
        cur.execute("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
    # grid workers: one per five unit grids
    session.execute(
        text(
            "INSERT INTO workers (city, code, name, grid_codes) SELECT :city, 'W' || lpad(g::text,"
            " 5, '0'), '网格员' || g, array_agg(code ORDER BY code) FROM (SELECT code,"
            " (row_number() OVER (ORDER BY code) - 1) / 5 AS g FROM grids WHERE city = :city"
            " AND level = 'unit') x GROUP BY g"
        ),
        {"city": city},
    )


def _backend_cpu(session: Session):
    """CPU seconds (user + system) of this session's PostgreSQL backend, from /proc (-1 when
    the server runs elsewhere): under a shared machine's load, wall time overstates the work."""
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
    stat = f"/proc/{pid}/stat"

    def seconds() -> float:
        try:
            with open(stat) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return -1.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return seconds


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Generate, load, time the set-based figures, the naive loop and drill-downs; print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--sample", type=int, default=40, help="subjects per level, naive loop")
    parser.add_argument("--period", default="2026-10")
    opts = parser.parse_args(argv)
    print(machine_line())
    with scratch_database() as (engine, url):
        settings = _settings(url)
        city = settings.grids.city
        period = parse_period(opts.period, settings.grids.timezone)
        start = period.end.astimezone(UTC) - timedelta(days=30.4 * opts.months)
        t0 = time.perf_counter()
        with Session(engine) as session:
            seed_catalogue(session, city)
            units = _grids(session, city)
            session.commit()
        cases, events, extensions = _generate(opts.cases, units, start, opts.months)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with Session(engine) as session:
            _load(session, cases, events, extensions, city)
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE cases"))
            conn.execute(text("VACUUM ANALYZE case_events"))
            conn.execute(text("ANALYZE grids"))
        load_s = time.perf_counter() - t0
        n_events = events.num_rows + sum(len(x[0]) for x in extensions)
        print(
            f"{opts.cases:,} cases, {n_events:,} history rows over {opts.months} months; "
            f"{len(units):,} unit grids (31,111 grids of 5 levels); generated in {gen_s:.1f} s, "
            f"loaded and analysed in {load_s:.1f} s; period {period.label}\n"
        )
        with Session(engine) as session:
            eng = IndicatorEngine(session, settings)
            in_month = session.scalar(
                text("SELECT count(*) FROM cases WHERE reported_at >= :s AND reported_at < :e"),
                {"s": period.start, "e": period.end},
            )
            print(f"cases reported in {period.label}: {in_month:,}")
            load_before = os.getloadavg()
            backend = _backend_cpu(session)
            cpu0 = backend()
            grid_dept: list[tuple[str, str | None]] = [("grid", lv) for lv in GRID_LEVELS]
            grid_dept.append(("department", None))
            found, full_s = _timed(eng.full_list, period, grid_dept)
            cpu1 = backend()
            _, full2_s = _timed(eng.full_list, period, grid_dept)
            cpu2 = backend()
            everything, all_s = _timed(eng.full_list, period)
            grids = {lv: found[("grid", lv)] for lv in GRID_LEVELS}
            depts = found[("department", None)]
            n_all = sum(len(v) for v in everything.values())
            _, grid_s = _timed(eng.grid_figures, period)
            _, dept_s = _timed(eng.department_figures, period)
            _, disp_s = _timed(eng.dispatcher_figures, period)
            workers, work_s = _timed(eng.worker_figures, period)
            load_after = os.getloadavg()
            n_grids = sum(len(v) for v in grids.values())
            print(f"\n{'set-based':<52} {'rows':>8} {'seconds':>8}")
            print(
                f"{'  full list: every grid of every level + every':<52}\n"
                f"{'  department, one query (first run, again)':<52} {n_grids + len(depts):>8,}"
                f" {full_s:>8.2f} {full2_s:>6.2f}   (goal <= 5 s)"
            )
            print(
                f"{'  the same + every worker and dispatcher, one query':<52} {n_all:>8,}"
                f" {all_s:>8.2f}   (goal <= 5 s)"
            )
            print(
                f"{'    CPU of the PostgreSQL backend (first, again)':<52} {'':>8}"
                f" {cpu1 - cpu0:>8.2f} {cpu2 - cpu1:>6.2f}"
            )
            print(f"{'  every grid of every level alone':<52} {n_grids:>8,} {grid_s:>8.2f}")
            print(f"{'  every department alone':<52} {len(depts):>8,} {dept_s:>8.2f}")
            print(f"{'  every dispatcher':<52} {20:>8,} {disp_s:>8.2f}")
            print(
                f"{'  every grid worker (6,000; patrol hours too)':<52} {len(workers):>8,}"
                f" {work_s:>8.2f}"
            )
            print(
                f"  load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
                "(2 cores shared with other work)"
            )
            # the red/yellow list: the same figures, then scores, deductions, ranks and lists
            lists = ListService(session, settings)
            grid_and_dept: list[tuple[str, str | None]] = [
                ("grid", lv) for lv in GRID_LEVELS if lv != "city"
            ]
            grid_and_dept.append(("department", None))
            board, list_s = _timed(lists.compute, period, grid_and_dept)
            board_all, list_all_s = _timed(lists.compute, period)
            scored = sum(len(sec["scores"]) for sec in board["sections"])
            scored_all = sum(len(sec["scores"]) for sec in board_all["sections"])
            print(
                f"\n{'red/yellow list (figures, scores, ranks, lists)':<52}"
                f" {'rows':>8} {'seconds':>8}"
            )
            print(
                f"{'  grids of every level + departments':<52} {scored:>8,} {list_s:>8.2f}"
                f"   (goal <= 5 s; figures alone above: {full2_s:.2f} s)"
            )
            print(
                f"{'  every subject type (+ workers, dispatchers)':<52} {scored_all:>8,}"
                f" {list_all_s:>8.2f}"
            )
            grid_s = full2_s  # the naive loop is compared with the one-query list
            dept_s = 0.0
            # the naive loop: each subject on its own, a sample per level, extrapolated
            rng = np.random.default_rng(1)
            naive_total = 0.0
            print(
                f"\n{'naive loop (one query per subject)':<40} {'sampled':>8} {'ms each':>8}"
                f" {'all':>8} {'est. s':>8}"
            )
            for level, rows in grids.items():
                pick = rng.choice(len(rows), size=min(opts.sample, len(rows)), replace=False)
                times = []
                for i in pick:
                    _, s = _timed(eng.subject, period, "grid", rows[i].key)
                    times.append(s)
                each = statistics.mean(times)
                naive_total += each * len(rows)
                print(
                    f"  grid:{level:<34} {len(pick):>8} {each * 1000:>8.1f} {len(rows):>8,}"
                    f" {each * len(rows):>8.0f}"
                )
            busy = [d for d in depts if d.counts.get("reported", 0) > 0][:10]
            times = [_timed(eng.subject, period, "department", d.key)[1] for d in busy]
            each = statistics.mean(times)
            naive_total += each * len(depts)
            print(
                f"  {'department':<38} {len(times):>8} {each * 1000:>8.1f} {len(depts):>8,}"
                f" {each * len(depts):>8.0f}"
            )
            # check: the sampled naive answers equal the set-based rows
            some = grids["community"][:3]
            for f in some:
                assert eng.subject(period, "grid", f.key).values() == f.values()
            print(
                f"  {'estimated full naive loop':<38} {'':>8} {'':>8} {'':>8} {naive_total:>8.0f}"
                f"   → set-based is {naive_total / (grid_s + dept_s):,.0f}x faster"
            )
            # drill-down: one subject's cases behind a count (first page)
            print(f"\n{'drill-down (first page of 100 case ids)':<52} {'cases':>8} {'ms':>8}")
            unit = max(grids["unit"], key=lambda f: f.counts.get("due", 0))
            comm = max(grids["community"], key=lambda f: f.counts.get("due", 0))
            street = grids["street"][0]
            dept = max(depts, key=lambda f: f.counts.get("due", 0))
            for kind, key, indicator in (
                ("grid", unit.key, "due"),
                ("grid", comm.key, "overdue_open"),
                ("grid", street.key, "reworked"),
                ("department", dept.key, "closed_late"),
            ):
                best = []
                for _ in range(3):
                    (rows_, _next), s = _timed(eng.cases, period, kind, key, indicator, 0, 100)
                    best.append(s)
                print(f"  {kind}:{key} {indicator:<20} {len(rows_):>8} {min(best) * 1000:>8.1f}")
            s = min(_timed(eng.subject, period, "grid", unit.key)[1] for _ in range(3))
            print(
                f"  {'one unit grid, all figures':<50} {'':>8} {s * 1000:>8.1f}   (goal <= 100 ms)"
            )
            sample = grids["district"][0].values()
            print(f"\nfigures of district {grids['district'][0].key}:")
            for key in (
                "reported",
                "due",
                "closed",
                "closed_on_time",
                "closed_late",
                "overdue_open",
                "close_rate",
                "on_time_close_rate",
                "rework_rate",
                "accurate_dispatch_rate",
                "avg_handling_hours",
                "on_time_check_rate",
            ):
                print(f"  {key:<24} {sample[key]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The daily set (三个一) of a district of a large city: the brief, circular and ledger of the
district and of every street in it, made, rendered and stored in one run; time and peak memory,
against the same figures asked unit by unit (one indicator query per scope, comparison period,
named unit and department) in the same run.

The city is the 31,111-grid code space of ``bench_indicators.py`` (10 districts, 100 streets,
1,000 communities, 30,000 unit grids) with its generated cases and histories. The default is
small (20,000 cases over one month) so the bench runs in minutes; ``--cases 1000000 --months
12`` is the issue's size. Goal: the whole set ≤ 60 s.

Run: ``python bench/bench_briefs.py [--cases 20000] [--months 1] [--formats docx,pdf,html]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import UTC, date, timedelta

from bench_indicators import CITY_CODE, _generate, _grids, _load
from common import machine_line, scratch_database
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.assessment.figures import IndicatorEngine
from service.briefs.figures import (
    Inputs,
    _comparisons,
    brief_data,
    check_request,
    child_level,
    circular_data,
    period_for,
)
from service.briefs.schedule import run_day
from service.cases.catalogue import seed_catalogue
from service.db.models import Document
from service.settings import AppSettings


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _per_unit(session: Session, settings: AppSettings, scopes: list[str], day: date) -> int:
    """The set's figures asked subject by subject; returns the number of queries."""
    eng = IndicatorEngine(session, settings)
    tz = settings.grids.timezone
    period = period_for(day, "day", tz)
    queries = 0
    for scope in scopes:
        level = "district" if scope.endswith("00000000") else "street"
        for p in [period] + [p for _, p in _comparisons(period, tz)]:
            eng.subject(p, "grid", scope)
            queries += 1
        prefix = scope[: settings.scheme.prefix_length(level)]
        below = session.scalars(
            text(
                "SELECT code FROM grids WHERE city = :city AND level = :lv AND code LIKE :p"
                " AND valid_to IS NULL"
            ),
            {"city": settings.grids.city, "lv": child_level(level), "p": prefix + "%"},
        ).all()
        for code in below:
            eng.subject(period, "grid", code)
            queries += 1
        eng.department_figures_in(period, scope)
        queries += 1
    return queries


def _set_based(session: Session, settings: AppSettings, scopes: list[str], day: date) -> None:
    """The set's figures as the run gathers them (city-wide passes shared by the scopes),
    without rendering: the same work as :func:`_per_unit`, set-based."""
    inputs = Inputs(session, settings)
    for scope in scopes:
        req = check_request(session, settings, scope, day, "day")
        brief_data(inputs, req)
        circular_data(inputs, req)


def main(argv: list[str] | None = None) -> int:
    """Generate, load, make the district's set, time the per-unit baseline; print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=1)
    parser.add_argument("--day", default="2026-10-30", help="the set's day (data ends 10-31)")
    parser.add_argument("--formats", default="docx,pdf,html")
    parser.add_argument("--profile", action="store_true", help="print where the set's time goes")
    opts = parser.parse_args(argv)
    print(machine_line())
    os.environ["CITYGRID_BRIEF_FORMATS"] = opts.formats
    with scratch_database() as (engine, url):
        os.environ["CITYGRID_DATABASE_URL"] = url
        settings = AppSettings()
        city = settings.grids.city
        day = date.fromisoformat(opts.day)
        end = period_for(date(day.year, day.month, 1), "month", settings.grids.timezone).end
        start = end.astimezone(UTC) - timedelta(days=30.4 * opts.months)
        t0 = time.perf_counter()
        with Session(engine) as session:
            seed_catalogue(session, city)
            units = _grids(session, city)
            session.commit()
        cases, events, extensions = _generate(opts.cases, units, start, opts.months)
        with Session(engine) as session:
            _load(session, cases, events, extensions, city)
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE cases"))
            conn.execute(text("VACUUM ANALYZE case_events"))
            conn.execute(text("ANALYZE grids"))
        print(
            f"{opts.cases:,} cases over {opts.months} month(s), loaded in "
            f"{time.perf_counter() - t0:.1f} s; day {day}"
        )
        district = CITY_CODE + "01" + "00000000"
        with Session(engine) as session:
            streets = list(
                session.scalars(
                    text(
                        "SELECT code FROM grids WHERE city = :city AND level = 'street'"
                        " AND code LIKE :p ORDER BY code"
                    ),
                    {"city": city, "p": district[:6] + "%"},
                )
            )
        scopes = [district, *streets]
        sessions = sessionmaker(engine)
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        if opts.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            report = prof.runcall(run_day, sessions, settings, day, scopes)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
        else:
            report = run_day(sessions, settings, day, scopes)
        set_s = time.perf_counter() - t0
        rss1 = _rss_mb()
        with Session(engine) as session:
            n, size = session.execute(
                select(func.count(), func.sum(Document.size)).where(Document.city == city)
            ).one()
            t0 = time.perf_counter()
            _set_based(session, settings, scopes, day)
            figures_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            queries = _per_unit(session, settings, scopes, day)
            unit_s = time.perf_counter() - t0
        print(f"\nscopes: 1 district + {len(streets)} streets; formats {opts.formats} + ledger")
        print(f"  made {len(report.made)}, failed {len(report.failed)} {report.failed or ''}")
        print(f"  {n} documents, {int(size or 0) / 1e6:.1f} MB stored")
        print(
            f"  whole set: {set_s:.1f} s (goal <= 60 s); peak RSS {rss1:.0f} MB "
            f"(+{rss1 - rss0:.0f} MB)"
        )
        print(f"  its figures alone (set-based, shared city-wide passes): {figures_s:.1f} s")
        print(f"  baseline: the same figures per unit, {queries} queries: {unit_s:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

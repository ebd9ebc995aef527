"""The demo's month tells something: on-time closure as the seeds' offices report it, one
late department, communities with rework and recurrence, few open cases overdue now."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.assessment.figures import IndicatorEngine
from service.assessment.periods import parse_period
from service.clock import now
from service.demo import DEMO_LATE_DEPARTMENT, _rework_communities, load_demo_cases
from service.settings import AppSettings
from tests.helpers.scope import demo_places


@pytest.fixture
def demo_month(session: Session, demo_loaded: AppSettings):
    demo_places(session, demo_loaded)  # seeds the catalogue
    t0 = time.perf_counter()
    load_demo_cases(session, demo_loaded, 20_000)
    print(f"load_demo_cases: {time.perf_counter() - t0:.1f} s")
    this = pd.Timestamp(now()).tz_convert(demo_loaded.grids.timezone)
    last = (this.normalize().replace(day=1) - pd.DateOffset(months=1))
    return parse_period(last.strftime("%Y-%m"), demo_loaded.grids.timezone)


def test_demo_month_stats(session: Session, demo_loaded: AppSettings, demo_month) -> None:
    engine = IndicatorEngine(session, demo_loaded)
    grids, depts = engine.full_list(demo_month)
    city = grids["city"][0].values()
    print(demo_month.start, demo_month.end)
    print({k: city[k] for k in ("reported", "closed", "due", "on_time_close_rate", "overdue_open", "reworked", "rework_rate", "recurring", "evaluated", "satisfaction_rate", "avg_quality", "accurate_dispatch_rate", "extended")})
    for d in depts:
        v = d.values()
        print(d.key, v["due"], v["on_time_close_rate"], v["satisfaction_rate"], v["rework_rate"])
    com = sorted(grids["community"], key=lambda f: -(f.values()["rework_rate"] or 0))[:6]
    for c in com:
        v = c.values()
        print(c.key, c.name, v["due"], v["rework_rate"], v["recurring"], v["on_time_close_rate"])
    print(session.execute(text("SELECT status, count(*), count(*) FILTER (WHERE deadline_at < now()) FROM cases GROUP BY 1")).all())
    print(session.execute(text("SELECT fields->'flags', count(*) FROM cases WHERE fields ? 'flags' GROUP BY 1")).all())

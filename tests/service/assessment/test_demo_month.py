"""The demo's month tells something (issue 12): on-time closure as the seeds' offices report
it, one department systematically late, communities with rework and recurrence, few open
cases overdue now, a share of closed cases evaluated — read through the indicator engine."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.assessment.figures import IndicatorEngine
from service.assessment.periods import Period, parse_period
from service.cases.workflow import OPEN_SQL
from service.clock import now
from service.demo import DEMO_LATE_DEPARTMENT, load_demo_cases
from service.settings import AppSettings
from tests.helpers.scope import demo_places


@pytest.fixture
def last_month(session: Session, demo_loaded: AppSettings) -> Period:
    """The demo's 20,000 cases loaded now (rolled back after the test); the month before."""
    demo_places(session, demo_loaded)  # seeds the catalogue
    load_demo_cases(session, demo_loaded, 20_000)
    tz = demo_loaded.grids.timezone
    first = pd.Timestamp(now()).tz_convert(tz).normalize().replace(day=1)
    return parse_period(f"{first - pd.DateOffset(months=1):%Y-%m}", tz)


def test_the_demo_month_has_offices_rates_and_a_few_standing_out(
    session: Session, demo_loaded: AppSettings, last_month: Period
) -> None:
    found = IndicatorEngine(session, demo_loaded).full_list(last_month)
    grids = {lv: found[("grid", lv)] for lv in ("city", "community")}
    departments = found[("department", None)]
    city = grids["city"][0].values()
    assert city["reported"] > 1000  # a full month of history
    assert 0.95 <= city["on_time_close_rate"] <= 0.99
    assert city["overdue_open"] < 0.01 * city["due"]

    by_dept = {d.key: d.values() for d in departments}
    late = by_dept[DEMO_LATE_DEPARTMENT]
    assert late["due"] >= 30
    assert late["on_time_close_rate"] < 0.85
    assert late["satisfaction_rate"] < city["satisfaction_rate"]
    busy = [v for k, v in by_dept.items() if k != DEMO_LATE_DEPARTMENT and v["due"] >= 100]
    assert busy and all(v["on_time_close_rate"] >= 0.9 for v in busy)

    # rework and recurrence: three communities stand out, the rest hardly rework
    communities = sorted(
        (c.values() for c in grids["community"] if c.values()["due"] >= 30),
        key=lambda v: -(v["rework_rate"] or 0),
    )
    for v in communities[:3]:
        assert v["rework_rate"] >= 0.12 and v["recurring"] >= 5
    assert all((v["rework_rate"] or 0) < 0.1 and v["recurring"] == 0 for v in communities[3:])
    assert city["rework_rate"] < 0.08

    # re-dispatches and 退单 make dispatching less than perfectly accurate; extensions exist
    assert 0.9 < city["accurate_dispatch_rate"] < 0.99
    assert city["extended"] > 0

    # 综合评价: a share of the month's closures, mostly satisfied
    assert 0.3 * city["closed"] < city["evaluated"] < 0.9 * city["closed"]
    assert city["satisfaction_rate"] > 0.85
    assert 3.5 < city["avg_quality"] < 5


def test_the_demo_now_mostly_closed_few_open_overdue_and_a_few_flags(
    session: Session, demo_loaded: AppSettings, last_month: Period
) -> None:
    t = now()
    total, open_, overdue, recent = session.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE status IN " + OPEN_SQL + "),"
            " count(*) FILTER (WHERE status IN " + OPEN_SQL + " AND deadline_at < :t),"
            " count(*) FILTER (WHERE status IN " + OPEN_SQL + " AND reported_at >= :recent)"
            " FROM cases WHERE city = :city"
        ),
        {"city": demo_loaded.grids.city, "t": t, "recent": t - timedelta(days=3)},
    ).one()
    assert open_ > 0
    assert overdue < 0.3 * open_  # red points on the map are the exception
    assert overdue < 0.005 * total
    assert recent > 0.6 * open_  # what is open was mostly reported lately
    flags = dict(
        session.execute(
            text(
                "SELECT fields -> 'flags' ->> 0, count(*) FROM cases"
                " WHERE city = :city AND fields ? 'flags'"
                " AND reported_at >= :s AND reported_at < :e"
                " GROUP BY 1"
            ),
            {"city": demo_loaded.grids.city, "s": last_month.start, "e": last_month.end},
        ).all()
    )
    assert flags == {"leader": 8, "media": 6}
    # every stored state is the end of its history (the bulk path writes what act would)
    mismatched = session.execute(
        text(
            "WITH h AS (SELECT case_id, count(*) AS n,"
            " (array_agg(to_status ORDER BY id DESC))[1] AS last FROM case_events GROUP BY 1)"
            " SELECT count(*) FROM cases c JOIN h ON h.case_id = c.id"
            " WHERE c.city = :city AND (c.status <> h.last OR c.lock_version <> h.n + 1)"
        ),
        {"city": demo_loaded.grids.city},
    ).scalar_one()
    assert mismatched == 0

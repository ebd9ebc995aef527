"""Patrol coverage in week and month briefs against an independent computation: walks on three
days of November, the unit grids they passed located with shapely and their seen area
measured with GEOS. A grid is patrolled in the period when visited on any of its days; the
daily rate is the share of the period's days (up to today) each grid was visited on; a
month's area share is the mean of its daily shares."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.briefs.figures import Inputs, check_request, patrol, today
from service.grids.registry import Registry
from service.settings import AppSettings
from tests.helpers.briefs import DAY, by_kind, docx_text
from tests.helpers.city import STREET, TO_UTM, X0, Y0, small_city
from tests.helpers.patrol import CST, walk

RADIUS = 25.0  # CITYGRID_PATROL_COVERAGE_RADIUS_M's default
# (day, path in local metres): the south row of community A twice, half its north row once
WALKS = [
    (date(2026, 11, 3), [(2, 50), (398, 50)]),
    (date(2026, 11, 10), [(2, 150), (198, 150)]),
    (date(2026, 11, 17), [(2, 50), (398, 50)]),
]


def _units() -> dict[str, shapely.Geometry]:
    """The small city's unit grids in UTM metres (from the test's own inputs)."""
    return {
        g.code: shapely.transform(
            g.geometry,
            lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1])),
        )
        for g in small_city()
        if g.level == "unit"
    }


def _expected(first: date, last: date) -> dict[str, Any]:
    """The period's coverage by hand: grids holding a fix on each day (shapely), each day's
    seen share of every grid (GEOS buffer of the path), over the days up to ``last``."""
    units = _units()
    visited_on: dict[str, int] = dict.fromkeys(units, 0)
    share_sum: dict[str, float] = dict.fromkeys(units, 0.0)
    week_share: dict[str, float] = dict.fromkeys(units, 0.0)
    for day, path in WALKS:
        if not first <= day <= last:
            continue
        line = shapely.affinity.translate(shapely.LineString(path), X0, Y0)
        points = [shapely.Point(X0 + x, Y0 + y) for x, y in _fix_points(path)]
        zone = line.buffer(RADIUS)
        for code, geom in units.items():
            if any(geom.contains(p) for p in points):
                visited_on[code] += 1
            share = geom.intersection(zone).area / geom.area
            share_sum[code] += share
            week_share[code] = max(week_share[code], share)  # no grid is walked twice a week
    days = (last - first).days + 1
    return {
        "grids": len(units),
        "visited": {c for c, n in visited_on.items() if n},
        "days": days,
        "days_share": sum(n / days for n in visited_on.values()) / len(units),
        "daily_mean_share": sum(s / days for s in share_sum.values()) / len(units),
        "union_share": sum(week_share.values()) / len(units),
    }


def _fix_points(path: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The fixes ``walk`` makes along ``path`` (every 12 m), in local metres."""
    line = shapely.LineString(path)
    dist = np.arange(0.0, line.length + 1e-9, 12.0)
    return [(p.x, p.y) for p in shapely.line_interpolate_point(line, dist)]


@pytest.fixture
def walked(client: TestClient, case_city: Registry) -> None:
    r = client.put(
        "/api/patrol/workers/W001", json={"code": "W001", "name": "王伟", "devices": ["phone-1"]}
    )
    assert r.status_code == 201, r.text
    for day, path in WALKS:
        fixes = walk(path, start=datetime(day.year, day.month, day.day, 9, tzinfo=CST))
        r = client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
        assert r.status_code == 200 and r.json()["stored"] == len(fixes), r.text


def _patrol(session: Session, settings: AppSettings, kind: str) -> dict[str, Any]:
    req = check_request(session, settings, STREET, DAY, kind)
    return patrol(Inputs(session, settings), req)


def test_a_month_is_the_union_of_its_days(
    walked: None, session: Session, settings: AppSettings
) -> None:
    got = _patrol(session, settings, "month")
    last = min(date(2026, 11, 30), today(settings))
    want = _expected(date(2026, 11, 1), last)
    assert got["available"] and got["grids"] == want["grids"] == 11
    # patrolled on any day: A-05..A-08 (twice) and A-01, A-02 (once)
    assert got["visited"] == len(want["visited"]) == 6
    blind = {b["code"] for b in got["blind"]}
    assert got["blind_count"] == len(blind) == 5
    assert blind == set(_units()) - want["visited"]
    assert got["days"] == want["days"]
    assert got["days_share"] == pytest.approx(want["days_share"], abs=1e-4)
    assert got["share_is_daily_mean"] is True
    assert got["mean_share"] == pytest.approx(want["daily_mean_share"], abs=0.003)


def test_a_week_keeps_its_own_run_and_adds_the_daily_rate(
    walked: None, session: Session, settings: AppSettings
) -> None:
    got = _patrol(session, settings, "week")  # 2026-W47: 16–22 November, one walk
    want = _expected(date(2026, 11, 16), date(2026, 11, 22))
    assert got["visited"] == len(want["visited"]) == 4
    assert {b["code"] for b in got["blind"]} == set(_units()) - want["visited"]
    assert got["days"] == 7
    assert got["days_share"] == pytest.approx(4 / 7 / 11, abs=1e-4)
    assert got["days_share"] == pytest.approx(want["days_share"], abs=1e-4)
    assert got["share_is_daily_mean"] is False
    assert got["mean_share"] == pytest.approx(want["union_share"], abs=0.01)


def test_a_day_brief_says_what_it_said(
    walked: None, session: Session, settings: AppSettings
) -> None:
    got = _patrol(session, settings, "day")  # DAY (20 November): nobody walked
    assert got["visited"] == 0 and got["blind_count"] == 11
    assert "days" not in got and "days_share" not in got


def test_the_month_brief_prints_the_union_and_the_daily_rate(
    walked: None, client: TestClient, settings: AppSettings
) -> None:
    made = client.post(
        "/api/briefs",
        json={"scope": STREET, "date": DAY.isoformat(), "period": "month", "formats": ["docx"]},
    )
    assert made.status_code == 201, made.text
    brief = by_kind(made.json()["items"])[("brief", "docx")]
    text, tables = docx_text(client.get(brief["href"]).content)
    days = (min(date(2026, 11, 30), today(settings)) - date(2026, 11, 1)).days + 1
    assert "辖区单元网格 11 个，本期巡查到 6 个，日均覆盖率" in text
    assert "巡查盲区 5 个（任一天巡查到即计为已巡查）" in text
    assert f"（统计 {days} 天）" in text
    rate = 10 / 11 / days  # six grids: four on two days, two on one
    assert f"网格日均巡查率 {rate * 100:.1f}%" in text
    assert "本期无巡查覆盖数据" not in text
    # the blind-spot table lists the five grids nobody visited
    blind = next(t for t in tables if t[0][0] == "盲区网格")
    assert {row[0] for row in blind[1:]} == set(_units()) - _expected(
        date(2026, 11, 1), date(2026, 11, 30)
    )["visited"]

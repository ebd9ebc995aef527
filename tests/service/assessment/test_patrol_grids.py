"""巡查网格覆盖率: the share of a worker's assigned unit grids their tracks passed in a period,
checked against shapely distances in the city's metric projection (an independent computation)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import shapely
from fastapi.testclient import TestClient
from geoalchemy2 import WKTElement
from sqlalchemy.orm import Session

from service.assessment.figures import IndicatorEngine
from service.assessment.periods import parse_period
from service.db.models import PatrolTrack, Worker
from service.settings import AppSettings
from tests.helpers.city import COMM_A, X0, Y0, mbox, point_lonlat, unit_code

SH = ZoneInfo("Asia/Shanghai")
A1, A3, A8 = (unit_code(COMM_A, i) for i in (1, 3, 8))
# the unit grids of community A in metres (see tests/helpers/city.py: north row first)
GRID_M = {A1: mbox(0, 100, 100, 200), A3: mbox(200, 100, 300, 200), A8: mbox(300, 0, 400, 100)}


def t(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


# (worker, vertices as (x m, y m, local time))
TRACKS = [
    # through the middle of A1
    ("W9", [(10, 150, t(3, 9)), (90, 150, t(3, 9, 10))]),
    # 15 m north of A3's north edge: A3 only touched at its edge, within the 25 m radius
    ("W9", [(210, 215, t(5, 9)), (290, 215, t(5, 9, 10))]),
    # across A8, but in October: outside the period
    ("W9", [(310, 50, t(20, 9, month=10)), (390, 50, t(20, 9, 10, month=10))]),
    # begins in A8 on 31 October and leaves it before November starts: only its November
    # part (350 m south of the city) counts
    ("W9", [(350, 50, t(31, 23, 50, 10)), (350, -300, t(31, 23, 55, 10)), (350, -400, t(1, 0, 5))]),
    # across A8 in November, by someone else
    ("W8", [(310, 50, t(6, 9)), (390, 50, t(6, 9, 10))]),
]


@pytest.fixture
def patrolled(case_city, session: Session, settings: AppSettings) -> None:
    city = settings.grids.city
    session.add(Worker(city=city, code="W9", name="网格员九", grid_codes=[A1, A3, A8]))
    session.add(Worker(city=city, code="W8", name="网格员八", grid_codes=[A8]))
    for worker, vertices in TRACKS:
        coords = ", ".join(
            "{} {} {}".format(*point_lonlat(x, y), at.timestamp()) for x, y, at in vertices
        )
        session.add(
            PatrolTrack(
                city=city,
                device_key=9 if worker == "W9" else 8,
                worker_code=worker,
                started_at=vertices[0][2],
                ended_at=vertices[-1][2],
                n_fixes=len(vertices),
                length_m=100.0,
                built_at=vertices[0][2],
                geom=WKTElement(f"LINESTRING M ({coords})", srid=4326),
            )
        )
    session.flush()


def shapely_patrolled(worker: str, start: datetime, end: datetime, radius: float) -> set[str]:
    """Assigned grids of W9 within ``radius`` of the worker's fixes inside [start, end),
    in metres — computed without the database."""
    seen = set()
    for who, vertices in TRACKS:
        inside = [(X0 + x, Y0 + y) for x, y, at in vertices if start <= at < end]
        if who != worker or not inside:
            continue
        track = shapely.LineString(inside) if len(inside) > 1 else shapely.Point(inside[0])
        seen |= {code for code, poly in GRID_M.items() if shapely.distance(track, poly) <= radius}
    return seen


def test_patrolled_share_of_assigned_grids(
    patrolled: None, session: Session, settings: AppSettings
) -> None:
    period = parse_period("2026-11", settings.grids.timezone)
    radius = settings.patrol.coverage_radius_m
    expected = shapely_patrolled("W9", period.start, period.end, radius)
    assert expected == {A1, A3}
    # the edge track is really at the edge: inside the radius, not inside the grid
    edge = shapely.LineString([(X0 + 210, Y0 + 215), (X0 + 290, Y0 + 215)])
    assert 0 < shapely.distance(edge, GRID_M[A3]) <= radius

    figs = IndicatorEngine(session, settings)
    rows = {f.key: f.values() for f in figs.worker_figures(period)}
    w9 = rows["W9"]
    assert w9["assigned_grids"] == 3
    assert w9["patrolled_grids"] == len(expected) == 2
    assert w9["patrol_grid_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert rows["W8"]["patrolled_grids"] == 1 and rows["W8"]["patrol_grid_share"] == 1.0
    # the one-subject path gives the same figures
    one = figs.subject(period, "worker", "W9").values()
    assert {k: one[k] for k in ("assigned_grids", "patrolled_grids", "patrol_grid_share")} == {
        k: w9[k] for k in ("assigned_grids", "patrolled_grids", "patrol_grid_share")
    }
    # drill-down: what is left to patrol
    assert figs.unpatrolled_grids(period, "W9") == sorted(set(GRID_M) - expected) == [A8]
    # October: only the October tracks count (A8, and A8 again from the late-night track)
    october = parse_period("2026-10", settings.grids.timezone)
    assert shapely_patrolled("W9", october.start, october.end, radius) == {A8}
    assert figs.subject(october, "worker", "W9").values()["patrolled_grids"] == 1


def test_worker_without_tracks_has_zero_share_and_bad_period_is_422(
    patrolled: None, client: TestClient, settings: AppSettings, session: Session
) -> None:
    session.add(Worker(city=settings.grids.city, code="W7", name="网格员七", grid_codes=[A1]))
    session.flush()
    r = client.get("/api/assessment/figures/worker/W7", params={"period": "2026-11"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["figures"]["assigned_grids"] == 1 and body["figures"]["patrolled_grids"] == 0
    assert body["figures"]["patrol_grid_share"] == 0.0
    r = client.get("/api/assessment/figures/worker/W9", params={"period": "2026-13"})
    assert r.status_code == 422 and "period" in r.text
    r = client.get(
        "/api/assessment/figures/worker/W9/cases",
        params={"period": "2026-11", "indicator": "patrolled_grids"},
    )
    assert r.status_code == 422 and "indicator" in r.text
    r = client.get(
        "/api/assessment/figures/worker/W9/unpatrolled-grids", params={"period": "2026-11"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [A8]
    r = client.get(
        "/api/assessment/figures/worker/W9/unpatrolled-grids", params={"period": "2026-W54"}
    )
    assert r.status_code == 422 and "period" in r.text
    r = client.get(
        "/api/assessment/figures/worker/nobody/unpatrolled-grids", params={"period": "2026-11"}
    )
    assert r.status_code == 404


def test_the_grid_share_query_can_use_the_tracks_spatial_index(
    patrolled: None, session: Session, settings: AppSettings
) -> None:
    """The box test can reach the tracks through their GiST index. A handful of rows favours a
    scan and the (city, time) index and the (city, id) key are equal choices here, so they are
    taken away inside this rolled-back transaction: what is left must be the spatial index, not
    a scan."""
    from sqlalchemy import text

    figs = IndicatorEngine(session, settings)
    period = parse_period("2026-11", settings.grids.timezone)
    session.execute(text("DROP INDEX ix_patrol_tracks_city_time, ix_patrol_tracks_device_time"))
    # the primary key (city, id) leads with the city too (the city keys): also an equal choice
    session.execute(text("ALTER TABLE patrol_tracks DROP CONSTRAINT patrol_tracks_pkey"))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        session.scalars(
            text("EXPLAIN " + figs._patrolled_sql(None)), figs._grid_params(period, None)
        )
    )
    assert "idx_patrol_tracks_geom" in plan, plan


# hotspots with a weekly patrol quota: (key, metric box, risk_weight, quota per week)
QUOTA_SPOTS = [
    ("q-a1", (20, 120, 80, 180), 3.0, 1),  # inside A1: W9 passes on 3 November
    ("q-a3", (220, 120, 280, 180), 1.0, 1),  # inside A3: W9 passes 35 m north, beyond 25 m
    ("q-a8", (320, 20, 380, 80), 2.0, 1),  # inside A8: W8 passes on 6 November
    ("q-none", (40, 130, 60, 170), 5.0, None),  # no quota: not counted
]


def test_hotspot_quotas_met_per_worker_weighted_by_risk(
    patrolled: None, session: Session, settings: AppSettings
) -> None:
    """重点部位巡查达标率: each worker's visits to the quota hotspots touching their grids,
    the quotas met weighted by the hotspots' risk_weight; checked with shapely distances."""
    from datetime import UTC

    from service.accounts.principal import SYSTEM
    from service.hotspots.hotspots import HotspotInput, HotspotService
    from tests.helpers.city import lonlat

    since = datetime(2025, 1, 1, tzinfo=UTC)
    HotspotService(session, settings).create(
        [
            HotspotInput(
                key,
                "farmer_market",
                key,
                lonlat(mbox(*box)),
                buffer_m=0,
                active_from=since,
                risk_weight=weight,
                patrol_quota_per_week=quota,
            )
            for key, box, weight, quota in QUOTA_SPOTS
        ],
        by=SYSTEM,
    )
    session.flush()
    week = parse_period("2026-W45", settings.grids.timezone)  # 2–8 November
    radius = settings.patrol.coverage_radius_m

    def expected(worker: str, grids: list[str]) -> tuple[float, float]:
        total = met = 0.0
        for _key, box, weight, quota in QUOTA_SPOTS:
            zone = mbox(*box)
            if quota is None or not any(shapely.intersects(zone, GRID_M[g]) for g in grids):
                continue
            visits = 0
            for who, vertices in TRACKS:
                inside = [(X0 + x, Y0 + y) for x, y, at in vertices if week.start <= at < week.end]
                if who == worker and len(inside) > 1:
                    visits += shapely.distance(shapely.LineString(inside), zone) <= radius
            total += weight
            met += weight if visits >= quota else 0.0
        return total, met

    rows = {f.key: f.values() for f in IndicatorEngine(session, settings).worker_figures(week)}
    for worker, grids in (("W9", [A1, A3, A8]), ("W8", [A8])):
        total, met = expected(worker, grids)
        got = rows[worker]
        assert (got["quota_hotspots"], got["quota_hotspots_met"]) == (total, met), worker
    assert rows["W9"]["quota_hotspots"] == 6.0 and rows["W9"]["quota_hotspots_met"] == 3.0
    assert rows["W9"]["hotspot_quota_rate"] == 0.5
    assert rows["W8"]["hotspot_quota_rate"] == 1.0
    one = IndicatorEngine(session, settings).subject(week, "worker", "W9").values()
    assert one["hotspot_quota_rate"] == 0.5
    # over the month the quota is 1 × 30/7 visits: one pass no longer meets it
    month = parse_period("2026-11", settings.grids.timezone)
    rows = {f.key: f.values() for f in IndicatorEngine(session, settings).worker_figures(month)}
    assert rows["W9"]["quota_hotspots_met"] == 0.0

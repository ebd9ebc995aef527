"""Coverage per unit grid and hotspot, blind spots and problems per patrol hour (small city)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import shapely
from shapely.geometry import LineString

from tests.helpers.city import COMM_A, COMM_B, MARKET, X0, Y0, mbox, unit_code
from tests.helpers.patrol import DAY, walk

PATH = [(2, 50), (398, 50)]  # along the middle of community A's south row


@pytest.fixture
def patrolled(client, case_city):
    r = client.put(
        "/api/patrol/workers/W001", json={"code": "W001", "name": "王伟", "devices": ["phone-1"]}
    )
    assert r.status_code == 201
    fixes = walk(PATH)
    r = client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
    assert r.status_code == 200 and r.json()["stored"] == len(fixes)
    return fixes


def _by_code(rows):
    return {r["code"]: r for r in rows}


def _exact_share(grid_m: shapely.Geometry, radius: float = 25.0) -> float:
    zone = shapely.affinity.translate(LineString(PATH), X0, Y0).buffer(radius)
    return grid_m.intersection(zone).area / grid_m.area


def test_covered_share_agrees_with_geos(client, patrolled):
    r = client.get("/api/coverage/grids", params={"period": "day", "start": "2026-11-17"})
    assert r.status_code == 200, r.text
    rows = _by_code(r.json()["grids"])
    assert len(rows) == 11  # every unit grid of the small city, patrolled or not
    for seq, x in zip(range(5, 9), range(0, 400, 100), strict=True):  # south row: walked
        exact = _exact_share(mbox(x, 0, x + 100, 100))
        assert rows[unit_code(COMM_A, seq)]["covered_share"] == pytest.approx(exact, abs=0.03)
        assert rows[unit_code(COMM_A, seq)]["visits"] == 1
    for seq in range(1, 5):  # north row: 50 m or more from the path
        assert rows[unit_code(COMM_A, seq)]["covered_share"] == 0
        assert rows[unit_code(COMM_A, seq)]["visits"] == 0
        assert rows[unit_code(COMM_A, seq)]["hours_since_last_visit"] is None


def test_every_patrol_second_counts_for_exactly_one_grid(client, patrolled):
    r = client.get("/api/coverage/grids", params={"period": "day", "start": "2026-11-17"})
    rows = _by_code(r.json()["grids"])
    effort = sum(r["effort_worker_minutes"] for r in rows.values())
    track_minutes = 10.0 * (len(patrolled) - 1) / 60.0
    assert effort == pytest.approx(track_minutes, abs=0.03)  # each row is rounded to 0.01


def test_effort_and_last_visit(client, patrolled):
    r = client.get("/api/coverage/grids", params={"period": "day", "start": "2026-11-17"})
    rows = _by_code(r.json()["grids"])
    first = rows[unit_code(COMM_A, 5)]
    # x = 2..98 m: fixes 0..8 in A-05 (fix 9 at 110 m is in A-06): 9 segments of 10 s
    assert first["effort_worker_minutes"] == pytest.approx(90 / 60)
    assert first["dwell_minutes_per_visit"] == pytest.approx(90 / 60)  # one visit
    assert first["workers"] == 1
    assert first["last_visit_at"].startswith("2026-11-17T09:01:20")


def test_grid_subtree_geojson_and_csv(client, patrolled):
    params = {"period": "day", "start": "2026-11-17", "grid": COMM_B}
    r = client.get("/api/coverage/grids", params={**params, "format": "geojson"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    features = r.json()["features"]
    assert {f["id"] for f in features} == {unit_code(COMM_B, s) for s in (1, 2, 3)}
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in features)
    r = client.get("/api/coverage/grids", params={**params, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert [row["code"] for row in rows] == sorted(unit_code(COMM_B, s) for s in (1, 2, 3))


def test_bad_period_start_or_grid_is_a_clear_error(client, patrolled):
    r = client.get("/api/coverage/grids", params={"period": "week", "start": "2026-11-17"})
    assert r.status_code == 422 and r.json()["field"] == "start"
    assert "2026-11-16" in r.json()["detail"]  # names the Monday the week starts on
    r = client.get("/api/coverage/grids", params={"period": "fortnight", "start": "2026-11-16"})
    assert r.status_code == 422
    r = client.get(
        "/api/coverage/grids",
        params={"period": "day", "start": "2026-11-17", "grid": "41010599999900"},
    )
    assert r.status_code == 404 and r.json()["field"] == "grid"


def test_coverage_is_recomputed_when_new_fixes_arrive(client, patrolled):
    params = {"period": "day", "start": "2026-11-17"}
    before = _by_code(client.get("/api/coverage/grids", params=params).json()["grids"])
    assert before[unit_code(COMM_A, 1)]["visits"] == 0
    later = walk([(0, 150), (400, 150)], start=DAY + timedelta(hours=2))
    client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": later})
    after = _by_code(client.get("/api/coverage/grids", params=params).json()["grids"])
    assert after[unit_code(COMM_A, 1)]["visits"] == 1
    assert after[unit_code(COMM_A, 5)]["visits"] == 1


def test_hotspot_coverage_against_quota(client, patrolled, session):
    from sqlalchemy import update

    from service.db.models import Hotspot

    session.execute(update(Hotspot).values(patrol_quota_per_week=7))
    session.flush()
    r = client.get("/api/coverage/hotspots", params={"period": "day", "start": "2026-11-17"})
    assert r.status_code == 200
    spots = {s["key"]: s for s in r.json()["hotspots"]}
    # the rail line at x = 350 (10 m buffer) is crossed; the market (y 100..200 + 20 m) is not
    assert spots["rail-01"]["visits"] == 1 and spots["rail-01"]["quota_met"] is True
    assert spots["market-01"]["visits"] == 0 and spots["market-01"]["quota_met"] is False
    assert spots["rail-01"]["quota_visits"] == pytest.approx(1.0)
    zone = shapely.affinity.translate(LineString([(350, -50), (350, 250)]), X0, Y0).buffer(10)
    walked = shapely.affinity.translate(LineString(PATH), X0, Y0).buffer(25)
    exact = zone.intersection(walked).area / zone.area
    assert spots["rail-01"]["covered_share"] == pytest.approx(exact, abs=0.03)
    assert MARKET.area > 0


def test_blind_spots_list_the_grids_nobody_visited(client, patrolled):
    r = client.get("/api/coverage/blind-spots", params={"hours": 6, "at": "2026-11-17T12:00:00"})
    assert r.status_code == 200, r.text
    unseen = {g["code"] for g in r.json()["grids"]}
    assert unseen == {unit_code(COMM_A, s) for s in range(1, 5)} | {
        unit_code(COMM_B, s) for s in (1, 2, 3)
    }
    assert {h["name"] for h in r.json()["hotspots"]} == {"甲农贸市场"}
    r = client.get("/api/coverage/blind-spots", params={"hours": 1, "at": "2026-11-17T15:00:00"})
    assert len(r.json()["grids"]) == 11  # nothing walked in the last hour
    assert client.get("/api/coverage/blind-spots", params={"hours": 0}).status_code == 422


def test_problems_per_patrol_hour_puts_unpatrolled_problem_grids_first(client, patrolled):
    from tests.helpers.city import point_lonlat

    for x, y in ((150, 150), (160, 150), (50, 50)):  # two in A-02 (unwalked), one in A-05
        lon, lat = point_lonlat(x, y)
        r = client.post(
            "/api/cases",
            json={
                "category_code": "0102",
                "lon": lon,
                "lat": lat,
                "reported_at": "2026-11-17T10:00:00",
                "source": "patrol",
            },
        )
        assert r.status_code == 201, r.text
    r = client.get("/api/coverage/problems", params={"period": "day", "start": "2026-11-17"})
    assert r.status_code == 200, r.text
    rows = r.json()["grids"]
    assert rows[0]["code"] == unit_code(COMM_A, 2)
    assert rows[0]["cases"] == 2 and rows[0]["unpatrolled"] is True
    a05 = _by_code(rows)[unit_code(COMM_A, 5)]
    assert a05["cases"] == 1
    assert a05["cases_per_patrol_hour"] == pytest.approx(1 / (90 / 3600), rel=1e-3)


def test_warming_builds_the_raster_the_first_request_uses(case_city, session, settings):
    from service.patrol import coverage

    coverage._RASTERS.clear()
    coverage.CoverageService(session, settings).warm()
    assert len(coverage._RASTERS) == 1
    (raster,) = coverage._RASTERS.values()
    assert set(raster.codes) == {
        g.code
        for g in case_city.repo.list(
            coverage.GridFilter(city=case_city.city, at=coverage.now(), level="unit")
        )
    }

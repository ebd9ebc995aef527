"""Patrol in scope on the demo city: workers, tracks and coverage of the caller's grids only;
worker edits, patrol sessions and GPS fixes for workers outside the scope are 403 naming it,
and change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.settings import AppSettings
from tests.helpers.accounts import headers_of, seeded
from tests.helpers.scope import Places, demo_places

START = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)  # 09:00 in Zhengzhou


@pytest.fixture
def places(session: Session, demo_loaded: AppSettings) -> Places:
    return demo_places(session, demo_loaded)


@pytest.fixture
def workers(demo_client: TestClient, places: Places) -> dict[str, dict]:
    """W-IN walks a unit grid of the community, W-OUT one of the sibling community; each has
    a phone and a few fixes around its grid."""
    out = {}
    for code, grid, point in (
        ("W-IN", places.unit, places.unit_point),
        ("W-OUT", places.sibling_unit, places.sibling_point),
    ):
        body = {
            "code": code,
            "name": "巡查员",
            "phone": "13700000000",
            "grid_codes": [grid],
            "devices": [f"phone-{code}"],
        }
        r = demo_client.put(f"/api/patrol/workers/{code}", json=body)
        assert r.status_code == 201, r.text
        r = demo_client.post("/api/patrol/fixes", json=_fixes(f"phone-{code}", point))
        assert r.status_code == 200, r.text
        out[code] = body
    return out


def _fixes(device: str, point: tuple[float, float], start: datetime = START) -> dict:
    lon, lat = point
    fixes = [
        {
            "time": (start + timedelta(seconds=10 * k)).isoformat(),
            "lon": lon + 0.00002 * k,
            "lat": lat,
            "accuracy_m": 5,
        }
        for k in range(30)
    ]
    return {"device_id": device, "fixes": fixes}


def _gps_fixes(session: Session) -> int:
    return session.execute(text("SELECT count(*) FROM gps_fixes")).scalar_one()


def test_reads_show_the_workers_and_tracks_of_the_scope(
    demo_client: TestClient, places: Places, workers: dict
) -> None:
    inspector = headers_of(demo_client, "inspector", scope_grids=[places.community])
    listed = demo_client.get("/api/patrol/workers", headers=inspector).json()
    assert [w["code"] for w in listed] == ["W-IN"]
    assert demo_client.get("/api/patrol/workers/W-OUT", headers=inspector).status_code == 404
    window = {"from": START.isoformat(), "to": (START + timedelta(hours=1)).isoformat()}
    tracks = demo_client.get("/api/patrol/tracks", params=window, headers=inspector).json()
    assert {f["properties"]["worker"] for f in tracks["features"]} == {"W-IN"}
    assert tracks["numberMatched"] == len(tracks["features"])
    everyone = demo_client.get("/api/patrol/tracks", params=window).json()
    assert {f["properties"]["worker"] for f in everyone["features"]} == {"W-IN", "W-OUT"}
    # naming the other worker does not widen the scope
    other = demo_client.get(
        "/api/patrol/tracks", params=window | {"worker": "W-OUT"}, headers=inspector
    )
    assert other.status_code == 404


def test_coverage_rows_are_the_grids_of_the_scope(
    demo_client: TestClient, places: Places, workers: dict
) -> None:
    inspector = headers_of(demo_client, "inspector", scope_grids=[places.community])
    params = {"start": "2026-11-17T00:00:00", "period": "day"}
    rows = demo_client.get("/api/coverage/grids", params=params, headers=inspector).json()
    codes = {r["code"] for r in rows["grids"]}
    assert codes and all(c.startswith(places.community[:12]) for c in codes)
    assert places.unit in codes and places.sibling_unit not in codes
    problems = demo_client.get("/api/coverage/problems", params=params, headers=inspector)
    assert {r["code"][:12] for r in problems.json()["grids"]} == {places.community[:12]}
    blind = demo_client.get(
        "/api/coverage/blind-spots",
        params={"hours": 24, "at": "2026-11-18T00:00:00"},
        headers=inspector,
    ).json()
    assert all(g["code"].startswith(places.community[:12]) for g in blind["grids"])
    assert places.unit not in {g["code"] for g in blind["grids"]}  # W-IN walked there


def test_worker_edits_outside_the_scope_are_refused(
    demo_client: TestClient,
    places: Places,
    workers: dict,
    session: Session,
    demo_loaded: AppSettings,
) -> None:
    seeded(session, demo_loaded).save_role(
        "patrol_office", "巡查办", "patrol office", ["patrol.read", "patrol.edit"], by=SYSTEM
    )
    session.commit()
    office = headers_of(demo_client, "patrol_office", scope_grids=[places.community])
    before = demo_client.get("/api/patrol/workers/W-OUT").json()
    moved = workers["W-OUT"] | {"name": "改名"}
    r = demo_client.put("/api/patrol/workers/W-OUT", json=moved, headers=office)
    assert r.status_code == 403 and r.json()["field"] == "scope"
    assert places.community[:12] in r.json()["detail"]
    assert demo_client.get("/api/patrol/workers/W-OUT").json() == before
    # nor may a worker of the scope be given a grid outside it
    before = demo_client.get("/api/patrol/workers/W-IN").json()
    wider = workers["W-IN"] | {"grid_codes": [places.unit, places.sibling_unit]}
    r = demo_client.put("/api/patrol/workers/W-IN", json=wider, headers=office)
    assert r.status_code == 403
    assert demo_client.get("/api/patrol/workers/W-IN").json() == before
    # inside the scope it works
    renamed = workers["W-IN"] | {"name": "新名字"}
    r = demo_client.put("/api/patrol/workers/W-IN", json=renamed, headers=office)
    assert r.status_code == 200 and r.json()["name"] == "新名字"


def test_sessions_and_fixes_for_workers_outside_the_scope_are_refused(
    demo_client: TestClient, places: Places, workers: dict, session: Session
) -> None:
    phone = headers_of(demo_client, "grid_worker", scope_grids=[places.community])
    r = demo_client.post(
        "/api/patrol/sessions",
        json={"device_id": "phone-W-OUT", "started_at": "2026-11-18T09:00:00"},
        headers=phone,
    )
    assert r.status_code == 403 and r.json()["field"] == "scope"
    fixes_before = _gps_fixes(session)
    later = START + timedelta(days=1)
    r = demo_client.post(
        "/api/patrol/fixes",
        json=_fixes("phone-W-OUT", places.sibling_point, later),
        headers=phone,
    )
    assert r.status_code == 403 and "W-OUT" in r.json()["detail"]
    # a mixed batch is refused whole
    mixed = _fixes("phone-W-IN", places.unit_point, later)
    mixed["fixes"][0]["device_id"] = "phone-W-OUT"
    assert demo_client.post("/api/patrol/fixes", json=mixed, headers=phone).status_code == 403
    assert _gps_fixes(session) == fixes_before
    # the scope's own phone works
    ok = demo_client.post(
        "/api/patrol/fixes", json=_fixes("phone-W-IN", places.unit_point, later), headers=phone
    )
    assert ok.status_code == 200 and ok.json()["stored"] == 30
    started = demo_client.post(
        "/api/patrol/sessions",
        json={"device_id": "phone-W-IN", "started_at": "2026-11-18T13:00:00"},
        headers=phone,
    )
    assert started.status_code == 201
    other = demo_client.post(
        "/api/patrol/sessions",
        json={"device_id": "phone-W-OUT", "started_at": "2026-11-18T13:00:00"},
    )
    assert other.status_code == 201  # the admin, city-wide
    end = demo_client.post(
        f"/api/patrol/sessions/{other.json()['id']}/end",
        json={"ended_at": "2026-11-18T17:00:00"},
        headers=phone,
    )
    assert end.status_code == 403


def test_hotspot_coverage_lists_the_hotspots_touching_the_scope(
    demo_client: TestClient,
    places: Places,
    workers: dict,
    session: Session,
    demo_loaded: AppSettings,
) -> None:
    from service.demo import load_demo_hotspots

    load_demo_hotspots(session, demo_loaded)
    session.commit()
    street = headers_of(demo_client, "inspector", scope_grids=[places.street])
    params = {"start": "2026-11-16T00:00:00", "period": "week"}
    everyone = demo_client.get("/api/coverage/hotspots", params=params).json()["hotspots"]
    mine = demo_client.get("/api/coverage/hotspots", params=params, headers=street).json()
    touching = set(
        session.scalars(
            text(
                "SELECT h.id FROM hotspots h JOIN grids g ON ST_Intersects(g.geom, h.zone) "
                "WHERE h.city = :city AND g.city = :city AND g.code = :street "
                "AND g.valid_to IS NULL"
            ),
            {"city": demo_loaded.grids.city, "street": places.street},
        )
    )
    assert {h["id"] for h in mine["hotspots"]} == touching & {h["id"] for h in everyone}
    assert 0 < len(mine["hotspots"]) < len(everyone)

"""Workers, phones, sessions, GPS fix intake and tracks through the API (small city)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, text

from gis.datum import wgs84_to_gcj02
from service.db.models import GpsFix, PatrolTrack
from tests.conftest import TEST_CITY
from tests.helpers.city import COMM_A, X0, Y0, unit_code
from tests.helpers.patrol import CST, DAY, walk


@pytest.fixture
def worker(client, case_city):
    body = {
        "code": "W001",
        "name": "王伟",
        "team": "甲社区",
        "grid_codes": [unit_code(COMM_A, 5), unit_code(COMM_A, 6)],
        "devices": ["phone-1"],
    }
    r = client.put("/api/patrol/workers/W001", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_worker_is_saved_with_grids_and_phone(client, worker):
    assert worker["devices"] == ["phone-1"]
    again = client.put(
        "/api/patrol/workers/W001",
        json={"code": "W001", "name": "王伟", "devices": ["phone-1", "phone-2"]},
    )
    assert again.status_code == 200
    assert client.get("/api/patrol/workers/W001").json()["devices"] == ["phone-1", "phone-2"]


def test_worker_with_unknown_grid_or_someone_elses_phone_is_refused(client, worker):
    r = client.put(
        "/api/patrol/workers/W002",
        json={"code": "W002", "name": "李娜", "grid_codes": ["41010599999901"]},
    )
    assert r.status_code == 422 and r.json()["field"] == "grid_codes"
    r = client.put(
        "/api/patrol/workers/W002", json={"code": "W002", "name": "李娜", "devices": ["phone-1"]}
    )
    assert r.status_code == 409 and "W001" in r.json()["detail"]


def _mine(model):
    """This city's rows only: other tests of the run commit other cities' fixes (the CLI demo)."""
    return select(model).where(model.city == TEST_CITY)


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model).where(model.city == TEST_CITY))


def test_a_batch_is_stored_once_and_becomes_a_track(client, worker, session):
    fixes = walk([(0, 50), (400, 50)])
    r = client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["stored"] == len(fixes) and report["tracks_rebuilt"] == 1
    again = client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
    assert again.json()["stored"] == 0 and again.json()["replayed"] == len(fixes)
    assert _count(session, GpsFix) == len(fixes)
    assert _count(session, PatrolTrack) == 1
    track = session.scalars(_mine(PatrolTrack)).one()
    assert track.length_m == pytest.approx(396, abs=2)  # 33 steps of 12 m
    assert track.worker_code == "W001"


def test_tracks_endpoint_returns_lines_with_vertex_times(client, worker):
    fixes = walk([(0, 50), (200, 50)])
    client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
    r = client.get(
        "/api/patrol/tracks",
        params={"from": "2026-11-17T00:00:00", "to": "2026-11-18T00:00:00", "worker": "W001"},
    )
    assert r.status_code == 200
    (feature,) = r.json()["features"]
    coords = feature["geometry"]["coordinates"]
    assert len(coords) == len(fixes)
    assert coords[0] == pytest.approx([fixes[0]["lon"], fixes[0]["lat"]], abs=1e-7)
    times = feature["properties"]["times"]
    assert times[0] == pytest.approx(DAY.timestamp())
    assert times[-1] - times[0] == pytest.approx(10.0 * (len(fixes) - 1))


def test_bad_fixes_refuse_the_batch_and_store_nothing(client, worker, session):
    fixes = walk([(0, 50), (100, 50)])
    future = dict(fixes[1], time=(datetime.now(CST) + timedelta(days=1)).isoformat())
    far = dict(fixes[2], lon=fixes[2]["lon"] + 0.5)
    earlier = dict(fixes[3], time=(DAY - timedelta(hours=1)).isoformat())
    stranger = dict(fixes[4], device_id="phone-x")
    bad = [fixes[0], future, far, earlier, stranger] + fixes[5:]
    r = client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": bad})
    assert r.status_code == 422
    body = r.json()
    reasons = {e["row"]: (e["field"], e["reason"]) for e in body["errors"]}
    assert reasons[2][0] == "time" and "future" in reasons[2][1]
    assert reasons[3][0] == "lon" and "outside the city" in reasons[3][1]
    assert reasons[4][0] == "time" and "out of order" in reasons[4][1]
    assert reasons[5][0] == "device_id" and "phone-x" in reasons[5][1]
    assert body["error_count"] == 4
    assert _count(session, GpsFix) == 0
    # per-row acceptance stores the good ones and still lists the bad
    r = client.post(
        "/api/patrol/fixes", json={"device_id": "phone-1", "fixes": bad, "mode": "rows"}
    )
    assert r.status_code == 200
    assert r.json()["stored"] == len(bad) - 4 and r.json()["error_count"] == 4
    assert _count(session, GpsFix) == len(bad) - 4


def test_malformed_requests_name_the_field(client, worker):
    fixes = walk([(0, 50), (50, 50)])
    r = client.post(
        "/api/patrol/fixes", json={"device_id": "phone-1", "datum": "utm", "fixes": fixes}
    )
    assert r.status_code == 422 and "datum" in r.text
    r = client.post("/api/patrol/fixes", json={"fixes": fixes})
    assert r.status_code == 422 and r.json()["field"] == "device_id"
    r = client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": []})
    assert r.status_code == 422


def test_gcj02_fixes_are_stored_in_wgs84(client, worker, session):
    fixes = walk([(0, 50), (100, 50)])
    shifted = []
    for f in fixes:
        glon, glat = wgs84_to_gcj02(np.array([f["lon"]]), np.array([f["lat"]]))
        shifted.append(dict(f, lon=float(glon[0]), lat=float(glat[0])))
    r = client.post(
        "/api/patrol/fixes", json={"device_id": "phone-1", "datum": "gcj02", "fixes": shifted}
    )
    assert r.status_code == 200, r.text
    stored = session.scalars(_mine(GpsFix).order_by(GpsFix.at)).all()
    assert [s.lon for s in stored] == pytest.approx([f["lon"] for f in fixes], abs=1e-6)
    assert [s.lat for s in stored] == pytest.approx([f["lat"] for f in fixes], abs=1e-6)


def test_a_late_upload_joins_two_tracks_into_one(client, worker, session):
    fixes = walk([(0, 50), (400, 50)], step_s=30.0)
    first, middle, last = fixes[:10], fixes[10:25], fixes[25:]
    client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": first + last})
    assert _count(session, PatrolTrack) == 2  # 8 minutes of silence split the track
    client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": middle})
    assert _count(session, PatrolTrack) == 1
    assert session.scalars(_mine(PatrolTrack)).one().n_fixes == len(fixes)


def test_a_session_end_splits_the_track(client, worker, session):
    fixes = walk([(0, 50), (400, 50)])
    r = client.post(
        "/api/patrol/sessions", json={"device_id": "phone-1", "started_at": fixes[0]["time"]}
    )
    assert r.status_code == 201
    sid = r.json()["id"]
    assert client.post("/api/patrol/sessions", json={"device_id": "phone-1"}).status_code == 409
    end = client.post(f"/api/patrol/sessions/{sid}/end", json={"ended_at": fixes[15]["time"]})
    assert end.status_code == 200 and end.json()["device_id"] == "phone-1"
    client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
    tracks = session.scalars(_mine(PatrolTrack).order_by(PatrolTrack.started_at)).all()
    assert [t.n_fixes for t in tracks] == [15, len(fixes) - 15]


def test_fixes_sent_during_an_open_session_are_stored_in_its_track(client, worker, session):
    fixes = walk([(0, 50), (400, 50)])
    r = client.post(
        "/api/patrol/sessions", json={"device_id": "phone-1", "started_at": fixes[0]["time"]}
    )
    assert r.status_code == 201  # not ended: the phone page sends its fixes meanwhile
    r = client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
    assert r.status_code == 200, r.text
    tracks = session.scalars(_mine(PatrolTrack)).all()
    assert [t.n_fixes for t in tracks] == [len(fixes)]


GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
<trk><name>patrol</name><trkseg>
{points}
</trkseg></trk></gpx>
"""


def test_gpx_upload_stores_track_points(client, worker, session):
    fixes = walk([(0, 50), (120, 50)])
    points = "\n".join(
        f'<trkpt lat="{f["lat"]}" lon="{f["lon"]}"><time>'
        f"{datetime.fromisoformat(f['time']).astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        "</time></trkpt>"
        for f in fixes
    )
    files = {"file": ("walk.gpx", GPX.format(points=points).encode(), "application/gpx+xml")}
    r = client.post("/api/patrol/fixes/upload", files=files, data={"device_id": "phone-1"})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == len(fixes)
    r = client.post("/api/patrol/fixes/upload", files=files)
    assert r.status_code == 422 and r.json()["field"] == "device_id"


def test_malformed_gpx_is_refused_naming_the_file(client, worker, session):
    files = {"file": ("walk.gpx", b"<gpx><trk><trkseg><trkpt lat=", "application/gpx+xml")}
    r = client.post("/api/patrol/fixes/upload", files=files, data={"device_id": "phone-1"})
    assert r.status_code == 422 and r.json()["field"] == "file"
    assert _count(session, GpsFix) == 0


def test_csv_upload_with_per_row_errors(client, worker, session):
    fixes = walk([(0, 50), (60, 50)])
    lines = ["device_id,time,lon,lat,accuracy_m"]
    lines += [f"phone-1,{f['time']},{f['lon']},{f['lat']},5" for f in fixes]
    lines.append("phone-1,not a time,113.65,34.75,5")
    files = {"file": ("fixes.csv", "\n".join(lines).encode(), "text/csv")}
    r = client.post("/api/patrol/fixes/upload", files=files, data={"mode": "rows"})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == len(fixes)
    assert r.json()["errors"] == [
        {"row": len(fixes) + 1, "field": "time", "reason": r.json()["errors"][0]["reason"]}
    ]
    assert "ISO 8601" in r.json()["errors"][0]["reason"]


def test_stored_fix_times_are_exact(client, worker, session):
    fixes = walk([(0, 50), (30, 50)])
    fixes[1]["time"] = (DAY + timedelta(seconds=10, microseconds=250_001)).isoformat()
    client.post("/api/patrol/fixes", json={"device_id": "phone-1", "fixes": fixes})
    got = (
        session.execute(text(f"SELECT at FROM gps_fixes WHERE city = '{TEST_CITY}' ORDER BY at"))
        .scalars()
        .all()
    )
    assert got[1] == DAY + timedelta(seconds=10, microseconds=250_001)
    assert X0 and Y0  # the fixture city is in metres around (X0, Y0)

"""The request meter the start-up warm-up waits on: a request in flight is never quiet, a
finished one leaves the process quiet again, and a stop ends the wait."""

from __future__ import annotations

import threading

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.http.activity import Activity, ActivityMeter


def test_a_request_in_flight_keeps_the_process_busy_and_its_end_frees_it() -> None:
    activity = Activity()
    seen: list[tuple[int, float]] = []
    app = FastAPI()

    @app.get("/look")
    def look() -> dict[str, bool]:
        seen.append((activity.active, activity.quiet_for()))
        return {"ok": True}

    @app.get("/fail")
    def fail() -> None:
        raise RuntimeError("boom")

    client = TestClient(ActivityMeter(app, activity), raise_server_exceptions=False)
    assert client.get("/look").status_code == 200
    assert seen == [(1, 0.0)]
    assert client.get("/fail").status_code == 500
    assert activity.active == 0  # an error ends the request too
    assert activity.wait_quiet(0)


def test_the_wait_for_quiet_ends_when_stopped() -> None:
    activity = Activity()
    activity.begin()  # never ends
    stop = threading.Event()
    stop.set()
    assert activity.wait_quiet(3600, stop) is False
    activity.end()
    assert activity.quiet_for() >= 0 and activity.active == 0

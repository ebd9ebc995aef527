"""Overload: a burst beyond what the process serves is shed quickly with 503 + Retry-After, and
the service answers normally as soon as it ends (no lock-up, no leaked connections)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from bench.loadgen import Request, phases, run_load
from service.http.overload import AdmissionControl
from service.settings import AppSettings, DatabaseSettings, ServerSettings
from tests.helpers.servers import serve

# -- the admission middleware on its own ------------------------------------------------------


def _blocking_app(gate: asyncio.Event, started: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/work/{name}")
    async def work(name: str) -> dict[str, str]:
        started.append(name)
        await gate.wait()
        return {"done": name}

    return app


async def _burst(limit: int, queue: int, wait_s: float, n: int):
    gate = asyncio.Event()
    started: list[str] = []
    app = AdmissionControl(_blocking_app(gate, started), limit=limit, queue=queue, wait_s=wait_s)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        tasks = [asyncio.create_task(client.get(f"/work/{i}")) for i in range(n)]
        await asyncio.sleep(0.05)  # everyone has arrived: limit working, queue waiting
        early = [t.result() for t in tasks if t.done()]
        working = list(started)
        gate.set()
        answers = await asyncio.gather(*tasks)
    return app, early, working, answers, started


def test_requests_beyond_limit_and_queue_are_refused_at_once_with_retry_after() -> None:
    app, early, working, answers, started = asyncio.run(_burst(3, 2, 5.0, 10))
    # 3 working, 2 queued, 5 refused before any work finished
    assert len(working) == 3
    assert len(early) == 5
    assert all(r.status_code == 503 for r in early)
    assert all(r.headers["retry-after"] == "1" for r in early)
    assert "busy" in early[0].json()["detail"]
    # the queued ones ran when places were handed over; nothing else ran
    assert sorted(r.status_code for r in answers) == [200] * 5 + [503] * 5
    assert len(started) == 5
    assert app.active == 0 and not app.waiting


def test_a_request_waiting_longer_than_the_queue_wait_is_refused() -> None:
    app, early, working, answers, _ = asyncio.run(_burst(1, 5, 0.01, 3))
    assert len(working) == 1
    # both queued requests waited past 10 ms while the first one held the only place
    assert [r.status_code for r in early] == [503, 503]
    assert app.active == 0 and not app.waiting


def test_liveness_probe_is_never_shed() -> None:
    async def check() -> int:
        gate = asyncio.Event()
        inner = _blocking_app(gate, [])

        @inner.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        app = AdmissionControl(inner, limit=1, queue=0, wait_s=1.0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            busy = asyncio.create_task(client.get("/work/a"))
            await asyncio.sleep(0.05)
            status = (await client.get("/healthz")).status_code
            gate.set()
            await busy
        return status

    assert asyncio.run(check()) == 200


def test_pools_must_be_sized_above_the_admission_limit() -> None:
    server = ServerSettings(_env_file=None, max_active_requests=10)
    with pytest.raises(ValueError, match="CITYGRID_POOL_SIZE"):
        AppSettings(database=DatabaseSettings(_env_file=None, pool_size=10), server=server)
    with pytest.raises(ValueError, match="CITYGRID_THREADS"):
        AppSettings(server=ServerSettings(_env_file=None, max_active_requests=10, threads=4))
    sized = AppSettings(database=DatabaseSettings(_env_file=None), server=server)
    assert sized.pool_size() > 10 and sized.server.thread_count() >= 10


def test_the_app_applies_its_thread_limit(client: TestClient) -> None:
    # the lifespan sized the thread pool of the test client's event loop
    from anyio import to_thread

    tokens = client.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens)
    assert tokens == client.app.state.settings.server.thread_count()


# -- a real server process under a burst ------------------------------------------------------


@pytest.fixture
def server_process(demo_loaded: AppSettings, database_url: str, tmp_path: Path) -> Iterator[str]:
    """A server on the test database's demo city, with small pools."""
    env = {
        "CITYGRID_DATABASE_URL": database_url,
        "CITYGRID_PUBLIC_GRIDS": "true",  # locate as the public may: this is about load
        "CITYGRID_CITY": demo_loaded.grids.city,
        "CITYGRID_MAX_ACTIVE_REQUESTS": "4",
        "CITYGRID_MAX_QUEUED_REQUESTS": "8",
        "CITYGRID_QUEUE_WAIT_S": "0.2",
    }
    with serve(env, tmp_path / "server.log") as base:
        yield base


def _locate_requests(n: int) -> list[Request]:
    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(113.64, 113.69, n), rng.uniform(34.73, 34.77, n)
    return [
        Request(f"/api/grids/locate?lon={x:.6f}&lat={y:.6f}") for x, y in zip(lon, lat, strict=True)
    ]


def _idle_in_transaction(database_url: str) -> tuple[int, str]:
    engine: Engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT count(*), string_agg(query, ' | ') FROM pg_stat_activity"
                    " WHERE datname = current_database()"
                    " AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
                )
            ).one()
            return int(row[0]), str(row[1])
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.concurrency
def test_a_burst_is_shed_and_the_service_answers_normally_right_after(
    server_process: str, database_url: str
) -> None:
    requests = _locate_requests(1500)
    # far beyond what one process serves: 1,500 requests within half a second
    burst = run_load(server_process, requests.__getitem__, phases((3000, 0.5)), timeout=60)
    statuses = burst.statuses()
    # every request got an answer: served, outside every grid, or refused with a retry time
    assert set(statuses) <= {200, 404, 503}, statuses
    assert statuses.get(503, 0) > 0, "an overload this large must be shed"
    assert statuses.get(200, 0) + statuses.get(404, 0) > 0
    assert all(o.retry_after == "1" for o in burst.outcomes if o.status == 503)
    # right after the burst: normal answers, one after another
    with httpx.Client(base_url=server_process, timeout=10) as client:
        after = [client.get(r.path).status_code for r in requests[:30]]
    assert set(after) <= {200, 404} and after.count(200) > 0, after
    # no connection was left holding a transaction open
    open_transactions, queries = _idle_in_transaction(database_url)
    assert open_transactions == 0, queries

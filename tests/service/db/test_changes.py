"""Committed writes are announced by PostgreSQL and keep each process's in-memory answers fresh;
rolled-back and uncommitted writes are never seen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.clock import now
from service.db.changes import ChangeListener
from service.deps import SessionDep
from service.factory import create_app
from service.grids.registry import GridInput, Registry
from service.grids.repository import geom_of
from service.settings import AppSettings
from tests.helpers.city import COMM_A, point_lonlat, small_city, unit_code
from tests.helpers.servers import serve, wait_for

CITY = "990400"  # committed for real; the test database is dropped after the run


@pytest.fixture
def listener(database_url: str) -> Iterator[ChangeListener]:
    changes = ChangeListener.for_url(database_url).start()
    assert changes.healthy
    yield changes
    changes.stop()


def _bump(engine: Engine, table: str, commit: bool) -> None:
    with engine.connect() as conn:
        conn.execute(text(f"UPDATE {table} SET city = city WHERE false"))  # one statement
        conn.commit() if commit else conn.rollback()


def test_a_committed_write_moves_the_generation_a_rolled_back_one_does_not(
    engine: Engine, listener: ChangeListener
) -> None:
    grids, cases = listener.generation("grids"), listener.generation("cases")
    _bump(engine, "grids", commit=False)
    _bump(engine, "cases", commit=True)
    # notifications arrive in commit order: once the cases one is here, a grids one would be too
    assert wait_for(lambda: listener.generation("cases") != cases)
    assert listener.generation("grids") == grids
    _bump(engine, "grids", commit=True)
    assert wait_for(lambda: listener.generation("grids") != grids)


def test_a_listener_that_lost_its_connection_says_so_and_comes_back(
    database_url: str, admin_url: str
) -> None:
    changes = ChangeListener.for_url(database_url, retry_s=0.1).start()
    try:
        before = changes.generation("grids")
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN citygrid_changes%' AND pid <> pg_backend_pid()"
                )
            )
        admin.dispose()
        # back after a reconnect, with every generation moved (notifications may be missed)
        assert wait_for(lambda: changes.healthy and changes.generation("grids") != before)
    finally:
        changes.stop()
    assert not changes.healthy


def test_a_failed_commit_is_the_answer_not_a_200(settings_for, database_url: str) -> None:
    """The request's session commits before the response is sent: a commit that fails (here a
    deferred unique constraint, checked only at COMMIT) answers an error, never a success."""
    app = create_app(settings_for(CITY))

    @app.post("/test/deferred")
    def deferred(session: SessionDep) -> dict[str, str]:
        session.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS once (x int UNIQUE DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        session.execute(text("INSERT INTO once VALUES (1), (1)"))
        return {"stored": "yes"}

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/test/deferred")
    assert r.status_code == 500
    assert "stored" not in r.text


# -- a real server process: the HTTP locate answers from memory ---------------------------------


@pytest.fixture
def city_server(engine: Engine, database_url: str, settings_for, tmp_path: Path) -> Iterator[str]:
    """A small city committed under its own key, served by two worker processes."""
    settings: AppSettings = settings_for(CITY)
    with Session(engine) as session:
        registry = Registry(session, settings)
        if registry.repo.get(CITY, unit_code(COMM_A, 1), now()) is None:
            registry.write(small_city(), by=SYSTEM)
            session.commit()
    env = {
        "CITYGRID_DATABASE_URL": database_url,
        "CITYGRID_CITY": CITY,
        "CITYGRID_PUBLIC_GRIDS": "true",  # locate as the public may: this is about caching
    }
    with serve(env, tmp_path / "server.log", workers=2) as base:
        yield base


def _name_at(base: str, lon: float, lat: float) -> str:
    r = httpx.get(f"{base}/api/grids/locate", params={"lon": lon, "lat": lat}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["grid"]["name"])


@pytest.mark.slow
@pytest.mark.concurrency
def test_http_locate_sees_committed_changes_and_never_uncommitted_ones(
    city_server: str, engine: Engine, settings_for
) -> None:
    settings: AppSettings = settings_for(CITY)
    lon, lat = point_lonlat(50, 150)  # unit 1 of community A
    original = _name_at(city_server, lon, lat)
    assert original.startswith("甲社区")
    with Session(engine) as session:
        registry = Registry(session, settings)
        grid = registry.get(unit_code(COMM_A, 1))
        rename = GridInput(
            code=grid.code,
            level="unit",
            name="改名网格",
            geometry=geom_of(grid),
            parent_code=grid.parent_code,
        )
        registry.write([rename], by=SYSTEM)
        session.flush()
        # written but not committed: both processes keep answering the committed name
        assert all(_name_at(city_server, lon, lat) == original for _ in range(10))
        session.rollback()
    assert all(_name_at(city_server, lon, lat) == original for _ in range(10))
    with Session(engine) as session:
        registry = Registry(session, settings)
        registry.write([rename], by=SYSTEM)
        session.commit()
    # committed: every process (requests land on both) picks it up as soon as it is announced
    assert wait_for(lambda: all(_name_at(city_server, lon, lat) == "改名网格" for _ in range(10)))

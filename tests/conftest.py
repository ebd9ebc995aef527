"""Test fixtures: a throw-away PostGIS database per run and a rolled-back transaction per test.

The database server is ``CITYGRID_TEST_ADMIN_URL`` (default: the local PostgreSQL on
127.0.0.1:5432 as ``postgres``); when nothing answers there, a private cluster is initialised
in a temporary folder for the run. ``CITYGRID_TEST_DATABASE_URL`` instead names an existing
database to run on (already migrated; kept afterwards): the Citus tests point a run of chosen
suites at a Citus coordinator with it. Settings are always built explicitly: a developer's
environment never leaks into the tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db import migrations
from service.db.embedded import EmbeddedCluster
from service.db.engine import make_engine
from service.settings import (
    AppSettings,
    DatabaseSettings,
    GridSettings,
    PatrolSettings,
    PhotoSettings,
    PublicSettings,
)
from tests.helpers.databases import fresh_database

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TEST_CITY = "990100"  # empty city key: tests that need a blank registry
DEMO_CITY = "410100"  # the demo city, loaded once per run
_PHOTO_DIR = Path(tempfile.gettempdir()) / f"citygrid-test-photos-{os.getpid()}"


def _reachable(url: str) -> bool:
    u = make_url(url)
    try:
        psycopg.connect(
            host=u.host,
            port=u.port or 5432,
            user=u.username,
            dbname=u.database,
            password=u.password,
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    url = os.environ.get("CITYGRID_TEST_ADMIN_URL", DEFAULT_ADMIN_URL)
    if _reachable(url):
        yield url
        return
    # pytest's own temp folders are private to root; the cluster's server (run as the postgres
    # user when we are root) must be able to reach its folder
    root = Path(tempfile.mkdtemp(prefix="citygrid-test-pg-"))
    root.chmod(0o755)
    cluster = EmbeddedCluster(root, database="postgres")
    cluster.start()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    existing = os.environ.get("CITYGRID_TEST_DATABASE_URL")
    if existing:
        yield existing
        return
    yield from fresh_database(admin_url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrations.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session", autouse=True)
def _photo_files() -> Iterator[None]:
    """The run's photo files (uploads of the API tests) are removed when the run ends."""
    yield
    shutil.rmtree(_PHOTO_DIR, ignore_errors=True)


def make_settings(city: str, database_url: str, code_width: int = 14) -> AppSettings:
    return AppSettings(
        database=DatabaseSettings(_env_file=None, database_url=database_url),
        grids=GridSettings(
            _env_file=None,
            city=city,
            code_width=code_width,
            timezone="Asia/Shanghai",
            max_upload_mb=50,
        ),
        patrol=PatrolSettings(_env_file=None),
        # photo files of tests go to a temporary folder, never the project's var/
        photos=PhotoSettings(_env_file=None, dir=_PHOTO_DIR),
        public=PublicSettings(_env_file=None),
    )


@pytest.fixture(scope="session")
def demo_loaded(engine: Engine, database_url: str) -> AppSettings:
    """The demo city committed once per run under ``DEMO_CITY`` (tests roll back on top)."""
    from service.demo import load_demo_grids

    settings = make_settings(DEMO_CITY, database_url)
    with Session(engine) as session:
        load_demo_grids(session, settings)
        session.commit()
    return settings


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


@pytest.fixture
def sessions(connection: Connection) -> sessionmaker[Session]:
    """Sessions on the test's connection; their commits become savepoints, rolled back later."""
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as s:
        yield s


@pytest.fixture
def settings(database_url: str) -> AppSettings:
    return make_settings(TEST_CITY, database_url)


@pytest.fixture(scope="session")
def settings_for(database_url: str):
    """Settings for another city key on the test database (for committed, isolated data)."""
    return lambda city: make_settings(city, database_url)

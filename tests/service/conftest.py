from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.principal import SYSTEM
from service.factory import create_app
from service.grids.registry import Registry
from service.settings import AppSettings, AuthSettings, ServerSettings
from tests.helpers.accounts import admin_headers


@pytest.fixture
def client(
    settings: AppSettings, sessions: sessionmaker[Session], session: Session
) -> Iterator[TestClient]:
    """API client on an empty city, inside the test's rolled-back transaction, logged in as
    the city's admin (tests of permissions make clients of their own)."""
    with TestClient(create_app(settings, sessions=sessions)) as c:
        c.headers.update(admin_headers(session, settings))
        yield c


@pytest.fixture
def anonymous_client(
    settings: AppSettings, sessions: sessionmaker[Session]
) -> Iterator[TestClient]:
    """API client on the empty city that says nothing about who it is."""
    with TestClient(create_app(settings, sessions=sessions)) as c:
        yield c


@pytest.fixture
def demo_client(
    demo_loaded: AppSettings, sessions: sessionmaker[Session], session: Session
) -> Iterator[TestClient]:
    """API client on the demo city (changes roll back after the test), as the city's admin."""
    with TestClient(create_app(demo_loaded, sessions=sessions)) as c:
        c.headers.update(admin_headers(session, demo_loaded))
        yield c


@pytest.fixture
def registry(session: Session, settings: AppSettings) -> Registry:
    return Registry(session, settings)


@pytest.fixture
def demo_registry(session: Session, demo_loaded: AppSettings) -> Registry:
    return Registry(session, demo_loaded)


@pytest.fixture
def live_server(settings: AppSettings, sessions: sessionmaker[Session]) -> Iterator[str]:
    """The app served by uvicorn on a free port in a thread, inside the test's transaction,
    for real clients such as GDAL's ``ogrinfo``."""
    with _serve(settings, sessions) as url:
        yield url


@pytest.fixture
def demo_live_server(demo_loaded: AppSettings, sessions: sessionmaker[Session]) -> Iterator[str]:
    """``live_server`` on the demo city."""
    with _serve(demo_loaded, sessions) as url:
        yield url


@contextmanager
def _serve(settings: AppSettings, sessions: sessionmaker[Session]) -> Iterator[str]:
    import dataclasses
    import socket
    import threading
    import time

    import uvicorn

    # one connection carries the test's transaction: requests must take turns on it, which
    # the app's own admission control does when it admits one request at a time
    one_at_a_time = ServerSettings(
        _env_file=None, max_active_requests=1, max_queued_requests=10_000, queue_wait_s=600
    )
    # GIS clients (GDAL, OWSLib) read grid boundaries as the public may in a city that
    # publishes them; tests of private boundaries send a key (GDAL_HTTP_HEADERS)
    public = AuthSettings(_env_file=None, public_grids=True)
    settings = dataclasses.replace(settings, server=one_at_a_time, auth=public)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, sessions=sessions),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def case_city(registry: Registry, session: Session) -> Registry:
    """The small city with the standard catalogue, two hotspots and two routing rules."""
    from datetime import UTC, datetime

    from service.cases.catalogue import Catalogue, seed_catalogue
    from service.hotspots.hotspots import HotspotService
    from tests.helpers.city import COMM_B, hotspot_inputs, small_city

    since = datetime(2025, 1, 1, tzinfo=UTC)  # grids and hotspots exist well before any case
    registry.write(small_city(), at=since, by=SYSTEM)
    seed_catalogue(session, registry.city)
    spots = hotspot_inputs()
    for spot in spots:
        spot.active_from = since
    HotspotService(session, registry.settings).create(spots, by=SYSTEM)
    catalogue = Catalogue(session, registry.settings)
    catalogue.add_rule(
        category_prefix="05", department="城管执法中队", hotspot_owner_first=True, by=SYSTEM
    )
    catalogue.add_rule(
        category_prefix="0102", area_prefix=COMM_B[:12], department="乙社区环卫组", by=SYSTEM
    )
    session.commit()
    return registry

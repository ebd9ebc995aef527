from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.factory import AppSettings, create_app
from service.registry import Registry


@pytest.fixture
def client(settings: AppSettings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    """API client on an empty city, inside the test's rolled-back transaction."""
    with TestClient(create_app(settings, sessions=sessions)) as c:
        yield c


@pytest.fixture
def demo_client(demo_loaded: AppSettings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    """API client on the demo city (changes roll back after the test)."""
    with TestClient(create_app(demo_loaded, sessions=sessions)) as c:
        yield c


@pytest.fixture
def registry(session: Session, settings: AppSettings) -> Registry:
    return Registry(session, settings.scheme, settings.grids.city)


@pytest.fixture
def demo_registry(session: Session, demo_loaded: AppSettings) -> Registry:
    return Registry(session, demo_loaded.scheme, demo_loaded.grids.city)

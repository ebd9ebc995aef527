"""Accounts for tests: users with roles and scopes, and the headers that authenticate them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.accounts import AccountService, UserInput
from service.accounts.principal import SYSTEM
from service.db.models import User
from service.factory import create_app
from service.settings import AppSettings

_LOGINS = itertools.count(1)


def seeded(session: Session, settings: AppSettings) -> AccountService:
    """The city's accounts service with the seeded roles and admin account."""
    accounts = AccountService(session, settings)
    accounts.seed()
    return accounts


def make_user(
    session: Session,
    settings: AppSettings,
    *roles: str,
    scope_grids: list[str] | None = None,
    department: str | None = None,
    login: str | None = None,
    password: str = "correct horse battery",
    phone: str | None = None,
) -> User:
    """A new account with ``roles`` (the roles are seeded first)."""
    accounts = seeded(session, settings)
    return accounts.create_user(
        UserInput(
            login=login or f"user{next(_LOGINS)}",
            display_name="测试用户",
            password=password,
            roles=list(roles),
            scope_grids=scope_grids or [],
            department=department,
            phone=phone,
        ),
        SYSTEM,
    )


def bearer(session: Session, settings: AppSettings, user: User) -> dict[str, str]:
    """An ``Authorization`` header for ``user`` (an access token valid for an hour)."""
    token = AccountService(session, settings).access_token(user, datetime.now(UTC), 60)
    return {"Authorization": f"Bearer {token}"}


def admin_headers(session: Session, settings: AppSettings) -> dict[str, str]:
    """Headers of the city's seeded admin account."""
    accounts = seeded(session, settings)
    admin = accounts.user_by_login("admin")
    assert admin is not None
    return bearer(session, settings, admin)


@contextmanager
def admin_client(
    settings: AppSettings, sessions: sessionmaker[Session], session: Session
) -> Iterator[TestClient]:
    """A test client of an app on ``settings``, logged in as the city's admin."""
    with TestClient(create_app(settings, sessions=sessions)) as client:
        client.headers.update(admin_headers(session, settings))
        yield client


def headers_of(client: TestClient, *roles: str, **scope: object) -> dict[str, str]:
    """Headers of a new account with ``roles`` (and ``scope_grids`` / ``department``) in the
    city and on the database of ``client``'s app."""
    settings: AppSettings = client.app.state.settings  # type: ignore[attr-defined]
    sessions: sessionmaker[Session] = client.app.state.sessions  # type: ignore[attr-defined]
    with sessions() as session:
        user = make_user(session, settings, *roles, **scope)  # type: ignore[arg-type]
        headers = bearer(session, settings, user)
        session.commit()
    return headers


def verifier_headers(client: TestClient) -> dict[str, str]:
    """Headers of a city-wide grid supervisor (holds cases.verify, no grid limit), made once
    per app: verification is never done by whoever reported or fed back the case."""
    state = client.app.state  # type: ignore[attr-defined]
    known = getattr(state, "test_verifier_headers", None)
    if known is None:
        known = headers_of(client, "grid_worker")
        state.test_verifier_headers = known
    return known

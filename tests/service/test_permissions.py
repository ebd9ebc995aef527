"""The permission matrix: every route says who may call it, and says no to everyone else.

A route added without ``Allow(...)`` or ``Anyone()`` fails here, and so does a route that writes
with ``Anyone()`` (unless it is one of the login endpoints), so an endpoint cannot be left
open by accident. Then every route is called by nobody and by an account without permissions:
the first must get 401 (or the public answer), the second 403 naming the permission — and the
database must not change.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.accounts.principal import SYSTEM
from service.auth import Permission
from service.factory import create_app
from service.routers.pages import PageRoute
from tests.helpers.accounts import bearer, make_user, seeded
from tests.helpers.routes import api_routes

# Routes that write although anyone may call them: logging in needs no login.
OPEN_WRITES = {"/api/auth/token", "/api/auth/refresh", "/api/auth/logout", "/login", "/logout"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _permissions(route) -> list[Permission]:
    """The permission requirements a route's dependencies declare."""
    found, pending = [], list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        if isinstance(dep.call, Permission):
            found.append(dep.call)
        pending.extend(dep.dependencies)
    return found


def test_every_route_declares_who_may_call_it(client: TestClient) -> None:
    undeclared, open_writes = [], []
    for route in api_routes(client.app):
        permissions = _permissions(route)
        if not permissions:
            undeclared.append(f"{sorted(route.methods)} {route.path}")
        elif route.methods & WRITES and route.path not in OPEN_WRITES:
            if not any(p.permissions for p in permissions):
                open_writes.append(f"{sorted(route.methods)} {route.path}")
    assert undeclared == [], "routes without Allow(...) or Anyone()"
    assert open_writes == [], "routes that write but let anyone in"


def _url(path: str) -> str:
    values = {"fmt": "json", "layer": "grids", "z": "14", "x": "13365", "y": "6525"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


def _calls(app):
    for route in api_routes(app):
        permissions = _permissions(route)
        needed = {p for d in permissions for p in d.permissions}
        public = any(d.public is not None for d in permissions)
        if not needed:
            continue  # Anyone(): nothing to refuse
        for method in sorted(route.methods):
            yield method, route.path, needed, public, isinstance(route, PageRoute)


def _rows(session) -> dict[str, int]:
    tables = ("grids", "cases", "case_events", "hotspots", "categories", "routing_rules")
    return {
        t: session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
        for t in (*tables, "users", "api_keys", "workers", "gps_fixes", "audit_log")
    }


def test_nobody_gets_401_and_an_account_without_the_permission_403(
    settings, sessions, session
) -> None:
    seeded(session, settings).save_role("nothing", "无权限", "nothing", [], by=SYSTEM)
    nobody_in_particular = make_user(session, settings, "nothing")
    headers = bearer(session, settings, nobody_in_particular)
    before = _rows(session)
    checked = 0
    with TestClient(create_app(settings, sessions=sessions), follow_redirects=False) as client:
        for method, path, needed, public, page in _calls(client.app):
            url = _url(path)
            anonymous = client.request(method, url, json={})
            if page:  # a page sends nobody to the login form, and says 403 in HTML
                assert anonymous.status_code == 303, (method, path, anonymous.text)
                assert anonymous.headers["location"].startswith("/login?next=")
            elif not public:
                assert anonymous.status_code in (401, 403), (method, path, anonymous.text)
                if not path.startswith("/open311"):
                    assert anonymous.status_code == 401
                    assert anonymous.headers["www-authenticate"].startswith("Bearer")
            refused = client.request(method, url, json={}, headers=headers)
            if not public:
                assert refused.status_code == 403, (method, path, refused.text)
                assert any(p in refused.text for p in needed), (path, refused.text)
            checked += 1
    assert checked >= 50
    assert _rows(session) == before  # nothing was written by anyone refused


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
def test_a_malformed_credential_is_401_not_anonymous(client: TestClient, header: str) -> None:
    # a wrong credential is never quietly treated as no credential
    r = client.get("/api/grids", headers={"Authorization": header})
    assert r.status_code == 401, r.text

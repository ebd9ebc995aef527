"""Logging in and proving who you are: tokens, refresh, revocation, throttling, keys."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.accounts.accounts import AccountService, KeyInput, UserInput
from service.accounts.principal import SYSTEM
from service.db.models import RefreshToken, User
from service.settings import DEFAULT_ADMIN_PASSWORD, DEFAULT_SECRET_KEY, AuthSettings
from tests.helpers.accounts import bearer, make_user, seeded

PASSWORD = "correct horse battery"


def _login(client: TestClient, login: str, password: str = PASSWORD):
    return client.post("/api/auth/token", data={"username": login, "password": password})


def test_password_login_gives_tokens_that_work(anonymous_client, session, settings) -> None:
    user = make_user(session, settings, "dispatcher", login="zhang")
    r = _login(anonymous_client, "zhang")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    me = anonymous_client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert me["id"] == user.id and me["roles"] == ["dispatcher"]
    assert "cases.dispatch" in me["permissions"] and "users.admin" not in me["permissions"]
    stored = session.get(User, user.id)
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash


def test_wrong_password_and_unknown_login_answer_the_same_401(anonymous_client, session, settings):
    make_user(session, settings, "dispatcher", login="li")
    wrong = _login(anonymous_client, "li", "not the password")
    unknown = _login(anonymous_client, "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "wrong login or password"
    assert wrong.headers["www-authenticate"].startswith("Bearer")


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    anonymous_client, session, settings
) -> None:
    make_user(session, settings, "dispatcher", login="wang")
    for _ in range(settings.auth.login_max_failures):
        assert _login(anonymous_client, "wang", "guess").status_code == 401
    locked = _login(anonymous_client, "wang")  # the right password, too late
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "locked" in locked.json()["detail"]
    # nothing was handed out while locked
    user = AccountService(session, settings).user_by_login("wang")
    assert session.scalars(select(RefreshToken).where(RefreshToken.user_id == user.id)).all() == []


def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_family(
    anonymous_client, session, settings
) -> None:
    make_user(session, settings, "leader", login="chen")
    first = _login(anonymous_client, "chen").json()
    second = anonymous_client.post(
        "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200
    tokens = second.json()
    assert tokens["refresh_token"] != first["refresh_token"]
    # the first refresh token again: someone copied it; the whole family goes
    replay = anonymous_client.post(
        "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    after = anonymous_client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert after.status_code == 401


def test_logout_revokes_the_refresh_token(anonymous_client, session, settings) -> None:
    make_user(session, settings, "leader", login="zhou")
    tokens = _login(anonymous_client, "zhou").json()
    r = anonymous_client.post("/api/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    again = anonymous_client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 401


def _forged(claims: dict, key: str, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def test_forged_expired_and_foreign_tokens_are_401(anonymous_client, session, settings) -> None:
    user = make_user(session, settings, "admin", login="root2")
    now = datetime.now(UTC)
    good = {
        "sub": str(user.id),
        "city": settings.grids.city,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(
        b"="
    )
    payload = base64.urlsafe_b64encode(
        json.dumps(
            {**good, "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 300}
        ).encode()
    ).rstrip(b"=")
    unsigned = f"{header.decode()}.{payload.decode()}."
    cases = {
        "wrong key": _forged(good, "someone else's secret key, long enough for HS256"),
        "alg none": unsigned,
        "expired": _forged({**good, "exp": now - timedelta(seconds=1)}, settings.auth.secret_key),
        "another city": _forged({**good, "city": "999999"}, settings.auth.secret_key),
        "no subject": _forged(
            {"city": good["city"], "iat": now, "exp": good["exp"]}, settings.auth.secret_key
        ),
        "garbage": "a.b.c",
    }
    for name, token in cases.items():
        r = anonymous_client.get("/api/users", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (name, r.text)
    ok = anonymous_client.get(
        "/api/users", headers={"Authorization": f"Bearer {_forged(good, settings.auth.secret_key)}"}
    )
    assert ok.status_code == 200


def test_a_disabled_account_is_refused_at_once(anonymous_client, session, settings) -> None:
    user = make_user(session, settings, "leader", login="gone")
    headers = bearer(session, settings, user)
    assert anonymous_client.get("/api/cases", headers=headers).status_code == 200
    AccountService(session, settings).update_user(user.id, UserInput(active=False), SYSTEM)
    assert anonymous_client.get("/api/cases", headers=headers).status_code == 401
    assert _login(anonymous_client, "gone").status_code == 401


def test_api_keys_work_until_revoked_or_expired_and_record_their_use(
    anonymous_client, session, settings
) -> None:
    accounts = seeded(session, settings)
    key, secret = accounts.create_key(KeyInput("12345热线", ["cases.read"]), SYSTEM)
    assert key.secret_hash != secret and secret not in key.secret_hash
    assert anonymous_client.get("/api/cases", headers={"X-API-Key": secret}).status_code == 200
    session.refresh(key)
    assert key.last_used_at is not None
    # its permissions are its own: no more
    assert anonymous_client.get("/api/users", headers={"X-API-Key": secret}).status_code == 403
    accounts.revoke_key(key.id, SYSTEM)
    assert anonymous_client.get("/api/cases", headers={"X-API-Key": secret}).status_code == 401
    old, old_secret = accounts.create_key(
        KeyInput("old", ["cases.read"], expires_at=datetime.now(UTC) - timedelta(minutes=1)),
        SYSTEM,
    )
    assert anonymous_client.get("/api/cases", headers={"X-API-Key": old_secret}).status_code == 401


def test_the_admin_api_creates_keys_that_are_shown_once(client: TestClient) -> None:
    made = client.post("/api/keys", json={"name": "open311 app", "permissions": ["cases.report"]})
    assert made.status_code == 201
    secret = made.json()["key"]
    listed = client.get("/api/keys").json()
    assert secret not in json.dumps(listed)
    assert [k["prefix"] for k in listed if k["name"] == "open311 app"] == [made.json()["prefix"]]
    bad = client.post("/api/keys", json={"name": "x", "permissions": ["cases.everything"]})
    assert bad.status_code == 422 and bad.json()["field"] == "permissions"


def test_production_refuses_default_secrets() -> None:
    with pytest.raises(ValueError, match="CITYGRID_SECRET_KEY"):
        AuthSettings(_env_file=None, environment="production", admin_password="a-long-password")
    with pytest.raises(ValueError, match="CITYGRID_ADMIN_PASSWORD"):
        AuthSettings(_env_file=None, environment="production", secret_key="x" * 32)
    AuthSettings(
        _env_file=None, environment="production", secret_key="x" * 32, admin_password="long-enough"
    )
    assert DEFAULT_SECRET_KEY and DEFAULT_ADMIN_PASSWORD


def test_production_start_refuses_an_account_with_the_default_admin_password(
    settings_for, engine
) -> None:
    import dataclasses

    from sqlalchemy.orm import Session

    from service.factory import create_app

    settings = settings_for("990500")
    with Session(engine) as session:  # committed: the app reads it on its own connection
        AccountService(session, settings).seed()  # admin with the default password
        session.commit()
    production = dataclasses.replace(
        settings,
        auth=AuthSettings(
            _env_file=None, environment="production", secret_key="s" * 32, admin_password="new-pass"
        ),
    )
    with pytest.raises(RuntimeError, match="default admin password"):
        with TestClient(create_app(production)):
            pass

"""The web pages' login: the form, the session cookies, logout, the pages' redirects and 403s,
and CSRF on cookie-authenticated writes (as a browser does it, with TestClient's cookie jar)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.accounts.accounts import WEB_FAMILY, AccountService
from service.accounts.principal import SYSTEM
from service.auth import RENEWAL_COOKIE, SESSION_COOKIE
from service.db.models import RefreshToken
from service.factory import create_app
from service.http.csrf import COOKIE as CSRF_COOKIE
from service.settings import AppSettings
from tests.helpers.accounts import bearer, make_user, seeded

PASSWORD = "correct horse battery"


@pytest.fixture
def browser(settings: AppSettings, sessions) -> TestClient:
    """A client keeping cookies like a browser, saying nothing else about who it is."""
    with TestClient(create_app(settings, sessions=sessions), follow_redirects=False) as c:
        yield c


def _form_token(page: str) -> str:
    found = re.search(r'name="csrftoken" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _log_in(client: TestClient, login: str, password: str = PASSWORD, next_url: str = "/"):
    form = client.get("/login", params={"next": next_url})
    assert form.status_code == 200
    return client.post(
        "/login",
        data={
            "login": login,
            "password": password,
            "next": next_url,
            "csrftoken": _form_token(form.text),
        },
    )


def _replace_cookie(client: TestClient, name: str, value: str) -> None:
    """The browser now holds ``value`` as cookie ``name`` (and no other)."""
    for cookie in list(client.cookies.jar):
        if cookie.name == name:
            client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
    client.cookies.set(name, value)


def _set_cookies(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_the_login_page_is_chinese_first_and_offline(browser: TestClient) -> None:
    page = browser.get("/login")
    assert page.status_code == 200
    assert 'lang="zh-CN"' in page.text and "用户名" in page.text and "密码" in page.text
    assert "https://" not in page.text and "http://" not in page.text  # nothing from a CDN
    assert "<script" not in page.text and "style=" not in page.text  # no inline code
    english = browser.get("/login", params={"lang": "en"})
    assert "Login name" in english.text and 'lang="en"' in english.text
    assert browser.get("/static/citygrid/login.css").status_code == 200


def test_logging_in_sets_httponly_cookies_and_goes_to_next(
    browser: TestClient, session, settings
) -> None:
    make_user(session, settings, "dispatcher", login="zhao")
    r = _log_in(browser, "zhao", next_url="/?grid=99010000100000")
    assert r.status_code == 303 and r.headers["location"] == "/?grid=99010000100000"
    cookies = _set_cookies(r)
    for name in (SESSION_COOKIE, RENEWAL_COOKIE):
        header = cookies[name].lower()
        assert "httponly" in header and "samesite=lax" in header and "path=/" in header
        assert "secure" not in header  # plain HTTP here
    assert "max-age=900" in cookies[SESSION_COOKIE].lower()  # the short-lived access token
    renewal_age = int(re.search(r"max-age=(\d+)", cookies[RENEWAL_COOKIE].lower()).group(1))
    assert 8 * 3600 - 60 < renewal_age <= 8 * 3600  # the working day (CITYGRID_SESSION_HOURS)
    me = browser.get("/api/auth/me").json()
    assert me["login"] == "zhao" and me["roles"] == ["dispatcher"]


def test_cookies_are_secure_over_https(settings, sessions, session) -> None:
    make_user(session, settings, "dispatcher", login="qian")
    app = create_app(settings, sessions=sessions)
    with TestClient(app, base_url="https://citygrid.example", follow_redirects=False) as c:
        r = _log_in(c, "qian")
        assert r.status_code == 303
        for header in _set_cookies(r).values():
            assert "secure" in header.lower(), header
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_forwarded_proto_counts_only_from_a_trusted_proxy(settings, sessions) -> None:
    import dataclasses

    from service.settings import ServerSettings

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    # not trusted (the default): the header is a client's claim and changes nothing
    with TestClient(create_app(settings, sessions=sessions)) as c:
        r = c.get("/login", headers=forwarded)
        assert "secure" not in _set_cookies(r)[CSRF_COOKIE].lower()
        assert "strict-transport-security" not in r.headers
    # TestClient's peer is "testclient": trusted as the proxy, its header is believed
    trusting = dataclasses.replace(
        settings, server=ServerSettings(_env_file=None, trusted_proxies="testclient")
    )
    with TestClient(create_app(trusting, sessions=sessions)) as c:
        r = c.get("/login", headers=forwarded)
        assert "secure" in _set_cookies(r)[CSRF_COOKIE].lower()
        assert r.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "/login",
        "",
    ],
)
def test_next_never_leaves_the_site(browser: TestClient, session, settings, next_url) -> None:
    make_user(session, settings, "dispatcher", login=f"li{abs(hash(next_url)) % 10_000}")
    r = _log_in(browser, f"li{abs(hash(next_url)) % 10_000}", next_url=next_url)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_wrong_password_shows_the_form_again_in_chinese(
    browser: TestClient, session, settings
) -> None:
    make_user(session, settings, "dispatcher", login="zhou")
    r = _log_in(browser, "zhou", "not the password")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.text and 'value="zhou"' in r.text
    assert SESSION_COOKIE not in _set_cookies(r)
    unknown = _log_in(browser, "nobody-at-all", "not the password")
    assert unknown.status_code == 401 and "用户名或密码错误" in unknown.text


def test_a_locked_account_gets_429_and_says_so(browser: TestClient, session, settings) -> None:
    make_user(session, settings, "dispatcher", login="wu")
    for _ in range(settings.auth.login_max_failures):
        assert _log_in(browser, "wu", "guess").status_code == 401
    locked = _log_in(browser, "wu")  # the right password, too late
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "账号已被暂时锁定" in locked.text
    assert SESSION_COOKIE not in _set_cookies(locked)


def test_anonymous_pages_go_to_the_login_form_and_back(
    browser: TestClient, session, settings
) -> None:
    r = browser.get("/", params={"category": "05"})
    assert r.status_code == 303
    where = urlsplit(r.headers["location"])
    assert where.path == "/login" and parse_qs(where.query)["next"] == ["/?category=05"]
    make_user(session, settings, "dispatcher", login="zheng")
    back = _log_in(browser, "zheng", next_url="/?category=05")
    assert back.headers["location"] == "/?category=05"


def test_a_user_without_the_permission_gets_the_chinese_403_page(
    browser: TestClient, session, settings
) -> None:
    make_user(session, settings, "department", login="feng", department="环卫所")
    assert _log_in(browser, "feng").status_code == 303
    page = browser.get("/")
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "无权访问" in page.text and "maps.read" in page.text and "feng" in page.text
    assert "查看热力图与案件瓦片" in page.text  # the permission, described in Chinese


def test_logout_ends_the_session_and_revokes_its_renewal(
    browser: TestClient, session, settings
) -> None:
    make_user(session, settings, "dispatcher", login="chen")
    _log_in(browser, "chen")
    renewal = browser.cookies[RENEWAL_COOKIE]
    token = browser.cookies[CSRF_COOKIE]
    out = browser.post("/logout", data={"csrftoken": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    deleted = _set_cookies(out)
    assert "max-age=0" in deleted[SESSION_COOKIE].lower()
    assert "max-age=0" in deleted[RENEWAL_COOKIE].lower()
    assert browser.get("/").status_code == 303  # to the login form again
    # the renewal token is revoked: replaying the old cookie names nobody
    _replace_cookie(browser, RENEWAL_COOKIE, renewal)
    assert browser.get("/api/auth/me").json()["kind"] == "anonymous"
    rows = session.scalars(select(RefreshToken).where(RefreshToken.family.like(WEB_FAMILY + "%")))
    assert all(row.revoked_at is not None for row in rows)


def test_an_expired_access_cookie_is_renewed_within_the_working_day(
    browser: TestClient, session, settings
) -> None:
    user = make_user(session, settings, "dispatcher", login="wei")
    _log_in(browser, "wei")
    # the access token ran out (15 min): the renewal cookie mints the next one
    old = AccountService(session, settings).access_token(
        user, datetime.now(UTC) - timedelta(hours=1), 15
    )
    _replace_cookie(browser, SESSION_COOKIE, old)
    r = browser.get("/api/auth/me")
    assert r.json()["login"] == "wei"
    renewed = _set_cookies(r)[SESSION_COOKIE]
    assert "httponly" in renewed.lower() and "max-age=900" in renewed.lower()
    # once the working day is over, the browser is anonymous and its cookies are deleted
    session.execute(
        RefreshToken.__table__.update().values(expires_at=datetime.now(UTC) - timedelta(1))
    )
    _replace_cookie(browser, SESSION_COOKIE, old)
    r = browser.get("/api/auth/me")
    assert r.json()["kind"] == "anonymous"
    assert "max-age=0" in _set_cookies(r)[RENEWAL_COOKIE].lower()


def test_a_disabled_account_is_logged_out_of_the_pages(
    browser: TestClient, session, settings
) -> None:
    from service.accounts.accounts import UserInput

    user = make_user(session, settings, "dispatcher", login="jiang")
    _log_in(browser, "jiang")
    seeded(session, settings).update_user(user.id, UserInput(active=False), SYSTEM)
    assert browser.get("/").status_code == 303


# -- CSRF ---------------------------------------------------------------------------------------
def _role_body(name: str) -> dict:
    return {"name_zh": name, "name_en": name, "permissions": ["grids.read"]}


def test_a_cookie_write_without_the_csrf_token_is_403_and_changes_nothing(
    browser: TestClient, session, settings
) -> None:
    make_user(session, settings, "admin", login="admin2")
    assert _log_in(browser, "admin2").status_code == 303
    before = {r.key for r in seeded(session, settings).roles()}
    refused = browser.put("/api/roles/viewer", json=_role_body("viewer"))
    assert refused.status_code == 403
    assert refused.json()["field"] == "x-csrftoken" and "CSRF" in refused.json()["detail"]
    forged = browser.put(
        "/api/roles/viewer", json=_role_body("viewer"), headers={"X-CSRFToken": "forged"}
    )
    assert forged.status_code == 403
    session.expire_all()
    assert {r.key for r in seeded(session, settings).roles()} == before
    # with the token (the double-submitted cookie) the same write works
    token = browser.cookies[CSRF_COOKIE]
    done = browser.put(
        "/api/roles/viewer", json=_role_body("viewer"), headers={"X-CSRFToken": token}
    )
    assert done.status_code in (200, 201), done.text
    session.expire_all()
    assert "viewer" in {r.key for r in seeded(session, settings).roles()}


def test_a_cookie_post_without_the_csrf_token_creates_nothing(
    browser: TestClient, session, settings
) -> None:
    make_user(session, settings, "admin", login="admin4")
    assert _log_in(browser, "admin4").status_code == 303
    body = {
        "login": "newcomer",
        "display_name": "新人",
        "password": PASSWORD,
        "roles": ["inspector"],
    }
    refused = browser.post("/api/users", json=body)
    assert refused.status_code == 403 and refused.json()["field"] == "x-csrftoken"
    assert seeded(session, settings).user_by_login("newcomer") is None
    done = browser.post(
        "/api/users", json=body, headers={"X-CSRFToken": browser.cookies[CSRF_COOKIE]}
    )
    assert done.status_code == 201, done.text
    assert seeded(session, settings).user_by_login("newcomer") is not None


def test_bearer_and_api_key_writes_need_no_csrf_token(
    anonymous_client: TestClient, session, settings
) -> None:
    admin = make_user(session, settings, "admin", login="admin3")
    r = anonymous_client.put(
        "/api/roles/viewer2", json=_role_body("viewer2"), headers=bearer(session, settings, admin)
    )
    assert r.status_code in (200, 201), r.text
    key = anonymous_client.post(
        "/api/keys",
        json={"name": "12345 hotline", "permissions": ["users.admin"]},
        headers=bearer(session, settings, admin),
    )
    assert key.status_code == 201, key.text
    r = anonymous_client.put(
        "/api/roles/viewer4", json=_role_body("viewer4"), headers={"X-API-Key": key.json()["key"]}
    )
    assert r.status_code in (200, 201), r.text
    # even with a stale session cookie beside it: the bearer token is what authenticates
    anonymous_client.cookies.set(SESSION_COOKIE, "stale")
    r = anonymous_client.put(
        "/api/roles/viewer3", json=_role_body("viewer3"), headers=bearer(session, settings, admin)
    )
    assert r.status_code in (200, 201), r.text


def test_logout_and_login_forms_refuse_a_missing_token(
    browser: TestClient, session, settings
) -> None:
    make_user(session, settings, "dispatcher", login="han")
    # login CSRF: a hostile page cannot log the browser in under its account
    browser.get("/login")
    r = browser.post("/login", data={"login": "han", "password": PASSWORD, "next": "/"})
    assert r.status_code == 403 and "安全校验失败" in r.text
    assert SESSION_COOKIE not in _set_cookies(r)
    assert _log_in(browser, "han").status_code == 303
    # a logout without the token leaves the session as it was
    r = browser.post("/logout", data={})
    assert r.status_code == 403
    assert browser.get("/api/auth/me").json()["login"] == "han"
    rows = session.scalars(select(RefreshToken).where(RefreshToken.family.like(WEB_FAMILY + "%")))
    assert all(row.revoked_at is None for row in rows)


def test_an_api_refresh_token_is_no_renewal_cookie(browser: TestClient, session, settings) -> None:
    # the API's refresh tokens rotate and detect reuse; as a renewal cookie one would mint
    # access tokens without either, so it names nobody there
    user = make_user(session, settings, "dispatcher", login="yang")
    tokens = AccountService(session, settings).issue_tokens(user)
    _replace_cookie(browser, RENEWAL_COOKIE, tokens.refresh_token)
    r = browser.get("/api/auth/me")
    assert r.json()["kind"] == "anonymous"
    assert "max-age=0" in _set_cookies(r)[RENEWAL_COOKIE].lower()

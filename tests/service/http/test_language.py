"""The pages' language as a browser meets it: Chinese by default, ``?lang=en`` switches and is
remembered in a cookie (Accept-Language is not consulted); the 403 page, the login errors and
the map page follow it; the API's JSON errors do not change."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.factory import create_app
from service.http.language import LANG_COOKIE
from service.settings import AppSettings
from tests.helpers.accounts import make_user

PASSWORD = "correct horse battery"


@pytest.fixture
def browser(settings: AppSettings, sessions) -> TestClient:
    """A client keeping cookies like a browser."""
    with TestClient(create_app(settings, sessions=sessions), follow_redirects=False) as c:
        yield c


def _log_in(client: TestClient, login: str) -> None:
    form = client.get("/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', form.text).group(1)
    r = client.post(
        "/login", data={"login": login, "password": PASSWORD, "next": "/", "csrftoken": token}
    )
    assert r.status_code == 303, r.text


def test_lang_switches_and_the_cookie_remembers_it(browser: TestClient) -> None:
    assert 'lang="zh-CN"' in browser.get("/login").text
    english = browser.get("/login", params={"lang": "en"})
    assert "Login name" in english.text and '<html lang="en">' in english.text
    cookie = english.headers["set-cookie"]
    assert cookie.startswith(f"{LANG_COOKIE}=en;") and "max-age=31536000" in cookie.lower()
    # the next page without a lang: still English, and no cookie set again
    again = browser.get("/login")
    assert "Login name" in again.text and LANG_COOKIE not in again.headers.get("set-cookie", "")
    # the switch back to Chinese, and a lang no page knows is ignored
    assert "用户名" in browser.get("/login", params={"lang": "zh_CN"}).text
    assert "用户名" in browser.get("/login", params={"lang": "xx"}).text


def test_an_english_browser_still_gets_chinese_until_it_switches(browser: TestClient) -> None:
    page = browser.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "用户名" in page.text and "Login name" not in page.text
    switched = browser.get("/login", params={"lang": "en"}, headers={"Accept-Language": "en"})
    assert "Login name" in switched.text


def test_login_errors_and_the_403_page_in_the_chosen_language(
    browser: TestClient, session, settings
) -> None:
    make_user(session, settings, "department", login="feng", department="环卫所")
    browser.get("/login", params={"lang": "en"})
    form = browser.get("/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', form.text).group(1)
    wrong = browser.post(
        "/login", data={"login": "feng", "password": "nope", "lang": "en", "csrftoken": token}
    )
    assert wrong.status_code == 401 and "Wrong login name or password" in wrong.text
    _log_in(browser, "feng")
    refused = browser.get("/", params={"grid": "1"})
    assert refused.status_code == 403 and "403 Not allowed" in refused.text
    assert "maps.read" in refused.text and '<html lang="en">' in refused.text
    switch = re.search(r'<a href="([^"]+)" lang="zh-CN">中文</a>', refused.text).group(1)
    assert "grid=1" in switch and "lang=zh_CN" in switch
    chinese = browser.get(switch.replace("&amp;", "&"))
    assert chinese.status_code == 403 and "403 无权访问" in chinese.text


def test_the_map_page_in_both_languages(client: TestClient, case_city) -> None:
    chinese = client.get("/")
    assert chinese.status_code == 200 and '<html lang="zh-CN">' in chinese.text
    assert "<title>citygrid 指挥调度地图</title>" in chinese.text
    assert '"locale": "zh-CN"' in chinese.text  # the script's texts, as JSON
    english = client.get("/", params={"lang": "en"})
    assert '<html lang="en">' in english.text
    assert "<title>citygrid dispatcher map</title>" in english.text and "Apply" in english.text
    assert re.search(r'href="/\?from=[^"]*&amp;lang=zh_CN"\s+lang="zh-CN">中文</a>', english.text)


def test_api_errors_stay_as_they_are(client: TestClient, case_city) -> None:
    r = client.get("/api/heat/grids", params={"from": "x", "lang": "zh_CN"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")


def test_the_scripts_texts_are_served_per_language(anonymous_client: TestClient) -> None:
    r = anonymous_client.get("/i18n/zh_CN.json")
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    body = r.json()
    assert body["locale"] == "zh-CN" and body["timezone"] == "Asia/Shanghai"
    assert body["messages"]["Loading {title} …"] == "正在加载{title}…"
    assert anonymous_client.get("/i18n/en.json").json()["messages"]["yes"] == "yes"
    missing = anonymous_client.get("/i18n/fr.json")
    assert missing.status_code == 404 and missing.json()["field"] == "locale"

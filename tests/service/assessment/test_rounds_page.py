"""The cross-scoring page (``/assessment/rounds``): who gets it and what it holds, the link to
it from the map, and the API routes its script relies on (the checklist of one grid, the
rounds' grid names and levels)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.factory import create_app
from service.grids.registry import Registry
from service.settings import AppSettings
from tests.helpers.accounts import admin_headers, bearer, make_user
from tests.helpers.city import COMM_A, COMM_B, unit_code

PAGE = "/assessment/rounds"
API = "/api/assessment/rounds"
A1, B1 = unit_code(COMM_A, 1), unit_code(COMM_B, 1)


@pytest.fixture
def web(
    case_city: Registry, settings: AppSettings, sessions: sessionmaker[Session]
) -> Iterator[TestClient]:
    """A client of the small city that follows no redirect and says nothing about itself."""
    with TestClient(create_app(settings, sessions=sessions), follow_redirects=False) as c:
        yield c


def _as(session: Session, settings: AppSettings, role: str, **scope: Any) -> dict[str, str]:
    user = make_user(session, settings, role, **scope)
    session.commit()
    return bearer(session, settings, user)


def test_an_organiser_gets_the_whole_page_in_chinese(
    web: TestClient, session: Session, settings: AppSettings
) -> None:
    page = web.get(PAGE, params={"period": "2026-11"}, headers=_as(session, settings, "leader"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert '<html lang="zh-CN">' in text
    for label in ("网格交叉考核打分", "考核轮次", "轮换方案（评分人 → 网格）", "编辑分配"):
        assert label in text
    for label in ("开启考核", "结束考核", "考核结果", "交叉考核得分", "综合得分", "红黄榜"):
        assert label in text
    # a leader also scores: the assignments and the checklist form
    for label in ("我的评分任务", "考核项目", "满分", "得分", "提交评分表"):
        assert label in text
    assert 'id="rounds-organiser"' in text and 'id="rounds-scorer"' in text
    assert 'data-period="2026-11"' in text and f'data-api="{API}"' in text
    # the script is a file of the service, the page has no inline script and no CDN
    assert '<script src="/static/citygrid/rounds.js" defer></script>' in text
    # (the other script block is the texts of rounds.js as JSON: data, never run)
    assert text.count("<script") == 2 and "http://" not in text and "https://" not in text
    assert text.count('<script type="application/json" id="citygrid-i18n">') == 1
    assert web.get("/static/citygrid/rounds.js").status_code == 200
    assert web.get("/static/citygrid/rounds.css").status_code == 200


def test_a_scorer_sees_only_the_scoring_part(
    web: TestClient, session: Session, settings: AppSettings
) -> None:
    page = web.get(PAGE, headers=_as(session, settings, "inspector", scope_grids=[COMM_B]))
    assert page.status_code == 200
    assert "我的评分任务" in page.text and 'id="rounds-scorer"' in page.text
    assert 'id="rounds-organiser"' not in page.text and "编辑分配" not in page.text


def test_logged_in_on_the_form_the_page_carries_the_csrf_token_of_the_cookie(
    web: TestClient, session: Session, settings: AppSettings
) -> None:
    make_user(session, settings, "inspector", login="wu", password="correct horse battery")
    session.commit()
    form = web.get("/login", params={"next": PAGE})
    token = re.search(r'name="csrftoken" value="([^"]+)"', form.text)
    assert token is not None
    login = {"login": "wu", "password": "correct horse battery", "next": PAGE}
    done = web.post("/login", data={**login, "csrftoken": token.group(1)})
    assert done.status_code == 303 and done.headers["location"] == PAGE
    page = web.get(PAGE)
    assert page.status_code == 200 and 'class="citygrid-account-name">测试用户 (wu)<' in page.text
    assert f'data-csrf="{web.cookies["csrftoken"]}"' in page.text
    assert 'action="/logout"' in page.text  # and the logout button


def test_english_on_request(web: TestClient, session: Session, settings: AppSettings) -> None:
    page = web.get(PAGE, params={"lang": "en"}, headers=_as(session, settings, "leader"))
    assert page.status_code == 200 and '<html lang="en">' in page.text
    assert "Inspection rounds" in page.text and "Rotation (scorer → grids)" in page.text
    assert 'data-lang="en"' in page.text and "中文" in page.text


def test_nobody_is_sent_to_the_login_form(web: TestClient) -> None:
    r = web.get(PAGE, params={"period": "2026-10"})
    assert r.status_code == 303
    where = urlsplit(r.headers["location"])
    assert where.path == "/login"
    assert parse_qs(where.query)["next"] == [f"{PAGE}?period=2026-10"]


def test_a_grid_worker_gets_the_chinese_403_page(
    web: TestClient, session: Session, settings: AppSettings
) -> None:
    page = web.get(PAGE, headers=_as(session, settings, "grid_worker", scope_grids=[A1]))
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "无权访问" in page.text
    assert "assessment.rounds" in page.text and "assessment.score" in page.text


def test_a_month_that_is_no_month_is_a_422_page_naming_period(
    web: TestClient, session: Session, settings: AppSettings
) -> None:
    page = web.get(PAGE, params={"period": "2026-13"}, headers=_as(session, settings, "leader"))
    assert page.status_code == 422 and "period" in page.text and "2026-13" in page.text


def test_the_map_links_to_the_page_for_those_who_may_open_it(
    web: TestClient, session: Session, settings: AppSettings
) -> None:
    leader = web.get("/", headers=_as(session, settings, "leader"))
    assert leader.status_code == 200
    assert f'href="{PAGE}"' in leader.text and "交叉考核打分" in leader.text
    worker = web.get("/", headers=_as(session, settings, "grid_worker", scope_grids=[A1]))
    assert worker.status_code == 200 and f'href="{PAGE}"' not in worker.text


# -- the API the page's script calls ------------------------------------------------------------
def test_the_checklist_of_a_grid_lists_the_items_that_apply_there(
    web: TestClient, session: Session, settings: AppSettings
) -> None:
    scorer = make_user(session, settings, "inspector", scope_grids=[COMM_B])
    session.commit()
    admin = admin_headers(session, settings)
    created = web.post(
        API, json={"period": "2026-11", "grids": [A1], "scorers": [scorer.login]}, headers=admin
    )
    assert created.status_code == 201, created.text
    rnd = created.json()
    assert rnd["grid_info"] == {A1: {"name": rnd["grid_info"][A1]["name"], "level": "unit"}}
    assert rnd["grid_info"][A1]["name"]
    mine = bearer(session, settings, scorer)
    form = web.get(f"{API}/{rnd['id']}/checklist", params={"grid": A1}, headers=mine)
    assert form.status_code == 200, form.text
    body = form.json()
    codes = [i["code"] for i in body["items"]]
    # no construction site touches A1: dust (扬尘) does not apply, 90 points do
    assert "yc" not in codes and len(codes) == 7 and body["max_points"] == 90
    assert body["grid"] == A1 and body["items"][0]["name_zh"].startswith("门前三包")
    other = web.get(f"{API}/{rnd['id']}/checklist", params={"grid": B1}, headers=mine)
    assert other.status_code == 422 and other.json()["field"] == "grid"
    # someone who neither organises over A1 nor scores in the round may not read it
    outsider = _as(session, settings, "inspector", scope_grids=[COMM_B])
    refused = web.get(f"{API}/{rnd['id']}/checklist", params={"grid": A1}, headers=outsider)
    assert refused.status_code == 403

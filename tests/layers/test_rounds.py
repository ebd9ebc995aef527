"""The cross-scoring page's HTML (layers/rounds.py): parts by permission, escaping, no inline
script, and the map panel's link to it."""

from __future__ import annotations

import pytest

from layers.controls import Account, Choice, FilterPanel
from layers.rounds import ROUNDS_JS, RoundsPage, rounds_page


def _page(**kw: object) -> str:
    base = {"who": "王伟 (wang)", "period": "2026-11", "organiser": True, "scorer": True}
    return rounds_page(RoundsPage(**{"csrf_token": "tok", **base, **kw}))  # type: ignore[arg-type]


def test_parts_follow_the_permissions() -> None:
    both = _page()
    assert 'id="rounds-organiser"' in both and 'id="rounds-scorer"' in both
    scorer = _page(organiser=False)
    assert 'id="rounds-organiser"' not in scorer and "我的评分任务" in scorer
    organiser = _page(scorer=False)
    assert "考核轮次" in organiser and 'id="sheet-form"' not in organiser


def test_the_script_is_a_file_and_every_value_is_escaped() -> None:
    html = _page(who='<img src=x onerror="alert(1)">', csrf_token='"><script>')
    # one script to run; the other block is its texts as JSON (data, never run)
    assert html.count("<script") == 2 and f'<script src="{ROUNDS_JS}" defer>' in html
    assert html.count('<script type="application/json" id="citygrid-i18n">') == 1
    assert "<img" not in html and "&lt;img" in html
    assert 'data-csrf="&quot;&gt;&lt;script&gt;"' in html


def test_without_a_web_session_there_is_no_logout_button() -> None:
    assert 'action="/logout"' in _page()
    assert 'action="/logout"' not in _page(logout_action=None)


def test_english_and_the_urls_must_be_paths() -> None:
    assert "Inspection rounds" in _page(lang="en") and 'lang="en"' in _page(lang="en")
    with pytest.raises(ValueError):
        RoundsPage(who="x", period="2026-11", organiser=True, scorer=True, csrf_token="",
                   rounds_api="https://elsewhere/api")  # fmt: skip


def test_the_map_panel_links_the_pages_of_the_account() -> None:
    account = Account("王伟", links=(("交叉考核打分", "/assessment/rounds"),))
    panel = FilterPanel(
        first_day="2026-11-01",
        last_day="2026-11-30",
        category=None,
        grid=None,
        categories=[Choice("01", "01 市容")],
        note=[],
        account=account,
    )
    html = panel._template.module.html(panel, {})
    assert '<a href="/assessment/rounds">交叉考核打分</a>' in html
    with pytest.raises(ValueError):
        FilterPanel(
            first_day="2026-11-01",
            last_day="2026-11-30",
            category=None,
            grid=None,
            categories=[],
            note=[],
            account=Account("x", links=(("elsewhere", "https://example.org/"),)),
        )

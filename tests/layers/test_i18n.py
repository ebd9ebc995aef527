"""The pages' catalogues (layers/i18n.py): every marked text translated in both languages, no
UI text left in code, every page rendered in both, the choice of language, local formats."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from layers.i18n import (
    LOCALE_DIR,
    LOCALES,
    js_catalogue,
    messages,
    missing,
    negotiate,
    normalize,
)
from layers.i18n_extract import extracted
from layers.login import forbidden_page, login_page
from layers.page import BaseMap, PageFilter, PageOptions, dispatcher_page, error_page
from layers.rounds import RoundsPage, rounds_page
from tests.helpers.citizen import citizen_pages

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ROOT / "layers"
SCRIPTS = LAYERS / "static" / "citygrid"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
HOLES = re.compile(r"\{(\w+)")


def _catalogue(locale: str) -> dict[str, object]:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id: m for m in read_po(f, locale=locale) if m.id}


def _extracted_with_babel_cfg() -> set[str]:
    """What ``make messages`` extracts: Babel driven by babel.cfg over the repository."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_babel_cfg_finds_the_texts_of_every_page_and_script() -> None:
    msgids = _extracted_with_babel_cfg()
    assert msgids == set(extracted([*LAYERS.glob("*.py"), *SCRIPTS.glob("*.js")]))
    # one text of each source, the f-string and script ones included
    for msgid in ("Login name", "Inspection rounds", "Grid code", "Loading {title} …", "draft"):
        assert msgid in msgids


@pytest.mark.parametrize("locale", LOCALES)
def test_every_text_has_a_translation_with_the_same_holes(locale: str) -> None:
    catalogue = _catalogue(locale)
    msgids = _extracted_with_babel_cfg()
    untranslated = sorted(m for m in msgids if m not in catalogue or not catalogue[m].string)
    assert untranslated == [], f"run `make messages` and translate these in {locale}"
    fuzzy = sorted(m for m in msgids if "fuzzy" in catalogue[m].flags)
    assert fuzzy == []
    stale = sorted(set(catalogue) - msgids)
    assert stale == [], "texts no page uses any more: run `make messages`"
    for msgid in msgids:
        assert set(HOLES.findall(catalogue[msgid].string)) == set(HOLES.findall(msgid)), msgid


def test_the_chinese_catalogue_is_chinese() -> None:
    catalogue = _catalogue("zh_CN")
    # every text with a word in it reads in Chinese (codes and formats like "Gi*" may stay)
    english = [
        m for m, e in catalogue.items() if re.search(r"[a-z]{3}", m) and not CJK.search(e.string)
    ]
    assert english == []


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """String constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


@pytest.mark.parametrize("path", sorted(LAYERS.glob("*.py")), ids=lambda p: p.name)
def test_no_chinese_text_is_written_in_the_pages_code(path: Path) -> None:
    allowed = {"中文"}  # the language switch names Chinese in Chinese on every page
    found = [
        (n, s)
        for n, s in _string_constants(path)
        if CJK.search(s) and s not in allowed and not s.startswith("©")  # providers' names
    ]
    assert found == [], "page texts belong in layers/locale (msgid in English)"


@pytest.mark.parametrize("path", sorted(SCRIPTS.glob("*.js")), ids=lambda p: p.name)
def test_the_scripts_hold_no_ui_text_of_their_own(path: Path) -> None:
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(encoding="utf-8"), flags=re.S)
    assert not CJK.search(code)
    # text put on the page is either a catalogue text or built from data
    for pattern in (r"textContent\s*=\s*\"[^\"]*[A-Za-z]", r"\btext:\s*\"[^\"]*[A-Za-z]"):
        assert not re.search(pattern, code), pattern
    assert "var TEXTS" not in code


@pytest.mark.parametrize("locale", LOCALES)
def test_the_scripts_catalogue_has_every_text_they_ask_for(locale: str) -> None:
    texts = js_catalogue(locale)
    asked = set(extracted(SCRIPTS.glob("*.js")))
    assert set(texts) == asked and all(texts.values())
    if locale == "zh_CN":
        assert texts["yes"] == "是" and texts["Loading {title} …"] == "正在加载{title}…"


# -- every page in both languages ----------------------------------------------------------------
def _pages(locale: str) -> dict[str, str]:
    flt = PageFilter(date(2026, 11, 16), date(2026, 11, 22), None, None)
    options = PageOptions((113.6, 34.7, 113.7, 34.8), flt, locale=locale)
    return {
        "map": dispatcher_page(options),
        "login": login_page(action="/login", next_url="/", csrf_token="t", lang=locale),
        "wrong login": login_page(
            action="/login",
            next_url="/",
            csrf_token="t",
            lang=locale,
            message=messages(locale).gettext("Wrong login name or password; please try again."),
        ),
        "403": forbidden_page(
            who="w", permission="maps.read", login_url="/login", lang=locale, switch="/?lang=x"
        ),
        "404": error_page(404, "-", "grid", lang=locale, switch="/?lang=x"),
        "rounds": rounds_page(
            RoundsPage(
                who="w", period="2026-11", organiser=True, scorer=True, csrf_token="", lang=locale
            )
        ),
        **citizen_pages(locale),
    }


@pytest.mark.parametrize("locale", LOCALES)
def test_every_page_renders_in_both_languages_from_the_catalogue(locale: str) -> None:
    before = missing()
    pages = _pages(locale)
    assert missing() == before, "a text asked for is not in the catalogue"
    tr = messages(locale)
    for name, html in pages.items():
        assert f'<html lang="{tr.html_lang}">' in html, name
        # the switch: the other language named in itself
        assert f'lang="{tr.other_html_lang}">{tr.other_label}</a>' in html, name
    chinese = locale == "zh_CN"
    assert ("用户名" in pages["login"]) == chinese and ("Login name" in pages["login"]) != chinese
    assert ("403 无权访问" in pages["403"]) == chinese
    assert ("404 未找到" in pages["404"]) == chinese
    assert ("考核轮次" in pages["rounds"]) == chinese
    assert ("上报问题" in pages["report"]) == chinese
    assert ("已受理" in pages["report status"]) == chinese
    assert ("问题地图" in pages["problem map"]) == chinese
    assert ("重新输入" in pages["wrong login"]) == chinese
    block = re.search(r'<script type="application/json" id="citygrid-i18n">(.*?)</script>',
                      pages["map"]).group(1)  # fmt: skip
    data = json.loads(block)
    assert data["locale"] == tr.html_lang and data["timezone"] == "Asia/Shanghai"
    assert data["messages"]["yes"] == ("是" if chinese else "yes")


def test_the_catalogue_block_cannot_close_its_script() -> None:
    from layers.i18n import catalogue_script

    block = catalogue_script(messages("en"))
    assert block.count("</script>") == 1 and "<!--" not in block


def test_the_attribution_names_citygrid_and_the_provider_only() -> None:
    flt = PageFilter(date(2026, 11, 16), date(2026, 11, 22), None, None)
    html = dispatcher_page(PageOptions((113.6, 34.7, 113.7, 34.8), flt, basemap=BaseMap("osm")))
    # Leaflet's own prefix ("Leaflet" and its flag) is replaced
    assert re.search(r'\.attributionControl\.setPrefix\("citygrid"\);', html)
    attributions = re.findall(r'"attribution": "([^"]*)"', html)
    assert attributions == ["\\u00a9 OpenStreetMap contributors"]


# -- choosing the language ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("asked", "cookie", "locale"),
    [
        (None, None, "zh_CN"),
        ("en", None, "en"),
        ("zh", "en", "zh_CN"),  # the query wins
        (None, "en", "en"),  # then the cookie
        ("klingon", None, "zh_CN"),  # an unknown lang is ignored
        ("klingon", "en", "en"),
        (None, "zh-CN", "zh_CN"),
    ],
)
def test_negotiate(asked, cookie, locale) -> None:
    assert negotiate(asked, cookie) == locale


def test_normalize() -> None:
    assert normalize("zh-CN") == normalize("zh_Hans") == normalize("ZH") == "zh_CN"
    assert normalize("en-US") == "en" and normalize("") is None and normalize("x") is None


def test_dates_numbers_and_times_in_the_local_format() -> None:
    zh, en = messages("zh_CN"), messages("en")
    assert (
        zh.day(date(2026, 11, 3)) == "2026年11月3日" and en.day(date(2026, 11, 3)) == "Nov 3, 2026"
    )
    assert zh.number(12345.678) == "12,345.68" and messages("en").percent(0.456) == "46%"
    at = datetime(2026, 11, 3, 1, 2, tzinfo=UTC)  # 09:02 in Shanghai
    assert zh.moment(at) == "2026年11月3日 09:02:00"
    assert en.moment(at) == "Nov 3, 2026, 9:02:00\u202fAM"

"""The phone page's HTML (layers/mobile.py): its parts, its texts in one place, no inline code."""

from __future__ import annotations

import json
import re

import pytest

from layers.assets import STATIC_DIR
from layers.i18n import messages
from layers.mobile import TEXTS, MobilePage, mobile_page, mobile_texts, service_worker

SCRIPT = (STATIC_DIR / "citygrid" / "m.js").read_text(encoding="utf-8")
BOUNDS = (113.65, 34.75, 113.66, 34.76)


def page(**changes: object) -> str:
    values: dict[str, object] = {"who": "网格员甲", "csrf_token": "tok", "bounds": BOUNDS}
    values.update(changes)
    return mobile_page(MobilePage(**values))  # type: ignore[arg-type]


def test_every_text_is_translated_and_the_script_uses_only_those() -> None:
    chinese, english = mobile_texts(messages("zh_CN")), mobile_texts(messages("en"))
    assert set(chinese) == set(english) == set(TEXTS)
    # every text has its own Chinese (the catalogue has it; an English fallback would show)
    assert [k for k, v in chinese.items() if v == TEXTS[k] and re.search("[A-Za-z]", v)] == []
    used = set(re.findall(r'\bt\("(\w+)"', SCRIPT))
    # keys made from a prefix and a value: the stages, the outbox states, the actions
    for prefix, values in {
        "stage_": ("before", "during", "after"),
        "state_": ("waiting", "pending", "failed", "login"),
        "act_": ("verify", "rework", "feedback"),
    }.items():
        assert f't("{prefix}"' in SCRIPT
        used = (used - {prefix}) | {prefix + v for v in values}
    assert used <= set(TEXTS), used - set(TEXTS)
    # no text of the page written in the script itself: no string literal in Chinese
    literals = re.findall(r'"[^"\n]*"', SCRIPT) + re.findall(r"'[^'\n]*'", SCRIPT)
    assert [s for s in literals if re.search(r"[\u4e00-\u9fff]", s)] == []


def test_the_page_holds_a_panel_per_tab_and_the_parts_the_worker_may_use() -> None:
    html = page(actions=("verify", "rework"))
    tabs = re.findall(r'data-tab="(\w+)"', html)
    assert tabs == ["map", "tasks", "report", "patrol"]
    assert sorted(re.findall(r'data-tab-panel="(\w+)"', html)) == sorted(tabs)
    assert re.findall(r'data-action="(\w+)"', html) == ["verify", "rework"]
    assert 'accept="image/*" capture="environment"' in html
    bare = page(report=False, patrol=False, orders=False)
    assert re.findall(r'data-tab="(\w+)"', bare) == ["map", "tasks"]
    assert 'id="report-form"' not in bare and 'id="tasks-orders"' not in bare
    assert 'id="case-detail"' not in bare  # no action to take


def test_the_texts_reach_the_script_as_data_and_nothing_breaks_out_of_it() -> None:
    html = page(lang="en", who="<b>x</b>", extra={"note": "</script><script>alert(1)"})
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    block = re.search(r'id="m-texts">(.*?)</script>', html)
    assert block and json.loads(block.group(1)) == mobile_texts(messages("en"))
    config = re.search(r'id="m-config">(.*?)</script>', html)
    assert config and json.loads(config.group(1))["note"] == "</script><script>alert(1)"
    assert html.count("<script") == 5  # three files, two data blocks


def test_the_page_refuses_urls_elsewhere_and_a_datum_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="paths"):
        page(page_url="https://elsewhere.example/m/")
    with pytest.raises(ValueError, match="bd09"):
        page(datum="bd09")


def test_the_service_worker_names_its_shell_under_the_root_path() -> None:
    code = service_worker("/city")
    head = json.loads(code.split("\n", 1)[0].removeprefix("self.CITYGRID = ").rstrip(";"))
    assert head["page"] == "/city/m/" and head["api"] == "/city/api/"
    assert all(u.startswith("/city/") for u in head["shell"])

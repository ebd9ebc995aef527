"""The login and 403 pages, the script nonce, and the base map's CSP sources."""

from __future__ import annotations

import pytest

from layers.assets import with_nonce
from layers.login import forbidden_page, login_page
from layers.page import BaseMap


def test_the_login_page_escapes_what_it_is_given() -> None:
    page = login_page(
        action="/login",
        next_url='/?grid="><script>alert(1)</script>',
        csrf_token="tok",
        message="<b>no</b>",
        login='"><img src=x>',
    )
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert 'name="csrftoken" value="tok"' in page
    assert page.count("<form") == 1 and 'method="post" action="/login"' in page


def test_the_language_link_keeps_the_page_asked_for() -> None:
    zh = login_page(action="/login", next_url="/?category=05", csrf_token="t")
    assert "用户名" in zh and 'href="/login?next=%2F%3Fcategory%3D05&amp;lang=en"' in zh
    en = login_page(action="/login", next_url="/", csrf_token="t", lang="en")
    assert "Login name" in en and "lang=zh" in en


def test_the_403_page_names_the_account_and_the_permission() -> None:
    page = forbidden_page(
        who="张三 (zhang)", permission="maps.read (查看热力图)", login_url="/login"
    )
    assert "403 无权访问" in page and "张三 (zhang)" in page and "maps.read" in page
    assert 'href="/login"' in page


def test_with_nonce_marks_every_script_tag_and_nothing_else() -> None:
    html = '<script src="/a.js"></script><script>var x = "<scripts>";</script><SCRIPT>1</SCRIPT>'
    marked = with_nonce(html, "abc123")
    assert marked.count('nonce="abc123"') == 3
    assert '"<scripts>"' in marked  # not a tag
    with pytest.raises(ValueError):
        with_nonce(html, '"><script>')


@pytest.mark.parametrize(
    ("basemap", "sources"),
    [
        (BaseMap("none"), []),
        (BaseMap("osm"), ["https://tile.openstreetmap.org"]),
        (BaseMap("tianditu", tianditu_key="k"), ["https://*.tianditu.gov.cn"]),
        (BaseMap("amap"), ["https://*.is.autonavi.com"]),
        (
            BaseMap("osm", "http://tiles.intranet:8080/{z}/{x}/{y}.png"),
            ["http://tiles.intranet:8080"],
        ),
    ],
)
def test_the_base_maps_tile_hosts_as_csp_sources(basemap: BaseMap, sources: list[str]) -> None:
    assert basemap.image_sources() == sources

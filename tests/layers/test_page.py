"""The dispatcher page rendered from plain options: layers, legends, filter, offline assets."""

from __future__ import annotations

import json
import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest

from layers.assets import STATIC_DIR, external_urls
from layers.controls import Choice, FilterPanel
from layers.page import (
    BaseMap,
    CategoryOption,
    FilterError,
    PageFilter,
    PageOptions,
    dispatcher_page,
    error_page,
    layer_titles,
)
from layers.remote import RemoteGeoJson, RemoteImageOverlay, legend_json
from layers.vectortiles import CaseTiles, GridBoundaryTiles

LAYER_TITLES = layer_titles()  # the default (Chinese) page's titles

BOUNDS = (113.64, 34.74, 113.66, 34.76)
TODAY = date(2026, 11, 25)
CATEGORIES = [
    CategoryOption("0101", "私搭乱建", "01", "市容环境"),
    CategoryOption("0102", "暴露垃圾", "01", "市容环境"),
    CategoryOption("0501", "无照经营游商", "05", "街面秩序"),
    CategoryOption("B0101", "上水井盖", "01", "公用设施", "component"),
]
KINDS = [("farmer_market", "农贸市场"), ("rail_corridor", "铁路沿线")]
LINKS = re.compile(r"<(?:script|link)\b[^>]*?(?:src|href)=\"([^\"]+)\"")
HEAT_RADIO = [k for k in LAYER_TITLES if k not in ("boundaries", "hotspots", "cases")]


def options(**changes) -> PageOptions:
    flt = changes.pop("filter", PageFilter(date(2026, 11, 16), date(2026, 11, 22), "05", None))
    base = {"status_labels": {"reported": "上报", "handling": "处理中"}}
    return PageOptions(
        bounds=BOUNDS,
        filter=flt,
        categories=CATEGORIES,
        hotspot_kinds=KINDS,
        **{**base, **changes},
    )


def layer_control(html: str) -> tuple[dict[str, str], dict[str, str]]:
    """(base layers, overlays) of the LayerControl: title → JS variable."""
    block = re.search(
        r"_layers = \{\s*base_layers : \{(.*?)\},\s*overlays :  \{(.*?)\},", html, re.S
    )
    assert block, "the page has a layer control"

    def entries(text: str) -> dict[str, str]:
        return {json.loads(k): v for k, v in re.findall(r"(\"[^\"]*\") : (\w+),", text)}

    return entries(block.group(1)), entries(block.group(2))


def constructed(html: str, factory: str) -> list[tuple[str, str, dict]]:
    """(variable, url, options) of every layer built with ``factory`` in the page script."""
    found = re.findall(
        rf"var (\w+) = (?:new )?L\.Citygrid\.{factory}\(\s*(\"[^\"]*\"), (\{{.*?\}})\s*\);",
        html,
        re.S,
    )
    return [(var, json.loads(url), json.loads(opts)) for var, url, opts in found]


def by_title(html: str) -> dict[str, tuple[str, dict]]:
    out = {}
    for factory in (
        "RemoteGeoJson",
        "RemoteImageOverlay",
        "gridBoundaries",
        "caseTiles",
        "heatTiles",
    ):
        for _, url, opts in constructed(html, factory):
            out[opts["title"]] = (url, opts)
    return out


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_every_layer_is_in_the_layer_control_heat_layers_as_one_choice() -> None:
    html = dispatcher_page(options())
    base, overlays = layer_control(html)
    assert list(base) == [LAYER_TITLES[k] for k in HEAT_RADIO]
    assert list(overlays) == [LAYER_TITLES[k] for k in ("boundaries", "hotspots", "cases")]
    # shown on opening: the density choropleth, boundaries and hotspots; not the other heat
    # layers (radio buttons) and not the thousands of open cases
    shown = set(re.findall(r"(\w+)\.addTo\(map_\w+\);", html))
    on = {t for t, var in {**base, **overlays}.items() if var in shown}
    assert on == {LAYER_TITLES["density"], LAYER_TITLES["boundaries"], LAYER_TITLES["hotspots"]}


def test_heat_layers_fetch_the_aggregates_with_the_filter() -> None:
    html = dispatcher_page(options())
    layers = by_title(html)
    expected = {
        "density": ("/api/heat/grids", {}),
        "per_patrol_hour": ("/api/heat/grids", {"per": "patrol_hour"}),
        "hexbins": ("/api/heat/hexbins", {}),
        "kde": ("/api/heat/kde", {}),
        "gi": ("/api/heat/gi", {}),
        "coverage": ("/api/heat/coverage", {"metric": "share"}),
        "since": ("/api/heat/coverage", {"metric": "since"}),
        "tracks": ("/api/heat/tracks", {}),
        "blind": ("/api/heat/blind", {}),
    }
    tiled = {"density", "per_patrol_hour", "gi", "coverage", "since", "blind"}
    window = {"from": "2026-11-16", "to": "2026-11-23", "category": "05"}
    for kind, (path, extra) in expected.items():
        url, opts = layers[LAYER_TITLES[kind]]
        if kind in tiled:
            # per-grid layers come as vector tiles of the same filter, their legend from the
            # stored layer of /api/heat (no features)
            layer = path.removeprefix("/api/heat/")
            assert urlsplit(url).path == f"/tiles/heat/{layer}/{{z}}/{{x}}/{{y}}.mvt"
            assert urlsplit(opts["legendUrl"]).path == path
            assert query(opts["legendUrl"]) == {**window, **extra, "features": "false"}
        else:
            assert urlsplit(url).path == path
        # the last day is included: the API's exclusive 'to' is the day after
        assert query(url) == {**window, **extra}
    # surfaces are image overlays, hexagons GeoJSON, the grid layers tiles
    assert {o["title"] for _, _, o in constructed(html, "RemoteImageOverlay")} == {
        LAYER_TITLES["kde"],
        LAYER_TITLES["tracks"],
    }
    assert {o["title"] for _, _, o in constructed(html, "heatTiles")} == {
        LAYER_TITLES[k] for k in tiled
    }


def test_grid_popup_shows_the_people_and_the_counts_a_dispatcher_needs() -> None:
    _, opts = by_title(dispatcher_page(options()))[LAYER_TITLES["density"]]
    for field in (
        "{name}",
        "{responsible_unit}",
        "{responsible_person}",
        "{responsible_phone}",
        "{cases}",
        "{open}",
        "{overdue}",
        "{covered_share|pct}",
        "{visits}",
    ):
        assert field in opts["popup"]


def test_tiles_carry_the_case_filters_and_boundaries_none() -> None:
    flt = PageFilter(date(2026, 11, 1), date(2026, 11, 22), "0102", "41010500100101")
    layers = by_title(dispatcher_page(options(filter=flt)))
    cases_url, cases = layers[LAYER_TITLES["cases"]]
    assert cases_url.startswith("/tiles/cases/{z}/{x}/{y}.mvt?")
    assert query(cases_url) == {"category": "0102", "grid": "41010500100101"}
    grids_url, grids = layers[LAYER_TITLES["boundaries"]]
    assert grids_url == "/tiles/grids/{z}/{x}/{y}.mvt"
    assert set(grids["levelStyles"]) == {"city", "district", "street", "community", "unit"}
    # cases are coloured per open status, labelled in Chinese, clustered below zoom 14
    assert cases["statusLabels"]["reported"] == "上报"
    assert cases["pointsFromZoom"] == 14
    assert cases["overdueColor"] == "#e31a1c"


def test_legends_name_every_hotspot_kind_status_and_level() -> None:
    layers = by_title(dispatcher_page(options()))
    _, hotspots = layers[LAYER_TITLES["hotspots"]]
    rows = {r["label"]: r["color"] for r in hotspots["legend"]["rows"]}
    assert rows == {name: hotspots["colorBy"]["colors"][key] for key, name in KINDS}
    assert len(set(rows.values())) == len(KINDS)  # one colour per kind
    _, cases = layers[LAYER_TITLES["cases"]]
    labels = [r["label"] for r in cases["legend"]["rows"]]
    assert "上报" in labels and "超期" in labels and "聚合点（案件数）" in labels
    _, grids = layers[LAYER_TITLES["boundaries"]]
    assert [r["shape"] for r in grids["legend"]["rows"]] == ["line", "line", "dash", "line"]
    assert any("15 级" in r["label"] for r in grids["legend"]["rows"])
    # the English page: the same legends from the English catalogue
    english = by_title(dispatcher_page(options(locale="en", status_labels={})))
    _, cases = english[layer_titles("en")["cases"]]
    labels = [r["label"] for r in cases["legend"]["rows"]]
    assert "reported" in labels and "overdue" in labels and "cluster (number of cases)" in labels
    # the heat layers take their legend from the answer (none embedded)
    _, density = layers[LAYER_TITLES["density"]]
    assert density["legend"] is None


def test_page_links_only_vendored_files_and_embeds_no_data() -> None:
    html = dispatcher_page(options())
    assert external_urls(html) == []
    links = [u for u in LINKS.findall(html) if u != "data:,"]  # data:, = no favicon request
    for url in links:
        assert url.startswith("/static/") and (STATIC_DIR / url.removeprefix("/static/")).is_file()
    names = " ".join(links)
    assert "leaflet.js" in names and "Leaflet.VectorGrid.bundled.min.js" in names
    # the runtime (with the fakeStop shim) loads before VectorGrid
    assert names.index("citygrid/dispatcher.js") < names.index("Leaflet.VectorGrid")
    # no jQuery, Bootstrap or Font Awesome: the page uses none of them
    assert "jquery" not in names and "bootstrap" not in names and "fontawesome" not in names
    assert '"coordinates"' not in html and "FeatureCollection" not in html
    assert len(html) < 40_000


def test_filter_panel_shows_the_active_filter() -> None:
    flt = PageFilter(date(2026, 11, 16), date(2026, 11, 22), "0501", "41010500100101")
    html = dispatcher_page(options(filter=flt, grid_name="甲社区第01网格"))
    form = re.search(r"<form method=\"get\" action=\"/\".*?</form>", html, re.S).group(0)
    assert 'name="from"\n                   value="2026-11-16"' in form
    assert 'name="to"\n                   value="2026-11-22"' in form
    assert re.search(r'<option value="0501"\s+selected>\s*0501 无照经营游商', form)
    assert re.search(r'<option value="05">\s*05 街面秩序 \(全部\)', form)
    assert re.search(r'<option value="B01">\s*B01 公用设施 \(全部\)', form)
    assert 'name="grid"\n                   value="41010500100101"' in form
    note = re.search(r'<div class="citygrid-active-filter">(.*?)</div>\s*</div>', html, re.S)
    text = re.sub(r"<[^>]+>", "", note.group(1))
    assert "上报时间： 2026年11月16日\u2009–\u200922日" in text  # Babel's zh_CN interval
    assert "0501 无照经营游商" in text and "41010500100101 甲社区第01网格" in text
    english = dispatcher_page(options(filter=flt, grid_name="甲社区第01网格", locale="en"))
    note = re.search(r'<div class="citygrid-active-filter">(.*?)</div>\s*</div>', english, re.S)
    assert "Cases reported: Nov 16\u2009–\u200922, 2026" in re.sub(r"<[^>]+>", "", note.group(1))
    assert re.search(r'<option value="05">\s*05 街面秩序 \(all\)', english)


def test_a_category_prefix_outside_the_list_is_still_selected() -> None:
    flt = PageFilter(date(2026, 11, 16), date(2026, 11, 22), "010", None)
    html = dispatcher_page(options(filter=flt))
    assert re.search(r'<option value="010"\s+selected>\s*010 \(编码前缀\)', html)


def test_base_maps_name_only_their_tiles() -> None:
    osm = dispatcher_page(options(basemap=BaseMap("osm")))
    assert external_urls(osm) == ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"]
    intranet = "http://tiles.intranet.example/{z}/{x}/{y}.png"
    assert external_urls(dispatcher_page(options(basemap=BaseMap("osm", intranet)))) == [intranet]
    tdt = dispatcher_page(options(basemap=BaseMap("tianditu", tianditu_key="KEY123")))
    urls = external_urls(tdt)
    assert len(urls) == 2 and all(u.startswith("https://t{s}.tianditu.gov.cn/") for u in urls)
    assert {"vec_w", "cva_w"} == {u.split("/")[3] for u in urls}
    assert "tk=KEY123" in tdt.replace("\\u0026", "&")
    with pytest.raises(ValueError, match="key"):
        BaseMap("tianditu")


def test_amap_asks_every_overlay_in_gcj02() -> None:
    html = dispatcher_page(options(basemap=BaseMap("amap")))
    assert all(u.startswith("https://webrd0{s}.is.autonavi.com/") for u in external_urls(html))
    layers = by_title(html)
    for title, (url, _) in layers.items():
        assert query(url).get("datum") == "gcj02", title
    plain = by_title(dispatcher_page(options()))
    assert all("datum" not in query(url) for url, _ in plain.values())


def test_filter_parsing_defaults_and_refusals() -> None:
    flt = PageFilter.parse(None, None, "", " ", today=TODAY)
    assert (flt.first_day, flt.last_day) == (date(2026, 10, 27), TODAY)  # 30 days, today in
    assert flt.category is None and flt.grid is None
    start, end = PageFilter(date(2026, 11, 16), date(2026, 11, 22)).window("Asia/Shanghai")
    assert start.isoformat() == "2026-11-16T00:00:00+08:00"
    assert end.isoformat() == "2026-11-23T00:00:00+08:00"
    cases = [
        (("2026-02-30", None, None, None), "from"),
        ((None, "yesterday", None, None), "to"),
        (("2026-11-20", "2026-11-10", None, None), "to"),
        ((None, None, "05;drop", None), "category"),
        ((None, None, None, "4101-05"), "grid"),
    ]
    for args, field in cases:
        with pytest.raises(FilterError) as err:
            PageFilter.parse(*args, today=TODAY)
        assert err.value.field == field


def test_layers_refuse_bad_options() -> None:
    with pytest.raises(ValueError, match="path on this service"):
        RemoteGeoJson("https://example.org/data.json", "x")
    with pytest.raises(ValueError, match="colour"):
        RemoteGeoJson("/api/heat/grids", "x", stroke="red")
    with pytest.raises(ValueError, match="unknown format"):
        RemoteGeoJson("/api/heat/grids", "x", popup="{cases|money}")
    with pytest.raises(ValueError, match="opacity"):
        RemoteImageOverlay("/api/heat/kde", "x", opacity=2)
    with pytest.raises(ValueError, match=r"\{y\}"):
        CaseTiles("/tiles/cases/{z}/{x}.mvt", "x", status_colors={"reported": "#123456"})
    with pytest.raises(ValueError, match="unknown style"):
        GridBoundaryTiles("/tiles/grids/{z}/{x}/{y}.mvt", "x", level_styles={"unit": {"fill": 1}})
    with pytest.raises(ValueError, match="shape"):
        legend_json({"title": "t", "rows": [{"color": "#000", "label": "a", "shape": "star"}]})
    with pytest.raises(ValueError, match="choices"):
        FilterPanel(
            first_day="2026-11-01",
            last_day="2026-11-02",
            category="07",
            grid=None,
            categories=[Choice("05", "05")],
            note=[],
        )


def test_error_page_escapes_the_message_and_names_the_field() -> None:
    page = error_page(404, "no category '<b>' (give a code or prefix)", "category")
    assert "<h1>404 未找到</h1>" in page and '<html lang="zh-CN">' in page
    english = error_page(404, "x", "category", lang="en", switch="/?lang=zh_CN")
    assert "<h1>404 Not found</h1>" in english and "Back to the map" in english
    assert '<a href="/?lang=zh_CN" lang="zh-CN">中文</a>' in english
    assert "no category &#x27;&lt;b&gt;&#x27;" in page and "<b>'" not in page
    assert "<code>category</code>" in page
    assert external_urls(page) == []


def test_assessment_layers_read_the_month_of_the_filter() -> None:
    layers = by_title(dispatcher_page(options()))
    for kind, colour_by in (("grades", "grade"), ("red_yellow", "list")):
        url, _ = layers[LAYER_TITLES[kind]]
        assert urlsplit(url).path == "/api/assessment/map"
        assert query(url) == {"period": "2026-11", "level": "community", "by": colour_by}

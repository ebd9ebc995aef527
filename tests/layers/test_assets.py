"""Offline map pages: every script, stylesheet, font and image comes from the service."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import folium
import pytest
from branca.element import CssLink
from folium.plugins import Fullscreen, MarkerCluster, VectorGridProtobuf

from layers.assets import (
    PACKAGES,
    STATIC_DIR,
    ExternalAssetError,
    check_offline,
    local_files,
    localize,
    render_offline,
)

TILES = "https://tiles.example.test/{z}/{x}/{y}.png"  # a configured base map
ANY_URL = re.compile(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>)]*", re.IGNORECASE)
LINKS = re.compile(r"<(?:script|link)\b[^>]*?(?:src|href)=\"([^\"]+)\"")
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


def dispatcher_like_map() -> folium.Map:
    m = folium.Map(location=[34.75, 113.65], zoom_start=14, tiles=None)
    folium.TileLayer(TILES, attr="base map", name="base").add_to(m)
    cluster = MarkerCluster(name="cases").add_to(m)
    for i in range(3):
        folium.Marker(
            [34.75 + i / 1000, 113.65],
            popup=folium.Popup(f"<b>案件 {i}</b>"),
            icon=folium.Icon(color="red", icon="triangle-exclamation", prefix="fa", angle=30),
        ).add_to(cluster)
    VectorGridProtobuf("/tiles/grids/{z}/{x}/{y}.mvt", "grids", {"interactive": True}).add_to(m)
    folium.GeoJson({"type": "Point", "coordinates": [113.65, 34.75]}, name="pt").add_to(m)
    folium.LayerControl().add_to(m)
    return m


def local_path(url: str) -> Path:
    assert url.startswith("/static/"), url
    return STATIC_DIR / url.removeprefix("/static/")


def test_rendered_page_names_only_local_assets_and_the_allowed_tiles() -> None:
    html = render_offline(dispatcher_like_map(), allowed_urls=[TILES])
    assert set(ANY_URL.findall(html)) == {TILES}
    links = LINKS.findall(html)
    assert links, "the page links its scripts and stylesheets"
    for url in links:
        assert local_path(url).is_file(), url
    names = " ".join(links)
    for needed in (
        "leaflet.js",
        "leaflet.css",
        "jquery.min.js",
        "leaflet.markercluster.js",
        "MarkerCluster.Default.css",
        "Leaflet.VectorGrid.bundled.min.js",
        "all.min.css",
        "leaflet.awesome-markers.min.js",
        "awesome-rotate.css",
    ):
        assert needed in names
    # left out on purpose: Bootstrap's JavaScript and the Bootstrap 3 glyphicons
    assert "bootstrap.bundle" not in html and "glyphicons" not in html


def test_every_css_url_of_the_page_is_vendored() -> None:
    html = render_offline(dispatcher_like_map(), allowed_urls=[TILES])
    checked = 0
    for url in LINKS.findall(html):
        css = local_path(url)
        if css.suffix != ".css":
            continue
        for ref in CSS_URL.findall(css.read_text(encoding="utf-8")):
            if ref.startswith(("data:", "#")):
                continue
            assert (css.parent / ref.split("?")[0].split("#")[0]).is_file(), (css.name, ref)
            checked += 1
    assert checked >= 8 + 3 + 4  # Font Awesome fonts, Leaflet images, marker sprites


def test_localize_changes_the_instance_not_folium_classes() -> None:
    cdn = list(folium.Map.default_js)
    localize(dispatcher_like_map())
    assert folium.Map.default_js == cdn
    assert MarkerCluster.default_css[0][1].startswith("https://")
    plain = folium.Map(tiles=None).get_root().render()
    assert "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js" in plain


def test_a_plugin_that_is_not_vendored_is_refused_by_url() -> None:
    m = dispatcher_like_map()
    Fullscreen().add_to(m)
    with pytest.raises(ExternalAssetError, match=re.escape(Fullscreen.default_js[0][1])):
        render_offline(m, allowed_urls=[TILES])


def test_links_added_by_hand_and_leftovers_are_caught() -> None:
    m = dispatcher_like_map()
    m.get_root().header.add_child(CssLink("https://cdn.example.com/theme.css"), name="theme")
    with pytest.raises(ExternalAssetError, match="cdn.example.com/theme.css"):
        localize(m)
    with pytest.raises(ExternalAssetError, match="//cdn.example.com/x.js"):
        check_offline('<script src="//cdn.example.com/x.js"></script>')
    with pytest.raises(ExternalAssetError, match="tiles.example.test"):
        render_offline(dispatcher_like_map())  # the base map must be allowed explicitly


def test_glyphicon_icons_are_refused_with_the_fix() -> None:
    m = folium.Map(tiles=None)
    folium.Marker([34.75, 113.65], icon=folium.Icon()).add_to(m)  # folium's default prefix
    with pytest.raises(ExternalAssetError, match="prefix='fa'"):
        localize(m)


def test_a_page_rendered_before_localizing_still_ends_up_offline() -> None:
    m = dispatcher_like_map()
    m.get_root().render()  # leaves CDN links (glyphicons too) in the header
    html = render_offline(m, allowed_urls=[TILES])
    assert set(ANY_URL.findall(html)) == {TILES}


def test_vendored_files_match_the_manifest_and_carry_licences() -> None:
    manifest = json.loads((STATIC_DIR / "vendor" / "MANIFEST.json").read_text())
    assert set(manifest) == {pkg.directory for pkg in PACKAGES}
    for pkg in PACKAGES:
        entry = manifest[pkg.directory]
        assert (entry["package"], entry["version"]) == (pkg.name, pkg.version)
        assert entry["integrity"].startswith("sha512-")
        assert pkg.licenses, pkg.name
        for rel, digest in entry["files"].items():
            assert hashlib.sha256((STATIC_DIR / rel).read_bytes()).hexdigest() == digest, rel
    for path in local_files():
        assert path.is_file(), path
    vendored = {p for p in (STATIC_DIR / "vendor").rglob("*") if p.is_file()}
    listed = {STATIC_DIR / rel for e in manifest.values() for rel in e["files"]}
    assert vendored - listed == {STATIC_DIR / "vendor" / "MANIFEST.json"}  # nothing stray

"""Offline web assets: Leaflet and its plugins served by citygrid itself, never from a CDN.

folium writes CDN links (``default_js`` / ``default_css`` of the map and of each plugin) into
the page. The dispatcher map must work without internet, so the needed npm dist files are
vendored under ``layers/static/vendor/<package>@<version>/`` (by ``scripts/vendor_assets.py``,
which checks each tarball's ``dist.integrity``) and :func:`localize` points a map's elements at
them. Any link this module does not know raises :class:`ExternalAssetError` naming the URL, so a
new plugin cannot pull from a CDN unnoticed; :func:`render_offline` also scans the final HTML.

The service serves :data:`STATIC_DIR` at :data:`STATIC_URL` (``/static``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import folium
from branca.element import Element, Figure, Link
from folium.elements import JSCSSMixin

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static"
# WGS 84 → GCJ-02 in the browser, for the phone's own position (the phone and citizen pages)
DATUM_JS = f"{STATIC_URL}/citygrid/datum.js"


class ExternalAssetError(ValueError):
    """A page would load something from outside the service (or a vendored file is missing)."""


@dataclass(frozen=True)
class NpmPackage:
    """One npm package whose dist files are vendored (``files``: tarball path → local path)."""

    name: str
    version: str
    files: tuple[tuple[str, str], ...]
    licenses: tuple[tuple[str, str], ...]
    folder: str = ""  # under STATIC_DIR; default vendor/<name>@<version>

    @property
    def directory(self) -> str:
        """Folder of the package under :data:`STATIC_DIR`."""
        return self.folder or f"vendor/{self.name}@{self.version}"

    def path(self, local: str) -> str:
        """Path under :data:`STATIC_DIR` of one vendored file (which must be in ``files``)."""
        if local not in {dest for _, dest in self.files}:
            raise KeyError(f"{local} is not vendored from {self.name}@{self.version}")
        return f"{self.directory}/{local}"


def _same(*paths: str, strip: str = "") -> tuple[tuple[str, str], ...]:
    """Tarball paths kept under the same name, less a leading ``strip`` folder."""
    return tuple((p, p.removeprefix(strip)) for p in paths)


LEAFLET = NpmPackage(
    "leaflet",
    "1.9.3",  # folium 0.20's pin
    files=_same(
        "dist/leaflet.js",
        "dist/leaflet.css",
        "dist/images/layers.png",
        "dist/images/layers-2x.png",
        "dist/images/marker-icon.png",
        "dist/images/marker-icon-2x.png",
        "dist/images/marker-shadow.png",
        strip="dist/",
    ),
    licenses=_same("LICENSE"),
)
# Leaflet as the hand-written pages (phone, citizen) load it from the service
LEAFLET_JS = f"{STATIC_URL}/{LEAFLET.path('leaflet.js')}"
LEAFLET_CSS = f"{STATIC_URL}/{LEAFLET.path('leaflet.css')}"
JQUERY = NpmPackage(  # folium's Popup builds its content with $(...)
    "jquery",
    "3.7.1",
    files=_same("dist/jquery.min.js", strip="dist/"),
    licenses=_same("LICENSE.txt"),
)
BOOTSTRAP = NpmPackage(  # stylesheet only: no folium element uses Bootstrap's JavaScript
    "bootstrap",
    "5.2.2",
    files=_same("dist/css/bootstrap.min.css", strip="dist/"),
    licenses=_same("LICENSE"),
)
FONTAWESOME = NpmPackage(
    "@fortawesome/fontawesome-free",
    "6.2.0",
    files=_same(
        "css/all.min.css",
        *(
            f"webfonts/fa-{face}.{ext}"
            for face in ("brands-400", "regular-400", "solid-900", "v4compatibility")
            for ext in ("woff2", "ttf")
        ),
    ),
    licenses=_same("LICENSE.txt"),
)
AWESOME_MARKERS = NpmPackage(
    # folium links cdnjs' 2.0.2, which npm never had; 2.0.5 ships the same script and styles
    "leaflet.awesome-markers",
    "2.0.5",
    files=_same(
        "dist/leaflet.awesome-markers.min.js",
        "dist/leaflet.awesome-markers.css",
        "dist/images/markers-soft.png",
        "dist/images/markers-soft@2x.png",
        "dist/images/markers-shadow.png",
        "dist/images/markers-shadow@2x.png",
        strip="dist/",
    ),
    licenses=_same("LICENSE"),
)
MARKERCLUSTER = NpmPackage(
    "leaflet.markercluster",
    "1.1.0",  # folium 0.20's pin
    files=_same(
        "dist/leaflet.markercluster.js",  # the minified build (the readable one is -src.js)
        "dist/MarkerCluster.css",
        "dist/MarkerCluster.Default.css",
        strip="dist/",
    ),
    licenses=_same("MIT-LICENCE.txt"),
)
VECTORGRID = NpmPackage(
    "leaflet.vectorgrid",
    "1.3.0",
    files=_same("dist/Leaflet.VectorGrid.bundled.min.js", strip="dist/"),
    # the package has no LICENSE file: its README carries the licence ("Legalese") and lists
    # the libraries the bundled build contains, whose licences are vendored beside it
    licenses=_same("README.md"),
)
VECTORGRID_BUNDLED = tuple(
    NpmPackage(
        name,
        version,
        files=(),
        licenses=_same(licence),
        folder=f"{VECTORGRID.directory}/bundled/{name}@{version}",
    )
    for name, version, licence in (
        ("pbf", "3.0.5", "LICENSE"),
        ("vector-tile", "1.3.0", "LICENSE.txt"),
        ("topojson-client", "2.1.0", "LICENSE.md"),
        ("geojson-vt", "2.2.0", "LICENSE"),
        ("whatwg-fetch", "2.0.3", "LICENSE"),
    )
)
SWAGGER_UI = NpmPackage(  # /docs: FastAPI links these from a CDN; citygrid serves its own
    "swagger-ui-dist",
    "5.32.0",
    files=_same("swagger-ui-bundle.js", "swagger-ui.css"),
    licenses=_same("LICENSE", "NOTICE"),
)
PACKAGES: tuple[NpmPackage, ...] = (
    LEAFLET,
    JQUERY,
    BOOTSTRAP,
    FONTAWESOME,
    AWESOME_MARKERS,
    MARKERCLUSTER,
    VECTORGRID,
    *VECTORGRID_BUNDLED,
    SWAGGER_UI,
)

# folium links a stylesheet from its GitHub repository that rotates Awesome Markers icons by
# any whole degree (class fa-rotate-N, from Icon(angle=N)); ours is generated by the script.
ROTATE_CSS = "citygrid/awesome-rotate.css"

# Every CDN link that folium 0.20 and the plugins we use write → local file under STATIC_DIR.
LOCAL_BY_URL: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": LEAFLET.path("leaflet.js"),
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": LEAFLET.path("leaflet.css"),
    "https://code.jquery.com/jquery-3.7.1.min.js": JQUERY.path("jquery.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": BOOTSTRAP.path(
        "css/bootstrap.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": (
        FONTAWESOME.path("css/all.min.css")
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/"
    "leaflet.awesome-markers.js": AWESOME_MARKERS.path("leaflet.awesome-markers.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/"
    "leaflet.awesome-markers.css": AWESOME_MARKERS.path("leaflet.awesome-markers.css"),
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/"
    "leaflet.awesome.rotate.min.css": ROTATE_CSS,
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/"
    "leaflet.markercluster.js": MARKERCLUSTER.path("leaflet.markercluster.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css": (
        MARKERCLUSTER.path("MarkerCluster.css")
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/"
    "MarkerCluster.Default.css": MARKERCLUSTER.path("MarkerCluster.Default.css"),
    "https://unpkg.com/leaflet.vectorgrid@latest/dist/Leaflet.VectorGrid.bundled.js": (
        VECTORGRID.path("Leaflet.VectorGrid.bundled.min.js")
    ),
}

_GLYPHICONS = "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css"

# CDN links left out of offline pages on purpose, with the reason.
DROPPED_URLS: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": (
        "no folium element uses Bootstrap's JavaScript"
    ),
    _GLYPHICONS: "Bootstrap 3 glyphicons are not vendored: use Icon(prefix='fa') (Font Awesome)",
}

_ABSOLUTE = re.compile(r"https?://[^\s\"'<>)\\]+", re.IGNORECASE)
_PROTOCOL_RELATIVE = re.compile(r"(?<=[\"'(=])//[A-Za-z0-9{][^\s\"'<>)\\]*")


def localize(m: folium.Map, static_url: str = STATIC_URL) -> folium.Map:
    """Point every CDN link of ``m`` and its elements at the vendored files; return ``m``.

    Only the instances in this map change (``default_js``/``default_css`` are set on each
    element, never on folium's classes). Call it after the map is complete: elements added
    later keep their CDN links (:func:`render_offline` does both and checks the HTML).

    Raises
    ------
    ExternalAssetError
        A link this module does not know, or an Icon using the glyphicon font (not vendored).
    """
    for parent, key, element in _walk(m.get_root()):
        if isinstance(element, JSCSSMixin):
            element.default_js = _local_links(element, element.default_js, static_url)
            element.default_css = _local_links(element, element.default_css, static_url)
        elif isinstance(element, Link) and element.url in DROPPED_URLS and parent is not None:
            del parent._children[key]  # left in the header by an earlier render
        elif isinstance(element, Link) and element.url is not None:
            element.url = _local_url(type(element).__name__, element.url, static_url)
        if isinstance(element, folium.Icon) and element.options.get("prefix") == "glyphicon":
            raise ExternalAssetError(
                f"an Icon uses prefix='glyphicon' ({element.options.get('icon')!r}): "
                f"{DROPPED_URLS[_GLYPHICONS]}"
            )
    return m


def render_offline(
    m: folium.Map, allowed_urls: Iterable[str] = (), static_url: str = STATIC_URL
) -> str:
    """Localize ``m``, render the page and check it loads nothing from outside.

    ``allowed_urls`` are prefixes of external URLs the page may keep (say a configured base
    map tile template). Raises :class:`ExternalAssetError` naming any other external URL.
    """
    localize(m, static_url)
    html = m.get_root().render()
    check_offline(html, allowed_urls)
    return html


_SCRIPT_TAG = re.compile(r"<script(?=[\s>])", re.IGNORECASE)


def with_nonce(html: str, nonce: str) -> str:
    """``html`` with ``nonce`` on every ``<script>`` tag, so a Content-Security-Policy naming
    that nonce lets the page's own inline scripts run (and nothing injected into it).

    Only for HTML built from templates: text from data reaches a page escaped, so every
    ``<script`` in it was written by a template.
    """
    if not re.fullmatch(r"[A-Za-z0-9_\-+/=]+", nonce):
        raise ValueError("a nonce is base64 text")
    return _SCRIPT_TAG.sub(f'<script nonce="{nonce}"', html)


def external_urls(html: str) -> list[str]:
    """Absolute (``http(s)://``) and protocol-relative (``//host``) URLs in ``html``."""
    return _ABSOLUTE.findall(html) + _PROTOCOL_RELATIVE.findall(html)


def check_offline(html: str, allowed_urls: Iterable[str] = ()) -> None:
    """Raise :class:`ExternalAssetError` if ``html`` names an external URL not allowed."""
    allowed = tuple(allowed_urls)
    bad = sorted({u for u in external_urls(html) if not u.startswith(allowed)})
    if bad:
        raise ExternalAssetError(
            f"the page names external URLs: {', '.join(bad)}; vendor them (layers/assets.py, "
            "scripts/vendor_assets.py) or allow them explicitly"
        )


def local_files() -> list[Path]:
    """Every file the offline pages may link (vendored files, licences, generated CSS)."""
    paths = [
        STATIC_DIR / pkg.directory / dest
        for pkg in PACKAGES
        for _, dest in pkg.files + pkg.licenses
    ]
    return [*paths, STATIC_DIR / ROTATE_CSS]


def _walk(
    element: Element, parent: Element | None = None, key: str = ""
) -> Iterator[tuple[Element | None, str, Element]]:
    """``(parent, key, element)`` for ``element`` and everything under it."""
    yield parent, key, element
    for name, child in list(element._children.items()):
        yield from _walk(child, element, name)
    if isinstance(element, Figure):  # header, html and script hang off attributes
        for part in (element.header, element.html, element.script):
            yield from _walk(part)


def _local_links(
    element: Element, links: Iterable[tuple[str, str]], static_url: str
) -> list[tuple[str, str]]:
    out = []
    for name, url in links:
        if url in DROPPED_URLS:
            continue
        out.append((name, _local_url(type(element).__name__, url, static_url)))
    return out


def _local_url(owner: str, url: str, static_url: str) -> str:
    if url.startswith(static_url.rstrip("/") + "/"):
        return url  # already local (localize ran before)
    local = LOCAL_BY_URL.get(url)
    if local is None:
        raise ExternalAssetError(
            f"{owner} links {url}, which is not vendored: add its npm package to "
            "layers/assets.py (PACKAGES, LOCAL_BY_URL) and run scripts/vendor_assets.py"
        )
    return f"{static_url.rstrip('/')}/{local}"

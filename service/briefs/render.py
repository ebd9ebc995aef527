"""One document kind of a set rendered in every asked format, from its data alone.

Everything here is CPU work on plain data (charts, the map, python-docx, Jinja2, WeasyPrint), so
a run of many scopes hands it to worker processes while the main process gathers the next
figures; a single set (an API call, a regeneration) calls it in-process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.briefs import docx, pages


def render_documents(
    data: dict[str, Any],
    overlay: dict[str, Any] | None,
    outlines: list[tuple[str, Any]],
    formats: Sequence[str],
    version: str,
) -> dict[str, bytes]:
    """The brief or circular ``data`` as bytes per format (``docx``, ``html``, ``pdf``); the
    brief's pictures are drawn once for all its formats."""
    images = pages.pictures(data, overlay, outlines)
    out: dict[str, bytes] = {}
    page: str | None = None
    for fmt in formats:
        if fmt == "docx":
            out[fmt] = docx.render(data, images, version)
            continue
        page = page or pages.html(data, images, version)
        out[fmt] = page.encode() if fmt == "html" else pages.pdf(page)
    return out

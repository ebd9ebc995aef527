"""HTML pages of ``/ogc`` (Part 1's HTML conformance class and the ``service-doc``).

Every JSON answer renders as one self-contained HTML 5 page: the same members, with links as
``<a>`` elements and geometries folded. No script or stylesheet is loaded from elsewhere, so
the pages work on an office network without internet.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;max-width:80em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
    "text-align:left;vertical-align:top}dt{font-weight:600}dd{margin:0 0 .4em 1.5em}"
    "pre{white-space:pre-wrap;max-height:20em;overflow:auto}"
)


def _link(link: dict[str, Any]) -> str:
    attrs = f'href="{escape(str(link["href"]))}" rel="{escape(str(link["rel"]))}"'
    if "type" in link:
        attrs += f' type="{escape(str(link["type"]))}"'
    label = escape(str(link.get("title") or link["href"]))
    return f"<a {attrs}>{label}</a> <small>({escape(str(link['rel']))})</small>"


def _is_link(value: Any) -> bool:
    return isinstance(value, dict) and "href" in value and "rel" in value


def _table(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_value(k, row.get(k))}</td>" for k in keys) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _value(key: str, value: Any) -> str:
    """One JSON value as HTML."""
    if key in ("geometry", "coordinates") and value is not None:
        kind = value.get("type", "geometry") if isinstance(value, dict) else key
        text = escape(json.dumps(value, ensure_ascii=False))
        return f"<details><summary>{escape(str(kind))}</summary><pre>{text}</pre></details>"
    if _is_link(value):
        return _link(value)
    if isinstance(value, dict):
        items = "".join(f"<dt>{escape(k)}</dt><dd>{_value(k, v)}</dd>" for k, v in value.items())
        return f"<dl>{items}</dl>"
    if isinstance(value, list):
        if value and all(_is_link(v) for v in value):
            return "<ul>" + "".join(f"<li>{_link(v)}</li>" for v in value) + "</ul>"
        if value and all(isinstance(v, dict) for v in value):
            return _table(value)
        return "<ul>" + "".join(f"<li>{_value(key, v)}</li>" for v in value) + "</ul>"
    if value is None:
        return "<i>null</i>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return f'<a href="{escape(value)}">{escape(value)}</a>'
    return escape(str(value))


def page(title: str, body: dict[str, Any]) -> str:
    """The HTML 5 page showing the JSON answer ``body``."""
    heading = escape(str(body.get("title") or title))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{heading}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{heading}</h1>{_value('', body)}</body></html>\n"
    )

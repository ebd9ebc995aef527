"""GeoReport v2 documents, in XML (the standard's default format) and JSON; errors included.

JSON is the standard's "Spark convention" mapping of the XML: a list is a wrapper element that
holds one element per item (``services`` → ``service``, ``service_requests`` → ``request`` …),
``null`` is an empty element and booleans are ``true``/``false``. The XML is schemaless and has
no namespace, as the standard asks.

This module imports nothing from citygrid: ``service.errors`` uses it to answer every error on
an Open311 path in Open311's shape, whatever raised it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Literal

from starlette.responses import JSONResponse, Response

PREFIX = "/open311"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
Format = Literal["xml", "json"]
MEDIA_TYPES: dict[str, str] = {
    "xml": "text/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
}
# the element holding each item of a list, by the list's element name
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# characters XML 1.0 cannot carry at all (control characters): dropped from XML answers
_REQUESTS = re.compile(r"/v2/requests\.[^/]+$")  # the one resource that takes POST
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def is_open311_path(path: str) -> bool:
    """Whether ``path`` belongs to the Open311 API (so its errors take Open311's shape)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def format_of(path: str) -> Format:
    """The format a path asks for: ``.json`` is JSON, anything else XML (the default)."""
    return "json" if path.endswith(".json") else "xml"


def document(
    fmt: Format,
    root: str,
    payload: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``payload`` (a list or a dict) as the document ``root`` in ``fmt``."""
    if fmt == "json":
        return JSONResponse(
            payload, status_code=status, headers=headers, media_type=MEDIA_TYPES["json"]
        )
    text = _DECLARATION + ET.tostring(_element(root, payload), encoding="unicode")
    return Response(
        text.encode("utf-8"), status_code=status, headers=headers, media_type=MEDIA_TYPES["xml"]
    )


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        element.extend(_element(key, item) for key, item in value.items())
    elif isinstance(value, list):
        element.extend(_element(ITEMS[tag], item) for item in value)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _NOT_XML.sub("", str(value))
    return element


def error_document(
    path: str,
    status: int,
    messages: list[str],
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Open311's ``errors`` document for an error answered on ``path``.

    The standard wants 404 for what does not exist, 403 for a missing or wrong ``api_key`` and
    "basically 400" for any other request it cannot fulfil, so 422 (a well-formed request whose
    content breaks a rule) is answered as 400 and 401 (no valid credential) as 403; other
    statuses (405, 409, 413, 429, 503 …) keep their meaning and headers. The format follows the
    path's extension (XML without one).
    """
    code = {422: 400, 401: 403}.get(status, status)
    if code == 405:
        # Starlette names the methods of one route only; GET and POST requests are two routes
        headers = {**(headers or {}), "Allow": _methods(path)}
    payload = [{"code": code, "description": _describe(path, status, m)} for m in messages]
    return document(format_of(path), "errors", payload, status=code, headers=headers)


def _methods(path: str) -> str:
    return "GET, POST" if _REQUESTS.search(path) else "GET"


def _describe(path: str, status: int, message: str) -> str:
    # Starlette's routing errors carry only the status phrase: say what the client can do
    if status == 404 and message == HTTPStatus.NOT_FOUND.phrase:
        return (
            f"{path} is no GeoReport v2 resource; the endpoints are listed at "
            f"{PREFIX}/discovery.xml (or .json)"
        )
    if status == 405 and message == HTTPStatus.METHOD_NOT_ALLOWED.phrase:
        return f"{path} does not take this method; it takes {_methods(path)}"
    return message

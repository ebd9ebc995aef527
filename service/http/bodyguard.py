"""One guard for every JSON request body: hostile bodies get a 400 that says why, never a 500.

Every route is built with :class:`GuardedRoute` (see ``service.routing``), whose requests parse
JSON through :meth:`GuardedRequest.json`. Before parsing, the nesting depth is measured on the
raw bytes (vectorised, so a 10 MB batch costs milliseconds), because a body nested a thousand
levels deep makes every recursive consumer downstream — the parser, pydantic, the database
driver's JSON encoder — fail with ``RecursionError``. Numbers too long for Python's integer
conversion limit and text that is not UTF-8 are refused the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from service.errors import BadRequestBody

# Deepest nesting a citygrid body needs is a GeoJSON FeatureCollection of MultiPolygons (~8).
MAX_JSON_DEPTH = 64

_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(body: bytes) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, brackets inside strings not counted.

    Works on bytes without parsing: a quote opens or closes a string unless an odd number of
    backslashes precedes it. Malformed JSON gets some number; the parser rejects it later.
    """
    data = np.frombuffer(body, dtype=np.uint8)
    if not data.size:
        return 0
    quotes = np.flatnonzero(data == ord('"'))
    if quotes.size:
        # the length of the run of backslashes right before each quote
        plain = np.flatnonzero(data != ord("\\"))  # every quote is in here
        before = np.searchsorted(plain, quotes) - 1
        previous_plain = np.where(before >= 0, plain[np.maximum(before, 0)], -1)
        quotes = quotes[(quotes - previous_plain - 1) % 2 == 0]
    toggles = np.zeros(data.size + 1, dtype=np.int8)
    toggles[quotes + 1] = 1  # a character is in a string after an odd number of real quotes
    in_string = (np.cumsum(toggles[:-1], dtype=np.int64) % 2).astype(bool)
    step = _OPEN[data]
    step[in_string | (data == ord('"'))] = 0
    return int(np.cumsum(step, dtype=np.int64).max(initial=0))


def parse_json_body(body: bytes) -> Any:
    """The parsed body, or :class:`BadRequestBody` naming what is wrong with it."""
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise BadRequestBody(
            f"request body is nested {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted",
            field="body",
        )
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise  # FastAPI answers these with its own 422 naming the position
    except UnicodeDecodeError as exc:
        raise BadRequestBody("request body is not UTF-8 text", field="body") from exc
    except (ValueError, RecursionError) as exc:
        # e.g. an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise BadRequestBody(f"request body cannot be read: {exc}", field="body") from exc


class GuardedRequest(Request):
    """A request whose JSON body goes through :func:`parse_json_body`."""

    _parsed: Any = None
    _has_parsed = False

    async def json(self) -> Any:
        """The parsed JSON body (parsed once)."""
        if not self._has_parsed:
            self._parsed = parse_json_body(await self.body())
            self._has_parsed = True
        return self._parsed


def _declares_json(content_type: str | None) -> bool:
    # FastAPI reads a body without a content type as JSON too
    if not content_type:
        return True
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or (
        main.startswith("application/") and main.endswith("+json")
    )


class GuardedRoute(APIRoute):
    """An API route whose JSON body is checked before FastAPI or the route reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler: a JSON body is parsed (and refused) first, so the error
        is the guard's own, rendered by the app's error table, wherever it would have failed."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            guarded_request = GuardedRequest(request.scope, request.receive)
            if _declares_json(request.headers.get("content-type")) and await guarded_request.body():
                try:
                    await guarded_request.json()
                except json.JSONDecodeError:
                    pass  # plain syntax errors: FastAPI's 422 names the position, if it reads it
            return await handler(guarded_request)

        return guarded

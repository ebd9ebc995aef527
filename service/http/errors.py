"""Error answers: every domain error, validation, routing and database error as JSON
``{"detail", "field", …}`` with its mapped status — or, on the paths of an API whose standard
prescribes its own error document (Open311 GeoReport v2: a list of ``{code, description}`` in
XML or JSON), that document, whatever raised the error: a domain error, request validation,
routing (404/405), the database, or a guard in a middleware that answers by itself.

The factory says which path prefixes have their own documents (:class:`ErrorShapes`); this
module knows no particular API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import DataError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import get_route_path

from service.errors import CitygridError, TooManyAttempts, Unauthenticated, status_for

# (path, status, messages, headers) -> the error document of the API the path belongs to
ErrorDocument = Callable[[str, int, list[str], Mapping[str, str] | None], Response]


class ErrorShapes:
    """Which paths answer errors in a document of their own (by path prefix), JSON otherwise."""

    def __init__(self, documents: Mapping[str, ErrorDocument] | None = None) -> None:
        self.documents = dict(documents or {})

    def document_for(self, path: str) -> ErrorDocument | None:
        """The error document of the API ``path`` belongs to, if it has one."""
        for prefix, document in self.documents.items():
            if path == prefix or path.startswith(prefix + "/"):
                return document
        return None

    def response(
        self,
        path: str,
        status: int,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """The error answer on ``path``: ``body`` (with its ``detail``) as JSON, or the error
        document of the API the path belongs to."""
        document = self.document_for(path)
        if document is not None:
            return document(path, status, [str(body["detail"])], headers)
        return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, shapes: ErrorShapes | None = None) -> None:
    """Render every domain error as ``{"detail", "field", ...}`` with its mapped status, and
    every error on a path of an API with its own error document as that document."""
    shapes = shapes or ErrorShapes()

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> Response:
        # PostgreSQL refused a value the schemas let through (a NUL character in text, say)
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return shapes.response(
            get_route_path(request.scope), 422, {"detail": f"a value cannot be stored: {reason}"}
        )

    @app.exception_handler(PoolTimeout)
    async def _no_connection(request: Request, exc: PoolTimeout) -> Response:
        # admission control keeps this from happening; if the pool is still exhausted (sized
        # below the admission limit, or held by background work) the client should come back
        return shapes.response(
            get_route_path(request.scope),
            503,
            {"detail": "no database connection is free; retry after 1 s"},
            {"Retry-After": "1"},
        )

    @app.exception_handler(CitygridError)
    async def _handle(request: Request, exc: CitygridError) -> Response:
        body: dict[str, Any] = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        body.update(exc.extra)
        return shapes.response(
            get_route_path(request.scope), status_for(exc), body, _headers_for(exc)
        )

    _install_api_error_shapes(app, shapes)


def _headers_for(exc: CitygridError) -> dict[str, str] | None:
    """The headers an error status calls for: how to authenticate (401), when to retry (429)."""
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer realm="citygrid"'}
    if isinstance(exc, TooManyAttempts):
        return {"Retry-After": str(int(exc.extra.get("retry_after_s", 60)))}
    return None


def _install_api_error_shapes(app: FastAPI, shapes: ErrorShapes) -> None:
    """Routing, validation and unexpected errors: FastAPI's answers, except on the paths of
    APIs with their own error document."""

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        path = get_route_path(request.scope)
        if shapes.document_for(path) is None:
            return await http_exception_handler(request, exc)
        return shapes.response(path, exc.status_code, {"detail": exc.detail}, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        path = get_route_path(request.scope)
        document = shapes.document_for(path)
        if document is None:
            return await request_validation_exception_handler(request, exc)
        messages = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        ]
        return document(path, 422, messages, None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # the server still logs the traceback: Starlette re-raises after this answer
        path = get_route_path(request.scope)
        if shapes.document_for(path) is None:
            return PlainTextResponse("Internal Server Error", status_code=500)
        detail = "internal server error; the server log has the details"
        return shapes.response(path, 500, {"detail": detail})

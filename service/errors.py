"""Domain errors (no HTTP) and the one table that maps them to HTTP status codes."""

from __future__ import annotations

from collections.abc import Mapping
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

from service.cases.open311.documents import error_document, is_open311_path


class CitygridError(Exception):
    """Base of every domain error: a message for humans, the offending field, extra facts."""

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class InvalidInput(CitygridError):
    """The request is well-formed but its content breaks a rule."""


class BadRequestBody(CitygridError):
    """The request body cannot be read at all (nested too deeply, not UTF-8, …)."""


class BadParameter(CitygridError):
    """A query parameter cannot be understood (OGC APIs answer these with 400)."""


class NotFound(CitygridError):
    """The named thing does not exist (at the requested time)."""


class Forbidden(CitygridError):
    """The caller may not do this (a missing or unknown API key)."""


class Conflict(CitygridError):
    """The request clashes with stored data (overlap, duplicate, concurrent change)."""


class PreconditionRequired(CitygridError):
    """A change needs the version the client saw (optimistic locking)."""


class PayloadTooLarge(CitygridError):
    """An upload exceeds the configured limit."""


STATUS_BY_ERROR: dict[type[CitygridError], int] = {
    InvalidInput: 422,
    BadRequestBody: 400,
    BadParameter: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    PreconditionRequired: 428,
}


def status_for(exc: CitygridError) -> int:
    """HTTP status for a domain error (most specific class in the table wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def install_error_handlers(app: FastAPI) -> None:
    """Render every domain error as ``{"detail", "field", ...}`` with its mapped status."""

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> Response:
        # PostgreSQL refused a value the schemas let through (a NUL character in text, say)
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return error_response(
            get_route_path(request.scope), 422, {"detail": f"a value cannot be stored: {reason}"}
        )

    @app.exception_handler(PoolTimeout)
    async def _no_connection(request: Request, exc: PoolTimeout) -> Response:
        # admission control keeps this from happening; if the pool is still exhausted (sized
        # below the admission limit, or held by background work) the client should come back
        return error_response(
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
        return error_response(get_route_path(request.scope), status_for(exc), body)

    install_api_error_shapes(app)


# -- APIs with their own error document -----------------------------------------------------
# A standard API may prescribe the shape of its errors (Open311 GeoReport v2: a list of
# {code, description}, in XML or JSON). Every error answer goes through ``error_response``, so a
# path of such an API gets that shape whatever raised the error: a domain error, request
# validation, routing (404/405), the database, or a guard in a middleware that answers itself.


def error_response(
    path: str, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    """The error answer on ``path``: ``body`` (with its ``detail``) as JSON, or the error
    document of the API the path belongs to."""
    if is_open311_path(path):
        return error_document(path, status, [str(body["detail"])], headers)
    return JSONResponse(body, status_code=status, headers=headers)


def install_api_error_shapes(app: FastAPI) -> None:
    """Routing, validation and unexpected errors: FastAPI's answers, except on the paths of
    APIs with their own error document."""

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        path = get_route_path(request.scope)
        if not is_open311_path(path):
            return await http_exception_handler(request, exc)
        return error_response(path, exc.status_code, {"detail": exc.detail}, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        path = get_route_path(request.scope)
        if not is_open311_path(path):
            return await request_validation_exception_handler(request, exc)
        messages = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        ]
        return error_document(path, 422, messages)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # the server still logs the traceback: Starlette re-raises after this answer
        path = get_route_path(request.scope)
        if not is_open311_path(path):
            return PlainTextResponse("Internal Server Error", status_code=500)
        detail = "internal server error; the server log has the details"
        return error_response(path, 500, {"detail": detail})

"""Domain errors (no HTTP) and the one table that maps them to HTTP status codes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from sqlalchemy.exc import TimeoutError as PoolTimeout


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
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refused a value the schemas let through (a NUL character in text, say)
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return JSONResponse(
            status_code=422, content={"detail": f"a value cannot be stored: {reason}"}
        )

    @app.exception_handler(PoolTimeout)
    async def _no_connection(_: Request, exc: PoolTimeout) -> JSONResponse:
        # admission control keeps this from happening; if the pool is still exhausted (sized
        # below the admission limit, or held by background work) the client should come back
        return JSONResponse(
            status_code=503,
            content={"detail": "no database connection is free; retry after 1 s"},
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(CitygridError)
    async def _handle(_: Request, exc: CitygridError) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        body.update(exc.extra)
        return JSONResponse(status_code=status_for(exc), content=body)

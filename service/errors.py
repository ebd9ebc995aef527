"""Domain errors (no HTTP) and the one table that maps them to HTTP status codes.

The handlers that render them as answers live in :mod:`service.http.errors`."""

from __future__ import annotations

from typing import Any


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


class Unauthenticated(CitygridError):
    """The request says nothing (or nothing valid) about who is asking: log in, or send a
    token or an API key."""


class TooManyAttempts(CitygridError):
    """Too many requests or failed logins in a short time: wait and try again."""


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
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    PreconditionRequired: 428,
    TooManyAttempts: 429,
}


def status_for(exc: CitygridError) -> int:
    """HTTP status for a domain error (most specific class in the table wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400

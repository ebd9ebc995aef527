"""Every API route of an app, however routers were included."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """The app's API routes, including those of included routers (FastAPI keeps an included
    router as one object whose ``original_router`` holds its routes)."""
    pending = list(app.routes)
    while pending:
        route = pending.pop(0)
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            pending.extend(inner.routes)

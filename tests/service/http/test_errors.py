"""The app's error rendering: APIs with their own error document (Open311) get it whatever raised
the error; other paths keep FastAPI's shapes. A small app with routes that raise what the
citygrid routes rarely reach (validation, a guard in a dependency or a middleware, a bug)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from service.cases.open311.documents import PREFIX, error_document
from service.errors import BadParameter
from service.http.errors import ErrorShapes, install_error_handlers

SHAPES = ErrorShapes({PREFIX: error_document})


class BodyTooDeep(BadParameter):
    """Stands for a shared body guard that raises while the body is parsed."""


def _guard() -> None:
    raise BodyTooDeep("body nests deeper than 64 levels", field="body")


class Overloaded:
    """A middleware that sheds load by answering itself, as an overload guard would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "/busy." in scope["path"]:
            response = SHAPES.response(
                scope["path"], 503, {"detail": "overloaded, retry"}, {"Retry-After": "1"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, SHAPES)
    app.add_middleware(Overloaded)
    for prefix in ("/open311/v2", "/api"):

        @app.get(f"{prefix}/count.{{fmt}}")
        def count(fmt: str, n: int) -> dict[str, int]:
            return {"n": n}

        @app.post(f"{prefix}/guarded.{{fmt}}", dependencies=[Depends(_guard)])
        def guarded(fmt: str) -> None:
            return None

        @app.get(f"{prefix}/bug.{{fmt}}")
        def bug(fmt: str, n: Annotated[int, Depends(lambda: 1)]) -> None:
            raise RuntimeError("a bug")

        @app.get(f"{prefix}/busy.{{fmt}}")
        def busy(fmt: str) -> None:
            return None

    return app


def _open311_errors(r) -> list[tuple[int, str]]:
    if r.headers["content-type"].startswith("application/json"):
        return [(e["code"], e["description"]) for e in r.json()]
    root = ET.fromstring(r.content)
    assert root.tag == "errors"
    return [(int(e.findtext("code")), e.findtext("description")) for e in root]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_paths_get_open311_errors_whatever_raised(fmt: str) -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    invalid = client.get(f"/open311/v2/count.{fmt}", params={"n": "many"})
    assert invalid.status_code == 400  # the standard's code for a request it cannot fulfil
    [(code, description)] = _open311_errors(invalid)
    assert code == 400 and description.startswith("n: ")

    guarded = client.post(f"/open311/v2/guarded.{fmt}")
    assert guarded.status_code == 400
    assert _open311_errors(guarded) == [(400, "body nests deeper than 64 levels")]

    bug = client.get(f"/open311/v2/bug.{fmt}")
    assert bug.status_code == 500 and _open311_errors(bug)[0][0] == 500

    busy = client.get(f"/open311/v2/busy.{fmt}")
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert _open311_errors(busy) == [(503, "overloaded, retry")]


def test_other_paths_keep_fastapi_shapes() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    invalid = client.get("/api/count.json", params={"n": "many"})
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["query", "n"]
    guarded = client.post("/api/guarded.json")
    assert guarded.status_code == 400
    assert guarded.json() == {"detail": "body nests deeper than 64 levels", "field": "body"}
    bug = client.get("/api/bug.json")
    assert bug.status_code == 500 and bug.text == "Internal Server Error"
    busy = client.get("/api/busy.json")
    assert busy.status_code == 503 and busy.json() == {"detail": "overloaded, retry"}
    assert client.get("/api/nothing").json() == {"detail": "Not Found"}

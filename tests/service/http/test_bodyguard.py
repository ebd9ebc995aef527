"""Hostile JSON bodies: every route answers 400 naming the body, never 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from service.http.bodyguard import MAX_JSON_DEPTH, GuardedRoute, json_depth


def _depth(value: Any) -> int:
    """Reference: nesting depth of a parsed JSON value."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# strings full of what could fool a byte scanner: brackets, quotes, backslashes
tricky_text = st.text(alphabet='[]{}"\\\\ab,:/ \u4e2d', max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_depth_scan_agrees_with_the_parsed_value(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert json_depth(body) == _depth(value)


def test_depth_scan_sees_escaped_quotes_and_backslash_runs() -> None:
    assert json_depth(rb'{"a": "\"[[[", "b": [1]}') == 2
    assert json_depth(rb'["\\", [[1]]]') == 3  # an escaped backslash, then a real quote
    assert json_depth(rb'["\\\"[", 2]') == 1  # backslash, escaped quote: still in the string
    assert json_depth(b"") == 0


def _json_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) whose OpenAPI request body is JSON, path parameters filled."""
    spec = client.app.openapi()
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                filled = path.replace("{", "").replace("}", "")
                filled = "/".join("1" if "_id" in p or p == "id" else p for p in filled.split("/"))
                out.append((method.upper(), filled))
    return out


def test_every_route_is_built_with_the_guard(client: TestClient) -> None:
    routes = [r for r in client.app.routes if isinstance(r, APIRoute)]
    assert routes
    assert [r.path for r in routes if not isinstance(r, GuardedRoute)] == []


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"[" * 1000 + b"]" * 1000, "nested"),
        (b'{"a": ' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), "nested"),
        (b'{"lon": ' + b"9" * 5000 + b"}", "cannot be read"),
        (b'{"description": "\xff\xfe"}', "UTF-8"),
    ],
)
def test_hostile_json_gets_400_naming_the_body_on_every_json_route(
    client: TestClient, body: bytes, reason: str
) -> None:
    operations = _json_operations(client)
    assert len(operations) >= 5  # the walk found the API's JSON routes
    open311 = [("POST", "/open311/v2/requests.json")]
    for method, path in operations + open311:
        r = client.request(method, path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (method, path, r.status_code, r.text[:200])
        assert reason in r.text, (method, path, r.text[:200])


def test_nesting_within_the_limit_is_read_normally(client: TestClient) -> None:
    # a GeoJSON MultiPolygon nests 6 deep inside a feature: far below the limit
    body = {
        "code": "bad",
        "level": "unit",
        "name": "x",
        "geometry": {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]},
    }
    r = client.post("/api/grids", json=body)
    assert r.status_code == 422  # read, then refused for its content (the code)


def test_malformed_json_keeps_fastapis_422_and_get_bodies_are_ignored(client: TestClient) -> None:
    r = client.post(
        "/api/grids", content=b'{"code": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"
    r = client.request("GET", "/healthz", content=b"{not json")
    assert r.status_code == 200

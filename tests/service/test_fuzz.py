"""A fuzzing pass over the whole API: generated and deliberately hostile requests never get a 500.

Schemathesis derives valid and invalid requests from the OpenAPI document of the demo app
(every operation, a bounded number of examples each); a second pass sends hand-made hostile
bodies — deep nesting, huge numbers, NUL bytes, long strings, wrong content types — to every
operation that takes a body. Both run inside the test's rolled-back transaction.
"""

from __future__ import annotations

import resource

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy import select

from service.db.models import Grid
from tests.helpers.accounts import bearer, make_user

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 8


def _fuzz(app, authorization: str, examples: int) -> list[str]:
    """Every operation with ``examples`` valid and invalid requests each, sent with
    ``authorization``; the requests answered with a 5xx."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 50  # every operation of the API, not a sample
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def call(case: schemathesis.Case) -> None:
                response = case.call(headers={"Authorization": authorization})
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.query} -> "
                        f"{response.status_code} {response.text[:200]}"
                    )

            try:
                call()
            except Unsatisfiable:
                # no invalid request exists for an operation without inputs to break
                assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


def test_generated_requests_never_get_a_server_error(demo_client: TestClient) -> None:
    # authenticated as the city's admin: every route is reached, not refused
    failures = _fuzz(demo_client.app, demo_client.headers["authorization"], EXAMPLES_PER_OPERATION)
    assert failures == []


def test_generated_requests_of_a_grid_worker_never_get_a_server_error(
    demo_client: TestClient, session, demo_loaded
) -> None:
    # a low-privilege account with a scope of one community: most writes are refused, reads
    # are cut to the scope (the paths where refusals and scoping happen get fuzzed too)
    community = session.scalar(
        select(Grid.code).where(Grid.city == demo_loaded.grids.city, Grid.level == "community")
    )
    worker = make_user(session, demo_loaded, "grid_worker", scope_grids=[community])
    authorization = bearer(session, demo_loaded, worker)["Authorization"]
    failures = _fuzz(demo_client.app, authorization, EXAMPLES_PER_OPERATION // 2)
    assert failures == []


def test_a_point_where_the_citys_projection_breaks_down_is_no_server_error(
    demo_client: TestClient,
) -> None:
    # found by the fuzzer: 110° of longitude from the demo city's UTM zone the scale factor is
    # infinite, and the in-memory locator must say "no grid near", not fail
    r = demo_client.get("/api/grids/locate", params={"lat": 0.0, "lon": 0.35})
    assert r.status_code < 500, r.text


HOSTILE_BODIES = [
    ("application/json", b"[" * 5000 + b"]" * 5000),
    ("application/json", b'{"a": ' * 200 + b"1" + b"}" * 200),
    ("application/json", b'{"lon": 1e999999, "lat": -1e999999, "code": 1' + b"0" * 6000 + b"}"),
    ("application/json", b'{"name": "\\u0000\\u0000", "code": "\\u0000", "note": "a\\u0000b"}'),
    ("application/json", b'{"name": "' + b"x" * 2_000_000 + b'"}'),
    ("application/json", b"\xff\xfe\xfd"),
    ("text/plain", b'{"code": "41010500100101"}'),
    ("application/xml", b"<?xml version='1.0'?><!DOCTYPE a [<!ENTITY b 'c'>]><a>&b;</a>"),
    ("application/x-www-form-urlencoded", b"a=" + b"%00" * 1000 + b"&" * 10_000),
    ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="f"\r\n'),
]


def test_hostile_bodies_on_every_operation_get_a_client_error(demo_client: TestClient) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spec = demo_client.app.openapi()
    sent = 0
    for path, item in spec["paths"].items():
        for method in item:
            if method not in ("post", "put", "patch"):
                continue
            url = path.replace("{", "").replace("}", "")  # path parameters: their own names
            for content_type, body in HOSTILE_BODIES:
                r = demo_client.request(
                    method.upper(), url, content=body, headers={"content-type": content_type}
                )
                sent += 1
                assert 400 <= r.status_code < 500, (method, path, content_type, r.text[:300])
    assert sent >= 100
    # nothing held on to the bodies: the process grew far less than what was sent
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 300, grown_mb

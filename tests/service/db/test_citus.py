"""citygrid on a real Citus cluster: a coordinator and two workers started for the run.

Citus is built from the shared vendor folder's source tarball (tests/helpers/citus.py); without
it these tests skip with a message naming how to enable them — the one allowed skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.helpers.citus import CitusCluster, CitusUnavailable, citus_cluster

pytestmark = [pytest.mark.citus, pytest.mark.slow]


@pytest.fixture(scope="module")
def citus() -> Iterator[CitusCluster]:
    try:
        with citus_cluster(workers=2) as cluster:
            yield cluster
    except CitusUnavailable as exc:
        pytest.skip(str(exc))


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _one(conn: psycopg.Connection, sql: str) -> object:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_the_cluster_has_a_coordinator_and_two_workers_with_postgis(citus: CitusCluster) -> None:
    with psycopg.connect(_conninfo(citus.url())) as conn:
        workers = conn.execute("SELECT * FROM citus_get_active_worker_nodes()").fetchall()
        assert sorted(port for _, port in workers) == sorted(n.port for n in citus.nodes[1:])
        version = _one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'citus'")
        assert version.startswith("13.2")
        assert _one(conn, "SELECT ST_AsText(ST_Point(1, 2))") == "POINT(1 2)"

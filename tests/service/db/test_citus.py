"""citygrid on a real Citus cluster: a coordinator and two workers started for the run.

Citus is built from the shared vendor folder's source tarball (tests/helpers/citus.py); without
it these tests skip with a message naming how to enable them — the one allowed skip.

The coordinator's database is migrated (the city-keys migration runs on Citus before
distribution), distributed with ``citygrid distribute``, given three demo cities (grids and
cases), and then a representative part of the grid, case, assessment and coverage suites runs
against it in a pytest subprocess (``CITYGRID_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from service.cli import app
from service.db import migrations
from service.db.changes import ChangeListener
from service.db.distribute import REFERENCE_TABLES, distribute
from service.db.engine import make_engine
from tests.conftest import make_settings
from tests.helpers.citus import CitusCluster, CitusUnavailable, citus_cluster

pytestmark = [pytest.mark.citus, pytest.mark.slow]

CITIES = ("410200", "410300", "410400")  # three demo cities (the suites use their own keys)
REPO = Path(__file__).resolve().parents[3]
# a representative part of the suites: grids (registry, snapshot and its change counters),
# cases (the API, bulk intake by COPY), assessment (indicators) and coverage
SUITES = (
    "tests/service/grids/test_registry.py",
    "tests/service/grids/test_snapshot.py",
    "tests/service/cases/test_api_cases.py",
    "tests/service/cases/test_importer.py",
    "tests/service/assessment/test_indicators.py",
    "tests/service/assessment/test_inspection.py",  # writes a reference table (checklists)
    "tests/service/maps/test_api_tiles.py",  # local times formatted on the workers
    "tests/service/patrol/test_api_coverage.py",
    "tests/service/patrol/test_track_extension.py",  # tracks extended and rebuilt
    "tests/service/patrol/test_partitions.py",  # day partitions of a distributed table
    "tests/service/maps/test_clusters.py",  # pre-counted clusters and stored heat layers
    "tests/service/maps/test_heat_tiles.py",
)


@dataclass
class Province:
    cluster: CitusCluster
    engine: Engine
    url: str


@pytest.fixture(scope="module")
def citus() -> Iterator[CitusCluster]:
    try:
        with citus_cluster(workers=2) as cluster:
            yield cluster
    except CitusUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def province(citus: CitusCluster) -> Iterator[Province]:
    """The coordinator migrated (in two steps: the city keys migrate on Citus too), distributed,
    with three demo cities committed."""
    url = citus.url()
    engine = make_engine(url)
    migrations.upgrade(engine, "0021_evidence_indicator")
    migrations.upgrade(engine)
    engine.dispose()
    # the command itself, as an operator runs it
    done = CliRunner().invoke(app, ["distribute"], env={"CITYGRID_DATABASE_URL": url})
    assert done.exit_code == 0, done.output
    assert "distributed by city" in done.output
    engine = make_engine(url)  # new connections see the distribution (counter bumps)
    from service.demo import load_demo_cases, load_demo_grids

    for city in CITIES:
        settings = make_settings(city, url)
        with Session(engine) as session:
            load_demo_grids(session, settings)
            load_demo_cases(session, settings, 200)
            session.commit()
    try:
        yield Province(citus, engine, url)
    finally:
        engine.dispose()


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _one(conn: psycopg.Connection, sql: str, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def test_the_cluster_has_a_coordinator_and_two_workers_with_postgis(citus: CitusCluster) -> None:
    with psycopg.connect(_conninfo(citus.url())) as conn:
        workers = conn.execute("SELECT * FROM citus_get_active_worker_nodes()").fetchall()
        assert sorted(port for _, port in workers) == sorted(n.port for n in citus.nodes[1:])
        version = _one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'citus'")
        assert str(version).startswith("13.2")
        assert _one(conn, "SELECT ST_AsText(ST_Point(1, 2))") == "POINT(1 2)"


def test_without_the_citus_source_the_tests_say_how_to_enable_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tests.helpers.citus as helper

    monkeypatch.setattr(helper, "_installed", lambda: False)
    monkeypatch.setattr(helper, "vendor_dir", lambda: None)
    with pytest.raises(CitusUnavailable, match="CITYGRID_CITUS_VENDOR"):
        helper.ensure_citus_installed()


def test_distribute_on_plain_postgresql_exits_1_and_says_why(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGRID_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["distribute"])
    assert result.exit_code == 1
    assert "no citus extension" in result.output


def test_every_city_table_is_distributed_by_city_and_co_located(province: Province) -> None:
    with province.engine.connect() as conn:
        city_tables = set(
            conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE table_schema = "
                    "'public' AND column_name = 'city' AND table_name IN (SELECT tablename "
                    "FROM pg_tables WHERE schemaname = 'public')"
                )
            )
        ) - set(REFERENCE_TABLES)
        rows = conn.execute(
            text(
                "SELECT logicalrelid::regclass::text, partmethod, colocationid, "
                "column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition"
            )
        ).all()
    dist = {t: (method, colo, col) for t, method, colo, col in rows}
    grids_colocation = dist["grids"][1]
    assert {"cases", "case_events", "grids", "gps_fixes", "scoresheets"} <= city_tables
    for table in city_tables:
        assert dist[table] == ("h", grids_colocation, "city"), table
    for table in REFERENCE_TABLES:
        assert dist[table][0] == "n", table
    assert "change_counters" not in dist  # the coordinator's own


def test_distribute_again_changes_nothing(province: Province) -> None:
    again = distribute(province.engine)
    assert again.distributed == [] and again.reference == []
    assert "cases" in again.already and "checklists" in again.already


def test_a_later_migration_propagates_to_the_shards(province: Province) -> None:
    with province.engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.add_column("cases", sa.Column("probe", sa.Integer()))
        op.create_index("ix_cases_probe", "cases", ["city", "probe"])
    try:
        with province.engine.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT success, result FROM run_command_on_shards('cases', $$SELECT "
                    "count(*) FROM pg_attribute a JOIN pg_index i ON i.indrelid = a.attrelid "
                    "WHERE a.attrelid = '%s'::regclass AND a.attname = 'probe' "
                    "AND a.attnum = ANY(i.indkey)$$)"
                )
            ).all()
        assert found and all(ok and result == "1" for ok, result in found), found
    finally:
        with province.engine.begin() as conn:
            conn.execute(text("ALTER TABLE cases DROP COLUMN probe"))


def test_writes_bump_the_coordinators_change_counters_and_notify(province: Province) -> None:
    listener = ChangeListener.for_url(province.url).start()
    try:
        assert listener.healthy
        seen = listener.generation("routing_rules")
        with province.engine.begin() as conn:
            before = conn.scalar(text("SELECT version FROM change_counters WHERE name = 'cases'"))
            conn.execute(
                text("UPDATE cases SET status = status WHERE city = :c AND false"), {"c": CITIES[0]}
            )
            conn.execute(text("DELETE FROM routing_rules WHERE city = 'nowhere'"))
            after = conn.scalar(text("SELECT version FROM change_counters WHERE name = 'cases'"))
        assert after > before  # bumped in the writing transaction, as the trigger does
        for _ in range(100):  # the notification arrives after the commit
            if listener.generation("routing_rules") != seen:
                break
            time.sleep(0.1)
        assert listener.generation("routing_rules") != seen
    finally:
        listener.stop()


def test_the_suites_pass_on_the_coordinator(province: Province) -> None:
    env = {**os.environ, "CITYGRID_TEST_DATABASE_URL": province.url, "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_XDIST_WORKER", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *SUITES,
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-m",
            "not browser and not citus",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    print(f"suites on the Citus coordinator: {summary}")
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]


def test_each_city_lives_in_one_shard_group_on_one_worker(province: Province) -> None:
    with psycopg.connect(_conninfo(province.url)) as conn:
        for city in CITIES:
            nodes = conn.execute(
                "SELECT DISTINCT s.nodeport FROM pg_dist_partition p "
                "JOIN citus_shards s ON s.table_name = p.logicalrelid "
                "WHERE p.partmethod = 'h' AND s.shardid = get_shard_id_for_distribution_column("
                "p.logicalrelid, %s::varchar)",
                (city,),
            ).fetchall()
            assert len(nodes) == 1, (city, nodes)
            port = nodes[0][0]
            grids_shard = _one(
                conn, "SELECT get_shard_id_for_distribution_column('grids', %s::varchar)", (city,)
            )
            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=citygrid") as w:
                on_worker = _one(
                    w, f"SELECT count(*) FROM grids_{grids_shard} WHERE city = %s", (city,)
                )
            total = _one(conn, "SELECT count(*) FROM grids WHERE city = %s", (city,))
            assert on_worker == total and int(str(total)) > 1000, city
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT count(*) FROM cases c JOIN grids g ON g.city = c.city "
                "AND ST_Contains(g.geom, c.geom) WHERE c.city = %s AND g.level = 'unit'",
                (CITIES[0],),
            )
        )
        assert "Task Count: 1" in plan  # a router query: the spatial join runs on one worker


def test_the_compose_file_has_a_citus_profile_of_a_coordinator_and_two_workers() -> None:
    """No Docker engine here: the file parses, and what the profile's services name exists."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    citus = {name: s for name, s in services.items() if "citus" in s.get("profiles", [])}
    assert {"citus-coordinator", "citus-worker1", "citus-worker2", "citus-api"} <= set(citus)
    for name, service in citus.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
        build = service.get("build")
        if build:
            assert (REPO / build / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in compose["volumes"] or (REPO / source).exists(), (name, volume)
    dockerfile = (REPO / "docker/citus/Dockerfile").read_text()
    assert "postgis/postgis:15" in dockerfile and "citus-13.2" in dockerfile
    assert "distribute" in " ".join(citus["citus-migrate"]["command"])

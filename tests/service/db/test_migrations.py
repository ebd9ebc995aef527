"""Models and migrations agree, and migrations go down and up again cleanly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import Engine, create_engine, inspect, make_url, text

from service.db import migrations
from service.db.engine import make_engine
from service.db.models import Base


@pytest.fixture
def own_engine(admin_url: str) -> Iterator[Engine]:
    """An engine on a database of this test's own: going down to nothing must not take the
    shared test database (and the demo city other tests rely on) with it."""
    name = f"citygrid_migrations_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(admin_url).set(database=name).render_as_string(False))
    try:
        migrations.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_object": alembic_helpers.include_object,
                "compare_type": True,
            },
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_downgrade_then_upgrade_restores_schema(own_engine: Engine) -> None:
    before = sorted(inspect(own_engine).get_table_names())
    migrations.downgrade(own_engine, "base")
    assert "grids" not in inspect(own_engine).get_table_names()
    migrations.upgrade(own_engine)
    after = inspect(own_engine)
    assert sorted(after.get_table_names()) == before
    assert {ix["name"] for ix in after.get_indexes("grids")} >= {
        "idx_grids_geom",
        "uq_grids_current_code",
        "ix_grids_city_level_parent",
    }

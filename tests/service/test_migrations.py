"""Models and migrations agree, and migrations go down and up again cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import Engine, inspect

from service import migrations
from service.models import Base


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


def test_downgrade_then_upgrade_restores_schema(engine: Engine) -> None:
    before = sorted(inspect(engine).get_table_names())
    migrations.downgrade(engine, "base")
    assert "grids" not in inspect(engine).get_table_names()
    migrations.upgrade(engine)
    after = inspect(engine)
    assert sorted(after.get_table_names()) == before
    assert {ix["name"] for ix in after.get_indexes("grids")} >= {
        "idx_grids_geom",
        "uq_grids_current_code",
        "ix_grids_city_level_parent",
    }

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


def test_evaluation_migration_grants_the_new_permission_to_seeded_roles(
    own_engine: Engine,
) -> None:
    """Roles are data stored per city: 0012 grants cases.evaluate to the seeded intake, leader
    and admin roles of a city that existed before it, and to no other role."""
    from service.accounts.permissions import ROLE_SEED

    migrations.downgrade(own_engine, "0009_assessment")
    with own_engine.begin() as conn:
        for key, zh, en, perms in ROLE_SEED:
            conn.execute(
                text(
                    "INSERT INTO roles (city, key, name_zh, name_en, permissions)"
                    " VALUES ('old', :key, :zh, :en, :perms)"
                ),
                {
                    "key": key,
                    "zh": zh,
                    "en": en,
                    "perms": [p for p in perms if p != "cases.evaluate"],
                },
            )
    migrations.upgrade(own_engine)
    with own_engine.connect() as conn:
        granted = set(
            conn.scalars(
                text(
                    "SELECT key FROM roles"
                    " WHERE city = 'old' AND 'cases.evaluate' = ANY(permissions)"
                )
            )
        )
        keys = set(conn.scalars(text("SELECT key FROM indicator_definitions WHERE version = 1")))
    assert granted == {"admin", "leader", "intake"}
    assert granted == {key for key, *_, perms in ROLE_SEED if "cases.evaluate" in perms}
    assert {"evaluated", "satisfied", "satisfaction_rate", "quality_points", "avg_quality"} <= keys


def test_notifications_migration_grants_its_permissions_and_goes_back(own_engine: Engine) -> None:
    """0017 grants notify.manage to the stored admin roles and notify.subscribe to admin,
    leader, dispatcher and department staff of a city that existed before it; going down
    takes both away with its tables."""
    from service.accounts.permissions import ROLE_SEED

    new = ("notify.manage", "notify.subscribe")
    migrations.downgrade(own_engine, "0013_patrol_indicators")
    assert "notify_subscriptions" not in inspect(own_engine).get_table_names()
    with own_engine.begin() as conn:
        for key, zh, en, perms in ROLE_SEED:
            conn.execute(
                text(
                    "INSERT INTO roles (city, key, name_zh, name_en, permissions)"
                    " VALUES ('old', :key, :zh, :en, :perms)"
                ),
                {"key": key, "zh": zh, "en": en, "perms": [p for p in perms if p not in new]},
            )
    migrations.upgrade(own_engine)

    def holders(permission: str) -> set[str]:
        with own_engine.connect() as conn:
            return set(
                conn.scalars(
                    text("SELECT key FROM roles WHERE city = 'old' AND :p = ANY(permissions)"),
                    {"p": permission},
                )
            )

    assert holders("notify.manage") == {"admin"}
    assert holders("notify.subscribe") == {"admin", "leader", "dispatcher", "department"}
    for permission in new:
        assert holders(permission) == {key for key, *_, perms in ROLE_SEED if permission in perms}
    migrations.downgrade(own_engine, "0013_patrol_indicators")
    assert holders("notify.manage") == set() and holders("notify.subscribe") == set()
    migrations.upgrade(own_engine)

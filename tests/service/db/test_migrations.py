"""Models and migrations agree, and migrations go down and up again cleanly."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

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


def _store_old_city_roles(engine: Engine, keep: Callable[[str], bool]) -> None:
    """The seeded roles of a city ``old`` stored before a migration, with the permissions
    ``keep`` keeps (those the migration is to grant left out)."""
    from service.accounts.permissions import ROLE_SEED

    with engine.begin() as conn:
        for key, zh, en, perms in ROLE_SEED:
            conn.execute(
                text(
                    "INSERT INTO roles (city, key, name_zh, name_en, permissions)"
                    " VALUES ('old', :key, :zh, :en, :perms)"
                ),
                {"key": key, "zh": zh, "en": en, "perms": [p for p in perms if keep(p)]},
            )


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
    _store_old_city_roles(own_engine, lambda p: p != "cases.evaluate")
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


def test_supervision_migration_grants_the_order_permissions_to_seeded_roles(
    own_engine: Engine,
) -> None:
    """0015 grants orders.issue, orders.answer and orders.rules to the roles stored for a
    city that existed before it, as the seed grants them to new cities."""
    from service.accounts.permissions import ROLE_SEED

    new = ("orders.issue", "orders.answer", "orders.rules")
    migrations.downgrade(own_engine, "0014_assignments")
    _store_old_city_roles(own_engine, lambda p: p not in new)
    migrations.upgrade(own_engine)
    with own_engine.connect() as conn:
        for permission in new:
            granted = set(
                conn.scalars(
                    text("SELECT key FROM roles WHERE city = 'old' AND :p = ANY(permissions)"),
                    {"p": permission},
                )
            )
            assert granted == {key for key, *_, perms in ROLE_SEED if permission in perms}
        rules = set(conn.scalars(text("SELECT key FROM escalation_rules WHERE city IS NULL")))
    assert rules == {"overdue", "reworked", "recurring", "campaign_hotspot"}  # 0019 adds the last


def test_campaign_rule_migration_seeds_the_rule_and_goes_back(own_engine: Engine) -> None:
    """0019 seeds the default campaign_hotspot rule (on, propose mode, 8 working hours); going
    down removes it and every city's edit of it, and up seeds it again."""
    query = text(
        "SELECT city, mode, enabled, params FROM escalation_rules"
        " WHERE key = 'campaign_hotspot' ORDER BY city NULLS FIRST"
    )
    with own_engine.begin() as conn:
        assert [tuple(r) for r in conn.execute(query)] == [
            (None, "propose", True, {"working_hours": 8})
        ]
        conn.execute(
            text(
                "INSERT INTO escalation_rules (city, key, kind, name_zh, params, mode,"
                " deadline_days, demand, updated_by) SELECT 'old', key, kind, name_zh, params,"
                " 'issue', deadline_days, demand, 'admin' FROM escalation_rules"
                " WHERE key = 'campaign_hotspot'"
            )
        )
    migrations.downgrade(own_engine, "0018_briefs")
    with own_engine.connect() as conn:
        assert list(conn.execute(query)) == []
        kinds = set(conn.scalars(text("SELECT kind FROM escalation_rules")))
    assert kinds == {"overdue", "reworked", "recurring"}
    migrations.upgrade(own_engine)
    with own_engine.connect() as conn:
        assert [r.city for r in conn.execute(query)] == [None]


def test_assignment_migration_dates_existing_workers_from_the_start(own_engine: Engine) -> None:
    """0014 gives the workers stored before it their current grids since -infinity, then the
    trigger dates every change; going down removes the table, the trigger and the flag."""
    migrations.downgrade(own_engine, "0013_patrol_indicators")
    with own_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workers (city, code, name, grid_codes, active) VALUES"
                " ('old', 'W1', '甲', ARRAY['A1', 'A2'], true),"
                " ('old', 'W2', '乙', ARRAY['B1'], false)"
            )
        )
    migrations.upgrade(own_engine, "0014_assignments")
    with own_engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT worker_code, grid_code, valid_from = '-infinity', valid_to IS NULL"
                " FROM worker_assignments WHERE city = 'old' ORDER BY 1, 2"
            )
        ).all()
        assert [tuple(r) for r in rows] == [("W1", "A1", True, True), ("W1", "A2", True, True)]
        conn.execute(text("UPDATE workers SET grid_codes = ARRAY['A2'] WHERE code = 'W1'"))
        ended = (
            conn.execute(
                text(
                    "SELECT grid_code FROM worker_assignments"
                    " WHERE city = 'old' AND valid_to IS NOT NULL"
                )
            )
            .scalars()
            .all()
        )
        assert ended == ["A1"]
    migrations.downgrade(own_engine, "0013_patrol_indicators")
    with own_engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('worker_assignments')")) is None
        assert not conn.scalar(
            text(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'categories' AND column_name = 'patrol_visible'"
            )
        )


def test_campaigns_migration_grants_campaigns_manage_to_stored_admin_and_leader(
    own_engine: Engine,
) -> None:
    """0016 grants campaigns.manage to the admin and leader roles stored before it, and to no
    other role; going down takes it away again."""
    from service.accounts.permissions import ROLE_SEED

    migrations.downgrade(own_engine, "0016_campaigns-1")
    assert "campaigns" not in inspect(own_engine).get_table_names()
    _store_old_city_roles(own_engine, lambda p: p != "campaigns.manage")
    migrations.upgrade(own_engine)
    query = text(
        "SELECT key FROM roles WHERE city = 'old' AND 'campaigns.manage' = ANY(permissions)"
    )
    with own_engine.connect() as conn:
        granted = set(conn.scalars(query))
    assert granted == {"admin", "leader"}
    assert granted == {key for key, *_, perms in ROLE_SEED if "campaigns.manage" in perms}
    migrations.downgrade(own_engine, "0016_campaigns-1")
    with own_engine.connect() as conn:
        assert set(conn.scalars(query)) == set()


def test_briefs_migration_grants_the_new_permissions_to_seeded_roles(own_engine: Engine) -> None:
    """0018 grants briefs.read to the stored admin, leader, dispatcher and inspector roles and
    briefs.generate to admin and leader, as the seed does for new cities."""
    from service.accounts.permissions import ROLE_SEED

    migrations.downgrade(own_engine, "0018_briefs-1")
    with own_engine.begin() as conn:
        assert not inspect(conn).has_table("documents")
    _store_old_city_roles(own_engine, lambda p: "briefs" not in p)
    migrations.upgrade(own_engine)
    with own_engine.connect() as conn:
        for permission in ("briefs.read", "briefs.generate"):
            granted = set(
                conn.scalars(
                    text("SELECT key FROM roles WHERE city = 'old' AND :p = ANY(permissions)"),
                    {"p": permission},
                )
            )
            assert granted == {key for key, *_, perms in ROLE_SEED if permission in perms}
        assert inspect(conn).has_table("documents")
    assert {key for key, *_, perms in ROLE_SEED if "briefs.read" in perms} == {
        "admin",
        "leader",
        "dispatcher",
        "inspector",
    }


def test_notifications_migration_grants_its_permissions_and_goes_back(own_engine: Engine) -> None:
    """0017 grants notify.manage to the stored admin roles and notify.subscribe to admin,
    leader, dispatcher and department staff of a city that existed before it; going down
    takes both away with its tables."""
    from service.accounts.permissions import ROLE_SEED

    new = ("notify.manage", "notify.subscribe")
    migrations.downgrade(own_engine, "0017_notifications-1")
    assert "notify_subscriptions" not in inspect(own_engine).get_table_names()
    _store_old_city_roles(own_engine, lambda p: p not in new)
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
    migrations.downgrade(own_engine, "0017_notifications-1")
    assert holders("notify.manage") == set() and holders("notify.subscribe") == set()
    migrations.upgrade(own_engine)


def test_photos_migration_grants_photos_review_and_goes_back(own_engine: Engine) -> None:
    """0020 adds the photos table and grants photos.review to the stored admin, leader, intake
    and dispatcher roles, as the seed does for new cities; going down takes both away."""
    from service.accounts.permissions import ROLE_SEED

    migrations.downgrade(own_engine, "0020_photos-1")
    with own_engine.begin() as conn:
        assert not inspect(conn).has_table("photos")
    _store_old_city_roles(own_engine, lambda p: p != "photos.review")
    migrations.upgrade(own_engine)
    query = text("SELECT key FROM roles WHERE city = 'old' AND 'photos.review' = ANY(permissions)")
    with own_engine.connect() as conn:
        granted = set(conn.scalars(query))
        assert inspect(conn).has_table("photos")
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("photos")}
    assert granted == {"admin", "leader", "intake", "dispatcher"}
    assert granted == {key for key, *_, perms in ROLE_SEED if "photos.review" in perms}
    assert {"ix_photos_city_case", "ix_photos_city_sha256", "ix_photos_city_flagged"} <= indexes
    migrations.downgrade(own_engine, "0020_photos-1")
    with own_engine.connect() as conn:
        assert set(conn.scalars(query)) == set()
        assert not inspect(conn).has_table("photos")


def test_evidence_indicator_migration_seeds_the_definitions_and_goes_back(
    own_engine: Engine,
) -> None:
    """0021 adds version 1 of the evidence indicators, the code's definitions; going down
    removes exactly those rows, going up again restores them."""
    from service.assessment.definitions import BY_KEY

    keys = ("photo_cases", "evidence_flagged", "evidence_flag_rate")
    query = text(
        "SELECT key, version, name_zh, numerator, denominator, subjects"
        " FROM indicator_definitions WHERE key = ANY(:keys) ORDER BY key"
    )
    total = text("SELECT count(*) FROM indicator_definitions")

    def stored() -> list[tuple]:
        with own_engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query, {"keys": list(keys)})]

    expected = sorted(
        (
            k,
            1,
            BY_KEY[k].name_zh,
            BY_KEY[k].numerator,
            BY_KEY[k].denominator,
            list(BY_KEY[k].subjects),
        )
        for k in keys
    )
    assert stored() == expected
    with own_engine.connect() as conn:
        before = conn.scalar(total)
    migrations.downgrade(own_engine, "0020_photos")
    assert stored() == []
    with own_engine.connect() as conn:
        assert conn.scalar(total) == before - 3
    migrations.upgrade(own_engine)
    assert stored() == expected


def test_fixes_partition_migration_moves_every_fix_to_its_day_and_back(
    own_engine: Engine,
) -> None:
    """0022 turns gps_fixes into a table partitioned by local day (Asia/Shanghai): the fixes
    stored before it land in their days' partitions (none in the default one), and going down
    brings every fix back into one plain table with its primary key."""
    fixes = text("SELECT city, device_key, at, lon, lat, accuracy_m, speed_mps FROM gps_fixes")
    per_partition = text("SELECT tableoid::regclass::text, count(*) FROM gps_fixes GROUP BY 1")
    kind = text("SELECT relkind FROM pg_class WHERE oid = 'public.gps_fixes'::regclass")
    migrations.downgrade(own_engine, "0021_evidence_indicator")
    with own_engine.begin() as conn:
        assert conn.scalar(kind) == "r"
        # 23:59:59 and 00:00:00 Shanghai time are two days; 15:59:59 and 16:00:00 UTC too
        conn.execute(
            text(
                "INSERT INTO gps_fixes VALUES"
                " ('old', 1, '2026-03-01 23:59:59+08', 113.6, 34.7, 5, 1.2),"
                " ('old', 1, '2026-03-02 00:00:00+08', 113.6, 34.7, NULL, NULL),"
                " ('old', 2, '2026-03-02 12:00:00+08', 113.6, 34.7, 8, 0),"
                " ('new', 1, '2026-03-05 08:00:00+08', 113.6, 34.7, 8, 0)"
            )
        )
        before = sorted(tuple(r) for r in conn.execute(fixes))
    migrations.upgrade(own_engine)
    with own_engine.connect() as conn:
        assert conn.scalar(kind) == "p"
        assert sorted(tuple(r) for r in conn.execute(fixes)) == before
        assert dict(conn.execute(per_partition).all()) == {
            "partitions.gps_fixes_20260301": 1,
            "partitions.gps_fixes_20260302": 2,
            "partitions.gps_fixes_20260305": 1,
        }
        names = set(
            conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'partitions'"))
        )
        assert "gps_fixes_default" in names
        assert "gps_fixes_20260303" not in names  # only days with fixes, and today onwards
    migrations.downgrade(own_engine, "0021_evidence_indicator")
    with own_engine.connect() as conn:
        assert conn.scalar(kind) == "r"
        assert sorted(tuple(r) for r in conn.execute(fixes)) == before
        assert conn.scalar(text("SELECT to_regnamespace('partitions')")) is None
        pk = conn.scalar(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'public.gps_fixes'::regclass AND contype = 'p'"
            )
        )
        assert pk == "PRIMARY KEY (city, device_key, at)"
    migrations.upgrade(own_engine)

"""change counters take their values from a sequence, and announce themselves

A counter value must name one state of its table for ever: caches in every server process key
on it. ``version + 1`` is undone by a rollback, so a later transaction could reuse a number that
a rolled-back one had shown; a sequence never hands out a value twice.

Each bump also sends ``NOTIFY citygrid_changes, '<table>:<version>'``: PostgreSQL delivers it
when the writing transaction commits (never for one that rolls back), so server processes can
drop a cache the moment it goes stale instead of asking the database on every request.

The catalogue (categories, routing rules) and the hotspots are counted too: case intake keeps
them in memory and reads all counters in one query.

Revision ID: 0005_counter_sequence
Revises: 0004_change_counters
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_counter_sequence"
down_revision: str | None = "0004_change_counters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


NEW_TABLES = ("categories", "routing_rules", "hotspots")


def upgrade() -> None:
    op.execute(
        "INSERT INTO change_counters (name) VALUES "
        + ", ".join(f"('{t}')" for t in NEW_TABLES)
    )
    op.execute("CREATE SEQUENCE change_counter_seq")
    op.execute(
        "SELECT setval('change_counter_seq', "
        "(SELECT coalesce(max(version), 0) + 1 FROM change_counters), false)"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION citygrid_bump_change_counter() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ DECLARE v bigint; BEGIN "
        "UPDATE change_counters SET version = nextval('change_counter_seq') "
        "WHERE name = TG_TABLE_NAME RETURNING version INTO v; "
        "PERFORM pg_notify('citygrid_changes', TG_TABLE_NAME || ':' || v); "
        "RETURN NULL; END $$"
    )
    for table in NEW_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_change_counter AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION citygrid_bump_change_counter()"
        )


def downgrade() -> None:
    for table in NEW_TABLES:
        op.execute(f"DROP TRIGGER {table}_change_counter ON {table}")
    op.execute(
        "DELETE FROM change_counters WHERE name IN ("
        + ", ".join(f"'{t}'" for t in NEW_TABLES)
        + ")"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION citygrid_bump_change_counter() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN UPDATE change_counters SET version = version + 1 "
        "WHERE name = TG_TABLE_NAME; RETURN NULL; END $$"
    )
    op.execute("DROP SEQUENCE change_counter_seq")

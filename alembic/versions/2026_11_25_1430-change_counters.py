"""change counters for caches

Revision ID: 0004_change_counters
Revises: 0003_patrol
Create Date: 2026-11-25 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004_change_counters"
down_revision: str | None = "0003_patrol"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("cases", "grids")


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute("INSERT INTO change_counters (name) VALUES " + ", ".join(f"('{t}')" for t in TABLES))
    # one bump per statement (a million-row COPY is one bump), inside the writing transaction,
    # so readers see the new number exactly when they can see the new rows
    op.execute(
        "CREATE FUNCTION citygrid_bump_change_counter() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN UPDATE change_counters SET version = version + 1 WHERE name = TG_TABLE_NAME; "
        "RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_change_counter AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION citygrid_bump_change_counter()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_change_counter ON {table}")
    op.execute("DROP FUNCTION citygrid_bump_change_counter()")
    op.drop_table("change_counters")

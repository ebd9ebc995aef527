"""who reported a case, and the indexes behind scoped case reads

A case records the account or API key that reported it (``reporter_user_id`` /
``reporter_key_id``): the reporter sees their own reports wherever they are, and may not verify
them (separation of duties). Scoped reads filter cases by grid subtree (``ix_cases_city_grid``,
text_pattern_ops, exists), by department and by reporter: the two partial indexes below and
the department index keep each arm of that condition an index scan.

Revision ID: 0007_scope
Revises: 0006_accounts
Create Date: 2026-11-29 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_scope"
down_revision: str | None = "0006_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("reporter_user_id", sa.BigInteger(), nullable=True))
    op.add_column("cases", sa.Column("reporter_key_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_cases_city_department", "cases", ["city", "department"], unique=False
    )
    op.create_index(
        "ix_cases_reporter_user",
        "cases",
        ["city", "reporter_user_id"],
        unique=False,
        postgresql_where=sa.text("reporter_user_id IS NOT NULL"),
    )
    op.create_index(
        "ix_cases_reporter_key",
        "cases",
        ["city", "reporter_key_id"],
        unique=False,
        postgresql_where=sa.text("reporter_key_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_reporter_key", table_name="cases")
    op.drop_index("ix_cases_reporter_user", table_name="cases")
    op.drop_index("ix_cases_city_department", table_name="cases")
    op.drop_column("cases", "reporter_key_id")
    op.drop_column("cases", "reporter_user_id")

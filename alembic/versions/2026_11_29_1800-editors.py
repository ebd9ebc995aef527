"""what editors need: change times of streets and hotspots, audit lookups by entity

Edits in place (a street's line, a hotspot's zone) must move the coverage fingerprint, which
counted rows and their highest id; ``updated_at`` lets it see an edit too. The audit log is read
per entity ("every change to grid X") as well as by time.

Revision ID: 0008_editors
Revises: 0007_scope
Create Date: 2026-11-29 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_editors"
down_revision: str | None = "0007_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("streets", "hotspots"):
        op.add_column(
            table,
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("now()"),
                nullable=False,
            ),
        )
    op.create_index(
        "ix_audit_log_entity", "audit_log", ["city", "entity", "entity_key", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    for table in ("streets", "hotspots"):
        op.drop_column(table, "updated_at")

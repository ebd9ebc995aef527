"""documents: the daily set (三个一) of briefs, circulars and ledgers, stored as issued

One row per issued document: city, kind (brief | circular | ledger), scope (a grid code),
period (label, kind, first and last day), format, issue (1 = the first or scheduled one,
regenerations count up), the file's bytes with their sha256, and the version of the data it
was made from. The unique (city, kind, scope, period, format, issue) keeps one set per scope and
day even with two service processes generating at once (besides their advisory lock).

Two new permissions are granted to the seeded roles already stored for existing cities:
``briefs.read`` (admin, leader, dispatcher, inspector) and ``briefs.generate`` (admin, leader).

Revision ID: 0018_briefs
Revises: 0017_notifications
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0018_briefs"
down_revision: str | None = "0017_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANTS = {
    "briefs.read": ("admin", "leader", "dispatcher", "inspector"),
    "briefs.generate": ("admin", "leader"),
}


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("scope", sa.String(length=15), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("period_kind", sa.String(length=8), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("format", sa.String(length=5), nullable=False),
        sa.Column("issue", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("data_version", sa.String(length=64), nullable=False),
        sa.Column("data_stamp", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint("kind IN ('brief', 'circular', 'ledger')", name="ck_documents_kind"),
        sa.CheckConstraint("format IN ('docx', 'pdf', 'html', 'xlsx')", name="ck_documents_format"),
        sa.CheckConstraint("issue >= 1", name="ck_documents_issue"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "city", "kind", "scope", "period", "format", "issue", name="uq_documents_issue"
        ),
    )
    op.create_index("ix_documents_city_day", "documents", ["city", "first_day", "scope"])
    for permission, roles in GRANTS.items():
        op.execute(
            sa.text(
                "UPDATE roles SET permissions = array_append(permissions, :p) "
                "WHERE key = ANY(:roles) AND NOT (:p = ANY(permissions))"
            ).bindparams(
                sa.bindparam("p", permission),
                sa.bindparam("roles", list(roles), type_=sa.ARRAY(sa.String())),
            )
        )


def downgrade() -> None:
    for permission in GRANTS:
        op.execute(
            sa.text("UPDATE roles SET permissions = array_remove(permissions, :p)").bindparams(
                p=permission
            )
        )
    op.drop_index("ix_documents_city_day", table_name="documents")
    op.drop_table("documents")

"""photos: photo and video evidence of cases, with EXIF metadata and the evidence flags

One row per uploaded file of a case (or of a grid scored in an inspection round: round and
grid code instead of the case): city, step (report | feedback | verification | inspection),
stage (before | during | after), kind and MIME type sniffed from the content, size, sha256
and 64-bit perceptual hash, width and height, the uploader (label, account or API key),
created_at, EXIF time and position and the uploader's reported position (points in WGS 84),
the distance from the case and the flags of the evidence check, and ``deleted_at`` set by
the retention sweep. The files themselves live in the photo store, not in the database.

A new permission ``photos.review`` (the list of flagged photos) is granted to the seeded
admin, leader, intake and dispatcher roles already stored for existing cities.

Revision ID: 0020_photos
Revises: 0019_campaign_rule
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0020_photos"
down_revision: str | None = "0019_campaign_rule"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANTS = {"photos.review": ("admin", "leader", "intake", "dispatcher")}


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("round_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("step", sa.String(length=12), nullable=False),
        sa.Column("stage", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("mime", sa.String(length=40), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("uploader", sa.Text(), nullable=False),
        sa.Column("uploader_user_id", sa.BigInteger(), nullable=True),
        sa.Column("uploader_key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "exif_geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT", srid=4326, spatial_index=False, from_text="ST_GeomFromEWKT"
            ),
            nullable=True,
        ),
        sa.Column(
            "reported_geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT", srid=4326, spatial_index=False, from_text="ST_GeomFromEWKT"
            ),
            nullable=True,
        ),
        sa.Column("reported_accuracy_m", sa.Float(), nullable=True),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("reuse_of", sa.BigInteger(), nullable=True),
        sa.Column(
            "flags", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "step IN ('report', 'feedback', 'verification', 'inspection')", name="ck_photos_step"
        ),
        # a case's photo, or a photo of a grid scored in an inspection round (交叉考核)
        sa.CheckConstraint(
            "CASE WHEN step = 'inspection'"
            " THEN case_id IS NULL AND round_id IS NOT NULL AND grid_code IS NOT NULL"
            " ELSE case_id IS NOT NULL AND round_id IS NULL END",
            name="ck_photos_subject",
        ),
        sa.CheckConstraint("stage IN ('before', 'during', 'after')", name="ck_photos_stage"),
        sa.CheckConstraint("kind IN ('image', 'video')", name="ck_photos_kind"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["round_id"], ["inspection_rounds.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_photos_city_case", "photos", ["city", "case_id"])
    op.create_index("ix_photos_round_grid", "photos", ["round_id", "grid_code"])
    op.create_index("ix_photos_city_sha256", "photos", ["city", "sha256"])
    op.create_index("ix_photos_city_created", "photos", ["city", "created_at"])
    op.create_index(
        "ix_photos_city_flagged",
        "photos",
        ["city", "created_at"],
        postgresql_where=sa.text("cardinality(flags) > 0"),
    )
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
    op.drop_index("ix_photos_city_flagged", table_name="photos")
    op.drop_index("ix_photos_city_created", table_name="photos")
    op.drop_index("ix_photos_city_sha256", table_name="photos")
    op.drop_index("ix_photos_round_grid", table_name="photos")
    op.drop_index("ix_photos_city_case", table_name="photos")
    op.drop_table("photos")

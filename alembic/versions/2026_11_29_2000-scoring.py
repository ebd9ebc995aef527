"""scoring schemes and published red/yellow lists (issue 12, part 2)

``scoring_schemes`` holds every version of a scoring scheme as a validated JSON document
(``service.assessment.schemes``); the default, modelled on published city rules, is seeded here
with ``city`` NULL and applies to every period until a city adds its own version.
``assessment_lists`` holds the published revisions of each period's 红黄榜: a frozen snapshot
that later edits to cases cannot change.

Two permissions are new: ``assessment.schemes`` (admin) and ``assessment.publish`` (admin,
leader); the roles already stored for existing cities are granted them here.

Revision ID: 0010_scoring
Revises: 0009_assessment
Create Date: 2026-11-29 18:20:00
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0010_scoring"
down_revision: str | None = "0009_assessment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALID_FROM = "2000-01-01T00:00:00+08:00"
# frozen copy of service.assessment.schemes.DEFAULT_DOCUMENT as first shipped
DOCUMENT = json.loads(
    """{
 "name": "默认考核评分方案（参照城市管理考评办法）",
 "rules": [
  {
   "subject": "grid",
   "levels": [
    "district",
    "street",
    "community",
    "unit"
   ],
   "name": "网格综合评价",
   "components": [
    {
     "indicator": "on_time_close_rate",
     "weight": 35.0,
     "points": {
      "rule": "below_target",
      "target": 0.95,
      "per_point": 5.0,
      "better": "higher"
     },
     "if_none": 100.0
    },
    {
     "indicator": "close_rate",
     "weight": 20.0,
     "points": {
      "rule": "linear",
      "zero": 0.8,
      "full": 1.0
     },
     "if_none": 100.0
    },
    {
     "indicator": "rework_rate",
     "weight": 15.0,
     "points": {
      "rule": "bands",
      "bands": [
       {
        "at_most": 0.02,
        "points": 100.0
       },
       {
        "at_most": 0.05,
        "points": 80.0
       },
       {
        "at_most": 0.1,
        "points": 60.0
       },
       {
        "at_most": 0.2,
        "points": 30.0
       }
      ],
      "otherwise": 0.0
     },
     "if_none": 100.0
    },
    {
     "indicator": "recurring",
     "weight": 10.0,
     "points": {
      "rule": "bands",
      "bands": [
       {
        "at_most": 0.0,
        "points": 100.0
       },
       {
        "at_most": 2.0,
        "points": 80.0
       },
       {
        "at_most": 5.0,
        "points": 50.0
       }
      ],
      "otherwise": 20.0
     },
     "if_none": 100.0
    },
    {
     "external": "cross_scoring",
     "weight": 20.0,
     "if_none": 100.0
    }
   ],
   "deductions": [
    {
     "kind": "rework",
     "points": 0.5,
     "times": 3,
     "flags": [
      "leader",
      "media"
     ],
     "flag_factor": 2.0,
     "max_points": 10.0
    },
    {
     "kind": "failed_verification",
     "points": 2.0,
     "times": 3,
     "flags": [
      "leader",
      "media"
     ],
     "flag_factor": 2.0,
     "max_points": 10.0
    }
   ],
   "bonuses": [],
   "peer_group": "parent",
   "lists": {
    "red": {
     "top": 3
    },
    "yellow": {
     "bottom": 3
    }
   }
  },
  {
   "subject": "department",
   "name": "专业部门考评",
   "components": [
    {
     "indicator": "close_rate",
     "weight": 30.0,
     "points": {
      "rule": "linear",
      "zero": 0.8,
      "full": 1.0
     },
     "if_none": 100.0
    },
    {
     "indicator": "on_time_handling_rate",
     "weight": 40.0,
     "points": {
      "rule": "below_target",
      "target": 0.95,
      "per_point": 5.0,
      "better": "higher"
     },
     "if_none": 100.0
    },
    {
     "indicator": "rework_rate",
     "weight": 30.0,
     "points": {
      "rule": "linear",
      "zero": 0.2,
      "full": 0.0
     },
     "if_none": 100.0
    }
   ],
   "deductions": [
    {
     "kind": "rework",
     "points": 0.5,
     "times": 3,
     "flags": [
      "leader",
      "media"
     ],
     "flag_factor": 2.0,
     "max_points": 10.0
    },
    {
     "kind": "failed_verification",
     "points": 2.0,
     "times": 3,
     "flags": [
      "leader",
      "media"
     ],
     "flag_factor": 2.0,
     "max_points": 10.0
    }
   ],
   "bonuses": [],
   "peer_group": "all",
   "lists": {
    "red": {
     "top": 3
    },
    "yellow": {
     "bottom": 3
    }
   }
  },
  {
   "subject": "worker",
   "name": "监督员综合指标值",
   "components": [
    {
     "indicator": "valid_report_rate",
     "weight": 40.0,
     "points": {
      "rule": "linear",
      "zero": 0.6,
      "full": 1.0
     },
     "if_none": 100.0
    },
    {
     "indicator": "missed",
     "weight": 20.0,
     "points": {
      "rule": "bands",
      "bands": [
       {
        "at_most": 2.0,
        "points": 100.0
       },
       {
        "at_most": 5.0,
        "points": 80.0
       },
       {
        "at_most": 10.0,
        "points": 60.0
       },
       {
        "at_most": 20.0,
        "points": 30.0
       }
      ],
      "otherwise": 0.0
     },
     "if_none": 100.0
    },
    {
     "indicator": "on_time_check_rate",
     "weight": 40.0,
     "points": {
      "rule": "below_target",
      "target": 0.95,
      "per_point": 4.0,
      "better": "higher"
     },
     "if_none": 100.0
    }
   ],
   "deductions": [],
   "bonuses": [
    {
     "name": "巡查上报加分",
     "indicator": "patrol_reported",
     "per": 20.0,
     "points": 1.0,
     "max_points": 5.0
    }
   ],
   "peer_group": "street",
   "lists": {
    "red": {
     "top": 3
    },
    "yellow": {
     "bottom": 3
    }
   }
  },
  {
   "subject": "dispatcher",
   "name": "派遣员考评",
   "components": [
    {
     "indicator": "accurate_dispatch_rate",
     "weight": 100.0,
     "points": {
      "rule": "below_target",
      "target": 0.95,
      "per_point": 5.0,
      "better": "higher"
     },
     "if_none": 100.0
    }
   ],
   "deductions": [],
   "bonuses": [],
   "peer_group": "all",
   "lists": {
    "red": {
     "top": 1
    },
    "yellow": {
     "bottom": 1
    }
   }
  }
 ],
 "grades": [
  {
   "grade": "A",
   "min": 90.0
  },
  {
   "grade": "B",
   "min": 75.0
  },
  {
   "grade": "C",
   "min": 60.0
  },
  {
   "grade": "D",
   "min": 40.0
  },
  {
   "grade": "E",
   "min": 0.0
  }
 ]
}"""
)
GRANTS = {"assessment.schemes": ("admin",), "assessment.publish": ("admin", "leader")}


def upgrade() -> None:
    schemes = op.create_table(
        "scoring_schemes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.CheckConstraint("version >= 1", name="ck_scoring_schemes_version"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_scoring_schemes_city_valid", "scoring_schemes", ["city", "valid_from"], unique=False
    )
    op.create_table(
        "assessment_lists",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("scheme_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.Text(), nullable=False),
        sa.Column("data_stamp", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint("revision >= 1", name="ck_assessment_lists_revision"),
        sa.CheckConstraint("revision = 1 OR reason IS NOT NULL", name="ck_assessment_lists_reason"),
        sa.ForeignKeyConstraint(["scheme_id"], ["scoring_schemes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("city", "period", "revision", name="uq_assessment_lists_revision"),
    )
    op.bulk_insert(
        schemes,
        [
            {
                "city": None,
                "version": 1,
                "name": DOCUMENT["name"],
                "valid_from": datetime.fromisoformat(VALID_FROM),
                "document": DOCUMENT,
                "created_by": "migration 0010_scoring",
            }
        ],
    )
    for permission, roles in GRANTS.items():
        op.execute(
            sa.text(
                "UPDATE roles SET permissions = array_append(permissions, :p)"
                " WHERE key = ANY(:roles) AND NOT (:p = ANY(permissions))"
            ).bindparams(
                sa.bindparam("roles", list(roles), type_=sa.ARRAY(sa.String())), p=permission
            )
        )


def downgrade() -> None:
    op.execute(
        "UPDATE roles SET permissions = array_remove(array_remove(permissions,"
        " 'assessment.schemes'), 'assessment.publish')"
    )
    op.drop_table("assessment_lists")
    op.drop_index("ix_scoring_schemes_city_valid", table_name="scoring_schemes")
    op.drop_table("scoring_schemes")

"""worker assignment history, the patrol-visible flag of categories, hotspot subjects

漏报数 (missed) counts a problem found by someone else in a grid that was in a worker's patrol
assignment when it was reported, of a kind patrols should see. So:

- ``worker_assignments`` keeps each (worker, unit grid) assignment with the time it began and
  ended; a trigger on ``workers`` keeps it (whatever writes ``workers``: the API, an import, the
  demo, a script). The grids a worker is registered with count as theirs from the beginning
  (``-infinity``): the office states the current assignment when it registers its workers;
  every later change is dated.
- ``categories.patrol_visible``: false for what a patrol cannot be expected to find (施工扰民 at
  night, 燃气管道破裂, 火灾, 其他突发事件: reported by those who hear or smell it, or sudden).
- indicator definitions: version 2 of ``missed`` (the assignment and the flag), version 2 of
  every indicator of all subjects (adds the hotspot subject: the cases in its influence zone),
  version 1 of ``quota_hotspots``, ``quota_hotspots_met`` and ``hotspot_quota_rate`` (a
  worker's hotspot patrol quotas, weighted by the hotspots' ``risk_weight``). Version 2 has
  version 1's ``valid_from``: it supersedes it for every period, and version 1 stays readable.

Revision ID: 0014_assignments
Revises: 0013_patrol_indicators
Create Date: 2026-11-30 04:00:00
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from alembic import op

revision: str = "0014_assignments"
down_revision: str | None = "0013_patrol_indicators"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALID_FROM = "2000-01-01T00:00:00+08:00"
NOT_FOR_PATROL = ("0301", "0403", "0406", "0499")
ROWS = json.loads(
    """[
    {"key": "reported", "version": 2, "name_zh": "上报数", "name_en": "reports", "kind": "count", "unit": "件", "formula": "reported_at in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "valid_reported", "version": 2, "name_zh": "有效上报数", "name_en": "valid reports", "kind": "count", "unit": "件", "formula": "reported in P and registered", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "valid_report_rate", "version": 2, "name_zh": "有效上报率", "name_en": "valid report rate", "kind": "rate", "unit": "%", "formula": "valid_reported ÷ reported", "numerator": "valid_reported", "denominator": "reported", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "registered", "version": 2, "name_zh": "立案数", "name_en": "registered", "kind": "count", "unit": "件", "formula": "a register event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "voided", "version": 2, "name_zh": "作废数", "name_en": "voided (rejected)", "kind": "count", "unit": "件", "formula": "a reject event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "dispatched", "version": 2, "name_zh": "派遣数", "name_en": "dispatched", "kind": "count", "unit": "件", "formula": "the first dispatch event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "accurate_dispatched", "version": 2, "name_zh": "准确派遣数", "name_en": "accurately dispatched", "kind": "count", "unit": "件", "formula": "dispatched in P, never re-dispatched nor sent back", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "accurate_dispatch_rate", "version": 2, "name_zh": "准确派遣率", "name_en": "accurate dispatch rate", "kind": "rate", "unit": "%", "formula": "accurate_dispatched ÷ dispatched", "numerator": "accurate_dispatched", "denominator": "dispatched", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "handled", "version": 2, "name_zh": "处置数", "name_en": "handled (fed back)", "kind": "count", "unit": "件", "formula": "a feedback event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "handled_on_time", "version": 2, "name_zh": "按期处置数", "name_en": "handled on time", "kind": "count", "unit": "件", "formula": "handled, last feedback in P <= deadline at the end of P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "on_time_handling_rate", "version": 2, "name_zh": "按期处置率", "name_en": "on-time handling rate", "kind": "rate", "unit": "%", "formula": "handled_on_time ÷ handled", "numerator": "handled_on_time", "denominator": "handled", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "closed", "version": 2, "name_zh": "结案数", "name_en": "closed", "kind": "count", "unit": "件", "formula": "a verify event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "closed_on_time", "version": 2, "name_zh": "按期结案数", "name_en": "closed on time", "kind": "count", "unit": "件", "formula": "closed, last verify in P <= deadline at the end of P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "closed_late", "version": 2, "name_zh": "超期结案数", "name_en": "closed late", "kind": "count", "unit": "件", "formula": "closed − closed_on_time", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "overdue_open", "version": 2, "name_zh": "超期未结数", "name_en": "open and overdue", "kind": "count", "unit": "件", "formula": "open at the end of P, deadline at the end of P < end of P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "due", "version": 2, "name_zh": "应结案数", "name_en": "due for closure", "kind": "count", "unit": "件", "formula": "closed in P or overdue_open", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "close_rate", "version": 2, "name_zh": "结案率", "name_en": "closure rate", "kind": "rate", "unit": "%", "formula": "closed ÷ due", "numerator": "closed", "denominator": "due", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "on_time_close_rate", "version": 2, "name_zh": "按期结案率", "name_en": "on-time closure rate", "kind": "rate", "unit": "%", "formula": "closed_on_time ÷ due", "numerator": "closed_on_time", "denominator": "due", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "reworked", "version": 2, "name_zh": "返工数", "name_en": "reworks", "kind": "count", "unit": "件", "formula": "rework events in P (twice is two)", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "rework_rate", "version": 2, "name_zh": "返工率", "name_en": "rework rate", "kind": "rate", "unit": "%", "formula": "reworked ÷ due", "numerator": "reworked", "denominator": "due", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "extended", "version": 2, "name_zh": "延期数", "name_en": "extended", "kind": "count", "unit": "件", "formula": "cases with an extend event in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "extension_rate", "version": 2, "name_zh": "延期率", "name_en": "extension rate", "kind": "rate", "unit": "%", "formula": "extended ÷ due", "numerator": "extended", "denominator": "due", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "handling_hours", "version": 2, "name_zh": "处置时长合计", "name_en": "handling hours (sum)", "kind": "count", "unit": "小时", "formula": "working hours from the first dispatch to the last feedback in P, over handled cases", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "handling_timed", "version": 2, "name_zh": "计时处置数", "name_en": "timed handled cases", "kind": "count", "unit": "件", "formula": "handled with a first dispatch", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "avg_handling_hours", "version": 2, "name_zh": "平均处置时长", "name_en": "mean handling time", "kind": "hours", "unit": "小时", "formula": "handling_hours ÷ handling_timed (working hours)", "numerator": "handling_hours", "denominator": "handling_timed", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "checked", "version": 2, "name_zh": "核查数", "name_en": "verifications", "kind": "count", "unit": "件", "formula": "verify or rework events in P", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "checked_on_time", "version": 2, "name_zh": "按时核查数", "name_en": "verified in time", "kind": "count", "unit": "件", "formula": "checked within verify_within_hours calendar hours of the feedback before it", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "on_time_check_rate", "version": 2, "name_zh": "按时核查率", "name_en": "on-time verification rate", "kind": "rate", "unit": "%", "formula": "checked_on_time ÷ checked", "numerator": "checked_on_time", "denominator": "checked", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {"verify_within_hours": 24}},
    {"key": "missed", "version": 2, "name_zh": "漏报数", "name_en": "missed by patrol", "kind": "count", "unit": "件", "formula": "reported in P by a source other than patrol (citizen, inspector, hotline, open311, import), of a category patrols should see (categories.patrol_visible), in a unit grid that was in a worker's patrol assignment when it was reported (worker_assignments); a worker's: in the grids assigned to that worker then", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "recurring", "version": 2, "name_zh": "复发数", "name_en": "recurring", "kind": "count", "unit": "件", "formula": "reported in P and marked recurring", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "patrol_reported", "version": 2, "name_zh": "巡查上报数", "name_en": "patrol reports", "kind": "count", "unit": "件", "formula": "reported in P with source patrol", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "evaluated", "version": 2, "name_zh": "评价数", "name_en": "evaluated", "kind": "count", "unit": "件", "formula": "an evaluate event in P (综合评价; once per case)", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "satisfied", "version": 2, "name_zh": "满意数", "name_en": "satisfied", "kind": "count", "unit": "件", "formula": "evaluated in P as 满意 or 基本满意", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "satisfaction_rate", "version": 2, "name_zh": "满意率", "name_en": "satisfaction rate", "kind": "rate", "unit": "%", "formula": "satisfied ÷ evaluated", "numerator": "satisfied", "denominator": "evaluated", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "quality_points", "version": 2, "name_zh": "质量评分合计", "name_en": "quality points (sum)", "kind": "count", "unit": "分", "formula": "quality (1–5) of the evaluations in P, summed", "numerator": null, "denominator": null, "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "avg_quality", "version": 2, "name_zh": "平均质量评分", "name_en": "mean quality score", "kind": "rate", "unit": "分", "formula": "quality_points ÷ evaluated", "numerator": "quality_points", "denominator": "evaluated", "subjects": ["grid", "department", "worker", "dispatcher", "hotspot"], "params": {}},
    {"key": "quota_hotspots", "version": 1, "name_zh": "定额重点部位权重", "name_en": "hotspots with a quota (risk-weighted)", "kind": "count", "unit": "权重", "formula": "Σ risk_weight of the hotspots active in P with a weekly patrol quota whose influence zone touches one of the worker's assigned unit grids", "numerator": null, "denominator": null, "subjects": ["worker"], "params": {}},
    {"key": "quota_hotspots_met", "version": 1, "name_zh": "巡查达标重点部位权重", "name_en": "hotspots whose quota the worker met (risk-weighted)", "kind": "count", "unit": "权重", "formula": "Σ risk_weight of those quota_hotspots the worker visited at least patrol_quota_per_week × weeks(P) times (a visit: one of the worker's tracks whose part inside P passes within coverage_radius_m of the zone)", "numerator": null, "denominator": null, "subjects": ["worker"], "params": {}},
    {"key": "hotspot_quota_rate", "version": 1, "name_zh": "重点部位巡查达标率", "name_en": "hotspot patrol quota met (risk-weighted)", "kind": "rate", "unit": "%", "formula": "quota_hotspots_met ÷ quota_hotspots", "numerator": "quota_hotspots_met", "denominator": "quota_hotspots", "subjects": ["worker"], "params": {}}
]"""
)

TRIGGER = """
CREATE FUNCTION worker_assignment_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    -- end the assignments of grids no longer assigned (all of them for an inactive worker)
    UPDATE worker_assignments a SET valid_to = now()
    WHERE a.city = NEW.city AND a.worker_code = NEW.code AND a.valid_to IS NULL
      AND (NOT NEW.active OR NOT (a.grid_code = ANY (NEW.grid_codes)));
  END IF;
  IF NEW.active THEN
    INSERT INTO worker_assignments (city, worker_code, grid_code, valid_from)
    SELECT NEW.city, NEW.code, g,
      CASE WHEN TG_OP = 'INSERT' THEN '-infinity'::timestamptz ELSE now() END
    FROM (SELECT DISTINCT unnest(NEW.grid_codes) AS g) n
    WHERE NOT EXISTS (
      SELECT 1 FROM worker_assignments a
      WHERE a.city = NEW.city AND a.worker_code = NEW.code AND a.grid_code = n.g
        AND a.valid_to IS NULL)
    -- ended and begun again in one transaction: the assignment simply goes on
    ON CONFLICT (city, worker_code, grid_code, valid_from) DO UPDATE SET valid_to = NULL;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER tr_workers_assignment_history
AFTER INSERT OR UPDATE OF grid_codes, active ON workers
FOR EACH ROW EXECUTE FUNCTION worker_assignment_history();
"""


def upgrade() -> None:
    op.create_table(
        "worker_assignments",
        sa.Column("city", sa.String(length=12), nullable=False),
        sa.Column("worker_code", sa.String(length=32), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name="ck_worker_assignments_period"
        ),
        sa.PrimaryKeyConstraint("city", "worker_code", "grid_code", "valid_from"),
    )
    op.create_index(
        "ix_worker_assignments_grid",
        "worker_assignments",
        ["city", "grid_code", "valid_from"],
    )
    op.execute(
        "INSERT INTO worker_assignments (city, worker_code, grid_code, valid_from)"
        " SELECT DISTINCT city, code, unnest(grid_codes), '-infinity'::timestamptz"
        " FROM workers WHERE active"
    )
    op.execute(TRIGGER)
    op.add_column(
        "categories",
        sa.Column("patrol_visible", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.execute(
        sa.text("UPDATE categories SET patrol_visible = false WHERE code IN :codes").bindparams(
            sa.bindparam("codes", value=NOT_FOR_PATROL, expanding=True)
        )
    )
    table = sa.table(
        "indicator_definitions",
        sa.column("key"),
        sa.column("version"),
        sa.column("name_zh"),
        sa.column("name_en"),
        sa.column("kind"),
        sa.column("unit"),
        sa.column("formula"),
        sa.column("numerator"),
        sa.column("denominator"),
        sa.column("subjects", sa.ARRAY(sa.String(length=12))),
        sa.column("params", sa.JSON()),
        sa.column("valid_from", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        table,
        [{**row, "valid_from": datetime.fromisoformat(VALID_FROM)} for row in ROWS],
    )


def downgrade() -> None:
    for row in ROWS:
        op.execute(
            sa.text("DELETE FROM indicator_definitions WHERE key = :k AND version = :v").bindparams(
                k=row["key"], v=row["version"]
            )
        )
    op.drop_column("categories", "patrol_visible")
    op.execute("DROP TRIGGER tr_workers_assignment_history ON workers")
    op.execute("DROP FUNCTION worker_assignment_history()")
    op.drop_index("ix_worker_assignments_grid", table_name="worker_assignments")
    op.drop_table("worker_assignments")

"""The indicators (考核指标) of case flow and field work: what each one counts, in one place.

Definitions are data: the table ``indicator_definitions`` holds every version of every
indicator (the migration seeds version 1 of the rows below; a city that changes a definition
adds a version with a later ``valid_from``). :data:`DEFINITIONS` is the version the code
computes, and a test keeps the two equal. A period P = [start, end) is read in local time
(``settings.grids.timezone``); "in P" means start <= t < end.

A case's *deadline at the end of P* is the deadline in force then: the ``old_deadline`` of its
first extension after the end, else ``cases.deadline_at`` (deadlines only move later, so this is
the ``new_deadline`` of the last extension before the end). A case is *open at the end of P*
when its state then — the ``from_status`` of its first step after the end, else its status now —
is registered, dispatched, handling or fed back.

===========================  ==============================  ======================================
key                          name                            definition (over one subject's cases)
===========================  ==============================  ======================================
reported                     上报数                           reported_at in P
valid_reported               有效上报数                        reported in P and registered (at any
                                                             time: the figure can still rise until
                                                             the period is frozen)
valid_report_rate            有效上报率                        valid_reported ÷ reported
registered                   立案数                           a register event in P
voided                       作废数                           a reject event in P (不予立案)
dispatched                   派遣数                           the case's first dispatch event in P
accurate_dispatched          准确派遣数                        dispatched in P, never re-dispatched
                                                             (a second dispatch event) nor sent
                                                             back (a return event)
accurate_dispatch_rate       准确派遣率                        accurate_dispatched ÷ dispatched
handled                      处置数                           a feedback event in P (处理反馈)
handled_on_time              按期处置数                        handled, the last feedback in P at or
                                                             before the deadline at the end of P
on_time_handling_rate        按期处置率                        handled_on_time ÷ handled
closed                       结案数                           a verify event in P (核查结案)
closed_on_time               按期结案数                        closed, the last verify in P at or
                                                             before the deadline at the end of P
closed_late                  超期结案数                        closed − closed_on_time
overdue_open                 超期未结数                        open at the end of P, its deadline
                                                             then before the end
due                          应结案数                          closed in P or overdue_open (a case
                                                             is counted once)
close_rate                   结案率                           closed ÷ due
on_time_close_rate           按期结案率                        closed_on_time ÷ due (never ÷ closed:
                                                             overdue open work counts against)
reworked                     返工数                           rework events in P (twice is two)
rework_rate                  返工率                           reworked ÷ due
extended                     延期数                           cases with an extend event in P
extension_rate               延期率                           extended ÷ due
handling_hours               处置时长合计                      working hours from the first dispatch
                                                             to the last feedback in P, summed over
                                                             handled cases that were dispatched
handling_timed               计时处置数                        handled cases with a first dispatch
avg_handling_hours           平均处置时长                      handling_hours ÷ handling_timed
checked                      核查数                           verify or rework events in P
checked_on_time              按时核查数                        checked within verify_within_hours
                                                             calendar hours of the feedback before
                                                             it
on_time_check_rate           按时核查率                        checked_on_time ÷ checked
missed                       漏报数                           reported in P by someone other than a
                                                             patrol (citizen, inspector, hotline,
                                                             Open311, import), of a category
                                                             patrols should see, in a unit grid
                                                             then in a worker's assignment (a
                                                             worker: then in theirs)
recurring                    复发数                           reported in P and marked recurring
patrol_reported              巡查上报数                        reported in P with source patrol
patrol_hours                 巡查时长                          hours of the subject's cleaned patrol
                                                             tracks inside P (workers only)
cases_per_patrol_hour        每巡查小时上报数                   patrol_reported ÷ patrol_hours
assigned_grids               责任网格数                        unit grids assigned to the worker now
                                                             (workers only)
patrolled_grids              已巡网格数                        assigned grids within the coverage
                                                             radius of the part inside P of one of
                                                             the worker's cleaned tracks
patrol_grid_share            巡查网格覆盖率                     patrolled_grids ÷ assigned_grids
quota_hotspots               定额重点部位权重                   Σ risk_weight of the hotspots with a
                                                             weekly patrol quota touching the
                                                             worker's assigned grids (workers only)
quota_hotspots_met           巡查达标重点部位权重               Σ risk_weight of those the worker's
                                                             tracks passed quota × weeks(P) times
hotspot_quota_rate           重点部位巡查达标率                 quota_hotspots_met ÷ quota_hotspots
evaluated                    评价数                           an evaluate event in P (综合评价 of a
                                                             closed case; once per case)
satisfied                    满意数                           evaluated in P as 满意 or 基本满意
satisfaction_rate            满意率                           satisfied ÷ evaluated
quality_points               质量评分合计                      the quality scores (1–5) of the
                                                             evaluations in P, summed
avg_quality                  平均质量评分                      quality_points ÷ evaluated
photo_cases                  有照片案件数                      cases with a photo (not deleted)
                                                             uploaded in P
evidence_flagged             证据存疑案件数                    photo_cases one of whose photos
                                                             uploaded in P carries an evidence
                                                             flag: time or place (not_dispatched,
                                                             taken_before_dispatch, no_position,
                                                             too_far) or reuse (reused,
                                                             reused_similar); a case once however
                                                             many such photos
evidence_flag_rate           证据存疑率                        evidence_flagged ÷ photo_cases (÷ the
                                                             cases with evidence in P, not ÷
                                                             handled: report photos are checked
                                                             for reuse too, and a photo may come
                                                             in a period after the feedback, so
                                                             only this denominator holds every
                                                             case the numerator counts)
===========================  ==============================  ======================================

Subjects: a grid at any level (its subtree, by code prefix), a department (the department the
case is dispatched to now, ``cases.department``), a grid worker (cases in the unit grids assigned
to them now; 漏报数 by the assignment when the case was reported, from ``worker_assignments``),
a dispatcher (the actor of the case's first dispatch event), a hotspot (the cases in its
influence zone when reported, ``cases.hotspot_ids``: its 复发数 is the recurrence at the place).

The evidence indicators read ``photos`` (uploaded in P, ``deleted_at`` unset): a case whose
evidence came in P counts in P even when no step of it did. They are not a dispatcher's: a
dispatcher takes no photo, and the flags judge the reporter's and the handler's evidence.

A hotspot's ``risk_weight`` weighs it in a worker's hotspot quota share: missing the quota of a
market of weight 3 costs three times a school gate's of weight 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["count", "rate", "hours"]
SUBJECT_KINDS: tuple[str, ...] = ("grid", "department", "worker", "dispatcher", "hotspot")
ALL = SUBJECT_KINDS
WORKERS = ("worker",)
# evidence is the reporter's and the handler's, not a dispatcher's
EVIDENCE_SUBJECTS = ("grid", "department", "worker", "hotspot")
VALID_FROM = "2000-01-01T00:00:00+08:00"  # version 1 applies to every period
# version 2 (migration 0014) of every indicator of all subjects adds the hotspot subject, with
# the same valid_from: it supersedes version 1 for every period, which stays readable
ALL_SUBJECTS_VERSION = 2


@dataclass(frozen=True)
class Indicator:
    """One indicator: a count of cases (or events, or hours), or a quotient of two counts."""

    key: str
    name_zh: str
    name_en: str
    kind: Kind
    unit: str
    formula: str
    numerator: str | None = None
    denominator: str | None = None
    subjects: tuple[str, ...] = ALL
    params: dict[str, Any] = field(default_factory=dict)
    version: int = 1

    def as_row(self) -> dict[str, Any]:
        """The row of ``indicator_definitions`` (without ``valid_from``)."""
        return {
            "key": self.key,
            "version": self.version,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "kind": self.kind,
            "unit": self.unit,
            "formula": self.formula,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "subjects": list(self.subjects),
            "params": dict(self.params),
        }


def _version(subjects: tuple[str, ...]) -> int:
    return ALL_SUBJECTS_VERSION if subjects == ALL else 1


def _count(key: str, zh: str, en: str, formula: str, subjects=ALL, unit="件") -> Indicator:
    return Indicator(
        key, zh, en, "count", unit, formula, subjects=subjects, version=_version(subjects)
    )


def _rate(key: str, zh: str, en: str, num: str, den: str, subjects=ALL, **params) -> Indicator:
    return Indicator(
        key,
        zh,
        en,
        "rate",
        "%",
        f"{num} ÷ {den}",
        num,
        den,
        subjects=subjects,
        params=params,
        version=_version(subjects),
    )


DEFINITIONS: tuple[Indicator, ...] = (
    _count("reported", "上报数", "reports", "reported_at in P"),
    _count("valid_reported", "有效上报数", "valid reports", "reported in P and registered"),
    _rate("valid_report_rate", "有效上报率", "valid report rate", "valid_reported", "reported"),
    _count("registered", "立案数", "registered", "a register event in P"),
    _count("voided", "作废数", "voided (rejected)", "a reject event in P"),
    _count("dispatched", "派遣数", "dispatched", "the first dispatch event in P"),
    _count(
        "accurate_dispatched",
        "准确派遣数",
        "accurately dispatched",
        "dispatched in P, never re-dispatched nor sent back",
    ),
    _rate(
        "accurate_dispatch_rate",
        "准确派遣率",
        "accurate dispatch rate",
        "accurate_dispatched",
        "dispatched",
    ),
    _count("handled", "处置数", "handled (fed back)", "a feedback event in P"),
    _count(
        "handled_on_time",
        "按期处置数",
        "handled on time",
        "handled, last feedback in P <= deadline at the end of P",
    ),
    _rate(
        "on_time_handling_rate", "按期处置率", "on-time handling rate", "handled_on_time", "handled"
    ),
    _count("closed", "结案数", "closed", "a verify event in P"),
    _count(
        "closed_on_time",
        "按期结案数",
        "closed on time",
        "closed, last verify in P <= deadline at the end of P",
    ),
    _count("closed_late", "超期结案数", "closed late", "closed − closed_on_time"),
    _count(
        "overdue_open",
        "超期未结数",
        "open and overdue",
        "open at the end of P, deadline at the end of P < end of P",
    ),
    _count("due", "应结案数", "due for closure", "closed in P or overdue_open"),
    _rate("close_rate", "结案率", "closure rate", "closed", "due"),
    _rate("on_time_close_rate", "按期结案率", "on-time closure rate", "closed_on_time", "due"),
    _count("reworked", "返工数", "reworks", "rework events in P (twice is two)"),
    _rate("rework_rate", "返工率", "rework rate", "reworked", "due"),
    _count("extended", "延期数", "extended", "cases with an extend event in P"),
    _rate("extension_rate", "延期率", "extension rate", "extended", "due"),
    _count(
        "handling_hours",
        "处置时长合计",
        "handling hours (sum)",
        "working hours from the first dispatch to the last feedback in P, over handled cases",
        unit="小时",
    ),
    _count("handling_timed", "计时处置数", "timed handled cases", "handled with a first dispatch"),
    Indicator(
        "avg_handling_hours",
        "平均处置时长",
        "mean handling time",
        "hours",
        "小时",
        "handling_hours ÷ handling_timed (working hours)",
        "handling_hours",
        "handling_timed",
        version=ALL_SUBJECTS_VERSION,
    ),
    _count("checked", "核查数", "verifications", "verify or rework events in P"),
    _count(
        "checked_on_time",
        "按时核查数",
        "verified in time",
        "checked within verify_within_hours calendar hours of the feedback before it",
    ),
    _rate(
        "on_time_check_rate",
        "按时核查率",
        "on-time verification rate",
        "checked_on_time",
        "checked",
        verify_within_hours=24,
    ),
    _count(
        "missed",
        "漏报数",
        "missed by patrol",
        "reported in P by a source other than patrol (citizen, inspector, hotline, open311, "
        "import), of a category patrols should see (categories.patrol_visible), in a unit grid "
        "that was in a worker's patrol assignment when it was reported (worker_assignments); "
        "a worker's: in the grids assigned to that worker then",
    ),
    _count("recurring", "复发数", "recurring", "reported in P and marked recurring"),
    _count("patrol_reported", "巡查上报数", "patrol reports", "reported in P with source patrol"),
    _count(
        "patrol_hours",
        "巡查时长",
        "patrol hours",
        "hours of the worker's cleaned patrol tracks inside P",
        subjects=WORKERS,
        unit="小时",
    ),
    Indicator(
        "cases_per_patrol_hour",
        "每巡查小时上报数",
        "patrol reports per patrol hour",
        "rate",
        "件/小时",
        "patrol_reported ÷ patrol_hours",
        "patrol_reported",
        "patrol_hours",
        subjects=WORKERS,
    ),
    _count(
        "assigned_grids",
        "责任网格数",
        "assigned unit grids",
        "unit grids assigned to the worker now (workers.grid_codes)",
        subjects=WORKERS,
        unit="个",
    ),
    _count(
        "patrolled_grids",
        "已巡网格数",
        "patrolled unit grids",
        "assigned grids within coverage_radius_m of the part inside P of one of the worker's "
        "cleaned tracks",
        subjects=WORKERS,
        unit="个",
    ),
    _rate(
        "patrol_grid_share",
        "巡查网格覆盖率",
        "patrolled share of assigned grids",
        "patrolled_grids",
        "assigned_grids",
        subjects=WORKERS,
    ),
    _count("evaluated", "评价数", "evaluated", "an evaluate event in P (综合评价; once per case)"),
    _count("satisfied", "满意数", "satisfied", "evaluated in P as 满意 or 基本满意"),
    _rate("satisfaction_rate", "满意率", "satisfaction rate", "satisfied", "evaluated"),
    _count(
        "quality_points",
        "质量评分合计",
        "quality points (sum)",
        "quality (1–5) of the evaluations in P, summed",
        unit="分",
    ),
    Indicator(
        "avg_quality",
        "平均质量评分",
        "mean quality score",
        "rate",
        "分",
        "quality_points ÷ evaluated",
        "quality_points",
        "evaluated",
        version=ALL_SUBJECTS_VERSION,
    ),
    _count(
        "quota_hotspots",
        "定额重点部位权重",
        "hotspots with a quota (risk-weighted)",
        "Σ risk_weight of the hotspots active in P with a weekly patrol quota whose influence "
        "zone touches one of the worker's assigned unit grids",
        subjects=WORKERS,
        unit="权重",
    ),
    _count(
        "quota_hotspots_met",
        "巡查达标重点部位权重",
        "hotspots whose quota the worker met (risk-weighted)",
        "Σ risk_weight of those quota_hotspots the worker visited at least patrol_quota_per_week "
        "× weeks(P) times (a visit: one of the worker's tracks whose part inside P passes "
        "within coverage_radius_m of the zone)",
        subjects=WORKERS,
        unit="权重",
    ),
    _rate(
        "hotspot_quota_rate",
        "重点部位巡查达标率",
        "hotspot patrol quota met (risk-weighted)",
        "quota_hotspots_met",
        "quota_hotspots",
        subjects=WORKERS,
    ),
    # added after version 2 of the rest: version 1 (migration 0021_evidence_indicator)
    _count(
        "photo_cases",
        "有照片案件数",
        "cases with photos",
        "cases with a photo (not deleted) uploaded in P",
        subjects=EVIDENCE_SUBJECTS,
    ),
    _count(
        "evidence_flagged",
        "证据存疑案件数",
        "cases with doubtful evidence",
        "photo_cases one of whose photos uploaded in P carries a time or place flag "
        "(not_dispatched, taken_before_dispatch, no_position, too_far) or a reuse flag "
        "(reused, reused_similar); once per case",
        subjects=EVIDENCE_SUBJECTS,
    ),
    _rate(
        "evidence_flag_rate",
        "证据存疑率",
        "doubtful evidence rate",
        "evidence_flagged",
        "photo_cases",
        subjects=EVIDENCE_SUBJECTS,
    ),
)

BY_KEY: dict[str, Indicator] = {d.key: d for d in DEFINITIONS}
COUNT_KEYS: tuple[str, ...] = tuple(d.key for d in DEFINITIONS if d.kind == "count")
QUOTIENT_KEYS: tuple[str, ...] = tuple(d.key for d in DEFINITIONS if d.kind != "count")
# counts from patrol tracks and assignments, not from cases (workers only)
PATROL_KEYS: tuple[str, ...] = (
    "patrol_hours",
    "assigned_grids",
    "patrolled_grids",
    "quota_hotspots",
    "quota_hotspots_met",
)
# counts whose drill-down lists cases (hours and points are sums, grids are not cases)
CASE_COUNT_KEYS: tuple[str, ...] = tuple(
    k for k in COUNT_KEYS if k not in ("handling_hours", "quality_points", *PATROL_KEYS)
)
NON_PATROL_SOURCES: tuple[str, ...] = ("citizen", "inspector", "hotline", "open311", "import")


def verify_within_hours() -> float:
    """The verification deadline (calendar hours after the feedback) of ``on_time_check_rate``:
    no deadline of verification is stored on a case, so it is a parameter of the definition."""
    return float(BY_KEY["on_time_check_rate"].params["verify_within_hours"])

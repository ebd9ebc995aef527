"""Indicator figures: every subject of a kind in one set-based query, one subject with its
components, and the cases behind each count.

The definitions are in :mod:`service.assessment.definitions`; this module is their only SQL.
One query has these steps:

1. ``c``: the cases that can count in period P = [start, end): reported before the end and
   reported in P, touched (``updated_at``, which every step moves) since its start, open
   now, or given a photo in P. A case reported earlier, last touched before P, no longer open
   and without evidence uploaded in P cannot enter any indicator of P.
2. ``e``/``ev``: their history since P began, aggregated per case; ``k``: each verification in
   P with the feedback before it (a window); ``after``: the first step after P, whose
   ``from_status`` is the state at the end of P; ``hr``: working hours of handling; ``pf``:
   the photos uploaded in P, and whether one of them carries an evidence or reuse flag.
3. ``f``: one row per case with one 0/1 (or event count, or hours) column per count indicator —
   the only place a definition is written in SQL. Figures are sums of these columns grouped
   by subject; a drill-down lists the cases whose column is positive.

Grid subjects of every level come from one query (the facts summed per unit grid, then each
level summed from the unit grids' rows; with the departments in the same pass for the full
list); workers and dispatchers from one query each. Quotients
(rates, mean hours) are computed from the summed counts, so a rate is always its two shown
components divided.

Working hours (平均处置时长) are W(feedback) − W(dispatch), where W(t) is the working time
before t on the city's working calendar (``service.clock.work_clock``): the working intervals
of the 400 days before the period's end are handed to the query as arrays and W is a binary
search (``width_bucket``) in them; handling that began earlier is counted from that start.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import Float

from gis.workclock import WorkClock
from service.accounts.principal import Principal
from service.assessment.definitions import (
    BY_KEY,
    CASE_COUNT_KEYS,
    COUNT_KEYS,
    DEFINITIONS,
    NON_PATROL_SOURCES,
    verify_within_hours,
)
from service.assessment.periods import Period
from service.cases.workflow import OPEN_SQL
from service.clock import now, work_clock
from service.db.models import LEVELS
from service.errors import Forbidden, InvalidInput, NotFound
from service.grids.registry import Registry
from service.photos.evidence import EVIDENCE_FLAGS, REUSE_FLAGS
from service.settings import AppSettings

KINDS: tuple[str, ...] = ("grid", "department", "worker", "dispatcher", "hotspot")
GRID_LEVELS: tuple[str, ...] = LEVELS  # city, district, street, community, unit
Section = tuple[str, str | None]  # (subject kind, grid level or None)
WORKING_TABLE_DAYS = 400
WORK_MEM = "128MB"

# one expression per count indicator, over c (the case), ev (its history since the period
# began), k (its verifications in the period) and x (derived values); every one is an integer
# (0/1 for a case, a number of events) or hours
_FACTS: dict[str, str] = {
    "reported": "(c.reported_at >= :s)",
    "valid_reported": "(c.reported_at >= :s AND ev.registered_ever)",
    "registered": "ev.registered_in",
    "voided": "ev.rejected_in",
    "dispatched": "(ev.first_dispatch_at < :e)",
    "accurate_dispatched": "(ev.first_dispatch_at < :e AND ev.redispatches = 0 AND ev.returns = 0)",
    "handled": "(ev.feedback_in IS NOT NULL)",
    "handled_on_time": "(ev.feedback_in <= x.deadline)",
    "closed": "(ev.verify_in IS NOT NULL)",
    "closed_on_time": "(ev.verify_in <= x.deadline)",
    "closed_late": "(ev.verify_in > x.deadline)",
    "overdue_open": "(x.open_at_end AND x.deadline < :e)",
    "due": "(ev.verify_in IS NOT NULL OR (x.open_at_end AND x.deadline < :e))",
    "reworked": "ev.reworks",
    "extended": "ev.extended_in",
    "handling_hours": "hr.hours",
    "handling_timed": "(hr.hours IS NOT NULL)",
    "checked": "k.checks",
    "checked_on_time": "k.checks_on_time",
    "missed": "(ma.case_id IS NOT NULL)",
    "recurring": "(c.reported_at >= :s AND c.recurring_of IS NOT NULL)",
    "patrol_reported": "(c.reported_at >= :s AND c.source = 'patrol')",
    "patrol_hours": "0",  # from patrol tracks, not cases (workers only)
    "assigned_grids": "0",  # from the assignment and the tracks (workers only)
    "patrolled_grids": "0",
    "quota_hotspots": "0",
    "quota_hotspots_met": "0",
    "evaluated": "ev.evaluated_in",
    "satisfied": "ev.satisfied_in",
    "quality_points": "ev.quality_in",
    "photo_cases": "(pf.case_id IS NOT NULL)",
    "evidence_flagged": "pf.doubtful",
}
_FLOATS = ("handling_hours", "patrol_hours", "quota_hotspots", "quota_hotspots_met")
# statuses of a registered case still being worked on
_WORKING = "('registered', 'dispatched', 'handling', 'fed_back')"
# the flags that make a photo's evidence doubtful (constants of service.photos, not input)
_DOUBT = "ARRAY[" + ", ".join(f"'{f}'" for f in (*EVIDENCE_FLAGS, *REUSE_FLAGS)) + "]::text[]"
# a photo of the case (not deleted) uploaded in P
_PHOTO_IN_P = "p.created_at >= :s AND p.created_at < :e AND p.deleted_at IS NULL"


def _w(x: str, i: str) -> str:
    """SQL for W(t): working seconds before t (``x``, epoch seconds) on the working-interval
    arrays, ``i`` being t's interval (``width_bucket(x, :ws)``, 0 before the first)."""
    return (
        f"(CASE WHEN {i} = 0 THEN 0 ELSE (:wc)[{i}]"
        f" + least(greatest({x} - (:ws)[{i}], 0), (:we)[{i}] - (:ws)[{i}]) END)"
    )


def _fact_sql(key: str) -> str:
    expr = _FACTS[key]
    if key in _FLOATS:
        return f"coalesce({expr}, 0)::float8 AS {key}"
    if key in ("reworked", "checked", "checked_on_time", "quality_points"):
        return f"coalesce({expr}, 0)::int AS {key}"
    return f"coalesce(({expr})::int, 0) AS {key}"


_FIRST_DISPATCH = (
    "(SELECT min(d.at) FROM case_events d WHERE d.city = :city AND d.case_id = ev.case_id"
    " AND d.action = 'dispatch')"
)
_FIRST_DISPATCHER = (
    "(SELECT d.actor FROM case_events d WHERE d.city = :city AND d.case_id = c.id"
    " AND d.action = 'dispatch'"
    " AND d.from_status = 'registered' ORDER BY d.at, d.id LIMIT 1)"
)


def _facts_cte(case_filter: str = "", dispatchers: bool = False) -> str:
    """The steps of the module docstring as a WITH list ending in ``f``.

    Only history since the period began is read (``ev``): the state of a case at the end of
    P is the ``from_status`` of its first step after P (else its status now) and its deadline
    then is the ``old_deadline`` of its first extension after P (else its deadline now). What
    lies further back is looked up per case only where needed: the first dispatch of a case
    handled in P (its handling time), the feedback before a verification early in P, and —
    with ``dispatchers`` — who first dispatched it.
    """
    facts = ",\n    ".join(_fact_sql(k) for k in COUNT_KEYS)
    dispatcher = f"coalesce(ev.dispatcher, {_FIRST_DISPATCHER})" if dispatchers else "ev.dispatcher"
    # a whole-city pass reads the period's history by time alone (every case with a step
    # since the start was touched since then, so it is in c; steps of other cases drop out
    # at the join with c); one subject's pass reads its cases' histories one by one
    events_from = (
        # OFFSET 0 keeps the lateral a per-case index lookup (a join would hash the period)
        "c CROSS JOIN LATERAL (SELECT * FROM case_events x WHERE x.city = :city"
        " AND x.case_id = c.id"
        " AND x.at >= :s OFFSET 0) e"
        if case_filter
        else "case_events e"
    )
    # photos likewise: one subject's by the (city, case_id) index, the whole city's by time
    photos_from = (
        "c CROSS JOIN LATERAL (SELECT * FROM photos x WHERE x.city = :city"
        " AND x.case_id = c.id OFFSET 0) p"
        if case_filter
        else "photos p JOIN c ON c.id = p.case_id"
    )
    return f"""
WITH c AS MATERIALIZED (
  SELECT id, grid_code, department, source, status, reported_at, deadline_at, recurring_of,
    category_code, hotspot_ids
  FROM cases
  WHERE city = :city AND reported_at < :e
    AND (reported_at >= :s OR updated_at >= :s OR status IN {OPEN_SQL}
      -- an upload moves no step: evidence can come in P for a case closed before it (the
      -- planner hashes the period's photos for many cases, probes (city, case_id) for few)
      OR EXISTS (SELECT 1 FROM photos p WHERE p.city = :city AND p.case_id = cases.id
                 AND {_PHOTO_IN_P}))
    {case_filter}
), e AS MATERIALIZED (
  SELECT e.case_id, e.id, e.action, e.from_status, e.at,
    CASE WHEN e.action = 'dispatch' THEN e.actor END AS actor,
    CASE WHEN e.action IN ('extend', 'evaluate') THEN e.data END AS data
  FROM {events_from}
  -- handle (dispatched → handling) changes nothing an indicator reads: both are open
  WHERE e.city = :city AND e.at >= :s AND e.action <> 'handle'
), k AS (
  SELECT w.case_id, count(*) AS checks,
    count(*) FILTER (WHERE w.at <= coalesce(w.fb, (
      SELECT max(b.at) FROM case_events b
      WHERE b.city = :city AND b.case_id = w.case_id AND b.action = 'feedback' AND b.at <= w.at
    )) + make_interval(secs => :verify_s)) AS checks_on_time
  FROM (
    SELECT case_id, action, at,
      max(at) FILTER (WHERE action = 'feedback')
        OVER (PARTITION BY case_id ORDER BY at, id) AS fb
    FROM e WHERE action IN ('feedback', 'verify', 'rework')
  ) w
  WHERE w.action IN ('verify', 'rework') AND w.at < :e
  GROUP BY w.case_id
), after AS (
  SELECT DISTINCT ON (case_id) case_id, from_status FROM e WHERE at >= :e
  ORDER BY case_id, at, id
), ev AS (
  SELECT case_id,
    bool_or(action = 'register') AS registered_ever,
    bool_or(action = 'register' AND at < :e) AS registered_in,
    bool_or(action = 'reject' AND at < :e) AS rejected_in,
    min(at) FILTER (WHERE action = 'dispatch' AND from_status = 'registered')
      AS first_dispatch_at,
    max(actor) FILTER (WHERE action = 'dispatch' AND from_status = 'registered') AS dispatcher,
    count(*) FILTER (WHERE action = 'dispatch' AND from_status = 'dispatched') AS redispatches,
    count(*) FILTER (WHERE action = 'return') AS returns,
    max(at) FILTER (WHERE action = 'feedback' AND at < :e) AS feedback_in,
    max(at) FILTER (WHERE action = 'verify' AND at < :e) AS verify_in,
    count(*) FILTER (WHERE action = 'rework' AND at < :e) AS reworks,
    bool_or(action = 'extend' AND at < :e) AS extended_in,
    min(CASE WHEN action = 'extend' AND at >= :e
      THEN (data ->> 'old_deadline')::timestamptz END) AS deadline_after,
    bool_or(action = 'evaluate' AND at < :e) AS evaluated_in,
    bool_or(action = 'evaluate' AND at < :e
      AND data ->> 'satisfaction' IN ('满意', '基本满意')) AS satisfied_in,
    sum((data ->> 'quality')::int) FILTER (WHERE action = 'evaluate' AND at < :e) AS quality_in
  FROM e GROUP BY case_id
), mw AS MATERIALIZED (
  -- 漏报: (case, worker) when a case reported in P by someone other than a patrol, of a
  -- category patrols should see, lies in a unit grid then in the worker's assignment
  SELECT c.id AS case_id, a.worker_code AS worker
  FROM c
  JOIN categories cat ON cat.city = :city AND cat.code = c.category_code AND cat.patrol_visible
  JOIN worker_assignments a ON a.city = :city AND a.grid_code = c.grid_code
   AND a.valid_from <= c.reported_at AND (a.valid_to IS NULL OR a.valid_to > c.reported_at)
  WHERE c.reported_at >= :s AND c.source IN :non_patrol
), ma AS (
  SELECT DISTINCT case_id FROM mw
), pf AS (
  SELECT p.case_id, bool_or(p.flags && {_DOUBT}) AS doubtful
  FROM {photos_from}
  WHERE p.city = :city AND {_PHOTO_IN_P}
  GROUP BY p.case_id
), hb AS MATERIALIZED (
  SELECT case_id, fx, dx, width_bucket(fx, :ws) AS fi, width_bucket(dx, :ws) AS di
  FROM (
    SELECT ev.case_id, extract(epoch FROM ev.feedback_in)::float8 AS fx,
      extract(epoch FROM coalesce(ev.first_dispatch_at, {_FIRST_DISPATCH}))::float8 AS dx
    FROM ev WHERE ev.feedback_in IS NOT NULL
  ) q
), hr AS (
  SELECT case_id, greatest({_w("fx", "fi")} - {_w("dx", "di")}, 0) / 3600.0 AS hours
  FROM hb WHERE dx IS NOT NULL
), f AS (
  SELECT c.id, c.grid_code, c.department, c.hotspot_ids, {dispatcher} AS dispatcher,
    {facts}
  FROM c
  LEFT JOIN ev ON ev.case_id = c.id
  LEFT JOIN k ON k.case_id = c.id
  LEFT JOIN after a ON a.case_id = c.id
  LEFT JOIN hr ON hr.case_id = c.id
  LEFT JOIN ma ON ma.case_id = c.id
  LEFT JOIN pf ON pf.case_id = c.id
  CROSS JOIN LATERAL (
    SELECT coalesce(ev.deadline_after, c.deadline_at) AS deadline,
      coalesce(a.from_status, c.status) IN {_WORKING} AS open_at_end
  ) x
)"""


_SUMS = ", ".join(f"sum(f.{k}) AS {k}" for k in COUNT_KEYS)


@lru_cache(maxsize=32)
def _working_table(
    clock: WorkClock, first: date, last: date
) -> tuple[list[float], list[float], list[float]]:
    """Working intervals (epoch seconds) of the local days ``first..last`` and the working
    seconds before each: the arrays W(t) searches (``clock`` is cached per settings, so this
    cache is keyed by the calendar as well)."""
    zone = ZoneInfo(clock.tz)
    starts: list[float] = []
    ends: list[float] = []
    cum: list[float] = []
    total = 0.0
    day = first
    while day <= last:
        if clock.is_workday(day):
            for a, b in clock.hours.periods:
                s = datetime.combine(day, a, zone).timestamp()
                e = datetime.combine(day, b, zone).timestamp()
                starts.append(s)
                ends.append(e)
                cum.append(total)
                total += e - s
        day += timedelta(days=1)
    return starts, ends, cum


@dataclass
class Figures:
    """One subject's figures: counts, and quotients from them (``None`` when ÷ 0)."""

    kind: str
    key: str
    name: str | None
    level: str | None = None
    counts: dict[str, float] = field(default_factory=dict)

    def values(self) -> dict[str, float | int | None]:
        """Every indicator of the subject: counts as numbers, quotients rounded (4 places)."""
        out: dict[str, float | int | None] = {}
        for d in DEFINITIONS:
            if self.kind not in d.subjects:
                continue
            if d.kind == "count":
                v = self.counts.get(d.key, 0)
                out[d.key] = round(v, 2) if d.key in _FLOATS else int(v)
            else:
                assert d.numerator and d.denominator
                num = self.counts.get(d.numerator, 0)
                den = self.counts.get(d.denominator, 0)
                out[d.key] = round(num / den, 4) if den else None
        return out

    def as_dict(self) -> dict[str, Any]:
        """The JSON row of the subject."""
        return {
            "kind": self.kind,
            "level": self.level,
            "key": self.key,
            "name": self.name,
            "figures": self.values(),
        }


@dataclass
class _OneSubject:
    """How one subject's figures are read: which cases enter ``c`` (``case_filter``, SQL on
    ``cases``), which of their facts count (``f_filter``; ``missed_filter`` for 漏报)."""

    subject: Figures
    case_filter: str
    params: dict[str, Any]
    f_filter: str = "true"
    missed_filter: str | None = None

    def where(self, key: str) -> str:
        """The condition on ``f`` under which count ``key`` counts a case."""
        return self.missed_filter if key == "missed" and self.missed_filter else self.f_filter


class IndicatorEngine:
    """Figures of one city: all subjects of a kind, one subject, the cases behind a count."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.registry = Registry(session, settings)
        self.scheme = settings.scheme

    # -- scope -----------------------------------------------------------------------------
    def visibility(self, principal: Principal) -> Callable[[Figures], bool]:
        """Whether ``principal`` may see a subject's figures (:func:`visible`); the workers'
        grids and the hotspots it needs are read once, and only for a scoped principal."""
        if principal.city_wide:
            return lambda _subject: True
        grids = worker_grids(self.session, self.city)
        spots: list[set[str]] = []  # read on the first hotspot asked about

        def sees(subject: Figures) -> bool:
            if subject.kind == "hotspot" and not spots:
                spots.append(self._hotspots_in_scope(principal))
            return visible(principal, subject, grids, spots[0] if spots else set())

        return sees

    def _hotspots_in_scope(self, principal: Principal) -> set[str]:
        """Ids (as text) of the hotspots whose influence zone touches a current unit grid in
        ``principal``'s grid scope."""
        prefixes = list(principal.grid_prefixes or ())
        if not prefixes:
            return set()
        rows = self.session.scalars(
            text(
                "SELECT DISTINCT h.id::text FROM hotspots h JOIN grids g"
                " ON g.city = :city AND g.level = 'unit' AND g.valid_to IS NULL"
                " AND ST_Intersects(g.geom, h.zone)"
                " WHERE h.city = :city AND g.code LIKE ANY(:patterns)"
            ),
            {"city": self.city, "patterns": [p + "%" for p in prefixes]},
        )
        return set(rows)

    def in_scope(self, principal: Principal, rows: list[Figures]) -> list[Figures]:
        """The ``rows`` ``principal`` may see."""
        sees = self.visibility(principal)
        return [r for r in rows if sees(r)]

    def visible_subject(self, principal: Principal, kind: str, key: str) -> Figures:
        """Subject ``kind`` ``key`` without figures (``InvalidInput`` for an unknown kind,
        ``NotFound`` for an unknown subject), once ``principal`` may see it (``Forbidden``
        naming the scope otherwise): the scope is checked before anything is computed."""
        subject = self.subject_only(check_kind(kind), key)
        if not self.visibility(principal)(subject):
            raise Forbidden(
                f"the figures of {subject.kind} {subject.key} lie outside the scope of "
                f"{principal.label}: {principal.scope_text()}",
                field="scope",
                scope=list(principal.grid_prefixes or ()),
            )
        return subject

    # -- parameters ------------------------------------------------------------------------
    def _params(self, period: Period) -> dict[str, Any]:
        last = period.last_day
        ws, we, wc = _working_table(
            work_clock(self.settings), last - timedelta(days=WORKING_TABLE_DAYS), last
        )
        return {
            "city": self.city,
            "s": period.start,
            "e": period.end,
            "ws": ws or [0.0],
            "we": we or [0.0],
            "wc": wc or [0.0],
            "verify_s": verify_within_hours() * 3600.0,
            "non_patrol": NON_PATROL_SOURCES,
        }

    def _room(self) -> None:
        """Settings of these queries, for this transaction only: memory for the sorts and hashes
        of a whole-city pass (the server default, 4 MB, would spill a month's history to disk);
        no JIT (compiling the wide aggregate costs more than a second, running it a fraction);
        and always a plan for the actual values: once the driver prepares a repeated statement,
        a generic plan cannot use the grid index for ``grid_code LIKE :prefix`` (a unit grid's
        figures went from 5 ms to 150 ms)."""
        self.session.execute(
            text(
                f"SET LOCAL work_mem = '{WORK_MEM}'; SET LOCAL jit = off;"
                " SET LOCAL plan_cache_mode = force_custom_plan"
            )
        )

    @staticmethod
    def _bind(sql: str, **arrays: Any) -> Any:
        stmt = text(sql).bindparams(
            bindparam("ws", type_=ARRAY(Float)),
            bindparam("we", type_=ARRAY(Float)),
            bindparam("wc", type_=ARRAY(Float)),
            bindparam("non_patrol", expanding=True),
        )
        for name, typ in arrays.items():
            stmt = stmt.bindparams(bindparam(name, type_=typ))
        return stmt

    # -- all subjects of a kind ------------------------------------------------------------
    def grid_figures(
        self, period: Period, levels: Sequence[str] = GRID_LEVELS
    ) -> dict[str, list[Figures]]:
        """Every current grid of each of ``levels`` (its subtree), in one query."""
        wanted = [("grid", lv) for lv in levels]
        found = self.full_list(period, wanted)
        return {lv: found[("grid", lv)] for lv in levels}

    def full_list(
        self, period: Period, sections: Sequence[Section] | None = None
    ) -> dict[Section, list[Figures]]:
        """The subjects of ``sections`` — ``("grid", level)``, ``("department", None)``,
        ``("worker", None)``, ``("dispatcher", None)``; default: all of them, every level —
        from one pass over the period's cases (what a month's red/yellow list needs): the
        cases' facts are summed per unit grid, per department and per dispatcher (grouping
        sets), each grid level and each worker is summed from the unit grids' rows."""
        if sections is None:
            sections = [("grid", lv) for lv in GRID_LEVELS] + [
                ("department", None),
                ("worker", None),
                ("dispatcher", None),
            ]
        levels = [lv for kind, lv in sections if kind == "grid" and lv is not None]
        for level in levels:
            if level not in GRID_LEVELS:
                raise InvalidInput(
                    f"unknown grid level {level!r}; levels are {', '.join(GRID_LEVELS)}",
                    field="subject",
                )
        kinds = {kind for kind, _ in sections}
        found = self._one_pass(period, levels, kinds)
        out: dict[Section, list[Figures]] = {}
        if levels:
            names = self.session.execute(
                text(
                    "SELECT level, code, name FROM grids WHERE city = :city AND valid_to IS NULL"
                    " AND level = ANY(:levels) ORDER BY level, code"
                ),
                {"city": self.city, "levels": levels},
            ).all()
            for level in levels:
                out[("grid", level)] = []
            for level, code, name in names:
                counts = found.get((level, code), {})
                out[("grid", level)].append(Figures("grid", code, name, level, counts))
        by_kind: dict[str, dict[str, dict[str, float]]] = {}
        for (kind, key), counts in found.items():
            by_kind.setdefault(kind, {})[key] = counts
        if "department" in kinds:
            out[("department", None)] = self._departments(by_kind.get("department", {}))
        if "worker" in kinds:
            out[("worker", None)] = self._workers(period, by_kind.get("worker", {}))
        if "dispatcher" in kinds:
            rows = sorted(by_kind.get("dispatcher", {}).items())
            out[("dispatcher", None)] = [Figures("dispatcher", k, k, None, v) for k, v in rows]
        return out

    def _one_pass(
        self, period: Period, levels: Sequence[str], kinds: set[str]
    ) -> dict[tuple[str, str], dict[str, float]]:
        """(level or kind, key) → counts of the ``levels`` and non-grid ``kinds``."""
        width = self.scheme.width
        sums = ", ".join(f"sum(u.{k}) AS {k}" for k in COUNT_KEYS)
        dispatchers = "dispatcher" in kinds
        sets = ["(f.grid_code)", "(f.department)"] + (["(f.dispatcher)"] if dispatchers else [])
        parts = []
        if levels:
            keys = ", ".join(
                f"('{lv}', rpad(left(u.grid_code, {self.scheme.prefix_length(lv)}), {width}, '0'))"
                for lv in levels
            )
            parts.append(
                f"SELECT g.level, g.key, {sums}"
                f" FROM ug u CROSS JOIN LATERAL (VALUES {keys}) g(level, key)"
                " GROUP BY g.level, g.key"
            )
        if "department" in kinds:
            parts.append(
                f"SELECT 'department', u.department, {sums} FROM u"
                " WHERE u.by_department = 0 AND u.department IS NOT NULL GROUP BY u.department"
            )
        if dispatchers:
            parts.append(
                f"SELECT 'dispatcher', u.dispatcher, {sums} FROM u"
                " WHERE u.by_dispatcher = 0 AND u.dispatcher IS NOT NULL GROUP BY u.dispatcher"
            )
        if "worker" in kinds:
            # a worker's cases are those of the unit grids assigned now; their 漏报 are the
            # cases of mw (the grids assigned when each case was reported)
            cols = ", ".join(
                "coalesce(m.n, 0) AS missed" if k == "missed" else f"coalesce(s.{k}, 0) AS {k}"
                for k in COUNT_KEYS
            )
            parts.append(
                f"""SELECT 'worker', coalesce(s.code, m.worker), {cols}
FROM (
  SELECT wg.code, {sums}
  FROM (SELECT DISTINCT code, unnest(grid_codes) AS grid FROM workers
        WHERE city = :city AND active) wg
  JOIN ug u ON u.grid_code = wg.grid
  GROUP BY wg.code
) s FULL JOIN (SELECT worker, count(*) AS n FROM mw GROUP BY worker) m ON m.worker = s.code"""
            )
        if not parts:
            return {}
        sql = (
            _facts_cte(dispatchers=dispatchers)
            + f""", u AS MATERIALIZED (
  SELECT GROUPING(f.grid_code) AS by_grid, GROUPING(f.department) AS by_department,
    {"GROUPING(f.dispatcher)" if dispatchers else "1"} AS by_dispatcher,
    f.grid_code, f.department, {"f.dispatcher" if dispatchers else "NULL::text AS dispatcher"},
    {_SUMS}
  FROM f GROUP BY GROUPING SETS ({", ".join(sets)})
), ug AS (
  SELECT * FROM u WHERE u.by_grid = 0 AND u.grid_code IS NOT NULL
)
"""
            + "\nUNION ALL\n".join(parts)
        )
        self._room()
        found: dict[tuple[str, str], dict[str, float]] = {}
        for row in self.session.execute(self._bind(sql), self._params(period)):
            kind, key, *values = row
            found[(kind, key)] = {k: float(v or 0) for k, v in zip(COUNT_KEYS, values, strict=True)}
        return found

    def _grouped(
        self, period: Period, key_sql: str, join: str = "", one: _OneSubject | None = None
    ) -> dict[Any, dict[str, float]]:
        """Counts grouped by ``key_sql`` over the period's cases (only ``one``'s cases when
        given, e.g. a grid's subtree)."""
        sql = (
            _facts_cte(one.case_filter if one else "")
            + f"""
SELECT {key_sql} AS key, {_SUMS}
FROM f {join}
WHERE {key_sql} IS NOT NULL
GROUP BY 1"""
        )
        self._room()
        params = self._params(period) | (one.params if one else {})
        rows = self.session.execute(self._bind(sql), params).mappings()
        return {row["key"]: {k: float(row[k] or 0) for k in COUNT_KEYS} for row in rows}

    def department_figures(self, period: Period) -> list[Figures]:
        """Every department: those cases were dispatched to, and the catalogue's."""
        return self.full_list(period, [("department", None)])[("department", None)]

    def department_figures_in(self, period: Period, grid: str) -> list[Figures]:
        """The departments with cases in grid ``grid``'s subtree, each counting only those
        cases (a district's circular names the departments for their work in the district);
        one query, the same definitions as every other figure."""
        found = self._grouped(period, "f.department", one=self._subject_sql("grid", grid))
        return [Figures("department", k, k, None, v) for k, v in sorted(found.items())]

    def _departments(self, found: dict[str, dict]) -> list[Figures]:
        """Rows of the departments found and of the catalogue's (zero figures), by name."""
        known = self.session.scalars(
            text(
                "SELECT department FROM categories WHERE city = :city UNION "
                "SELECT department FROM routing_rules WHERE city = :city"
            ),
            {"city": self.city},
        ).all()
        keys = sorted(set(found) | {k for k in known if k})
        return [Figures("department", k, k, None, found.get(k, {})) for k in keys]

    def dispatcher_figures(self, period: Period) -> list[Figures]:
        """Every dispatcher (actor of a first dispatch) with cases counting in ``period``."""
        return self.full_list(period, [("dispatcher", None)])[("dispatcher", None)]

    def worker_figures(self, period: Period) -> list[Figures]:
        """Every active grid worker: the cases of the unit grids assigned to them now (漏报
        by the assignment when reported), their patrol hours, grids and hotspot quotas."""
        return self.full_list(period, [("worker", None)])[("worker", None)]

    def _workers(self, period: Period, found: dict[str, dict[str, float]]) -> list[Figures]:
        """Rows of every active worker: ``found`` case counts and the patrol counts."""
        hours = self._patrol_hours(period)
        grids = self._grid_share(period)
        quotas = self._hotspot_quotas(period)
        workers = self.session.execute(
            text("SELECT code, name FROM workers WHERE city = :city AND active ORDER BY code"),
            {"city": self.city},
        ).all()
        out = []
        for code, name in workers:
            counts = dict(found.get(code, {}))
            counts["patrol_hours"] = hours.get(code, 0.0)
            counts["assigned_grids"], counts["patrolled_grids"] = grids.get(code, (0.0, 0.0))
            counts["quota_hotspots"], counts["quota_hotspots_met"] = quotas.get(code, (0.0, 0.0))
            out.append(Figures("worker", code, name, None, counts))
        return out

    def hotspot_figures(self, period: Period) -> list[Figures]:
        """Every hotspot active in ``period`` (and any with cases counting in it): the cases
        in its influence zone when reported (``cases.hotspot_ids``)."""
        found = self._grouped(period, "h.id", "CROSS JOIN LATERAL unnest(f.hotspot_ids) h(id)")
        rows = self.session.execute(
            text(
                "SELECT id, name FROM hotspots WHERE city = :city AND (id = ANY(:ids)"
                " OR (active_from < :e AND (active_to IS NULL OR active_to > :s))) ORDER BY id"
            ),
            {"city": self.city, "ids": list(found), "s": period.start, "e": period.end},
        ).all()
        return [Figures("hotspot", str(i), name, None, found.get(i, {})) for i, name in rows]

    def _patrol_hours(self, period: Period, worker: str | None = None) -> dict[str, float]:
        sql = (
            "SELECT worker_code, sum(extract(epoch FROM least(ended_at, :e)"
            " - greatest(started_at, :s))) / 3600.0 FROM patrol_tracks"
            " WHERE city = :city AND started_at < :e AND ended_at > :s"
            + (" AND worker_code = :worker" if worker else "")
            + " GROUP BY worker_code"
        )
        params = {"city": self.city, "s": period.start, "e": period.end, "worker": worker}
        return {code: float(h) for code, h in self.session.execute(text(sql), params)}

    def _patrolled_sql(self, worker: str | None) -> str:
        """One row per (worker, assigned grid) with ``patrolled``: whether the part inside P of
        one of the worker's tracks passes within the coverage radius of the current grid."""
        return (
            _assigned_grids_cte(worker)
            + """
SELECT a.worker, a.grid, EXISTS (
  SELECT 1 FROM grids g JOIN patrol_tracks t ON """
            + _track_passes("t", "a.worker", "g.geom")
            + """
  WHERE g.city = :city AND g.code = a.grid AND g.valid_to IS NULL
) AS patrolled
FROM a"""
        )

    def _grid_params(self, period: Period, worker: str | None) -> dict[str, Any]:
        return {
            "city": self.city,
            "s": period.start,
            "e": period.end,
            "r": float(self.settings.patrol.coverage_radius_m),
            "worker": worker,
        }

    def _grid_share(
        self, period: Period, worker: str | None = None
    ) -> dict[str, tuple[float, float]]:
        """Worker code → (assigned unit grids, those patrolled in ``period``), every active
        worker (or one) in one query."""
        sql = (
            "SELECT worker, count(*), count(*) FILTER (WHERE patrolled) FROM ("
            + self._patrolled_sql(worker)
            + ") p GROUP BY worker"
        )
        rows = self.session.execute(text(sql), self._grid_params(period, worker))
        return {code: (float(n), float(k)) for code, n, k in rows}

    def _hotspot_quotas(
        self, period: Period, worker: str | None = None
    ) -> dict[str, tuple[float, float]]:
        """Worker code → (Σ risk_weight of the hotspots with a weekly quota touching their
        assigned unit grids, Σ risk_weight of those they visited quota × weeks(P) times).

        A visit is one of the worker's tracks whose part inside P passes within the coverage
        radius of the hotspot's influence zone (a track passing twice is one visit: tracks
        split at every silence of the phone, so a second pass is mostly a second track)."""
        weeks = (period.end - period.start) / timedelta(days=7)
        sql = (
            _assigned_grids_cte(worker)
            + """, wh AS (
  SELECT DISTINCT a.worker, h.id
  FROM a
  JOIN grids g ON g.city = :city AND g.code = a.grid AND g.valid_to IS NULL
  JOIN hotspots h ON h.city = :city AND h.patrol_quota_per_week IS NOT NULL
   AND h.active_from < :e AND (h.active_to IS NULL OR h.active_to > :s)
   AND ST_Intersects(h.zone, g.geom)
), v AS (
  SELECT wh.worker, h.risk_weight, h.patrol_quota_per_week * :weeks AS quota, (
    SELECT count(*) FROM patrol_tracks t WHERE """
            + _track_passes("t", "wh.worker", "h.zone")
            + """
  ) AS visits
  FROM wh JOIN hotspots h ON h.city = :city AND h.id = wh.id
)
SELECT worker, sum(risk_weight), coalesce(sum(risk_weight) FILTER (WHERE visits >= quota), 0)
FROM v GROUP BY worker"""
        )
        params = self._grid_params(period, worker) | {"weeks": weeks}
        rows = self.session.execute(text(sql), params)
        return {code: (float(total), float(met)) for code, total, met in rows}

    def unpatrolled_grids(self, period: Period, worker: str) -> list[str]:
        """The drill-down of ``patrol_grid_share``: the worker's assigned unit grids that none
        of their tracks passed within the coverage radius in ``period``, by code (``NotFound``
        for an unknown worker)."""
        self._subject_sql("worker", worker)
        sql = (
            "SELECT grid FROM (" + self._patrolled_sql(worker) + ") p"
            " WHERE NOT patrolled ORDER BY grid"
        )
        return list(self.session.scalars(text(sql), self._grid_params(period, worker)))

    def figures(self, period: Period, kind: str, level: str | None = None) -> list[Figures]:
        """All subjects of ``kind`` (``grid`` needs ``level``), one row each."""
        if kind == "grid":
            if level is None:
                raise InvalidInput(
                    "grid subjects need a level: subject=grid:<level>", field="subject"
                )
            return self.grid_figures(period, [level])[level]
        if kind == "department":
            return self.department_figures(period)
        if kind == "worker":
            return self.worker_figures(period)
        if kind == "dispatcher":
            return self.dispatcher_figures(period)
        if kind == "hotspot":
            return self.hotspot_figures(period)
        raise InvalidInput(
            f"unknown subject {kind!r}; subjects are grid:<level>, department, worker,"
            " dispatcher, hotspot",
            field="subject",
        )

    # -- one subject -----------------------------------------------------------------------
    def _subject_sql(self, kind: str, key: str) -> _OneSubject:
        """How to read one subject's cases (``NotFound`` for an unknown one)."""
        if kind == "grid":
            grid = self.registry.get(key)
            prefix = key[: self.scheme.prefix_length(grid.level)]
            subject = Figures("grid", key, grid.name, grid.level)
            return _OneSubject(subject, "AND grid_code LIKE :prefix", {"prefix": prefix + "%"})
        if kind == "department":
            return _OneSubject(Figures(kind, key, key), "AND department = :key", {"key": key})
        if kind == "worker":
            row = self.session.execute(
                text(
                    "SELECT name, grid_codes, ARRAY(SELECT DISTINCT grid_code"
                    " FROM worker_assignments a WHERE a.city = :city AND a.worker_code = :code)"
                    " AS ever FROM workers WHERE city = :city AND code = :code"
                ),
                {"city": self.city, "code": key},
            ).first()
            if row is None:
                raise NotFound(f"no grid worker {key!r}", field="key")
            # cases of the grids assigned now, and 漏报 in the grids assigned when reported
            grids = sorted(set(row.grid_codes) | set(row.ever))
            return _OneSubject(
                Figures(kind, key, row.name),
                "AND grid_code = ANY(:grids)",
                {"grids": grids, "current": list(row.grid_codes), "key": key},
                "f.grid_code = ANY(:current)",
                "EXISTS (SELECT 1 FROM mw WHERE mw.case_id = f.id AND mw.worker = :key)",
            )
        if kind == "dispatcher":
            return _OneSubject(Figures(kind, key, key), "", {"key": key}, "f.dispatcher = :key")
        if kind == "hotspot":
            name = None
            if key.isdigit() and len(key) < 19:
                name = self.session.scalar(
                    text("SELECT name FROM hotspots WHERE city = :city AND id = :id"),
                    {"city": self.city, "id": int(key)},
                )
            if name is None:
                raise NotFound(f"no hotspot with id {key!r}", field="key")
            return _OneSubject(
                Figures(kind, key, name),
                "AND hotspot_ids @> ARRAY[CAST(:hotspot AS bigint)]",
                {"hotspot": int(key)},
            )
        raise InvalidInput(
            f"unknown subject kind {kind!r}; kinds are {', '.join(KINDS)}", field="kind"
        )

    def subject_only(self, kind: str, key: str) -> Figures:
        """The subject ``kind``/``key`` without figures (``NotFound`` for an unknown grid,
        worker or hotspot): enough to check the caller's scope before computing."""
        return self._subject_sql(kind, key).subject

    def subject(self, period: Period, kind: str, key: str) -> Figures:
        """One subject's figures (the same definitions and SQL as the lists)."""
        one = self._subject_sql(kind, key)
        sums = ", ".join(f"sum(f.{k}) FILTER (WHERE {one.where(k)}) AS {k}" for k in COUNT_KEYS)
        sql = _facts_cte(one.case_filter, kind == "dispatcher") + f"\nSELECT {sums} FROM f"
        params = self._params(period) | one.params
        self._room()
        row = self.session.execute(self._bind(sql), params).mappings().one()
        subject = one.subject
        subject.counts = {k: float(row[k] or 0) for k in COUNT_KEYS}
        if kind == "worker":
            subject.counts["patrol_hours"] = self._patrol_hours(period, key).get(key, 0.0)
            share = self._grid_share(period, key).get(key, (0.0, 0.0))
            subject.counts["assigned_grids"], subject.counts["patrolled_grids"] = share
            quota = self._hotspot_quotas(period, key).get(key, (0.0, 0.0))
            subject.counts["quota_hotspots"], subject.counts["quota_hotspots_met"] = quota
        return subject

    def cases(
        self,
        period: Period,
        kind: str,
        key: str,
        indicator: str,
        after: int = 0,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """The cases behind count ``indicator`` of one subject, by id after ``after``;
        returns (rows of id and the count each case adds, the next ``after`` or None)."""
        if indicator not in CASE_COUNT_KEYS:
            quotient = BY_KEY.get(indicator)
            hint = (
                f"; it is {quotient.numerator} ÷ {quotient.denominator}: drill into those"
                if quotient and quotient.numerator
                else ""
            )
            raise InvalidInput(
                f"indicator {indicator!r} is not a count of cases{hint}; counts are "
                + ", ".join(CASE_COUNT_KEYS),
                field="indicator",
            )
        one = self._subject_sql(kind, key)
        sql = _facts_cte(one.case_filter, kind == "dispatcher") + (
            f"\nSELECT f.id, f.{indicator} AS n FROM f WHERE f.{indicator} > 0"
            f" AND {one.where(indicator)} AND f.id > :after ORDER BY f.id LIMIT :limit"
        )
        params = self._params(period) | one.params | {"after": after, "limit": limit + 1}
        self._room()
        rows = [
            {"id": r.id, "count": int(r.n)} for r in self.session.execute(self._bind(sql), params)
        ]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1]["id"] if more else None)


def _assigned_grids_cte(worker: str | None) -> str:
    """``WITH a AS (worker, grid)``: the unit grids assigned now to every active worker, or to
    ``:worker`` (read whether active or not, as its cases are)."""
    return (
        """WITH a AS (
  SELECT DISTINCT w.code AS worker, unnest(w.grid_codes) AS grid
  FROM workers w WHERE w.city = :city"""
        + (" AND w.code = :worker" if worker else " AND w.active")
        + "\n)"
    )


def _track_passes(track: str, worker: str, geom: str) -> str:
    """SQL: track ``track`` of ``worker`` overlaps P and its part inside P passes within ``:r``
    metres of ``geom`` (the grid or zone a coverage figure asks about).

    ``&&`` against ``geom``'s box grown by the radius (in degrees of longitude at its highest
    latitude: never less than the radius) uses the GiST index of the tracks;
    ``ST_LocateBetween`` on the M values (Unix seconds) keeps only the part inside P, as the
    coverage map keeps only the fixes inside its period; the distance is on the spheroid."""
    t = track
    return f"""{t}.city = :city AND {t}.worker_code = {worker}
   AND {t}.started_at < :e AND {t}.ended_at > :s
   AND {t}.geom && ST_Expand({geom}, :r / (111320.0 * cos(radians(least(89.0,
         greatest(abs(ST_YMin({geom})), abs(ST_YMax({geom}))))))))
   AND ST_DWithin(
     ST_Force2D(ST_LocateBetween({t}.geom, extract(epoch FROM CAST(:s AS timestamptz)),
                                 extract(epoch FROM CAST(:e AS timestamptz))))::geography,
     {geom}::geography, :r)"""


# -- scope -------------------------------------------------------------------------------------
def visible(
    principal: Principal,
    subject: Figures,
    worker_grids: dict[str, list[str]],
    hotspots: Collection[str] = (),
) -> bool:
    """Whether ``principal`` may see ``subject``'s figures: a grid in its grid scope, its own
    department, a worker whose every assigned grid is in scope, a hotspot of ``hotspots``
    (those touching its grid scope); dispatchers city-wide only."""
    if principal.city_wide:
        return True
    if subject.kind == "grid":
        return principal.grid_prefixes is not None and principal.covers_grid(subject.key)
    if subject.kind == "department":
        return principal.department is not None and principal.department == subject.key
    if subject.kind == "worker":
        grids = worker_grids.get(subject.key, [])
        return (
            principal.grid_prefixes is not None
            and bool(grids)
            and all(principal.covers_grid(g) for g in grids)
        )
    if subject.kind == "hotspot":
        return subject.key in hotspots
    return False


def check_kind(kind: str) -> str:
    """``kind`` when it is a subject kind (``InvalidInput`` naming ``kind`` otherwise)."""
    if kind not in KINDS:
        raise InvalidInput(
            f"unknown subject kind {kind!r}; kinds are {', '.join(KINDS)}", field="kind"
        )
    return kind


def worker_grids(session: Session, city: str) -> dict[str, list[str]]:
    """Worker code → assigned unit grid codes (for scope checks)."""
    rows = session.execute(
        text("SELECT code, grid_codes FROM workers WHERE city = :city"), {"city": city}
    )
    return {code: list(grids) for code, grids in rows}


def stamp() -> datetime:
    """When figures were computed (answers say so: unpublished periods recompute on read)."""
    return now().astimezone(UTC)

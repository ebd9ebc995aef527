"""The 红黄榜 of a period: every subject's score, ranks within peer groups, the red and yellow
lists; publishing freezes them, corrections are new revisions with a reason.

An unpublished period is computed on every read (figures of the period, the scheme in force
at its start, the reworks behind the deductions, the external scores). Publishing stores the
whole board — scores with their components, ranks, lists, the scheme version and a stamp of
the data — as revision 1; from then on every read of the period answers from the stored
revision (the latest, or ``revision=N``), whatever happens to the cases. A correction is a new
revision computed from the data as it is then, with a mandatory reason; the old one stays.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from service.accounts.audit import AuditLog
from service.accounts.principal import Principal
from service.assessment.figures import GRID_LEVELS, Figures, IndicatorEngine, worker_grids
from service.assessment.periods import Period
from service.assessment.schemes import SchemeStore, parse_document, scheme_json
from service.assessment.scoring import (
    Externals,
    RulePlan,
    Score,
    attribute,
    case_marks,
    rank,
)
from service.clock import now
from service.db.models import PublishedList
from service.errors import Conflict, InvalidInput, NotFound
from service.settings import AppSettings

ExternalsProvider = Callable[[Period], Externals]
# a board's sections: (subject kind, grid level or None)
Section = tuple[str, str | None]


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Tens of thousands of small dicts and tuples in a row: the cyclic collector would rescan
    everything alive again and again (a third of the time of a city's list); nothing built
    here forms a cycle, and reference counting frees it all the same."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def no_externals(period: Period) -> Externals:
    """The default provider: no external components (every grid is scored on the system's
    indicators alone, its external weights scaled away)."""
    return {}


def section_name(kind: str, level: str | None) -> str:
    """``grid:community``, ``department``, …"""
    return f"{kind}:{level}" if level else kind


def parse_section(text_: str) -> Section:
    """``grid:<level>`` or a subject kind (``InvalidInput`` naming ``subject``)."""
    kind, _, level = text_.strip().partition(":")
    if kind == "grid" and level in GRID_LEVELS:
        return kind, level
    if kind in ("department", "worker", "dispatcher") and not level:
        return kind, None
    raise InvalidInput(
        f"unknown subject {text_!r}; use grid:<level> ({', '.join(GRID_LEVELS)}), department, "
        "worker or dispatcher",
        field="subject",
    )


class ListService:
    """Scores, lists and their published revisions for one city."""

    def __init__(
        self,
        session: Session,
        settings: AppSettings,
        externals: ExternalsProvider = no_externals,
    ) -> None:
        """``externals`` is the provider of external components every method uses unless
        given one: a callable ``(Period) -> {component: {subject key: score 0–100}}``. The
        cross-scoring rounds plug in here (component ``cross_scoring``, grid code → the
        round's score of the grid); the default provides none."""
        self.session = session
        self.settings = settings
        self.externals = externals
        self.city = settings.grids.city
        self.engine = IndicatorEngine(session, settings)
        self.schemes = SchemeStore(session, self.city)
        self.codes = settings.scheme

    # -- published revisions ---------------------------------------------------------------
    def revisions(self, period: Period) -> list[PublishedList]:
        """The stored revisions of ``period``, oldest first."""
        return list(
            self.session.scalars(
                select(PublishedList)
                .where(PublishedList.city == self.city, PublishedList.period == period.label)
                .order_by(PublishedList.revision)
            )
        )

    def revision(self, period: Period, number: int | None) -> PublishedList | None:
        """Revision ``number`` of ``period`` (the latest when None; None when unpublished)."""
        rows = self.revisions(period)
        if number is None:
            return rows[-1] if rows else None
        for row in rows:
            if row.revision == number:
                return row
        raise NotFound(f"period {period.label} has no revision {number}", field="revision")

    # -- the board ---------------------------------------------------------------------------
    def board(
        self,
        period: Period,
        sections: Sequence[Section] | None = None,
        revision: int | None = None,
        externals: ExternalsProvider | None = None,
    ) -> dict[str, Any]:
        """The period's board: from its published revision (the latest, or ``revision``) when
        there is one, else computed now. ``sections`` keeps some subject kinds (all the
        scheme scores when None). ``externals`` supplies the named outside components per
        period — the 交叉考核 round scores (component ``cross_scoring``: grid code → 0–100)
        plug in here; by default the service's own provider (see ``__init__``)."""
        stored = self.revision(period, revision)
        if stored is not None:
            body = dict(stored.snapshot)
            body["published"] = _revision_json(stored)
            body["revisions"] = [_revision_json(r) for r in self.revisions(period)]
        else:
            body = self.compute(period, sections, externals)
            body["published"] = None
            body["revisions"] = []
        if sections is not None:
            wanted = {section_name(k, lv) for k, lv in sections}
            body["sections"] = [s for s in body["sections"] if s["subject"] in wanted]
        return body

    def compute(
        self,
        period: Period,
        sections: Sequence[Section] | None = None,
        externals: ExternalsProvider | None = None,
    ) -> dict[str, Any]:
        """Score every subject the scheme in force has a rule for (or of ``sections``), rank
        them in their peer groups and pick the lists."""
        row = self.schemes.in_force(period.start)
        scheme = parse_document(row)
        wanted: list[Section] = []
        for each in scheme.rules:
            found: list[Section] = [(each.subject, None)]
            if each.subject == "grid":
                found = [("grid", lv) for lv in each.levels or ()]
            for sec in found:
                if sec not in wanted:  # a later rule for the same subjects never applies
                    wanted.append(sec)
        if sections is not None:
            wanted = [s for s in wanted if s in set(sections)]
        stamp = self.data_stamp()
        figures = self._figures(period, wanted)
        marks = case_marks(self.session, self.city, period)
        extra = (externals or self.externals)(period)
        grids_of = worker_grids(self.session, self.city) if ("worker", None) in wanted else {}
        out_sections = []
        for kind, level in wanted:
            rule = scheme.rule_for(kind, level)
            assert rule is not None
            subjects = figures[(kind, level)]
            by_key = attribute(marks, self._marks_key(kind, level, grids_of))
            plan = RulePlan(rule, scheme)
            with _no_cyclic_gc():
                scores = [plan.score(s, by_key.get(s.key, ()), extra) for s in subjects]
            for s in scores:
                s.group = self._group(s, rule.peer_group, grids_of)
            with _no_cyclic_gc():
                rank(scores, rule)
                out_sections.append(self._section(kind, level, rule.name, scores))
        return {
            **period.as_dict(),
            "scheme": scheme_json(row, with_document=False),
            "computed_at": stamp["computed_at"],
            "data_stamp": stamp,
            "sections": out_sections,
        }

    def _figures(self, period: Period, wanted: list[Section]) -> dict[Section, list[Figures]]:
        # one pass over the period's cases gives every section
        return self.engine.full_list(period, wanted)

    def _prefix(self, code: str, level: str) -> str:
        n = self.codes.prefix_length(level)
        return code[:n].ljust(self.codes.width, "0")

    def _marks_key(self, kind: str, level: str | None, grids_of: Mapping[str, list[str]]):  # noqa: ANN202
        if kind == "grid":
            assert level is not None
            return lambda m: [self._prefix(m.grid_code, level)] if m.grid_code else []
        if kind == "department":
            return lambda m: [m.department] if m.department else []
        if kind == "worker":
            owners: dict[str, list[str]] = {}
            for worker, grids in grids_of.items():
                for g in grids:
                    owners.setdefault(g, []).append(worker)
            return lambda m: owners.get(m.grid_code or "", [])
        return lambda m: []  # dispatchers answer for dispatching, not for the fix

    def _group(self, s: Score, peer: str, grids_of: Mapping[str, list[str]]) -> str:
        if peer == "all":
            return "all"
        if s.kind == "grid":
            assert s.level is not None
            above = (
                GRID_LEVELS[max(GRID_LEVELS.index(s.level) - 1, 0)] if peer == "parent" else peer
            )
            return self._prefix(s.key, above)
        grids = sorted(grids_of.get(s.key, []))
        return self._prefix(grids[0], peer) if grids else "none"

    def _section(
        self, kind: str, level: str | None, rule_name: str, scores: list[Score]
    ) -> dict[str, Any]:
        groups: dict[str, dict[str, Any]] = {}
        for s in scores:
            g = groups.setdefault(
                s.group, {"key": s.group, "name": None, "size": 0, "red": [], "yellow": []}
            )
            g["size"] += 1 if s.active else 0
            if s.list:
                g[s.list].append(s.key)
        names = self._grid_names([k for k in groups if k not in ("all", "none")])
        for key, g in groups.items():
            g["name"] = names.get(key, "全部" if key == "all" else None)
        scores.sort(key=lambda s: (s.group, s.rank is None, s.rank or 0, s.key))
        return {
            "subject": section_name(kind, level),
            "kind": kind,
            "level": level,
            "rule": rule_name,
            "groups": sorted(groups.values(), key=lambda g: g["key"]),
            "scores": [s.explained() for s in scores],
        }

    def _grid_names(self, codes: list[str]) -> dict[str, str]:
        if not codes:
            return {}
        rows = self.session.execute(
            text(
                "SELECT code, name FROM grids WHERE city = :city AND valid_to IS NULL"
                " AND code = ANY(:codes)"
            ),
            {"city": self.city, "codes": codes},
        )
        return {code: name for code, name in rows}

    def data_stamp(self) -> dict[str, Any]:
        """When the board was computed, and marks of the data it saw (the latest change to a
        case, the latest history row)."""
        row = self.session.execute(
            text(
                "SELECT (SELECT max(updated_at) FROM cases WHERE city = :city) AS cases_at,"
                " (SELECT max(id) FROM case_events) AS last_event"
            ),
            {"city": self.city},
        ).one()
        return {
            "computed_at": now().astimezone(UTC).isoformat(),
            "cases_updated_at": row.cases_at.isoformat() if row.cases_at else None,
            "last_event_id": row.last_event,
        }

    # -- publishing ---------------------------------------------------------------------------
    def publish(
        self, period: Period, by: Principal, externals: ExternalsProvider | None = None
    ) -> PublishedList:
        """Freeze ``period``: store its board as revision 1. A period already published is a
        ``Conflict`` (correct it with a revision); one without any active subject is
        ``InvalidInput`` naming ``period``."""
        self._lock(period.label)
        if self.revisions(period):
            raise Conflict(
                f"period {period.label} is already published; a correction is a new revision "
                "(POST /api/assessment/lists/{id}/revisions with a reason)",
                field="period",
            )
        return self._store(period, 1, None, by, externals)

    def revise(
        self,
        list_id: int,
        reason: str,
        by: Principal,
        externals: ExternalsProvider | None = None,
    ) -> PublishedList:
        """A correction of the published list ``list_id``: the board recomputed from the data
        as it is now, stored as the next revision with ``reason``; the old one stays. Only the
        latest revision can be corrected (``Conflict`` otherwise)."""
        row = self.session.get(PublishedList, list_id)
        if row is None or row.city != self.city:
            raise NotFound(f"no published list {list_id}", field="id")
        if not reason or not reason.strip():
            raise InvalidInput("a correction needs a reason", field="reason")
        self._lock(row.period)
        latest = self.session.scalar(
            select(func.max(PublishedList.revision)).where(
                PublishedList.city == self.city, PublishedList.period == row.period
            )
        )
        if row.revision != latest:
            raise Conflict(
                f"list {list_id} is revision {row.revision} of {row.period}; revision {latest} "
                "is the latest: correct that one",
                field="id",
            )
        from service.assessment.periods import parse_period

        period = parse_period(row.period, self.settings.grids.timezone)
        return self._store(period, row.revision + 1, reason.strip(), by, externals)

    def refuse_edit(self, list_id: int) -> None:
        """A published list is never edited in place: ``NotFound`` for an unknown one,
        ``Conflict`` naming the way to correct it otherwise."""
        row = self.session.get(PublishedList, list_id)
        if row is None or row.city != self.city:
            raise NotFound(f"no published list {list_id}", field="id")
        raise Conflict(
            f"list {list_id} (revision {row.revision} of {row.period}) is published and frozen; "
            f"a correction is a new revision: POST /api/assessment/lists/{list_id}/revisions "
            "with a reason",
            field="id",
        )

    def _lock(self, label: str) -> None:
        """One publisher of a period at a time (until the transaction ends): two concurrent
        publications or corrections would otherwise both see the same latest revision, and
        the second would fail on the unique revision number instead of a 409."""
        self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"assessment_lists:{self.city}:{label}"},
        )

    def _store(
        self,
        period: Period,
        revision: int,
        reason: str | None,
        by: Principal,
        externals: ExternalsProvider | None,
    ) -> PublishedList:
        board = self.compute(period, None, externals)
        if not any(s["active"] for sec in board["sections"] for s in sec["scores"]):
            raise InvalidInput(
                f"period {period.label} has no case and no score to publish", field="period"
            )
        row = PublishedList(
            city=self.city,
            period=period.label,
            revision=revision,
            scheme_id=board["scheme"]["id"],
            reason=reason,
            published_at=now(),
            published_by=by.label,
            data_stamp=board["data_stamp"],
            snapshot=board,
        )
        self.session.add(row)
        self.session.flush()
        AuditLog(self.session, self.settings).record(
            by,
            "publish" if revision == 1 else "revise",
            "assessment_list",
            f"{period.label}#{revision}",
            None,
            {**_revision_json(row), "scheme_id": row.scheme_id, "data_stamp": row.data_stamp},
        )
        return row


def _revision_json(row: PublishedList) -> dict[str, Any]:
    return {
        "id": row.id,
        "period": row.period,
        "revision": row.revision,
        "reason": row.reason,
        "published_at": row.published_at.isoformat(),
        "published_by": row.published_by,
        "scheme_id": row.scheme_id,
    }


def revision_json(row: PublishedList) -> dict[str, Any]:
    """A stored revision as answers show it (without its snapshot)."""
    return _revision_json(row)

"""Cross-scoring inspection rounds (交叉考核打分): checklists, rounds, the rotation, scoresheets
and the round's score per grid.

* A **checklist** is versioned data (``checklists``): items with a code, Chinese and English
  names, maximum points and, optionally, the hotspot kind a grid must hold for the item to apply
  (扬尘 only where a construction site is). A change is a new version, never an edit.
* A **round** of a city for a period selects grids and scorers (accounts holding
  ``assessment.score``) and goes ``draft`` → ``open`` → ``closed``. The system proposes the
  rotation; an admin may edit it while the round is a draft.
* **Rotation rule**: nobody scores their own grid. A scorer's own grids are the subtrees of the
  account's grid scope; a grid conflicts with the scorer when it lies in that scope *or* the
  scope lies inside the grid (a community office may not score its street). A scorer without a
  grid scope (city-wide inspectors, department staff) has no own grid and may score any grid.
  The proposal fills the most constrained grids first, always picking the least loaded eligible
  scorer, and prefers pairs the previous round of the city did not use.
* A **scoresheet** is one scorer's checklist for one assigned grid of an open round, submitted
  once; its score is points ÷ the maximum of the applicable items × 100. A grid's round score is
  the mean of its submitted scoresheets.
* :func:`round_scores` reads **closed rounds only**: a published list must not move while
  scoresheets are still arriving, and a closed round is complete by decision of its organiser.
"""

from __future__ import annotations

import random
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.accounts.accounts import AccountService
from service.accounts.audit import AuditLog, snapshot
from service.accounts.principal import SYSTEM, Principal
from service.assessment.periods import Period, parse_period
from service.clock import now
from service.db.anyof import any_of
from service.db.models import (
    Checklist,
    Grid,
    Hotspot,
    HotspotKind,
    InspectionRound,
    RoundAssignment,
    Scoresheet,
    User,
)
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.settings import AppSettings

DEFAULT_CHECKLIST = "cross_inspection"
STATES = ("draft", "open", "closed")
LEVELS = ("city", "district", "street", "community", "unit")
MAX_GRIDS = 500
MAX_SCORERS = 200
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


# -- the rotation (pure) ------------------------------------------------------------------------
@dataclass(frozen=True)
class Scorer:
    """A scorer as the rotation sees it: the account id and the prefixes of its own grids
    (``None``: no grid scope, no own grid)."""

    id: int
    prefixes: tuple[str, ...] | None


def conflicts(scorer: Scorer, grid_code: str, grid_prefix: str) -> bool:
    """Whether ``scorer`` may not score the grid ``grid_code`` (whose subtree shares
    ``grid_prefix``): the grid lies in the scorer's scope, or the scope lies inside the grid."""
    if scorer.prefixes is None:
        return False
    return any(grid_code.startswith(p) or p.startswith(grid_prefix) for p in scorer.prefixes)


def propose_rotation(
    grids: Sequence[tuple[str, str]],
    scorers: Sequence[Scorer],
    per_grid: int = 1,
    previous: Iterable[tuple[str, int]] = (),
    offset: int = 0,
) -> list[tuple[str, int]]:
    """``(grid code, scorer id)`` pairs giving each grid of ``grids`` (code, subtree prefix)
    ``per_grid`` distinct scorers, none scoring their own grid, load as even as the scopes allow,
    avoiding ``previous`` pairs where another scorer is as lightly loaded. ``offset`` turns the
    tie-break so successive rounds start with different scorers. ``InvalidInput`` naming the
    grid when it has fewer eligible scorers than ``per_grid``."""
    seen = set(previous)
    order = {s.id: (i - offset) % max(len(scorers), 1) for i, s in enumerate(scorers)}
    eligible = {
        code: [s.id for s in scorers if not conflicts(s, code, prefix)] for code, prefix in grids
    }
    for code, ids in eligible.items():
        if len(ids) < per_grid:
            raise InvalidInput(
                f"grid {code} has {len(ids)} scorer(s) outside its own scope and needs "
                f"{per_grid}: add scorers from elsewhere or score fewer per grid",
                field="grids",
                grid=code,
            )
    load = dict.fromkeys(order, 0)
    pairs: list[tuple[str, int]] = []
    # the most constrained grids first, so the flexible scorers are still free for them
    for code in sorted(eligible, key=lambda c: (len(eligible[c]), c)):
        chosen: list[int] = []
        for _ in range(per_grid):
            best = min(
                (i for i in eligible[code] if i not in chosen),
                key=lambda i: (load[i], (code, i) in seen, order[i]),
            )
            chosen.append(best)
            load[best] += 1
        pairs.extend((code, i) for i in chosen)
    _rebalance(pairs, eligible, load)
    return sorted(pairs)


def _rebalance(
    pairs: list[tuple[str, int]], eligible: dict[str, list[int]], load: dict[int, int]
) -> None:
    """Even out the greedy proposal in place: while some scorer carries two or more grids
    above another one reachable by handing grids along (A gives a grid to B, B one to C …, each
    to a scorer eligible for it and not already on it), move them along that chain. Each move
    lowers the sum of squared loads, so it ends."""
    while True:
        on: dict[str, set[int]] = defaultdict(set)
        held: dict[int, list[int]] = defaultdict(list)  # scorer -> indexes into pairs
        for n, (code, i) in enumerate(pairs):
            on[code].add(i)
            held[i].append(n)
        floor = min(load.values(), default=0)
        moved = False
        for top in sorted(load, key=lambda i: (-load[i], i)):
            if load[top] - floor < 2:
                break  # nobody lighter enough to take a grid from here on
            back: dict[int, tuple[int, int]] = {}  # scorer -> (giver, pair index handed over)
            queue, seen, target = deque([top]), {top}, None
            while queue and target is None:
                cur = queue.popleft()
                for n in held[cur]:
                    code = pairs[n][0]
                    for nxt in eligible[code]:
                        if nxt in seen or nxt in on[code]:
                            continue
                        seen.add(nxt)
                        back[nxt] = (cur, n)
                        if load[nxt] <= load[top] - 2:
                            target = nxt
                            break
                        queue.append(nxt)
                    if target is not None:
                        break
            if target is None:
                continue
            node = target
            while node != top:
                giver, n = back[node]
                pairs[n] = (pairs[n][0], node)
                node = giver
            load[top] -= 1
            load[target] += 1
            moved = True
            break
        if not moved:
            return


# -- inputs ----------------------------------------------------------------------------------------
@dataclass
class ChecklistItemInput:
    """One item of a new checklist version."""

    code: str
    name_zh: str
    name_en: str
    max_points: float
    hotspot_kind: str | None = None


@dataclass
class ChecklistInput:
    """A new checklist version (the next version of ``key``)."""

    key: str
    name_zh: str
    name_en: str
    items: list[ChecklistItemInput]


@dataclass
class RoundInput:
    """A new round: the grids by code or as ``count`` grids of ``level`` (optionally under
    ``within``), the scorers by login."""

    period: str | None
    scorers: list[str]
    name: str | None = None
    checklist: str = DEFAULT_CHECKLIST
    grids: list[str] = field(default_factory=list)
    level: str | None = None
    count: int | None = None
    within: str | None = None
    scorers_per_grid: int = 1


@dataclass
class ItemScore:
    """Points given to one checklist item, with an optional note."""

    code: str
    points: float
    note: str | None = None


@dataclass
class SheetInput:
    """A scorer's filled checklist for one grid."""

    grid: str
    items: list[ItemScore]
    notes: str | None = None
    photos: list[str] = field(default_factory=list)


# -- answers ---------------------------------------------------------------------------------------
def checklist_out(c: Checklist) -> dict[str, Any]:
    """A checklist version as shown in answers."""
    return {
        "key": c.key,
        "version": c.version,
        "name_zh": c.name_zh,
        "name_en": c.name_en,
        "max_points": sum(float(i["max_points"]) for i in c.items),
        "items": c.items,
        "created_by": c.created_by,
        "created_at": c.created_at.isoformat() if c.created_at else None,
    }


def _round_row(r: InspectionRound) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "period": r.period,
        "state": r.state,
        "grids": list(r.grid_codes),
        "scorers_per_grid": r.scorers_per_grid,
        "created_by": r.created_by,
        "created_at": r.created_at.isoformat() if r.created_at else None,
        "opened_at": r.opened_at.isoformat() if r.opened_at else None,
        "closed_at": r.closed_at.isoformat() if r.closed_at else None,
    }


def _lost(sheet: Scoresheet, names: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "code": i["code"],
            "name_zh": names.get(i["code"], i["code"]),
            "points": i["points"],
            "max_points": i["max_points"],
            "lost": round(i["max_points"] - i["points"], 2),
            "note": i.get("note"),
        }
        for i in sheet.items
        if i["points"] < i["max_points"]
    ]


# -- the service -----------------------------------------------------------------------------------
class Inspections:
    """Checklists, rounds and scoresheets of one city."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.audit = AuditLog(session, settings)

    # checklists
    def checklists(self) -> list[Checklist]:
        """Every checklist version, by key and version."""
        return list(
            self.session.scalars(select(Checklist).order_by(Checklist.key, Checklist.version))
        )

    def checklist(self, key: str, version: int | None = None, field_name: str = "key") -> Checklist:
        """Version ``version`` of checklist ``key`` (default: the latest); ``NotFound``."""
        stmt = select(Checklist).where(Checklist.key == key)
        if version is not None:
            stmt = stmt.where(Checklist.version == version)
        found = self.session.scalar(stmt.order_by(Checklist.version.desc()).limit(1))
        if found is None:
            what = f"checklist {key!r}" + (f" version {version}" if version is not None else "")
            raise NotFound(f"no {what}", field=field_name)
        return found

    def add_checklist(self, new: ChecklistInput, by: Principal) -> Checklist:
        """Store ``new`` as the next version of its key (``InvalidInput`` naming the field)."""
        if not _CODE.match(new.key):
            raise InvalidInput(
                f"checklist key {new.key!r}: lower-case letters, digits and _", field="key"
            )
        if not new.items:
            raise InvalidInput("a checklist needs at least one item", field="items")
        kinds = set(
            self.session.scalars(select(HotspotKind.key).where(HotspotKind.city == self.city))
        )
        seen: set[str] = set()
        items = []
        for n, item in enumerate(new.items):
            where = f"items[{n}]"
            if not _CODE.match(item.code):
                raise InvalidInput(f"{where}: code {item.code!r} is not a code", field=where)
            if item.code in seen:
                raise InvalidInput(f"{where}: item {item.code!r} appears twice", field=where)
            seen.add(item.code)
            if not item.max_points > 0 or item.max_points > 1000:
                raise InvalidInput(
                    f"{where} ({item.code}): max_points must be above 0 and at most 1000",
                    field=f"{where}.max_points",
                )
            if item.hotspot_kind is not None and item.hotspot_kind not in kinds:
                raise InvalidInput(
                    f"{where} ({item.code}): no hotspot kind {item.hotspot_kind!r} in this city",
                    field=f"{where}.hotspot_kind",
                )
            items.append(
                {
                    "code": item.code,
                    "name_zh": item.name_zh,
                    "name_en": item.name_en,
                    "max_points": float(item.max_points),
                    "hotspot_kind": item.hotspot_kind,
                }
            )
        last = self.session.scalar(
            select(func.max(Checklist.version)).where(Checklist.key == new.key)
        )
        row = Checklist(
            key=new.key,
            version=(last or 0) + 1,
            name_zh=new.name_zh,
            name_en=new.name_en,
            items=items,
            created_by=by.label,
        )
        self.session.add(row)
        self.session.flush()
        self.audit.record(
            by, "create", "checklist", f"{row.key}@{row.version}", None, snapshot(row)
        )
        return row

    # grids and scorers
    def _current_grids(self, codes: Iterable[str]) -> dict[str, Grid]:
        codes = list(codes)
        rows = self.session.scalars(
            select(Grid).where(
                Grid.city == self.city, Grid.valid_to.is_(None), any_of(Grid.code, codes)
            )
        )
        return {g.code: g for g in rows}

    def _grid_prefix(self, grid: Grid) -> str:
        return grid.code[: self.settings.scheme.prefix_length(grid.level)]

    def _select_grids(self, new: RoundInput, period: Period, by: Principal) -> list[str]:
        if new.grids:
            if new.level or new.count:
                raise InvalidInput(
                    "give grids by code or by level and count, not both", field="grids"
                )
            codes = list(dict.fromkeys(new.grids))
            found = self._current_grids(codes)
            missing = [c for c in codes if c not in found]
            if missing:
                raise InvalidInput(
                    f"no current grid with code(s) {', '.join(missing[:10])} in this city",
                    field="grids",
                )
            return codes
        if not new.level or not new.count:
            raise InvalidInput(
                "name the grids to score: grids (codes), or level and count", field="grids"
            )
        if new.level not in LEVELS:
            raise InvalidInput(
                f"unknown level {new.level!r}; levels are {', '.join(LEVELS)}", field="level"
            )
        if new.count < 1 or new.count > MAX_GRIDS:
            raise InvalidInput(f"count must be 1..{MAX_GRIDS}", field="count")
        stmt = select(Grid.code).where(
            Grid.city == self.city, Grid.valid_to.is_(None), Grid.level == new.level
        )
        if new.within:
            root = self._current_grids([new.within]).get(new.within)
            if root is None:
                raise InvalidInput(
                    f"no current grid {new.within} in this city to draw within", field="within"
                )
            stmt = stmt.where(Grid.code.startswith(self._grid_prefix(root), autoescape=True))
        # only grids the organiser may organise over (its scope)
        pool = sorted(c for c in self.session.scalars(stmt) if by.covers_grid(c))
        if len(pool) < new.count:
            raise InvalidInput(
                f"only {len(pool)} current grid(s) of level {new.level!r}"
                + (f" under {new.within}" if new.within else "")
                + ("" if by.city_wide else " in your scope")
                + f", fewer than count {new.count}",
                field="count",
            )
        # a draw seeded by city and period: the same request picks the same grids
        return sorted(random.Random(f"{self.city}:{period.label}").sample(pool, new.count))

    def _scorers(self, logins: Sequence[str], field_name: str = "scorers") -> list[User]:
        if not logins:
            raise InvalidInput("name at least one scorer (logins)", field=field_name)
        if len(logins) > MAX_SCORERS:
            raise InvalidInput(f"at most {MAX_SCORERS} scorers", field=field_name)
        users = {
            u.login: u
            for u in self.session.scalars(
                select(User).where(User.city == self.city, User.login.in_(list(logins)))
            )
        }
        accounts = AccountService(self.session, self.settings)
        out = []
        for login in dict.fromkeys(logins):
            user = users.get(login)
            if user is None or not user.active:
                raise InvalidInput(f"no active account {login!r} in this city", field=field_name)
            if not accounts.principal_for_user(user).can("assessment.score"):
                raise InvalidInput(
                    f"{login} may not score: the account lacks the permission assessment.score",
                    field=field_name,
                )
            out.append(user)
        return out

    def _scorer_of(self, user: User) -> Scorer:
        prefixes = (
            AccountService(self.session, self.settings).principal_for_user(user).grid_prefixes
        )
        return Scorer(user.id, prefixes)

    # rounds
    def get(self, round_id: int) -> InspectionRound:
        """Round ``round_id`` of this city (``NotFound``)."""
        row = self.session.get(InspectionRound, round_id)
        if row is None or row.city != self.city:
            raise NotFound(f"no inspection round {round_id}", field="round")
        return row

    def sees(self, by: Principal, r: InspectionRound) -> bool:
        """Whether ``by`` may read round ``r``: it covers one of its grids, or scores in it."""
        if by.city_wide or any(by.covers_grid(g) for g in r.grid_codes):
            return True
        return by.kind == "user" and by.id in (r.scorer_ids or [])

    def visible(self, round_id: int, by: Principal) -> InspectionRound:
        """Round ``round_id`` if ``by`` may read it (``Forbidden`` naming the scope)."""
        r = self.get(round_id)
        if not self.sees(by, r):
            raise Forbidden(
                f"inspection round {round_id} scores grids outside the scope of {by.label}: "
                f"{by.scope_text()}",
                field="scope",
            )
        return r

    def _manage(self, round_id: int, by: Principal) -> InspectionRound:
        by.require("assessment.rounds")
        r = self.get(round_id)
        for code in r.grid_codes:
            by.require_grid(code, f"grid {code} of round {round_id}")
        return r

    def rounds(self, by: Principal, period: Period | None = None) -> list[InspectionRound]:
        """The rounds ``by`` may read, newest first (of ``period`` when given)."""
        stmt = select(InspectionRound).where(InspectionRound.city == self.city)
        if period is not None:
            stmt = stmt.where(
                InspectionRound.period_start >= period.start,
                InspectionRound.period_end <= period.end,
            )
        rows = self.session.scalars(stmt.order_by(InspectionRound.id.desc()))
        return [r for r in rows if self.sees(by, r)]

    def create(self, new: RoundInput, by: Principal) -> InspectionRound:
        """A draft round with a proposed rotation; every bad field is ``InvalidInput``."""
        by.require("assessment.rounds")
        tz = self.settings.grids.timezone
        if not (new.period or "").strip():  # a month by default: the current local month
            new.period = now().astimezone(ZoneInfo(tz)).strftime("%Y-%m")
        period = parse_period(new.period, tz)
        checklist = self.checklist(new.checklist or DEFAULT_CHECKLIST, field_name="checklist")
        codes = self._select_grids(new, period, by)
        for code in codes:
            by.require_grid(code, f"grid {code}")
        scorers = self._scorers(new.scorers)
        if not 1 <= new.scorers_per_grid <= len(scorers):
            raise InvalidInput(
                f"scorers_per_grid must be 1..{len(scorers)} (the number of scorers)",
                field="scorers_per_grid",
            )
        row = InspectionRound(
            city=self.city,
            name=(new.name or f"{period.label} 网格交叉考核").strip()[:200],
            period=period.label,
            period_start=period.start,
            period_end=period.end,
            checklist_id=checklist.id,
            state="draft",
            grid_codes=codes,
            scorer_ids=[u.id for u in scorers],
            scorers_per_grid=new.scorers_per_grid,
            created_by=by.label,
        )
        self.session.add(row)
        self.session.flush()
        pairs = self._proposal(row)
        self._store_pairs(row, pairs)
        self.audit.record(
            by, "create", "inspection_round", str(row.id), None, self._audit_view(row)
        )
        return row

    def _previous_pairs(self, r: InspectionRound) -> set[tuple[str, int]]:
        prev = self.session.scalar(
            select(InspectionRound.id)
            .where(
                InspectionRound.city == self.city,
                InspectionRound.id != r.id,
                InspectionRound.period_start <= r.period_start,
            )
            .order_by(InspectionRound.period_start.desc(), InspectionRound.id.desc())
            .limit(1)
        )
        if prev is None:
            return set()
        rows = self.session.execute(
            select(RoundAssignment.grid_code, RoundAssignment.scorer_id).where(
                RoundAssignment.city == self.city, RoundAssignment.round_id == prev
            )
        )
        return {(g, s) for g, s in rows}

    def _proposal(self, r: InspectionRound) -> list[tuple[str, int]]:
        grids = self._current_grids(r.grid_codes)
        users = {
            u.id: u for u in self.session.scalars(select(User).where(User.id.in_(r.scorer_ids)))
        }
        scorers = [self._scorer_of(users[i]) for i in r.scorer_ids if i in users]
        return propose_rotation(
            [(c, self._grid_prefix(grids[c])) for c in r.grid_codes if c in grids],
            scorers,
            r.scorers_per_grid,
            self._previous_pairs(r),
            offset=r.id,
        )

    def _store_pairs(self, r: InspectionRound, pairs: Iterable[tuple[str, int]]) -> None:
        for old in self.assignments(r):
            self.session.delete(old)
        self.session.flush()
        for grid, scorer in pairs:
            self.session.add(
                RoundAssignment(city=r.city, round_id=r.id, grid_code=grid, scorer_id=scorer)
            )
        self.session.flush()

    def assignments(self, r: InspectionRound) -> list[RoundAssignment]:
        """The round's assignments, by grid and scorer."""
        stmt = select(RoundAssignment).where(
            RoundAssignment.city == r.city, RoundAssignment.round_id == r.id
        )
        return list(
            self.session.scalars(
                stmt.order_by(RoundAssignment.grid_code, RoundAssignment.scorer_id)
            )
        )

    def _audit_view(self, r: InspectionRound) -> dict[str, Any]:
        out = snapshot(r) or {}
        out["assignments"] = [[a.grid_code, a.scorer_id] for a in self.assignments(r)]
        return out

    def _draft(self, r: InspectionRound, what: str) -> None:
        if r.state != "draft":
            raise Conflict(
                f"round {r.id} is {r.state}: {what} only while it is a draft", field="state"
            )

    def propose(self, round_id: int, by: Principal) -> InspectionRound:
        """Replace the draft round's assignments with a fresh proposal."""
        r = self._manage(round_id, by)
        self._draft(r, "the rotation can be proposed")
        before = self._audit_view(r)
        self._store_pairs(r, self._proposal(r))
        self.audit.record(by, "propose", "inspection_round", str(r.id), before, self._audit_view(r))
        return r

    def set_assignments(
        self, round_id: int, pairs: Sequence[tuple[str, str]], by: Principal
    ) -> InspectionRound:
        """Replace the draft round's assignments with ``pairs`` of (grid code, scorer login);
        ``InvalidInput`` naming the assignment that would let someone score their own grid,
        names a grid outside the round, or an account that may not score."""
        r = self._manage(round_id, by)
        self._draft(r, "assignments can be edited")
        if not pairs:
            raise InvalidInput("give at least one assignment", field="assignments")
        grids = self._current_grids(r.grid_codes)
        logins = sorted({login for _, login in pairs})
        users = {u.login: u for u in self._scorers(logins, "assignments")}
        out: list[tuple[str, int]] = []
        seen: set[tuple[str, int]] = set()
        for n, (code, login) in enumerate(pairs):
            where = f"assignments[{n}]"
            if code not in r.grid_codes or code not in grids:
                raise InvalidInput(
                    f"{where}: grid {code} is not one of the round's grids", field=where
                )
            user = users[login]
            if conflicts(self._scorer_of(user), code, self._grid_prefix(grids[code])):
                raise InvalidInput(
                    f"{where}: {login} may not score grid {code}, which lies in their own scope",
                    field=where,
                )
            if (code, user.id) in seen:
                raise InvalidInput(f"{where}: {login} is assigned to {code} twice", field=where)
            seen.add((code, user.id))
            out.append((code, user.id))
        before = self._audit_view(r)
        r.scorer_ids = sorted(set(r.scorer_ids) | {u.id for u in users.values()})
        self._store_pairs(r, out)
        self.audit.record(by, "assign", "inspection_round", str(r.id), before, self._audit_view(r))
        return r

    def open(self, round_id: int, by: Principal) -> InspectionRound:
        """Open the draft round for scoring (``Conflict`` in any other state, or with a grid
        nobody is assigned to)."""
        r = self._manage(round_id, by)
        self._draft(r, "it can be opened")
        covered = {a.grid_code for a in self.assignments(r)}
        bare = [g for g in r.grid_codes if g not in covered]
        if bare:
            raise Conflict(
                f"round {r.id}: no scorer is assigned to grid(s) {', '.join(bare[:10])}",
                field="assignments",
            )
        before = snapshot(r)
        r.state, r.opened_at = "open", now()
        self.session.flush()
        self.audit.record(by, "open", "inspection_round", str(r.id), before, snapshot(r))
        return r

    def close(self, round_id: int, by: Principal) -> InspectionRound:
        """Close the open round: no more scoresheets; its scores count from now on."""
        r = self._manage(round_id, by)
        if r.state != "open":
            raise Conflict(f"round {r.id} is {r.state}: only an open round closes", field="state")
        before = snapshot(r)
        r.state, r.closed_at = "closed", now()
        self.session.flush()
        self.audit.record(by, "close", "inspection_round", str(r.id), before, snapshot(r))
        return r

    # scoresheets
    def applicable(
        self, r: InspectionRound, checklist: Checklist, grid_code: str
    ) -> list[dict[str, Any]]:
        """The checklist items that apply to ``grid_code`` in the round's period (an item with
        a hotspot kind applies when such a hotspot, active in the period, touches the grid)."""
        kinds = {i["hotspot_kind"] for i in checklist.items if i.get("hotspot_kind")}
        present: set[str] = set()
        if kinds:
            grid = (
                select(Grid.geom)
                .where(Grid.city == self.city, Grid.code == grid_code, Grid.valid_to.is_(None))
                .scalar_subquery()
            )
            present = set(
                self.session.scalars(
                    select(Hotspot.kind)
                    .where(
                        Hotspot.city == self.city,
                        Hotspot.kind.in_(kinds),
                        Hotspot.active_from < r.period_end,
                        or_(Hotspot.active_to.is_(None), Hotspot.active_to > r.period_start),
                        func.ST_Intersects(Hotspot.zone, grid),
                    )
                    .distinct()
                )
            )
        return [
            i for i in checklist.items if not i.get("hotspot_kind") or i["hotspot_kind"] in present
        ]

    def submit(self, round_id: int, sheet: SheetInput, by: Principal) -> Scoresheet:
        """Store ``by``'s scoresheet for ``sheet.grid``: 404 no round, 409 round not open or
        already scored, 403 not assigned, 422 naming the item for bad points."""
        by.require("assessment.score")
        r = self.get(round_id)
        if r.state != "open":
            raise Conflict(
                f"round {r.id} is {r.state}: scoresheets are taken only while it is open",
                field="state",
            )
        assignment = None
        if by.kind == "user":
            assignment = self.session.scalar(
                select(RoundAssignment).where(
                    RoundAssignment.city == r.city,
                    RoundAssignment.round_id == r.id,
                    RoundAssignment.grid_code == sheet.grid,
                    RoundAssignment.scorer_id == by.id,
                )
            )
        if assignment is None:
            raise Forbidden(
                f"{by.label} is not assigned to score grid {sheet.grid} in round {r.id}",
                field="grid",
            )
        grid = self._current_grids([sheet.grid]).get(sheet.grid)
        if grid is not None and conflicts(
            Scorer(assignment.scorer_id, by.grid_prefixes), grid.code, self._grid_prefix(grid)
        ):  # the account's scope changed since the rotation: still nobody scores their own
            raise Forbidden(
                f"grid {sheet.grid} now lies in the scope of {by.label} ({by.scope_text()}): "
                "nobody scores their own grid; ask the organiser to reassign it",
                field="scope",
            )
        done = self.session.scalar(
            select(Scoresheet.id).where(
                Scoresheet.city == assignment.city, Scoresheet.assignment_id == assignment.id
            )
        )
        if done is not None:
            raise Conflict(
                f"{by.label} already scored grid {sheet.grid} in round {r.id} (scoresheet "
                f"{done}); a scoresheet is submitted once",
                field="grid",
                scoresheet=done,
            )
        checklist = self.session.get(Checklist, r.checklist_id)
        assert checklist is not None
        applies = {i["code"]: i for i in self.applicable(r, checklist, sheet.grid)}
        known = {i["code"] for i in checklist.items}
        given: dict[str, ItemScore] = {}
        for n, item in enumerate(sheet.items):
            where = f"items[{item.code}]"
            if item.code not in known:
                raise InvalidInput(
                    f"items[{n}]: no item {item.code!r} in checklist {checklist.key} "
                    f"version {checklist.version}",
                    field=where,
                )
            if item.code not in applies:
                raise InvalidInput(
                    f"item {item.code} does not apply to grid {sheet.grid} in {r.period}",
                    field=where,
                )
            if item.code in given:
                raise InvalidInput(f"item {item.code} is scored twice", field=where)
            top = float(applies[item.code]["max_points"])
            if not 0 <= item.points <= top:
                raise InvalidInput(
                    f"item {item.code} ({applies[item.code]['name_zh']}): points {item.points} "
                    f"outside 0..{top:g}",
                    field=where,
                )
            given[item.code] = item
        missing = [c for c in applies if c not in given]
        if missing:
            raise InvalidInput(
                f"score every item that applies; missing {', '.join(missing)}",
                field=f"items[{missing[0]}]",
            )
        items = [
            {
                "code": c,
                "points": float(given[c].points),
                "max_points": float(i["max_points"]),
                "note": given[c].note,
            }
            for c, i in applies.items()
        ]
        points = sum(i["points"] for i in items)
        top_total = sum(i["max_points"] for i in items)
        row = Scoresheet(
            city=r.city,
            round_id=r.id,
            assignment_id=assignment.id,
            grid_code=sheet.grid,
            scorer_id=by.id,
            items=items,
            points=points,
            max_points=top_total,
            score=round(points / top_total * 100, 4),
            notes=sheet.notes,
            photos=list(sheet.photos),
        )
        try:
            with self.session.begin_nested():  # two submits at once: the second is a 409
                self.session.add(row)
                self.session.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"{by.label} already scored grid {sheet.grid} in round {r.id}; a scoresheet "
                "is submitted once",
                field="grid",
            ) from exc
        self.audit.record(by, "submit", "scoresheet", str(row.id), None, snapshot(row))
        return row

    def sheets(self, r: InspectionRound, by: Principal | None = None) -> list[Scoresheet]:
        """The round's scoresheets (a scorer without ``assessment.rounds`` sees only theirs)."""
        stmt = select(Scoresheet).where(Scoresheet.city == r.city, Scoresheet.round_id == r.id)
        if by is not None and not by.can("assessment.rounds"):
            stmt = stmt.where(Scoresheet.scorer_id == (by.id if by.kind == "user" else -1))
        return list(self.session.scalars(stmt.order_by(Scoresheet.grid_code, Scoresheet.id)))

    def mine(self, by: Principal) -> list[dict[str, Any]]:
        """``by``'s assignments in draft and open rounds, with whether each is scored."""
        if by.kind != "user":
            return []
        rows = self.session.execute(
            select(RoundAssignment, InspectionRound, Scoresheet.id)
            .join(
                InspectionRound,
                (InspectionRound.city == RoundAssignment.city)
                & (InspectionRound.id == RoundAssignment.round_id),
            )
            .outerjoin(
                Scoresheet,
                (Scoresheet.city == RoundAssignment.city)
                & (Scoresheet.assignment_id == RoundAssignment.id),
            )
            .where(
                RoundAssignment.city == self.city,
                RoundAssignment.scorer_id == by.id,
                InspectionRound.city == self.city,
                InspectionRound.state.in_(["draft", "open"]),
            )
            .order_by(InspectionRound.id, RoundAssignment.grid_code)
        ).all()
        return [
            {
                "round": r.id,
                "round_name": r.name,
                "period": r.period,
                "state": r.state,
                "grid": a.grid_code,
                "scored": sheet is not None,
                "scoresheet": sheet,
            }
            for a, r, sheet in rows
        ]

    def names(self, ids: Iterable[int]) -> dict[int, dict[str, str]]:
        """Logins and display names of accounts ``ids``."""
        rows = self.session.execute(
            select(User.id, User.login, User.display_name).where(User.id.in_(list(set(ids))))
        )
        return {i: {"login": login, "name": name} for i, login, name in rows}

    def sheet_form(self, r: InspectionRound, grid_code: str) -> dict[str, Any]:
        """The round's checklist as a scorer fills it for ``grid_code``: only the items that
        apply to that grid in the round's period (``InvalidInput`` naming ``grid`` for a grid
        the round does not score)."""
        if grid_code not in r.grid_codes:
            raise InvalidInput(
                f"grid {grid_code} is not one of the grids of round {r.id}", field="grid"
            )
        checklist = self.session.get(Checklist, r.checklist_id)
        assert checklist is not None
        items = self.applicable(r, checklist, grid_code)
        return {
            **checklist_out(checklist),
            "round": r.id,
            "grid": grid_code,
            "items": items,
            "max_points": sum(float(i["max_points"]) for i in items),
        }

    def view(self, r: InspectionRound) -> dict[str, Any]:
        """The round with its checklist, assignments and progress."""
        assignments = self.assignments(r)
        done = {s.assignment_id: s for s in self.sheets(r)}
        people = self.names(a.scorer_id for a in assignments)
        checklist = self.session.get(Checklist, r.checklist_id)
        assert checklist is not None
        return {
            **_round_row(r),
            "checklist": {"key": checklist.key, "version": checklist.version},
            "assignments": [
                {
                    "grid": a.grid_code,
                    "scorer": people.get(a.scorer_id, {}).get("login"),
                    "scorer_name": people.get(a.scorer_id, {}).get("name"),
                    "scored": a.id in done,
                    "scoresheet": done[a.id].id if a.id in done else None,
                }
                for a in assignments
            ],
            "progress": {"assigned": len(assignments), "submitted": len(done)},
            # names and levels, so a page can name the grids and find their red/yellow list
            "grid_info": self._grid_info(r.grid_codes),
        }

    def _grid_info(self, codes: Sequence[str]) -> dict[str, dict[str, str]]:
        rows = self.session.execute(
            select(Grid.code, Grid.name, Grid.level).where(
                Grid.city == self.city, Grid.valid_to.is_(None), any_of(Grid.code, codes)
            )
        )
        return {code: {"name": name, "level": level} for code, name, level in rows}

    def results(self, r: InspectionRound) -> dict[str, Any]:
        """The round's score per grid with each scoresheet's lost points and notes."""
        checklist = self.session.get(Checklist, r.checklist_id)
        assert checklist is not None
        return {"round": r.id, **_grid_details(self, [r], {r.checklist_id: checklist})}


def sheet_out(s: Scoresheet, people: dict[int, dict[str, str]]) -> dict[str, Any]:
    """A scoresheet as shown in answers."""
    who = people.get(s.scorer_id, {})
    return {
        "id": s.id,
        "round": s.round_id,
        "grid": s.grid_code,
        "scorer": who.get("login"),
        "scorer_name": who.get("name"),
        "items": s.items,
        "points": s.points,
        "max_points": s.max_points,
        "score": s.score,
        "notes": s.notes,
        "photos": list(s.photos),
        "submitted_at": s.submitted_at.isoformat() if s.submitted_at else None,
    }


def _grid_details(
    svc: Inspections, rounds: Sequence[InspectionRound], checklists: dict[int, Checklist]
) -> dict[str, Any]:
    """Per grid: the mean score over rounds (each round: mean of its scoresheets) and why."""
    per: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sheets_by_round = {r.id: svc.sheets(r) for r in rounds}
    people = svc.names(s.scorer_id for ss in sheets_by_round.values() for s in ss)
    for r in rounds:
        names = {i["code"]: i["name_zh"] for i in checklists[r.checklist_id].items}
        grouped: dict[str, list[Scoresheet]] = defaultdict(list)
        for s in sheets_by_round[r.id]:
            grouped[s.grid_code].append(s)
        for grid, sheets in grouped.items():
            per[grid].append(
                {
                    "round": r.id,
                    "period": r.period,
                    "score": round(fmean(s.score for s in sheets), 2),
                    "scoresheets": [
                        {
                            **sheet_out(s, people),
                            "lost": _lost(s, names),
                        }
                        for s in sheets
                    ],
                }
            )
    grids = {
        grid: {"score": round(fmean(x["score"] for x in parts), 2), "rounds": parts}
        for grid, parts in sorted(per.items())
    }
    return {"grids": grids}


# -- what the scoring scheme reads ---------------------------------------------------------------
def _closed_rounds(
    session: Session, settings: AppSettings, period: Period
) -> list[InspectionRound]:
    stmt = select(InspectionRound).where(
        InspectionRound.city == settings.grids.city,
        InspectionRound.state == "closed",
        InspectionRound.period_start >= period.start,
        InspectionRound.period_end <= period.end,
    )
    return list(session.scalars(stmt.order_by(InspectionRound.id)))


def round_details(session: Session, settings: AppSettings, period: Period) -> dict[str, Any]:
    """Grid code → ``{"score", "rounds": [{round, period, score, scoresheets: [... "lost":
    the items that lost points, with their notes]}]}`` over the closed rounds whose period lies
    inside ``period``."""
    rounds = _closed_rounds(session, settings, period)
    if not rounds:
        return {}
    checklists = {
        c.id: c
        for c in session.scalars(
            select(Checklist).where(Checklist.id.in_({r.checklist_id for r in rounds}))
        )
    }
    return _grid_details(Inspections(session, settings), rounds, checklists)["grids"]


def round_scores(session: Session, settings: AppSettings, period: Period) -> dict[str, float]:
    """Grid code → cross-scoring score 0–100 for ``period``: over the **closed** rounds whose
    period lies inside ``period``, the mean of each round's score (a round's score for a grid is
    the mean of its submitted scoresheets). Grids no closed round scored are absent."""
    return {g: d["score"] for g, d in round_details(session, settings, period).items()}


def cross_scoring(
    session: Session, settings: AppSettings
) -> Callable[[Period], dict[str, dict[str, float]]]:
    """The externals provider of the red/yellow lists (``ListService(externals=…)``): the
    component ``cross_scoring`` of a grid is its score from the closed rounds of the period."""

    def provide(period: Period) -> dict[str, dict[str, float]]:
        return {"cross_scoring": round_scores(session, settings, period)}

    return provide


# -- the demo --------------------------------------------------------------------------------------
def load_demo_round(
    session: Session, settings: AppSettings, period_text: str, seed: int = 7, grids: int = 10
) -> InspectionRound | None:
    """One closed round for ``period_text`` in the demo city: ``grids`` community grids scored
    by the accounts that hold ``assessment.score`` (the demo's inspector and leader, plus two
    street offices and a city inspection team added here; each grid gets two scorers), with
    realistic varied points from a seeded RNG — most grids lose a few points, a couple lose
    many. Returns ``None`` when the city has too few community grids or scorers, or when the
    period already has a round."""
    from service.accounts.accounts import UserInput

    city = settings.grids.city
    period = parse_period(period_text, settings.grids.timezone)
    svc = Inspections(session, settings)
    if svc.rounds(SYSTEM, period):
        return None
    accounts = AccountService(session, settings)
    accounts.seed()
    streets = list(
        session.scalars(
            select(Grid.code)
            .where(Grid.city == city, Grid.valid_to.is_(None), Grid.level == "street")
            .order_by(Grid.code)
            .limit(2)
        )
    )
    # two street offices (who may not score their own street) and the city's inspection team
    offices = [(f"office-{n}", f"街道网格办{n}", [s]) for n, s in enumerate(streets, start=1)]
    offices.append(("inspection-team", "市城管督查组", []))
    for login, name, scope in offices:
        if accounts.user_by_login(login) is None:
            accounts.create_user(
                UserInput(
                    login=login,
                    display_name=name,
                    password=secrets.token_urlsafe(12),
                    roles=["inspector"],
                    scope_grids=scope,
                    unit=name,
                ),
                SYSTEM,
            )
    session.flush()
    scorers = [
        u.login
        for u in session.scalars(
            select(User).where(User.city == city, User.active).order_by(User.id)
        )
        if u.login != "admin" and accounts.principal_for_user(u).can("assessment.score")
    ]
    community_count = session.scalar(
        select(func.count()).where(
            and_(Grid.city == city, Grid.valid_to.is_(None), Grid.level == literal("community"))
        )
    )
    if len(scorers) < 2 or (community_count or 0) < grids:
        return None
    r = svc.create(
        RoundInput(
            period=period.label,
            scorers=scorers,
            level="community",
            count=grids,
            scorers_per_grid=2,
            name=f"{period.label} 创文网格交叉考核",
        ),
        SYSTEM,
    )
    svc.open(r.id, SYSTEM)
    rng = random.Random(seed)
    checklist = session.get(Checklist, r.checklist_id)
    assert checklist is not None
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(r.scorer_ids)))}
    # a grid's quality is shared by its scorers (they look at the same streets), with noise
    quality = {g: rng.choice([0.97, 0.93, 0.9, 0.88, 0.85, 0.8, 0.7, 0.62]) for g in r.grid_codes}
    notes = {
        "mqsb": "沿街商户门前有杂物",
        "zdjy": "早市摊贩占道",
        "ljqy": "垃圾桶满溢未及时清运",
        "ldlf": "楼道口堆放废旧家具",
        "ggzp": "新增未审批广告牌",
        "yc": "工地裸土未覆盖",
        "lhss": "绿化带缺株、护栏破损",
        "tczx": "非机动车乱停放",
    }
    for a in svc.assignments(r):
        scorer = accounts.principal_for_user(users[a.scorer_id])
        items = []
        for item in svc.applicable(r, checklist, a.grid_code):
            top = float(item["max_points"])
            q = min(1.0, max(0.0, quality[a.grid_code] + rng.uniform(-0.08, 0.08)))
            points = float(min(top, round(top * q * 2) / 2))
            items.append(
                ItemScore(item["code"], points, notes.get(item["code"]) if points < top else None)
            )
        svc.submit(r.id, SheetInput(a.grid_code, items, notes=None), scorer)
    svc.close(r.id, SYSTEM)
    return r

"""Campaigns of one city: create and edit them (checked field by field, nothing stored on a bad
one), who may read them, the cases carrying their tag, and their progress.

* **Scope**: grid codes (each with its whole subtree), hotspots (by key) and categories. A case
  is in scope when its category is among the categories (any, when none are named) and its
  grid lies in one of the subtrees or it was matched to one of the hotspots (the whole city when
  neither is named); see :mod:`service.cases.campaigns`, where the rule is written once.
* **Tag**: a case reported in scope during the period is linked in ``campaign_cases``: the
  existing ones when a campaign is created or edited, new ones at intake.
* **Who**: ``campaigns.manage`` creates and edits, within the caller's grid scope, and
  deletes a campaign that has not started yet (a started one is in issued briefs: 409); a reader
  sees the campaigns overlapping their grid scope (city-wide campaigns, and those naming them or
  their department as owner, too), and every count is of the cases the reader may see.
* **Progress**: per target and day, the value, the plan's expected value and whether it is on
  track (:mod:`service.campaigns.progress`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from service.accounts.audit import AuditLog, snapshot
from service.accounts.principal import SYSTEM, Principal
from service.accounts.privacy import name_for
from service.accounts.scope import case_condition
from service.campaigns.plan import KINDS, SHARE_KINDS, Milestone, check_milestones
from service.campaigns.progress import Progress
from service.cases.campaigns import IN_CAMPAIGN
from service.clock import now
from service.db.anyof import any_of
from service.db.models import Campaign, CampaignCase, Case, Category, Grid, Hotspot, User
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.patrol.coverage import CoverageService
from service.settings import AppSettings

MAX_DAYS = 366
# campaign days must leave room for the days around them (the plan starts the day before)
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)
MAX_ITEMS = 500


@dataclass
class TargetInput:
    """One target: its kind (``service.campaigns.plan.KINDS``), goal, and optionally its own
    categories (case kinds) or hotspots by key (coverage)."""

    kind: str
    goal: float
    key: str | None = None
    label: str | None = None
    categories: list[str] = field(default_factory=list)
    hotspots: list[str] = field(default_factory=list)


@dataclass
class OwnerInput:
    """An owner: an account (login) or a department, not both."""

    user: str | None = None
    department: str | None = None


@dataclass
class CampaignInput:
    """A campaign as a client sends it (a create, or the whole of an edit)."""

    name: str
    start: date
    end: date
    targets: list[TargetInput]
    description: str | None = None
    grids: list[str] = field(default_factory=list)
    hotspots: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    owners: list[OwnerInput] = field(default_factory=list)


_TAG_CAMPAIGN = text(
    "INSERT INTO campaign_cases (city, campaign_id, case_id) "
    "SELECT k.city, k.id, c.id FROM campaigns k JOIN cases c ON c.city = k.city "
    f"WHERE k.city = :city AND k.id = :campaign_id AND {IN_CAMPAIGN} ON CONFLICT DO NOTHING"
)


class CampaignService:
    """Campaigns of one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.tz = ZoneInfo(settings.grids.timezone)
        self.audit = AuditLog(session, settings)
        self.coverage = CoverageService(session, settings)

    # -- time ------------------------------------------------------------------------------
    def today(self) -> date:
        """Today, local."""
        return now().astimezone(self.tz).date()

    def midnight(self, day: date) -> datetime:
        """The local midnight starting ``day``."""
        return datetime.combine(day, time(0), self.tz)

    # -- reads -----------------------------------------------------------------------------
    def get(self, campaign_id: int) -> Campaign:
        """Campaign ``campaign_id`` of this city (``NotFound`` naming ``campaign``)."""
        row = self.session.get(Campaign, campaign_id)
        if row is None or row.city != self.city:
            raise NotFound(f"no campaign {campaign_id}", field="campaign")
        return row

    def sees(self, by: Principal, c: Campaign, hotspots: set[int] | None = None) -> bool:
        """Whether ``by`` may read campaign ``c``: a city-wide caller or campaign, a grid
        subtree overlapping the caller's, a hotspot touching the caller's grids (``hotspots``:
        those ids, when already read), or the caller (or its department) among the owners."""
        if by.city_wide or (not c.grid_prefixes and not c.hotspot_ids):
            return True
        for owner in c.owners:
            if by.kind == "user" and by.id is not None and owner.get("user_id") == by.id:
                return True
            if by.department is not None and owner.get("department") == by.department:
                return True
        mine = by.grid_prefixes or ()
        if any(p.startswith(q) or q.startswith(p) for p in c.grid_prefixes for q in mine):
            return True
        if c.hotspot_ids and mine:
            if hotspots is None:
                hotspots = self._my_hotspots(by)
            return hotspots is None or bool(hotspots & set(c.hotspot_ids))
        return False

    def visible(self, campaign_id: int, by: Principal) -> Campaign:
        """Campaign ``campaign_id`` if ``by`` may read it; ``NotFound`` otherwise, so a read
        never tells whether a campaign out of scope exists."""
        c = self.get(campaign_id)
        if not self.sees(by, c):
            raise NotFound(f"no campaign {campaign_id}", field="campaign")
        return c

    def campaigns(self, by: Principal, active_on: date | None = None) -> list[Campaign]:
        """The campaigns ``by`` may read, latest start first (active on ``active_on``)."""
        stmt = select(Campaign).where(Campaign.city == self.city)
        if active_on is not None:
            stmt = stmt.where(Campaign.start_date <= active_on, Campaign.end_date >= active_on)
        rows = list(self.session.scalars(stmt.order_by(Campaign.start_date.desc(), Campaign.id)))
        spots = self._my_hotspots(by) if any(r.hotspot_ids for r in rows) else None
        return [r for r in rows if self.sees(by, r, spots)]

    def _my_hotspots(self, by: Principal) -> set[int] | None:
        ids = self.coverage.hotspots_in_scope(by)
        return None if ids is None else set(ids)

    def case_count(self, c: Campaign, by: Principal) -> int:
        """How many of the campaign's cases ``by`` may see."""
        stmt = (
            select(func.count())
            .select_from(CampaignCase)
            .join(Case, (Case.city == CampaignCase.city) & (Case.id == CampaignCase.case_id))
            .where(CampaignCase.city == c.city, CampaignCase.campaign_id == c.id)
        )
        scope = case_condition(by)
        if scope is not None:
            stmt = stmt.where(scope)
        return int(self.session.scalar(stmt) or 0)

    def active_campaigns_for_case(self, case_id: int, day: date | None = None) -> list[dict]:
        """The campaigns whose tag case ``case_id`` carries and that run on ``day`` (default
        today): ``[{id, name, start, end}]`` by start — e.g. for escalation rules such as "in a
        hotspot during a campaign"."""
        day = day or self.today()
        rows = self.session.scalars(
            select(Campaign)
            .join(
                CampaignCase,
                (CampaignCase.city == Campaign.city) & (CampaignCase.campaign_id == Campaign.id),
            )
            .where(
                CampaignCase.city == self.city,
                CampaignCase.case_id == case_id,
                Campaign.city == self.city,
                Campaign.start_date <= day,
                Campaign.end_date >= day,
            )
            .order_by(Campaign.start_date, Campaign.id)
        )
        return [
            {"id": r.id, "name": r.name, "start": r.start_date, "end": r.end_date} for r in rows
        ]

    # -- progress --------------------------------------------------------------------------
    def progress(self, c: Campaign, by: Principal, until: date | None = None) -> dict[str, Any]:
        """The burn-down of ``c`` as ``by`` sees it: for each day from the start until
        ``until`` (default today; at most the last day), each target's value, the plan's
        expected value and whether it is on track. ``until`` before the start or in the
        future is ``InvalidInput``."""
        today = self.today()
        if until is not None:
            if until > today:
                raise InvalidInput(
                    f"until {until.isoformat()} is in the future (today is {today.isoformat()})",
                    field="until",
                )
            if until < c.start_date:
                raise InvalidInput(
                    f"until {until.isoformat()} comes before the campaign starts "
                    f"({c.start_date.isoformat()})",
                    field="until",
                )
        last = min(until or today, c.end_date)
        days = [c.start_date + timedelta(days=i) for i in range((last - c.start_date).days + 1)]
        targets = Progress(self.session, self.settings, self.coverage).series(c, days, by)
        return {"campaign": self.summary(c), "until": last if days else None, "targets": targets}

    def progress_for_scope(self, scope_prefix: str | None, day: date) -> list[dict[str, Any]]:
        """The campaigns running on ``day`` that overlap the grid subtree ``scope_prefix``
        (``None``: the whole city), with each target's ``value`` counted within that subtree,
        its ``goal``, the plan's ``expected`` value that day and ``on_track`` — for the daily
        brief. A ``day`` in the future is ``InvalidInput``."""
        if day > self.today():
            raise InvalidInput(f"day {day.isoformat()} is in the future", field="day")
        by = (
            SYSTEM
            if not scope_prefix
            else Principal(
                "system",
                None,
                f"scope {scope_prefix}",
                SYSTEM.permissions,
                grid_prefixes=(scope_prefix,),
            )
        )
        progress = Progress(self.session, self.settings, self.coverage)
        out = []
        for c in self.campaigns(by, active_on=day):
            targets = [
                {k: v for k, v in t.items() if k != "days"} | t["days"][-1]
                for t in progress.series(c, [day], by)
            ]
            ok = all(t["on_track"] for t in targets)
            out.append(self.summary(c) | {"targets": targets, "on_track": ok})
        return out

    # -- writes ----------------------------------------------------------------------------
    def create(self, new: CampaignInput, by: Principal) -> Campaign:
        """Store a campaign and tag the cases already reported in its scope and period."""
        by.require("campaigns.manage")
        values = self._checked(new, by)
        row = Campaign(city=self.city, created_by=by.label, **values)
        self.session.add(row)
        self.session.flush()
        self._tag(row)
        self.audit.record(by, "create", "campaign", str(row.id), None, snapshot(row))
        return row

    def update(self, campaign_id: int, new: CampaignInput, by: Principal) -> Campaign:
        """Replace campaign ``campaign_id`` with ``new`` (both within ``by``'s scope) and tag
        its cases again."""
        by.require("campaigns.manage")
        row = self.get(campaign_id)
        self._require_scope(row.grid_codes, row.hotspot_ids, by)
        values = self._checked(new, by)
        before = snapshot(row)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now()
        self.session.flush()
        self.session.execute(
            delete(CampaignCase).where(
                CampaignCase.city == row.city, CampaignCase.campaign_id == row.id
            )
        )
        self._tag(row)
        self.audit.record(by, "update", "campaign", str(row.id), before, snapshot(row))
        return row

    def delete(self, campaign_id: int, by: Principal) -> None:
        """Delete campaign ``campaign_id`` and its case tags, if it has not started yet (a
        plan withdrawn before it went out). One that has started is ``Conflict`` naming
        ``campaign``: from its first day it is in the day's briefs, its progress and the
        escalation sweep, and an issued document must stay explainable — shorten it with an
        edit instead. ``NotFound`` when ``by`` may not read it, ``Forbidden`` naming the scope
        field when its scope is not wholly within ``by``'s."""
        by.require("campaigns.manage")
        row = self.visible(campaign_id, by)
        self._require_scope(row.grid_codes, row.hotspot_ids, by)
        today = self.today()
        if row.start_date <= today:
            raise Conflict(
                f"campaign {campaign_id} started on {row.start_date.isoformat()} (today is "
                f"{today.isoformat()}) and is in the briefs issued since; it cannot be deleted "
                "— edit its end date instead",
                field="campaign",
            )
        untagged = list(
            self.session.scalars(
                delete(CampaignCase)
                .where(CampaignCase.city == row.city, CampaignCase.campaign_id == row.id)
                .returning(CampaignCase.case_id)
            )
        )
        before = {**(snapshot(row) or {}), "untagged_case_ids": sorted(untagged)}
        self.session.delete(row)
        self.session.flush()
        self.audit.record(by, "delete", "campaign", str(campaign_id), before, None)

    def _tag(self, row: Campaign) -> None:
        self.session.execute(_TAG_CAMPAIGN, {"city": row.city, "campaign_id": row.id})

    # -- checks ----------------------------------------------------------------------------
    def _checked(self, new: CampaignInput, by: Principal) -> dict[str, Any]:
        """The stored values of ``new``, every field checked first (``InvalidInput`` /
        ``Forbidden`` naming it)."""
        name = (new.name or "").strip()
        if not name:
            raise InvalidInput("a campaign needs a name", field="name")
        for which, day in (("start", new.start), ("end", new.end)):
            if not FIRST_DAY <= day <= LAST_DAY:
                raise InvalidInput(
                    f"{which} {day.isoformat()} must lie between {FIRST_DAY} and {LAST_DAY}",
                    field=which,
                )
        if new.end < new.start:
            raise InvalidInput(
                f"end {new.end.isoformat()} comes before start {new.start.isoformat()}",
                field="end",
            )
        if (new.end - new.start).days + 1 > MAX_DAYS:
            raise InvalidInput(f"a campaign runs at most {MAX_DAYS} days", field="end")
        grids = self._grids(new.grids)
        spots = self._hotspots(new.hotspots, "scope.hotspots")
        self._require_scope(list(grids), list(spots.values()), by)
        known = set(self.session.scalars(select(Category.code).where(Category.city == self.city)))
        categories = list(dict.fromkeys(new.categories))
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise InvalidInput(
                f"unknown categor(ies) {', '.join(unknown[:10])}; see GET /api/categories",
                field="scope.categories",
            )
        targets = self._targets(new.targets, categories, spots, known)
        milestones = check_milestones(list(new.milestones), new.start, new.end)
        return {
            "name": name[:200],
            "description": new.description,
            "start_date": new.start,
            "end_date": new.end,
            "starts_at": self.midnight(new.start),
            "ends_at": self.midnight(new.end + timedelta(days=1)),
            "grid_codes": list(grids),
            "grid_prefixes": sorted(set(grids.values())),
            "hotspot_ids": list(spots.values()),
            "category_codes": categories,
            "targets": targets,
            "milestones": [{"date": m.day.isoformat(), "share": m.share} for m in milestones],
            "owners": self._owners(new.owners),
        }

    def _grids(self, codes: list[str]) -> dict[str, str]:
        """``{code: subtree prefix}`` of current grids (``InvalidInput`` naming the unknown)."""
        codes = list(dict.fromkeys(codes))
        if len(codes) > MAX_ITEMS:
            raise InvalidInput(f"at most {MAX_ITEMS} grids", field="scope.grids")
        found = {
            g.code: g
            for g in self.session.scalars(
                select(Grid).where(
                    Grid.city == self.city, Grid.valid_to.is_(None), any_of(Grid.code, codes)
                )
            )
        }
        missing = [c for c in codes if c not in found]
        if missing:
            raise InvalidInput(
                f"no current grid with code(s) {', '.join(missing[:10])} in this city",
                field="scope.grids",
            )
        scheme = self.settings.scheme
        return {c: c[: scheme.prefix_length(found[c].level)] for c in codes}

    def _hotspots(self, keys: list[str], where: str) -> dict[str, int]:
        """``{key: id}`` of this city's hotspots (``InvalidInput`` naming the unknown)."""
        keys = list(dict.fromkeys(keys))
        if len(keys) > MAX_ITEMS:
            raise InvalidInput(f"at most {MAX_ITEMS} hotspots", field=where)
        found = dict(
            self.session.execute(
                select(Hotspot.key, Hotspot.id).where(
                    Hotspot.city == self.city, Hotspot.key.in_(keys)
                )
            ).all()
        )
        missing = [k for k in keys if k not in found]
        if missing:
            raise InvalidInput(
                f"no hotspot with key(s) {', '.join(missing[:10])} in this city", field=where
            )
        return {k: found[k] for k in keys}

    def _require_scope(self, grids: list[str], hotspot_ids: list[int], by: Principal) -> None:
        """``Forbidden`` naming ``scope.grids`` / ``scope.hotspots`` unless the campaign's scope
        lies within ``by``'s."""
        if by.city_wide:
            return
        if not grids and not hotspot_ids:
            raise Forbidden(
                f"a campaign over the whole city lies outside the scope of {by.label}: "
                f"{by.scope_text()}; name its grids",
                field="scope.grids",
            )
        outside = [g for g in grids if not by.covers_grid(g)]
        if outside:
            raise Forbidden(
                f"grid(s) {', '.join(outside[:10])} lie outside the scope of {by.label}: "
                f"{by.scope_text()}",
                field="scope.grids",
            )
        if hotspot_ids:
            mine = self._my_hotspots(by)
            if mine is not None and not set(hotspot_ids) <= mine:
                raise Forbidden(
                    f"hotspot(s) outside the scope of {by.label}: {by.scope_text()}",
                    field="scope.hotspots",
                )

    def _targets(
        self,
        targets: list[TargetInput],
        categories: list[str],
        spots: dict[str, int],
        known: set[str],
    ) -> list[dict[str, Any]]:
        if not targets:
            raise InvalidInput("a campaign needs at least one target", field="targets")
        if len(targets) > 20:
            raise InvalidInput("at most 20 targets", field="targets")
        out: list[dict[str, Any]] = []
        for i, t in enumerate(targets):
            where = f"targets[{i}]"
            if t.kind not in KINDS:
                raise InvalidInput(
                    f"{where}: unknown kind {t.kind!r}; kinds are {', '.join(KINDS)}",
                    field=f"{where}.kind",
                )
            if not math.isfinite(t.goal):
                raise InvalidInput(f"{where}: goal must be a number", field=f"{where}.goal")
            if t.kind in SHARE_KINDS and not 0 < t.goal <= 1:
                raise InvalidInput(
                    f"{where}: goal of {t.kind} is a share above 0 and at most 1 (1 = 100 %)",
                    field=f"{where}.goal",
                )
            if t.kind == "recurrence_max" and not (0 <= t.goal <= 1e9 and t.goal == int(t.goal)):
                raise InvalidInput(
                    f"{where}: goal of recurrence_max is a count of cases (0 or more)",
                    field=f"{where}.goal",
                )
            cats = list(dict.fromkeys(t.categories))
            unknown = [c for c in cats if c not in known]
            if unknown:
                raise InvalidInput(
                    f"{where}: unknown categor(ies) {', '.join(unknown[:10])}; "
                    "see GET /api/categories",
                    field=f"{where}.categories",
                )
            if categories and not set(cats) <= set(categories):
                raise InvalidInput(
                    f"{where}: categories outside the campaign's ({', '.join(categories)})",
                    field=f"{where}.categories",
                )
            if cats and t.kind == "hotspot_coverage":
                raise InvalidInput(
                    f"{where}: hotspot_coverage counts patrols, not cases: no categories",
                    field=f"{where}.categories",
                )
            if t.hotspots and t.kind != "hotspot_coverage":
                raise InvalidInput(
                    f"{where}: only hotspot_coverage targets name hotspots",
                    field=f"{where}.hotspots",
                )
            own = self._hotspots(t.hotspots, f"{where}.hotspots")
            ids = list(own.values()) or list(spots.values())
            if t.kind == "hotspot_coverage" and not ids:
                raise InvalidInput(
                    f"{where}: hotspot_coverage needs hotspots (the target's or the scope's)",
                    field=f"{where}.hotspots",
                )
            key = (t.key or f"t{i + 1}").strip()
            if not key or any(o["key"] == key for o in out):
                raise InvalidInput(f"{where}: key {key!r} is empty or taken", field=f"{where}.key")
            out.append(
                {
                    "key": key,
                    "kind": t.kind,
                    "label": (t.label or KINDS[t.kind][0]).strip()[:200],
                    "goal": float(t.goal),
                    "categories": cats,
                    "hotspot_ids": ids if t.kind == "hotspot_coverage" else [],
                }
            )
        return out

    def _owners(self, owners: list[OwnerInput]) -> list[dict[str, Any]]:
        if len(owners) > 50:
            raise InvalidInput("at most 50 owners", field="owners")
        logins = [o.user for o in owners if o.user]
        users = {
            u.login: u
            for u in self.session.scalars(
                select(User).where(User.city == self.city, User.login.in_(logins))
            )
        }
        out: list[dict[str, Any]] = []
        for i, o in enumerate(owners):
            where = f"owners[{i}]"
            if bool(o.user) == bool((o.department or "").strip()):
                raise InvalidInput(f"{where}: name a user or a department, not both", field=where)
            if o.user:
                user = users.get(o.user)
                if user is None or not user.active:
                    raise InvalidInput(
                        f"{where}: no active account {o.user!r}", field=f"{where}.user"
                    )
                out.append({"user_id": user.id, "login": user.login})
            else:
                out.append({"department": (o.department or "").strip()[:200]})
        return out

    # -- answers ---------------------------------------------------------------------------
    def summary(self, c: Campaign) -> dict[str, Any]:
        """The campaign's id, name and period."""
        return {"id": c.id, "name": c.name, "start": c.start_date, "end": c.end_date}

    def view(self, c: Campaign, by: Principal) -> dict[str, Any]:
        """The campaign as shown in answers (owners' names as ``by`` may see them)."""
        spots = {
            h.id: h
            for h in self.session.scalars(
                select(Hotspot).where(
                    Hotspot.id.in_(
                        set(c.hotspot_ids) | {i for t in c.targets for i in t["hotspot_ids"]}
                    )
                )
            )
        }
        codes = set(c.category_codes) | {x for t in c.targets for x in t["categories"]}
        names = dict(
            self.session.execute(
                select(Category.code, Category.name).where(
                    Category.city == self.city, Category.code.in_(codes)
                )
            ).all()
        )
        users = {
            u.id: u
            for u in self.session.scalars(
                select(User).where(User.id.in_([o["user_id"] for o in c.owners if "user_id" in o]))
            )
        }

        def spot(i: int) -> dict[str, Any]:
            h = spots.get(i)
            return {"id": i, "key": h.key if h else None, "name": h.name if h else None}

        def owner(o: dict[str, Any]) -> dict[str, Any]:
            if "department" in o:
                return {"department": o["department"]}
            u = users.get(o["user_id"])
            return {"user": o["login"], "name": name_for(by, u.display_name if u else None)}

        today = self.today()
        return self.summary(c) | {
            "description": c.description,
            "active": c.start_date <= today <= c.end_date,
            "scope": {
                "grids": list(c.grid_codes),
                "hotspots": [spot(i) for i in c.hotspot_ids],
                "categories": [{"code": x, "name": names.get(x)} for x in c.category_codes],
            },
            "targets": [
                {
                    "key": t["key"],
                    "kind": t["kind"],
                    "label": t["label"],
                    "goal": t["goal"],
                    "categories": [{"code": x, "name": names.get(x)} for x in t["categories"]],
                    "hotspots": [spot(i) for i in t["hotspot_ids"]],
                }
                for t in c.targets
            ],
            "milestones": c.milestones,
            "owners": [owner(o) for o in c.owners],
            "cases": self.case_count(c, by),
            "created_by": c.created_by,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
        }

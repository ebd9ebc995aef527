"""The demo city: grids, catalogue, hotspots, routing rules and a season of cases.

Everything is generated from one seed (the ``demo`` package) and written through
the same services as real data, so the demo exercises every rule.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.accounts.accounts import AccountService, KeyInput, UserInput
from service.accounts.principal import SYSTEM
from service.cases.catalogue import CATEGORY_SEED, Catalogue, seed_catalogue
from service.cases.importer import CaseImporter
from service.db.engine import driver_cursor
from service.db.models import Case, Grid, Worker
from service.grids.registry import GridInput, Registry
from service.hotspots.hotspots import HotspotInput, HotspotService
from service.settings import AppSettings

DEMO_SINCE = datetime(2025, 1, 1, tzinfo=UTC)  # demo grids are valid from here on

Progress = Callable[[str, int, int], None]


def _quiet(step: str, done: int, total: int) -> None:
    return None


def load_demo_grids(
    session: Session, settings: AppSettings, seed: int = 7, progress: Progress = _quiet
) -> int:
    """Write the demo city's five levels of grids; return how many."""
    from demo.city import build_demo_city

    frame = build_demo_city(seed=seed, code_width=settings.grids.code_width)
    items = [
        GridInput(
            code=row.code,
            level=row.level,
            name=row.name,
            geometry=row.geometry,
            parent_code=row.parent_code,
            responsible_unit=row.responsible_unit,
            responsible_persons=list(row.responsible_persons),
            land_use=row.land_use,
            management_grade=row.management_grade,
        )
        for row in frame.itertuples()
    ]
    Registry(session, settings).write(
        items,
        at=DEMO_SINCE,
        progress=lambda done: progress("grids", done, len(items)),
        by=SYSTEM,
        batch={"action": "grid.import", "file": "demo city", "seed": seed},
    )
    return len(items)


def load_demo_hotspots(session: Session, settings: AppSettings, seed: int = 7) -> int:
    """Markets, the rail corridor, construction sites, school gates … and routing rules."""
    from demo.hotspots import build_demo_hotspots

    frame = build_demo_hotspots(seed=seed)
    items = [
        HotspotInput(
            key=row.key,
            kind=row.kind,
            name=row.name,
            geometry=row.geometry,
            buffer_m=float(row.buffer_m),
            active_from=_when(row.active_from) or DEMO_SINCE,
            active_to=_when(row.active_to),
            owner_unit=row.owner_unit,
            owner_name=row.owner_name,
            owner_phone=row.owner_phone,
            risk_weight=float(row.risk_weight),
            patrol_quota_per_week=None
            if pd.isna(row.patrol_quota_per_week)
            else int(row.patrol_quota_per_week),
        )
        for row in frame.itertuples()
    ]
    HotspotService(session, settings).create(
        items, by=SYSTEM, source={"file": "demo city", "seed": seed}
    )
    catalogue = Catalogue(session, settings)
    # market and site managers take street-order and construction problems next to them
    catalogue.add_rule(
        by=SYSTEM, category_prefix="05", department="城管执法中队", hotspot_owner_first=True
    )
    catalogue.add_rule(
        by=SYSTEM, category_prefix="03", department="住房和城乡建设局", hotspot_owner_first=True
    )
    return len(items)


def load_demo_cases(
    session: Session, settings: AppSettings, n: int, seed: int = 7, progress: Progress = _quiet
) -> int:
    """``n`` generated cases (bulk intake), then a realistic spread of workflow states."""
    from demo.cases import generate_cases

    # the generator's "other" categories (xx99) are described by their catalogue names
    names = {row[0]: row[4] for row in CATEGORY_SEED}
    frame = generate_cases(n, seed=seed, names=names)
    frame = frame.assign(
        reported_at=frame["reported_at"].map(lambda t: t.isoformat()),
        # the catalogue asks these categories for extra fields
        # numpy's stubs take neither a pandas Series as condition nor None as a fill value.
        field_site_name=np.where(frame["category_code"] == "0303", "工地(演示)", None),  # type: ignore[call-overload]
        field_shop_name=np.where(frame["category_code"] == "0203", "沿街商铺(演示)", None),  # type: ignore[call-overload]
    )
    report = CaseImporter(session, settings).run(frame, mode="rows")
    progress("cases", report.created, n)
    _advance(session, settings, seed, progress)
    return report.created


def _advance(session: Session, settings: AppSettings, seed: int, progress: Progress) -> None:
    """Move cases along legal workflow paths: most closed, some stuck (overdue), a few rejected.

    Written in bulk (one COPY of history rows, one UPDATE) — the paths are checked against the
    workflow's transition table once, so the result is what the API would have produced.
    """
    from sqlalchemy import select, text

    from service.cases.workflow import next_status
    from service.clock import now

    plans = {
        "closed": ["register", "dispatch", "handle", "feedback", "verify"],
        "fed_back": ["register", "dispatch", "handle", "feedback"],
        "handling": ["register", "dispatch", "handle"],
        "dispatched": ["register", "dispatch"],
        "rejected": ["reject"],
        "reported": [],
    }
    statuses = {}
    for name, steps in plans.items():
        status = "reported"
        for step in steps:
            status = next_status(status, step)  # raises if a plan breaks the workflow
        statuses[name] = status
    rows = session.execute(
        select(Case.id, Case.reported_at).where(Case.city == settings.grids.city)
    ).all()
    if not rows:
        return
    rng = np.random.default_rng(seed)
    names = list(plans)
    pick = rng.choice(len(names), size=len(rows), p=[0.70, 0.04, 0.06, 0.06, 0.04, 0.10])
    t_now = now()
    events, updates = [], []
    for (case_id, reported), k in zip(rows, pick, strict=True):
        steps = plans[names[k]]
        gaps = rng.exponential(3.0, len(steps)) + 0.2  # hours between steps
        times = [reported + pd.Timedelta(hours=float(h)) for h in np.cumsum(gaps)]
        if not steps or times[-1] > t_now:
            continue
        status = "reported"
        for step, at in zip(steps, times, strict=True):
            after = next_status(status, step)
            note = "非城管职责" if step == "reject" else ""
            events.append((case_id, step, status, after, "demo", at.isoformat(), note))
            status = after
        closed = times[-1].isoformat() if status == "closed" else ""
        updates.append((case_id, status, closed, len(steps) + 1, times[-1].isoformat()))
    row: tuple[object, ...]  # one COPY row; history and state rows differ in shape
    with driver_cursor(session) as cur:
        with cur.copy(
            "COPY case_events (case_id, action, from_status, to_status, actor, at, note) FROM STDIN"
        ) as copy:
            for row in events:
                copy.write_row(row)
        cur.execute(
            "CREATE TEMP TABLE demo_states (id bigint, status text, closed_at text, "
            "lock_version int, updated_at text) ON COMMIT DROP"
        )
        with cur.copy("COPY demo_states FROM STDIN") as copy:
            for row in updates:
                copy.write_row(row)
    session.execute(
        text(
            "UPDATE cases c SET status = d.status, lock_version = d.lock_version, "
            "closed_at = NULLIF(d.closed_at, '')::timestamptz, "
            "updated_at = d.updated_at::timestamptz FROM demo_states d WHERE c.id = d.id"
        )
    )
    progress("workflow", len(updates), len(rows))


def load_demo_streets(session: Session, settings: AppSettings, seed: int = 7) -> int:
    """The demo city's roads as street centre lines (for street-length coverage)."""
    from demo.city import build_demo_roads
    from service.streets.streets import StreetInput, StreetService

    roads = build_demo_roads(seed=seed)
    items = [
        StreetInput(geometry=row.geometry, name=row.name, kind=row.kind)
        for row in roads.itertuples()
    ]
    StreetService(session, settings).create(
        items, by=SYSTEM, source={"file": "demo city", "seed": seed}
    )
    return len(roads)


def load_demo_patrol(
    session: Session, settings: AppSettings, seed: int = 7, progress: Progress = _quiet
) -> int:
    """About 60 grid workers with a phone each and a week of their GPS fixes (tracks built)."""
    from demo.city import build_demo_city
    from demo.patrol import build_demo_patrol
    from service.patrol.fixes import FixIngester
    from service.patrol.workers import PatrolService, WorkerInput

    city = build_demo_city(seed=seed, code_width=settings.grids.code_width)
    demo = build_demo_patrol(city, seed=seed, tz=settings.grids.timezone)
    patrol = PatrolService(session, settings)
    for w in demo.workers.to_dict("records"):
        patrol.save_worker(
            WorkerInput(
                code=w["code"],
                name=w["name"],
                team=w["team"],
                grid_codes=list(w["grid_codes"]),
                devices=[w["device_id"]],
            ),
            SYSTEM,
        )
    fixes = demo.fixes.assign(time=demo.fixes["time"].map(lambda t: t.isoformat()))
    report = FixIngester(session, settings, progress=progress).run(fixes, SYSTEM, mode="rows")
    return report.stored


def load_demo_world(
    session: Session,
    settings: AppSettings,
    seed: int = 7,
    cases: int = 0,
    progress: Progress = _quiet,
    patrol: bool = True,
) -> dict[str, int]:
    """Grids, catalogue, hotspots, rules, streets, ``cases`` cases and (with ``patrol``) a
    week of patrol tracks for ``settings.grids.city``."""
    out = {"grids": load_demo_grids(session, settings, seed, progress)}
    out["categories"] = seed_catalogue(session, settings.grids.city)
    out["hotspots"] = load_demo_hotspots(session, settings, seed)
    out["streets"] = load_demo_streets(session, settings, seed)
    if cases:
        out["cases"] = load_demo_cases(session, settings, cases, seed, progress)
    if patrol:
        out["fixes"] = load_demo_patrol(session, settings, seed, progress)
    return out


@dataclass(frozen=True)
class DemoAccount:
    """A demo login and what it is for (written to the credentials file)."""

    login: str
    password: str
    roles: tuple[str, ...]
    scope: str


def load_demo_accounts(session: Session, settings: AppSettings) -> list[DemoAccount]:
    """A demo account for every role, with scopes that make sense in the demo city: a street
    office, two communities, three departments, grid workers who walk in the patrol demo, and
    an API key of the 12345 hotline; passwords are random. Returns them (the admin's password
    is ``CITYGRID_ADMIN_PASSWORD``)."""
    accounts = AccountService(session, settings)
    accounts.seed()
    city = settings.grids.city
    grids = session.execute(
        select(Grid.code, Grid.level, Grid.name)
        .where(Grid.city == city, Grid.valid_to.is_(None), Grid.level.in_(["street", "community"]))
        .order_by(Grid.code)
    ).all()
    streets = [g for g in grids if g.level == "street"]
    communities = [g for g in grids if g.level == "community"]
    walkers = session.execute(
        select(Worker.code, Worker.name, Worker.grid_codes)
        .where(Worker.city == city)
        .order_by(Worker.code)
        .limit(3)
    ).all()
    plan: list[tuple[str, str, tuple[str, ...], list[str], str | None, str]] = [
        ("leader", "王局长", ("leader",), [], None, "the whole city"),
        ("intake", "李受理", ("intake",), [], None, "the whole city"),
        ("gis", "赵测绘", ("gis_editor",), [], None, "the whole city"),
    ]
    if streets:
        plan.append(
            ("dispatcher", "张派遣", ("dispatcher",), [streets[0].code], None, streets[0].name)
        )
    if len(communities) >= 2:
        two = [c.code for c in communities[:2]]
        names = "、".join(c.name for c in communities[:2])
        plan.append(("inspector", "陈督查", ("inspector",), two, None, names))
    for key, duty, office in (
        ("sanitation", "环卫所值班员", "环卫所"),
        ("enforcement", "执法中队值班员", "城管执法中队"),
        ("construction", "住建局值班员", "住房和城乡建设局"),
    ):
        plan.append((key, duty, ("department",), [], office, f"cases dispatched to {office}"))
    for worker in walkers:
        if worker.grid_codes:
            plan.append(
                (
                    f"worker-{worker.code}".lower(),
                    worker.name,
                    ("grid_worker",),
                    list(worker.grid_codes),
                    None,
                    f"{len(worker.grid_codes)} unit grids walked by {worker.code}",
                )
            )
    out = []
    for login, name, roles, scope, dept, words in plan:
        if accounts.user_by_login(login) is not None:
            continue
        password = secrets.token_urlsafe(9)
        accounts.create_user(
            UserInput(
                login=login,
                display_name=name,
                password=password,
                roles=list(roles),
                scope_grids=scope,
                department=dept,
                unit=dept or name,
            ),
            SYSTEM,
        )
        out.append(DemoAccount(login, password, roles, words))
    if not any(k.name == "12345热线" for k in accounts.keys()):
        _, secret = accounts.create_key(KeyInput("12345热线", ["cases.report"]), SYSTEM)
        out.append(DemoAccount("API key 12345热线", secret, (), "reports cases (X-API-Key)"))
    return out


def write_credentials(path: Path, accounts: list[DemoAccount], admin_password: str) -> None:
    """Write (or add to) the demo credentials file, readable by its owner only."""
    lines = (
        []
        if path.exists()
        else [
            "# citygrid demo accounts — for trying the demo only; never in production",
            f"admin\t{admin_password}\tadmin\tthe whole city (CITYGRID_ADMIN_PASSWORD)",
        ]
    )
    lines += [f"{a.login}\t{a.password}\t{','.join(a.roles)}\t{a.scope}" for a in accounts]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    path.chmod(0o600)


def _when(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()

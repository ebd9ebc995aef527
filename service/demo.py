"""The demo city: grids, catalogue, hotspots, routing rules and a season of cases.

Everything is generated from one seed (the ``demo`` package) and written through
the same services as real data, so the demo exercises every rule.
"""

from __future__ import annotations

import bisect
import json
import secrets
from collections.abc import Callable, Sequence
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
    start, end = demo_window(settings)
    frame = generate_cases(n, seed=seed, start=start, end=end, names=names)
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


# the demo's month: one department late, three communities with rework and recurrence
DEMO_LATE_DEPARTMENT = "市政工程管理处"
DEMO_REWORK_COMMUNITIES = 3
DEMO_FLAGS = (("leader", 8), ("media", 6))  # 领导交办, 媒体曝光: deductions are doubled
DEMO_HISTORY_MONTHS = 10  # cases are reported from the first day of the month this far back


def demo_window(
    settings: AppSettings, at: datetime | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The demo's report times: from the first local day of the month ``DEMO_HISTORY_MONTHS``
    before ``at`` (default now) until ``at`` — so the month before now is a full month."""
    from service.clock import now

    end = pd.Timestamp(at or now()).tz_convert(settings.grids.timezone).floor("min")
    start = (end.normalize().replace(day=1) - pd.DateOffset(months=DEMO_HISTORY_MONTHS)).normalize()
    return start, end


def _advance(session: Session, settings: AppSettings, seed: int, progress: Progress) -> None:
    """Give every case its history up to now (``demo.workflow``): most closed on time, a few
    late, recent ones still being worked on; one department late, three communities with
    rework and recurrence, some re-dispatches, 退单, extensions and evaluations.

    Written in bulk (one COPY of history rows, one UPDATE) — every path is replayed through
    the workflow's transition table, and each step carries the data ``CaseService.act`` would
    store, so the result is what the API would have produced.
    """
    from sqlalchemy import text

    from demo.workflow import build_histories
    from service.cases.workflow import next_status
    from service.clock import now

    city = settings.grids.city
    rows = session.execute(
        select(
            Case.id,
            Case.reported_at,
            Case.deadline_at,
            Case.grid_code,
            Case.department,
            Case.category_code,
        )
        .where(Case.city == city)
        .order_by(Case.id)
    ).all()
    if not rows:
        return
    t_now = now()
    width = settings.scheme.prefix_length("community")
    ids = [r.id for r in rows]
    reported = np.array([r.reported_at.timestamp() for r in rows])
    deadline = np.array([r.deadline_at.timestamp() if r.deadline_at else np.nan for r in rows])
    community = [r.grid_code[:width] if r.grid_code else None for r in rows]
    departments = sorted({r.department for r in rows if r.department})
    rework = _rework_communities(community, reported, t_now, seed)
    steps = build_histories(
        reported,
        deadline,
        [r.department for r in rows],
        community,
        t_now.timestamp(),
        DEMO_LATE_DEPARTMENT,
        rework,
        departments,
        seed,
    )

    state: dict[int, dict[str, Any]] = {}
    events: list[list[Any]] = []
    times: list[float] = []
    for st in steps:
        case = state.setdefault(
            st.row,
            {"status": "reported", "department": rows[st.row].department, "n": 1, "deadline": ""},
        )
        before = case["status"]
        after = next_status(before, st.action)  # raises if a history breaks the workflow
        data = st.data
        if st.action == "dispatch" and "department" in data:
            case["department"] = data["department"]
        elif st.action == "return":
            case["department"] = None
        elif st.action == "extend":
            data = {
                "old_deadline": _iso(data["old_deadline"]),
                "new_deadline": _iso(data["new_deadline"]),
            }
            case["deadline"] = data["new_deadline"]
        elif st.action == "verify":
            case["closed"] = st.at
        elif st.action == "evaluate":
            case["evaluation"] = (data["satisfaction"], data["quality"], st.at)
        case["status"] = after
        case["n"] += 1
        case["updated"] = st.at
        times.append(st.at)
        data_json = json.dumps(data, ensure_ascii=False) if data else "{}"
        events.append(
            [
                settings.grids.city,
                ids[st.row],
                st.action,
                before,
                after,
                st.actor,
                "",
                st.note,
                data_json,
            ]
        )
    for event, stamp in zip(events, _isos(times), strict=True):
        event[6] = stamp  # the "at" column
    recurring = _recurring(rows, community, state, rework, settings.cases.recurrence_days, seed)
    updates = []
    for k, case in state.items():
        sat, quality, rated = case.get("evaluation", ("", "", None))
        updates.append(
            (
                ids[k],
                case["status"],
                _iso(case["closed"]) if "closed" in case else "",
                case["n"],
                _iso(case["updated"]),
                case["department"] or "",
                case["deadline"],
                sat,
                quality,
                _iso(rated) if rated is not None else "",
                recurring.get(k, ""),
            )
        )
    row_out: Any  # one COPY row; history and state rows differ in shape
    with driver_cursor(session) as cur:
        with cur.copy(
            "COPY case_events (city, case_id, action, from_status, to_status, actor, at, note,"
            " data) FROM STDIN"
        ) as copy:
            for row_out in events:
                copy.write_row(row_out)
        cur.execute(
            "CREATE TEMP TABLE demo_states (id bigint, status text, closed_at text, "
            "lock_version int, updated_at text, department text, deadline_at text, "
            "satisfaction text, quality text, evaluated_at text, recurring_of text) "
            "ON COMMIT DROP"
        )
        with cur.copy("COPY demo_states FROM STDIN") as copy:
            for row_out in updates:
                copy.write_row(row_out)
        # typed here, in the temporary table: on Citus an UPDATE of a distributed table may
        # not call STABLE functions (text → timestamptz) on the joined rows' columns
        cur.execute(
            "ALTER TABLE demo_states "
            "ALTER closed_at TYPE timestamptz USING NULLIF(closed_at, '')::timestamptz, "
            "ALTER updated_at TYPE timestamptz USING updated_at::timestamptz, "
            "ALTER department TYPE text USING NULLIF(department, ''), "
            "ALTER deadline_at TYPE timestamptz USING NULLIF(deadline_at, '')::timestamptz, "
            "ALTER satisfaction TYPE text USING NULLIF(satisfaction, ''), "
            "ALTER quality TYPE int USING NULLIF(quality, '')::int, "
            "ALTER evaluated_at TYPE timestamptz USING NULLIF(evaluated_at, '')::timestamptz, "
            "ALTER recurring_of TYPE bigint USING NULLIF(recurring_of, '')::bigint"
        )
    session.execute(
        text(
            "UPDATE cases c SET status = d.status, lock_version = d.lock_version, "
            "closed_at = d.closed_at, updated_at = d.updated_at, department = d.department, "
            "deadline_at = coalesce(d.deadline_at, c.deadline_at), "
            "satisfaction = d.satisfaction, quality = d.quality, evaluated_at = d.evaluated_at, "
            "recurring_of = coalesce(d.recurring_of, c.recurring_of) "
            "FROM demo_states d WHERE c.city = :city AND c.id = d.id"
        ),
        {"city": settings.grids.city},
    )
    _flag(session, settings, t_now, seed)
    progress("workflow", len(updates), len(rows))


def _rework_communities(
    community: list[str | None], reported: np.ndarray, t_now: datetime, seed: int
) -> list[str]:
    """``DEMO_REWORK_COMMUNITIES`` community prefixes among the busier half of the last two
    months (so their rework shows in rates), chosen by the seed."""
    recent = reported >= t_now.timestamp() - 62 * 86400
    counts: dict[str, int] = {}
    for c, r in zip(community, recent, strict=True):
        if c is not None and r:
            counts[c] = counts.get(c, 0) + 1
    busy = sorted(counts, key=lambda c: (-counts[c], c))[: max(len(counts) // 2, 1)]
    rng = np.random.default_rng([seed, 13])
    pick = rng.choice(len(busy), size=min(DEMO_REWORK_COMMUNITIES, len(busy)), replace=False)
    return sorted(busy[k] for k in pick)


def _recurring(
    rows: Sequence[Any],
    community: list[str | None],
    state: dict[int, dict[str, Any]],
    communities: list[str],
    days: int,
    seed: int,
) -> dict[int, str]:
    """In the rework communities a problem comes back: about a third of their cases recur the
    latest case of the same category in the same community closed within ``days`` before the
    report (what intake marks as recurring). Row → id of the case it recurs."""
    wanted = set(communities)
    closed: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for row, case in state.items():
        com = community[row]
        if com in wanted and "closed" in case:
            closed.setdefault((com, rows[row].category_code), []).append((case["closed"], row))
    for items in closed.values():
        items.sort()
    draw = np.random.default_rng([seed, 14]).random(len(rows))
    out: dict[int, str] = {}
    for row in state:
        com = community[row]
        if com not in wanted or draw[row] >= 0.35:
            continue
        items = closed.get((com, rows[row].category_code), [])
        at = rows[row].reported_at.timestamp()
        k = bisect.bisect_left(items, (at, -1)) - 1
        if k >= 0 and items[k][0] >= at - days * 86400.0:
            out[row] = str(rows[items[k][1]].id)
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _isos(times: list[float]) -> list[str]:
    """Epoch seconds as ISO 8601 UTC text, all at once (a history has ~10⁵ steps)."""
    micro = np.round(np.asarray(times, dtype=float) * 1e6).astype("datetime64[us]")
    return list(np.datetime_as_string(micro, unit="us", timezone="UTC"))


def _flag(session: Session, settings: AppSettings, t_now: datetime, seed: int) -> None:
    """A handful of last month's cases were assigned by a leader (领导交办) or exposed in the
    media (媒体曝光): ``fields.flags``, whose deductions a scoring scheme doubles."""
    from sqlalchemy import text

    start, end = _last_month(settings, t_now)
    offset = 0
    for flag, n in DEMO_FLAGS:
        session.execute(
            text(
                "UPDATE cases"
                " SET fields = fields"
                " || jsonb_build_object('flags', jsonb_build_array(CAST(:flag AS text)))"
                " WHERE city = :city"
                " AND id IN (SELECT id FROM cases WHERE city = :city AND reported_at >= :s"
                " AND reported_at < :e AND status <> 'rejected' AND NOT fields ? 'flags'"
                " ORDER BY hashtextextended(id::text, :seed), id OFFSET :offset LIMIT :n)"
            ),
            {
                "flag": flag,
                "city": settings.grids.city,
                "s": start,
                "e": end,
                "seed": seed,
                "offset": offset,
                "n": n,
            },
        )
        offset += n


def _last_month(settings: AppSettings, t_now: datetime) -> tuple[datetime, datetime]:
    """The local calendar month before ``t_now``'s: [first day, first day of this month)."""
    this = pd.Timestamp(t_now).tz_convert(settings.grids.timezone).normalize().replace(day=1)
    return (this - pd.DateOffset(months=1)).to_pydatetime(), this.to_pydatetime()


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
    office, two communities, four departments (one of them the demo's late one), grid workers
    who walk in the patrol demo, and an API key of the 12345 hotline; passwords are random.
    Returns them (the admin's password is ``CITYGRID_ADMIN_PASSWORD``)."""
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
        # the demo's late department (DEMO_LATE_DEPARTMENT): its staff see its poor figures
        ("municipal", "市政处值班员", DEMO_LATE_DEPARTMENT),
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


def load_demo_round_of_last_month(session: Session, settings: AppSettings) -> str | None:
    """One closed cross-scoring round (交叉考核) for the month before now, so that the demo's
    red/yellow list of that month has its ``cross_scoring`` component; needs the demo accounts.
    Returns the month scored (``None`` when it already had a round)."""
    from service.assessment.inspection import load_demo_round
    from service.clock import now

    local = pd.Timestamp(now()).tz_convert(settings.grids.timezone)
    month = (local.normalize().replace(day=1) - pd.Timedelta(days=1)).strftime("%Y-%m")
    return month if load_demo_round(session, settings, month) is not None else None


def load_demo_campaign(session: Session, settings: AppSettings) -> str | None:
    """One running campaign (专项整治) over the demo district: 占道经营 and 渣土 cases, the farmer
    markets and the rail corridor, a back-planned schedule (half by its middle, all by its
    end), so the map and the progress API have something to show. Returns its name (``None``
    when the city already has a campaign or no district)."""
    from datetime import timedelta

    from service.campaigns.campaigns import CampaignInput, CampaignService, OwnerInput, TargetInput
    from service.campaigns.plan import Milestone
    from service.db.models import Campaign, Hotspot

    city = settings.grids.city
    if session.scalar(select(Campaign.id).where(Campaign.city == city).limit(1)) is not None:
        return None
    district = session.scalar(
        select(Grid.code)
        .where(Grid.city == city, Grid.valid_to.is_(None), Grid.level == "district")
        .order_by(Grid.code)
        .limit(1)
    )
    if district is None:
        return None
    spots = list(
        session.scalars(
            select(Hotspot.key)
            .where(
                Hotspot.city == city,
                Hotspot.kind.in_(["farmer_market", "rail_corridor"]),
                Hotspot.active_to.is_(None),
            )
            .order_by(Hotspot.kind, Hotspot.key)
            .limit(4)
        )
    )
    svc = CampaignService(session, settings)
    start = svc.today() - timedelta(days=20)
    end = start + timedelta(days=30)
    targets = [TargetInput("close_rate", 1.0, label="占道经营、渣土问题全部整改销号")]
    if spots:
        targets.append(TargetInput("hotspot_coverage", 0.6, label="重点区域每周巡查覆盖率"))
    targets.append(TargetInput("recurrence_max", 20, label="问题反弹不超过20起"))
    name = "“双迎攻坚”占道经营与渣土专项整治"
    svc.create(
        CampaignInput(
            name=name,
            description="集中整治占道经营和积存渣土，倒排工期，整改一个、销号一个。",
            start=start,
            end=end,
            grids=[district],
            hotspots=spots,
            categories=["0502", "0103"],
            targets=targets,
            milestones=[Milestone(start + timedelta(days=15), 0.5), Milestone(end, 1.0)],
            owners=[OwnerInput(department="城管执法中队"), OwnerInput(department="环卫所")],
        ),
        SYSTEM,
    )
    return name


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

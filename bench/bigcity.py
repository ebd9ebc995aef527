"""The large city shared by the benches: 1M cases of a year and a 30,000-unit-grid city.

``generate_cases`` / ``load_cases`` make a year of cases with their histories (categories,
deadlines, sources weighted like the demo generator's, legal workflow paths, departments that
differ in how late they are) and load them by binary COPY (``service.db.pgcopy``); used by
``bench_indicators.py`` and ``bench_briefs.py`` on their code-space city.

``load_large_city`` builds the city the map benches draw (DESIGN §6's large city): ~30,000
irregular unit grids (Voronoi cells nested district → street → community → unit, clipped to
their parent, so every grid lies in its parent), the catalogue, and ``cases`` cases of a year
placed at random inside the city with the unit grid they fall in, ``open_share`` of them still
open (the map draws open cases; the default 0.32 gives ≥ 300k open of 1M). Reproducible from
``seed``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.cases.catalogue import CATEGORY_SEED, seed_catalogue
from service.cases.workflow import OPEN_STATUSES
from service.db.engine import driver_cursor
from service.db.pgcopy import copy_arrow
from service.settings import AppSettings

SOURCES = np.array(["patrol", "citizen", "hotline", "inspector", "open311"])
SOURCE_P = [0.62, 0.18, 0.12, 0.05, 0.03]
# (name, actions, share)
PATHS = (
    ("closed", ("register", "dispatch", "handle", "feedback", "verify"), 0.79),
    (
        "reworked",
        ("register", "dispatch", "handle", "feedback", "rework", "feedback", "verify"),
        0.04,
    ),
    ("redispatched", ("register", "dispatch", "dispatch", "handle", "feedback", "verify"), 0.03),
    ("extended", ("register", "dispatch", "extend", "handle", "feedback", "verify"), 0.02),
    ("handling", ("register", "dispatch", "handle"), 0.05),
    ("fed_back", ("register", "dispatch", "handle", "feedback"), 0.02),
    ("rejected", ("reject",), 0.04),
    ("reported", (), 0.01),
)
NEXT = {
    "register": "registered",
    "dispatch": "dispatched",
    "handle": "handling",
    "feedback": "fed_back",
    "verify": "closed",
    "rework": "handling",
    "reject": "rejected",
}


def generate_cases(n: int, units: list[str], start: datetime, months: int, seed: int = 7):
    """Cases and their histories as Arrow tables (plus extension rows needing JSON data)."""
    rng = np.random.default_rng(seed)
    span_s = months * 30.4 * 86400
    reported = np.sort(rng.uniform(0, span_s, n))
    t0 = np.datetime64(start.replace(tzinfo=None), "us")
    rep = t0 + (reported * 1e6).astype("timedelta64[us]")
    cats = np.array([row[0] for row in CATEGORY_SEED])
    days = np.array([row[5] if row[6] == "days" else row[5] / 24 for row in CATEGORY_SEED])
    cat_i = rng.integers(0, len(cats), n)
    deadline = rep + (days[cat_i] * 86400e6).astype("timedelta64[us]")
    departments = np.array([f"部门{i:02d}" for i in range(40)])
    dept_i = rng.integers(0, len(departments), n)
    # a few slow departments and grids with many reworks stand out in the figures
    slowness = np.where(dept_i % 13 == 0, 3.0, 1.0)
    ids = np.arange(1, n + 1, dtype=np.int64)
    grid_codes = np.array(units)[rng.integers(0, len(units), n)]
    shares = np.array([p[2] for p in PATHS])
    path_i = rng.choice(len(PATHS), size=n, p=shares / shares.sum())
    status = np.empty(n, dtype=object)
    closed = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    updated = rep.copy()
    deadline_final = deadline.copy()
    ev_case, ev_action, ev_from, ev_to, ev_at, ev_actor = [], [], [], [], [], []
    extensions = []
    dispatchers = np.array([f"派遣员{i:02d}" for i in range(20)])
    for k, (_name, steps, _) in enumerate(PATHS):
        sel = np.flatnonzero(path_i == k)
        m = len(sel)
        if m == 0:
            continue
        if not steps:
            status[sel] = "reported"
            continue
        # hours between steps: the department's work takes most of the deadline
        gaps = rng.exponential(1.0, (m, len(steps))) * 0.15 * days[cat_i[sel], None] * 24
        gaps *= slowness[sel, None]
        at = rep[sel, None] + (np.cumsum(gaps, axis=1) * 3600e6).astype("timedelta64[us]")
        st, froms, tos = "reported", [], []
        for step in steps:
            froms.append(st)
            st = st if step == "extend" else NEXT[step]
            tos.append(st)
        ev_case.append(np.repeat(ids[sel], len(steps)))
        ev_action.append(np.tile(np.array(steps), m))
        ev_from.append(np.tile(np.array(froms), m))
        ev_to.append(np.tile(np.array(tos), m))
        ev_at.append(at.reshape(-1))
        ev_actor.append(
            np.where(
                np.tile(np.array(steps), m) == "dispatch",
                dispatchers[rng.integers(0, len(dispatchers), m * len(steps))],
                "bench",
            )
        )
        status[sel] = st
        updated[sel] = at[:, -1]
        if st == "closed":
            closed[sel] = at[:, -1]
        if "extend" in steps:
            j = steps.index("extend")
            new = deadline[sel] + np.timedelta64(3, "D")
            deadline_final[sel] = new
            extensions.append((ids[sel], at[:, j], deadline[sel], new))
    # a few cases recur an earlier one nearby (the id is only a mark here)
    rec = np.where(rng.random(n) < 0.02, np.maximum(ids - 1000, 1), 0)
    cases = pa.table(
        {
            "id": ids,
            "city": pa.array(["410100"] * n),
            "category_code": cats[cat_i],
            "source": SOURCES[rng.choice(len(SOURCES), size=n, p=SOURCE_P)],
            "status": status.astype(str),
            "reported_at": pa.array(rep, pa.timestamp("us", tz="UTC")),
            "deadline_at": pa.array(deadline_final, pa.timestamp("us", tz="UTC")),
            "closed_at": pa.array(closed, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array(updated, pa.timestamp("us", tz="UTC")),
            "lon": np.full(n, 113.5),
            "lat": np.full(n, 34.5),
            "grid_code": grid_codes,
            "department": departments[dept_i],
            "recurring_of": pa.array(rec, pa.int64(), mask=rec == 0),
        }
    )
    events = pa.table(
        {
            "case_id": np.concatenate(ev_case),
            "action": np.concatenate(ev_action),
            "from_status": np.concatenate(ev_from),
            "to_status": np.concatenate(ev_to),
            "actor": np.concatenate(ev_actor),
            "at": pa.array(np.concatenate(ev_at), pa.timestamp("us", tz="UTC")),
        }
    )
    # extend events go in through SQL (their data carries the old and new deadline)
    # the history is appended in time order, as the service writes it
    non_ext = pc.not_equal(events.column("action"), "extend")
    return cases, events.filter(non_ext).sort_by("at"), extensions


def load_cases(session: Session, cases: pa.Table, events: pa.Table, extensions, city: str) -> None:
    with driver_cursor(session) as cur:
        # bulk load of a scratch database: skip per-row foreign-key and append-only triggers
        cur.execute("SET session_replication_role = replica")
        copy_arrow(cur, "cases", cases)
        copy_arrow(cur, "case_events", events.append_column("city", pa.array([city] * len(events))))
        ids, at, old, new = (np.concatenate(x) for x in zip(*extensions, strict=True))
        ext = pa.table(
            {
                "case_id": ids,
                "at": pa.array(at, pa.timestamp("us", tz="UTC")),
                "old": pa.array(old, pa.timestamp("us", tz="UTC")),
                "new": pa.array(new, pa.timestamp("us", tz="UTC")),
            }
        )
        cur.execute(
            "CREATE TEMP TABLE ext (case_id bigint, at timestamptz, old timestamptz,"
            " new timestamptz)"
        )
        copy_arrow(cur, "ext", ext)
        cur.execute(
            "INSERT INTO case_events (city, case_id, action, from_status, to_status, actor, at,"
            " data)"
            " SELECT %s, case_id, 'extend', 'dispatched', 'dispatched', 'bench', at,"
            " jsonb_build_object('old_deadline', old, 'new_deadline', new) FROM ext",
            (city,),
        )
        cur.execute("SET session_replication_role = origin")
        cur.execute("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
    # grid workers: one per five unit grids
    session.execute(
        text(
            "INSERT INTO workers (city, code, name, grid_codes) SELECT :city, 'W' || lpad(g::text,"
            " 5, '0'), '网格员' || g, array_agg(code ORDER BY code) FROM (SELECT code,"
            " (row_number() OVER (ORDER BY code) - 1) / 5 AS g FROM grids WHERE city = :city"
            " AND level = 'unit') x GROUP BY g"
        ),
        {"city": city},
    )


# -- the map benches' large city -------------------------------------------------------------
# nested fan-out: 10 districts × 10 streets × 10 communities × 30 unit grids = 30,000 units
FANOUT = (("district", 10), ("street", 10), ("community", 10), ("unit", 30))
CENTRE = (113.65, 34.75)  # Zhengzhou (410100)
SPAN_DEG = (0.33, 0.27)  # ~30 km × 30 km: ~0.03 km² per unit grid, a dense urban core


def _points_in(poly: shapely.Polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random points inside ``poly`` (rejection sampling in its bounds)."""
    x0, y0, x1, y1 = poly.bounds
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        xy = rng.uniform((x0, y0), (x1, y1), (4 * n, 2))
        keep = xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1])]
        out.append(keep)
        have += len(keep)
    return np.concatenate(out)[:n]


def _cells(poly: shapely.Polygon, n: int, rng: np.random.Generator) -> list[shapely.Polygon]:
    """``poly`` cut into ``n`` irregular Voronoi cells (each clipped to it)."""
    seeds = shapely.multipoints(_points_in(poly, n, rng))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=poly))
    parts = []
    for cell in cells:
        piece = shapely.intersection(cell, poly)
        if piece.geom_type == "MultiPolygon":  # keep the largest part: one polygon per grid
            piece = max(piece.geoms, key=lambda g: g.area)
        if not piece.is_empty:
            parts.append(piece)
    return parts


def large_city_grids(
    city_code: str, seed: int = 11
) -> list[tuple[str, str, str | None, shapely.Polygon]]:
    """(level, code, parent code, polygon) of the whole hierarchy, parents first."""
    rng = np.random.default_rng(seed)
    (cx, cy), (w, h) = CENTRE, SPAN_DEG
    city = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    root = city_code[:4] + "0" * 10
    rows: list[tuple[str, str, str | None, shapely.Polygon]] = [("city", root, None, city)]
    widths = (2, 3, 3, 2)  # digits of each level's serial in the 14-digit code
    frontier = [(root, city, 4)]
    for (level, n), width in zip(FANOUT, widths, strict=True):
        nxt = []
        for parent, poly, at in frontier:
            for i, cell in enumerate(_cells(poly, n, rng), start=1):
                code = parent[:at] + str(i).zfill(width) + parent[at + width :]
                rows.append((level, code, parent, cell))
                nxt.append((code, cell, at + width))
        frontier = nxt
    return rows


def load_large_city(
    session: Session,
    settings: AppSettings,
    cases: int = 1_000_000,
    open_share: float = 0.32,
    seed: int = 11,
    say=print,
) -> dict[str, int]:
    """Grids, catalogue and ``cases`` cases of the large city into ``settings.grids.city``."""
    city = settings.grids.city
    t0 = time.perf_counter()
    grids = large_city_grids(city, seed)
    wkb = shapely.to_wkb(
        np.array([shapely.MultiPolygon([g[3]]) for g in grids], dtype=object), include_srid=False
    )
    session.execute(
        text(
            "INSERT INTO grids (city, code, level, parent_code, name, area_m2, valid_from, geom)"
            " SELECT :city, :code, :level, :parent, :name,"
            " ST_Area(ST_GeomFromWKB(:wkb, 4326)::geography), '2020-01-01+08',"
            " ST_GeomFromWKB(:wkb, 4326)"
        ),
        [
            {
                "city": city,
                "code": code,
                "level": level,
                "parent": parent,
                "name": f"{level} {code[-6:]}",
                "wkb": w,
            }
            for (level, code, parent, _), w in zip(grids, wkb, strict=True)
        ],
    )
    units = [(g[1], g[3]) for g in grids if g[0] == "unit"]
    say(f"  {len(grids)} grids ({len(units)} unit grids) in {time.perf_counter() - t0:.1f} s")
    seed_catalogue(session, city)
    out = {"grids": len(grids), "units": len(units)}
    if cases:
        t0 = time.perf_counter()
        out["cases"] = _large_city_cases(session, settings, units, cases, open_share, seed)
        say(f"  {cases} cases in {time.perf_counter() - t0:.1f} s")
    session.execute(text("ANALYZE grids"))
    session.execute(text("ANALYZE cases"))
    return out


def _large_city_cases(session, settings, units, n, open_share, seed) -> int:
    """A year of cases (``generate_cases``) placed at random points of the city, in the unit
    grid holding them, ``open_share`` of them open; cases only (the map needs no history)."""
    rng = np.random.default_rng(seed + 1)
    end = datetime.now().astimezone()
    table, _, _ = generate_cases(n, [u[0] for u in units], end - timedelta(days=365), 12, seed)
    polys = np.array([u[1] for u in units], dtype=object)
    tree = shapely.STRtree(polys)
    (x0, y0, x1, y1) = shapely.total_bounds(polys)
    lon = np.empty(n)
    lat = np.empty(n)
    grid = np.empty(n, dtype=object)
    filled = 0
    while filled < n:
        xy = rng.uniform((x0, y0), (x1, y1), (n - filled + 1000, 2))
        pt, poly = tree.query(shapely.points(xy), predicate="within")
        _, first = np.unique(pt, return_index=True)  # one grid per point (edges are rare)
        pt, poly = pt[first], poly[first]
        take = min(len(pt), n - filled)
        lon[filled : filled + take] = xy[pt[:take], 0]
        lat[filled : filled + take] = xy[pt[:take], 1]
        grid[filled : filled + take] = [units[i][0] for i in poly[:take]]
        filled += take
    status = np.asarray(table.column("status").to_numpy(zero_copy_only=False), dtype=object)
    # the generator's workflow leaves ~8 % open; the map bench needs a city with a backlog
    make_open = rng.random(n) < open_share
    status[make_open] = rng.choice(np.array(OPEN_STATUSES), make_open.sum())
    closed = table.column("closed_at")
    closed = pc.if_else(pa.array(make_open), pa.nulls(n, closed.type), closed)
    table = (
        table.set_column(
            table.schema.get_field_index("status"), "status", pa.array(status, pa.string())
        )
        .set_column(table.schema.get_field_index("closed_at"), "closed_at", closed)
        .set_column(table.schema.get_field_index("lon"), "lon", pa.array(lon))
        .set_column(table.schema.get_field_index("lat"), "lat", pa.array(lat))
        .set_column(
            table.schema.get_field_index("grid_code"), "grid_code", pa.array(grid.astype(str))
        )
        .set_column(
            table.schema.get_field_index("city"), "city", pa.array([settings.grids.city] * n)
        )
    )
    with driver_cursor(session) as cur:
        copy_arrow(cur, "cases", table.drop_columns(["recurring_of"]))
        cur.execute("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
    return n

"""Pre-counted case clusters: the low-zoom cases tile read from a persistent aggregate.

A cases tile at low zoom draws the open cases as clusters: the tile is cut into 8 × 8 cells
and each cell with cases becomes one point at their mean position (``service.maps.tiles``).
Counting them from the raw cases costs a pass over every open case in the tile — ~300 ms for
a zoom-12 tile of a city with 300k open cases. Instead the cells of every zoom 0–16 are
counted once into ``case_cluster_cells`` (city, zoom, cell column, cell row → count, overdue
count, summed Web Mercator position), and a tile reads its ≤ 64 rows by primary key. Zooms
0–13 are counted (points are drawn from zoom 14); the zoom-13 cells also tell whether a point
tile of zoom 14–16 holds more cases than it may carry, without reading them.

Keeping it current — one rebuild per state of the cases table. The cells say which value of
the ``cases`` change counter they count (``case_cluster_builds``); a tile request that finds
another value rebuilds them in its own transaction under an advisory lock (a request that
finds the lock taken draws from the raw cases instead of waiting). A rebuild is one pass over
the open cases for zoom 13 and then 13 passes over the (much smaller) cells, each zoom from the
one below (a cell is exactly 2 × 2 cells of the next zoom): 0.8 s for 374k open cases, paid by
one request per change, not per tile or per visitor. Incremental maintenance would need each
changed case's previous place and state (the cases table keeps only the current one) or a
trigger on cases (a cost on every intake); a rebuild per version is exact by construction.

Overdue flags move with the clock, not the counter: the cells keep the count that was overdue
at ``counted_at``, and a tile adds the open cases of its cells whose deadline fell between
then and now (or takes away, for a clock set back) — an index range on
``ix_cases_open_deadline``, a handful of rows.

The aggregate answers the unfiltered tile of a city-wide principal on a WGS 84 base map; a
category, grid or campaign filter, a narrower scope or a GCJ-02 shift draws from the raw
cases as before (their tiles hold fewer cases).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from service.cases.workflow import OPEN_SQL

# counted at zooms 0–13, where the cases tiles draw clusters (points from zoom 14); a zoom-13
# cell is exactly a zoom-16 tile, so the cells also count the cases of any tile down to 16
MAX_CLUSTER_ZOOM = 13
COUNTED_TO_ZOOM = 16
CELLS_PER_TILE = 8  # 8 × 8 cells of 512 tile units (``tiles.CLUSTER_CELL``)
HALF_WORLD_M = 20037508.342789244


def cell_size_m(z: int) -> float:
    """Width of one cluster cell at zoom ``z`` in Web Mercator metres."""
    return 2 * HALF_WORLD_M / 2**z / CELLS_PER_TILE


_COUNTER = "SELECT version FROM change_counters WHERE name = 'cases'"

_BUILD_FINEST = f"""
INSERT INTO case_cluster_cells (city, z, gx, gy, n, n_overdue, sum_mx, sum_my)
SELECT :city, :z, gx, gy, count(*), count(*) FILTER (WHERE late), sum(mx), sum(my)
FROM (
    SELECT floor((ST_X(m) + {HALF_WORLD_M}) / :cell)::int AS gx,
           floor(({HALF_WORLD_M} - ST_Y(m)) / :cell)::int AS gy,
           ST_X(m) AS mx, ST_Y(m) AS my,
           COALESCE(c.deadline_at < :at, false) AS late
    FROM cases c, LATERAL ST_Transform(c.geom, 3857) AS m
    WHERE c.city = :city AND c.status IN {OPEN_SQL}
) p
GROUP BY gx, gy
"""

_BUILD_COARSER = """
INSERT INTO case_cluster_cells (city, z, gx, gy, n, n_overdue, sum_mx, sum_my)
SELECT city, :z, gx / 2, gy / 2, sum(n), sum(n_overdue), sum(sum_mx), sum(sum_my)
FROM case_cluster_cells
WHERE city = :city AND z = :z + 1
GROUP BY city, gx / 2, gy / 2
"""

# the tile's cells, plus (or minus) the open cases whose deadline passed since they were
# counted; positions in tile units like the raw cluster query's
TILE_SQL = f"""
WITH env AS (
    SELECT ST_XMin(e) AS x0, ST_YMax(e) AS y1, ST_XMax(e) - ST_XMin(e) AS size,
           ST_Transform(e, 4326) AS wgs
    FROM ST_TileEnvelope(:z, :x, :y) AS e
), moved AS (
    SELECT floor((ST_X(m) + {HALF_WORLD_M}) / :cell)::int AS gx,
           floor(({HALF_WORLD_M} - ST_Y(m)) / :cell)::int AS gy,
           count(*) AS k
    FROM env, cases c, LATERAL ST_Transform(c.geom, 3857) AS m
    WHERE c.city = :city AND c.status IN {OPEN_SQL}
      AND c.deadline_at >= :lo AND c.deadline_at < :hi
      AND c.geom && env.wgs
    GROUP BY 1, 2
)
SELECT ST_AsMVT(t, 'case_clusters', 4096, 'geom') FROM (
    SELECT ST_MakePoint(
               round(4096 * (a.sum_mx / a.n - env.x0) / env.size),
               round(4096 * (env.y1 - a.sum_my / a.n) / env.size)
           ) AS geom,
           a.n AS count,
           (a.n_overdue + :sign * COALESCE(moved.k, 0))::int AS overdue
    FROM env, case_cluster_cells a
    LEFT JOIN moved ON moved.gx = a.gx AND moved.gy = a.gy
    WHERE a.city = :city AND a.z = :z
      AND a.gx BETWEEN :gx0 AND :gx0 + {CELLS_PER_TILE - 1}
      AND a.gy BETWEEN :gy0 AND :gy0 + {CELLS_PER_TILE - 1}
) t
"""

_INSIDE_SQL = """
SELECT COALESCE(sum(n), 0) FROM case_cluster_cells
WHERE city = :city AND z = :z
  AND gx BETWEEN :gx0 AND :gx0 + :span - 1 AND gy BETWEEN :gy0 AND :gy0 + :span - 1
"""


def inside(session: Session, city: str, z: int, x: int, y: int) -> int:
    """Open cases inside tile (z, x, y) (west and north edges inclusive), from the cells of
    zoom ``min(z, MAX_CLUSTER_ZOOM)``: 8 × 8 of them at zoom ≤ 13, 4 × 4 at 14 … 1 at 16."""
    if z > COUNTED_TO_ZOOM:
        raise ValueError(f"the cells count tiles down to zoom {COUNTED_TO_ZOOM}, not {z}")
    cz = min(z, MAX_CLUSTER_ZOOM)
    span = 2 ** (cz + 3 - z)
    params = {"city": city, "z": cz, "gx0": x * span, "gy0": y * span, "span": span}
    return int(session.execute(text(_INSIDE_SQL), params).scalar_one())


def rebuild(session: Session, city: str, at: datetime) -> dict[str, Any]:
    """Count the open cases of ``city`` into the cells of every zoom, as of the current
    cases counter (read first: cells counting a newer state than their label are merely
    rebuilt once more). Runs in the caller's transaction; returns the build row."""
    t0 = time.perf_counter()
    version = session.execute(text(_COUNTER)).scalar_one()
    session.execute(text("DELETE FROM case_cluster_cells WHERE city = :city"), {"city": city})
    session.execute(
        text(_BUILD_FINEST),
        {"city": city, "z": MAX_CLUSTER_ZOOM, "cell": cell_size_m(MAX_CLUSTER_ZOOM), "at": at},
    )
    for z in range(MAX_CLUSTER_ZOOM - 1, -1, -1):
        session.execute(text(_BUILD_COARSER), {"city": city, "z": z})
    open_cases = session.execute(
        text("SELECT COALESCE(sum(n), 0) FROM case_cluster_cells WHERE city = :city AND z = 0"),
        {"city": city},
    ).scalar_one()
    row = {
        "city": city,
        "cases_version": version,
        "counted_at": at,
        "open_cases": int(open_cases),
        "seconds": time.perf_counter() - t0,
    }
    session.execute(
        text(
            "INSERT INTO case_cluster_builds (city, cases_version, counted_at, open_cases,"
            " seconds) VALUES (:city, :cases_version, :counted_at, :open_cases, :seconds)"
            " ON CONFLICT (city) DO UPDATE SET cases_version = EXCLUDED.cases_version,"
            " counted_at = EXCLUDED.counted_at, open_cases = EXCLUDED.open_cases,"
            " seconds = EXCLUDED.seconds"
        ),
        row,
    )
    return row


def current(session: Session, city: str, at: datetime) -> datetime | None:
    """The moment the city's cells were counted at, once they count the current state of the
    cases table (rebuilt here if they do not); ``None`` when another transaction is
    rebuilding them right now (the caller draws from the raw cases)."""
    sql = (
        "SELECT b.counted_at, b.cases_version = (" + _COUNTER + ") "
        "FROM case_cluster_builds b WHERE b.city = :city"
    )
    row = session.execute(text(sql), {"city": city}).first()
    if row is not None and row[1]:
        return row[0]
    got = session.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtext('case_cluster_cells'), hashtext(:city))"),
        {"city": city},
    ).scalar_one()
    if not got:
        return None
    # another process may have rebuilt them while we asked for the lock
    row = session.execute(text(sql), {"city": city}).first()
    if row is not None and row[1]:
        return row[0]
    return rebuild(session, city, at)["counted_at"]


def tile_params(city: str, z: int, x: int, y: int, counted_at: datetime, at: datetime):
    """Bind parameters of :data:`TILE_SQL` for one tile."""
    lo, hi, sign = (counted_at, at, 1) if at >= counted_at else (at, counted_at, -1)
    return {
        "city": city,
        "z": z,
        "x": x,
        "y": y,
        "gx0": x * CELLS_PER_TILE,
        "gy0": y * CELLS_PER_TILE,
        "cell": cell_size_m(z),
        "lo": lo,
        "hi": hi,
        "sign": sign,
    }

"""Pre-counted case clusters (``service.maps.clusters``) against an independent count in plain
Python + pyproj, after inserts, moves, closures and the clock passing deadlines (real PostGIS)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import mapbox_vector_tile
import numpy as np
import pytest
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.cases.workflow import OPEN_STATUSES
from service.maps import clusters
from service.maps.tiles import CLUSTER_CELL, TileService, tile_request

CITY = "cl0001"
HALF = math.pi * 6378137.0
TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
STATUSES = ("reported", "dispatched", "handling", "fed_back", "closed", "rejected")


def _insert(session: Session, rng: np.random.Generator, n: int, first_id: int) -> None:
    """``n`` cases of CITY scattered over ~20 km, mixed statuses, deadlines around T0."""
    rows = [
        {
            "id": first_id + i,
            "city": CITY,
            "cat": "0101",
            "src": "patrol",
            "st": str(rng.choice(STATUSES)),
            "rep": T0 - timedelta(days=3),
            "dl": None if rng.random() < 0.1 else T0 + timedelta(hours=float(rng.normal(0, 5))),
            "lon": float(113.5 + rng.uniform(0, 0.2)),
            "lat": float(34.7 + rng.uniform(0, 0.15)),
        }
        for i in range(n)
    ]
    session.execute(
        text(
            "INSERT INTO cases (id, city, category_code, source, status, reported_at, "
            "deadline_at, updated_at, lon, lat) VALUES (:id, :city, :cat, :src, :st, :rep, :dl, "
            ":rep, :lon, :lat)"
        ),
        rows,
    )


def _open(session: Session) -> list[tuple[float, float, datetime | None]]:
    return [
        (r.lon, r.lat, r.deadline_at)
        for r in session.execute(
            text("SELECT lon, lat, deadline_at FROM cases WHERE city = :c AND status = ANY(:s)"),
            {"c": CITY, "s": list(OPEN_STATUSES)},
        )
    ]


def _expected(
    cases: list[tuple[float, float, datetime | None]], z: int, at: datetime
) -> dict[tuple[int, int], tuple[int, int, float, float]]:
    """(cell column, cell row) → (count, overdue, mean x, mean y) computed here."""
    size = 2 * HALF / 2**z / 8
    cells: dict[tuple[int, int], list[tuple[float, float, bool]]] = {}
    for lon, lat, deadline in cases:
        mx, my = TO_MERC.transform(lon, lat)
        key = (math.floor((mx + HALF) / size), math.floor((HALF - my) / size))
        cells.setdefault(key, []).append((mx, my, deadline is not None and deadline < at))
    return {
        k: (len(v), sum(p[2] for p in v), np.mean([p[0] for p in v]), np.mean([p[1] for p in v]))
        for k, v in cells.items()
    }


def _stored(session: Session, z: int) -> dict[tuple[int, int], tuple[int, int, float, float]]:
    rows = session.execute(
        text(
            "SELECT gx, gy, n, n_overdue, sum_mx / n, sum_my / n FROM case_cluster_cells"
            " WHERE city = :c AND z = :z"
        ),
        {"c": CITY, "z": z},
    )
    return {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in rows}


def _check(session: Session, at: datetime) -> None:
    cases = _open(session)
    for z in range(clusters.MAX_CLUSTER_ZOOM + 1):
        want, got = _expected(cases, z, at), _stored(session, z)
        assert set(got) == set(want), z
        for key, (n, late, mx, my) in want.items():
            assert got[key][:2] == (n, late), (z, key)
            assert got[key][2] == pytest.approx(mx, abs=1e-3)
            assert got[key][3] == pytest.approx(my, abs=1e-3)
    # the cells count the cases inside any tile down to zoom 16 (the point tiles' limit)
    for z in (10, 13, 14, 15, 16):
        size = 2 * HALF / 2**z
        per_tile: dict[tuple[int, int], int] = {}
        for lon, lat, _ in cases:
            mx, my = TO_MERC.transform(lon, lat)
            key = (math.floor((mx + HALF) / size), math.floor((HALF - my) / size))
            per_tile[key] = per_tile.get(key, 0) + 1
        for (x, y), n in per_tile.items():
            assert clusters.inside(session, CITY, z, x, y) == n, (z, x, y)
        assert clusters.inside(session, CITY, z, 0, 0) == 0


def _build_row(session: Session):
    return session.execute(
        text("SELECT cases_version, counted_at FROM case_cluster_builds WHERE city = :c"),
        {"c": CITY},
    ).one()


def test_cells_equal_an_independent_count_after_inserts_moves_and_closures(
    session: Session,
) -> None:
    rng = np.random.default_rng(3)
    _insert(session, rng, 400, 9_000_001)
    assert clusters.current(session, CITY, T0) == T0
    _check(session, T0)
    first = _build_row(session)

    # nothing changed: the same cells are reused, not recounted
    assert clusters.current(session, CITY, T0 + timedelta(hours=1)) == T0
    assert _build_row(session) == first

    # more reports, some moved, some closed, one reopened: the counter moves, cells follow
    _insert(session, rng, 150, 9_100_001)
    session.execute(
        text("UPDATE cases SET lon = lon + 0.03 WHERE city = :c AND id % 7 = 0"), {"c": CITY}
    )
    session.execute(
        text("UPDATE cases SET status = 'closed' WHERE city = :c AND id % 5 = 0"), {"c": CITY}
    )
    session.execute(
        text("UPDATE cases SET status = 'handling' WHERE city = :c AND id % 11 = 0"), {"c": CITY}
    )
    later = T0 + timedelta(hours=2)
    assert clusters.current(session, CITY, later) == later
    assert _build_row(session)[0] != first[0]
    _check(session, later)


def _decode(data: bytes) -> list[dict]:
    layer = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return layer.get("case_clusters", {"features": []})["features"]


@pytest.mark.parametrize("hours", [0, 4, -4])
def test_tiles_from_the_cells_equal_tiles_from_the_raw_cases(
    session: Session, settings_for, hours: int
) -> None:
    """Same clusters either way, also after the clock passed (or went back over) deadlines:
    the overdue counts follow the clock, not the moment the cells were counted."""
    rng = np.random.default_rng(5)
    _insert(session, rng, 600, 9_200_001)
    settings = settings_for(CITY)
    service = TileService(session, settings)
    clusters.current(session, CITY, T0)
    at = T0 + timedelta(hours=hours)
    cases = _open(session)
    compared = 0
    for z in (11, 12, 13):
        size = 2 * HALF / 2**z
        tiles = set()
        for lon, lat, _ in cases:
            mx, my = TO_MERC.transform(lon, lat)
            tiles.add((math.floor((mx + HALF) / size), math.floor((HALF - my) / size)))
        for x, y in sorted(tiles):
            req = tile_request("cases", z, x, y)
            sql, params = service.case_statements(req, (None, None, None), at, SYSTEM)
            raw = _decode(service._scalar(sql["clusters"], params | {"cell": CLUSTER_CELL}))
            fast = _decode(service.render(req, (None, None, None), at, SYSTEM))
            key = lambda f: tuple(f["geometry"]["coordinates"])  # noqa: E731
            assert sorted((key(f), f["properties"]) for f in fast) == sorted(
                (key(f), f["properties"]) for f in raw
            )
            want = _expected(cases, z, at)
            in_tile = {k: v for k, v in want.items() if k[0] // 8 == x and k[1] // 8 == y}
            assert sorted(f["properties"]["overdue"] for f in fast) == sorted(
                v[1] for v in in_tile.values()
            )
            compared += len(fast)
    assert compared > 20


def test_a_narrow_scope_or_a_filter_draws_from_the_raw_cases(
    session: Session, settings_for
) -> None:
    """Only what a city-wide principal sees unfiltered is pre-counted: a filtered tile is
    counted from the raw cases and never touches the cells."""
    rng = np.random.default_rng(8)
    _insert(session, rng, 50, 9_300_001)
    settings = settings_for(CITY)
    service = TileService(session, settings)
    lon, lat, _ = _open(session)[0]
    mx, my = TO_MERC.transform(lon, lat)
    size = 2 * HALF / 2**12
    req = tile_request("cases", 12, math.floor((mx + HALF) / size), math.floor((HALF - my) / size))
    service.render(req, ("99", None, None), T0, SYSTEM)
    assert (
        session.execute(
            text("SELECT count(*) FROM case_cluster_builds WHERE city = :c"), {"c": CITY}
        ).scalar_one()
        == 0
    )

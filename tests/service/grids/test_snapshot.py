"""Locate from each process's in-memory snapshot of the grids valid now: the same answers as
PostGIS, and never a stale or rolled-back state."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.clock import now
from service.db.models import Grid
from service.errors import NotFound
from service.grids.registry import GridInput, Registry
from service.grids.repository import geom_of
from service.grids.snapshot import grid_version, snapshot_for
from tests.helpers.city import COMM_A, COMM_B, lonlat, mbox, point_lonlat, small_city, unit_code


@pytest.fixture
def city(registry: Registry) -> Registry:
    registry.write(small_city(), at=now() - timedelta(days=1), by=SYSTEM)
    return registry


def _edge_points(registry: Registry, n: int, seed: int) -> np.ndarray:
    """Random points in the grids' extent plus points exactly on vertices and edge midpoints."""
    grids = [
        geom_of(g)
        for g in registry.session.scalars(
            select(Grid).where(Grid.city == registry.city, Grid.level == "unit")
        )
    ]
    minx, miny, maxx, maxy = shapely.total_bounds(grids)
    rng = np.random.default_rng(seed)
    pad = 0.0003
    random = np.column_stack(
        [rng.uniform(minx - pad, maxx + pad, n), rng.uniform(miny - pad, maxy + pad, n)]
    )
    coords = shapely.get_coordinates(grids)
    mids = (coords[:-1] + coords[1:]) / 2
    picks = rng.choice(len(coords), size=min(n // 4, len(coords)), replace=False)
    return np.vstack([random, coords[picks], mids[picks[picks < len(mids)]]])


def _from_postgis(registry: Registry, lon: float, lat: float, radius_m: float):
    near = registry.repo.near_point(registry.city, "unit", lon, lat, radius_m, now())
    return [(g.code, d, c) for g, d, c in near]


def test_snapshot_answers_like_postgis_on_random_points_vertices_and_edges(city: Registry) -> None:
    points = _edge_points(city, 300, seed=3)
    for lon, lat in points:
        lon, lat = float(lon), float(lat)
        expected = _from_postgis(city, lon, lat, 15.0)
        snap = snapshot_for(city.session, city.city)
        assert snap is not None
        got = [(g.code, d, c) for g, d, c in snap.near(lon, lat, 15.0)]
        # same grids, same covers flags, same distances (equidistant grids may swap places)
        assert {c: cov for c, _, cov in got} == {c: cov for c, _, cov in expected}, (lon, lat)
        db = {c: d for c, d, _ in expected}
        for code, d, _ in got:
            assert d == pytest.approx(db[code], abs=1e-3)
        if got:
            assert got[0][0] == expected[0][0] or got[0][1] == pytest.approx(got[1][1], abs=1e-3)
        assert [d for _, d, _ in got] == sorted(d for _, d, _ in got)
        if not any(cov for *_, cov in expected):
            nearest_db = city.repo.nearest(city.city, "unit", lon, lat, now())
            nearest = snap.nearest(lon, lat)
            assert nearest is not None and nearest_db is not None
            assert nearest[0].code == nearest_db[0].code
            assert nearest[1] == pytest.approx(nearest_db[1], abs=1e-3)


def test_point_on_shared_edge_goes_to_lowest_code_from_memory(city: Registry) -> None:
    # unit 1 and unit 2 of community A share the edge x = 100 m: take a vertex of both
    one, two = (shapely.get_coordinates(geom_of(city.get(unit_code(COMM_A, i)))) for i in (1, 2))
    shared = {tuple(c) for c in one} & {tuple(c) for c in two}
    lon, lat = min(shared, key=lambda c: -c[1])  # the northern end: no third grid there
    result = city.locate(lon, lat)
    assert result.grid.code == unit_code(COMM_A, 1)
    assert {g.code for g, d in result.candidates if d == 0} == {
        unit_code(COMM_A, 1),
        unit_code(COMM_A, 2),
    }
    assert [g.level for g in result.chain] == ["community", "street", "district", "city"]


def test_point_in_hole_is_outside_every_grid_from_memory(city: Registry) -> None:
    # community B's hole is covered by no unit grid: PostGIS and the snapshot agree on it
    hole_centre = _hole_centre(city)
    assert not _from_postgis(city, *hole_centre, 0.0)
    with pytest.raises(NotFound) as err:
        city.locate(*hole_centre)
    nearest_db = city.repo.nearest(city.city, "unit", *hole_centre, now())
    assert nearest_db is not None
    assert err.value.extra["nearest_code"] == nearest_db[0].code
    assert err.value.extra["nearest_distance_m"] == pytest.approx(nearest_db[1], abs=0.01)


def _hole_centre(registry: Registry) -> tuple[float, float]:
    comm = registry.get(COMM_B)
    units = [
        geom_of(g)
        for g in registry.session.scalars(
            select(Grid).where(Grid.city == registry.city, Grid.parent_code == COMM_B)
        )
    ]
    uncovered = shapely.difference(geom_of(comm), shapely.union_all(units))
    assert not uncovered.is_empty
    centre = uncovered.representative_point()
    return centre.x, centre.y


def test_distances_from_memory_are_geodesic_like_postgis_geography(city: Registry) -> None:
    grid = city.get(unit_code(COMM_A, 3))
    snap = snapshot_for(city.session, city.city)
    assert snap is not None
    for dx, dy in [(-7, 150), (430, -20), (250, 260), (205, 150), (-0.5, -0.5)]:
        lon, lat = point_lonlat(dx, dy)
        db = city.session.scalar(
            select(
                func.ST_Distance(
                    func.Geography(Grid.geom),
                    func.Geography(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)),
                )
            ).where(Grid.id == grid.id)
        )
        near = {g.code: d for g, d, _ in snap.near(lon, lat, 1000.0)}
        assert near[grid.code] == pytest.approx(db, abs=1e-3)


def test_a_change_in_the_same_transaction_is_seen_at_once(city: Registry) -> None:
    lon, lat = point_lonlat(50, 50)
    before = city.locate(lon, lat)
    assert before.grid.name != "renamed"
    version = grid_version(city.session)
    g = city.get(before.grid.code)
    city.write(
        [
            GridInput(
                code=g.code,
                level="unit",
                name="renamed",
                geometry=geom_of(g),
                parent_code=g.parent_code,
            )
        ],
        by=SYSTEM,
    )
    assert grid_version(city.session) != version
    assert city.locate(lon, lat).grid.name == "renamed"


def test_a_rolled_back_state_is_never_served_to_a_later_transaction(
    engine: Engine, settings_for
) -> None:
    """Counter values come from a sequence: after a rollback, the next writer gets a new value,
    so a snapshot built inside the rolled-back transaction can never match it."""
    settings = settings_for("990390")  # a city key no other test commits
    lon, lat = point_lonlat(50, 50)
    with Session(engine) as first:
        reg = Registry(first, settings)
        reg.write(small_city(), by=SYSTEM)
        assert reg.locate(lon, lat).grid.code == unit_code(COMM_A, 5)
        rolled_back_version = grid_version(first)
        first.rollback()
    with Session(engine) as second:
        reg = Registry(second, settings)
        # a different state: only community A's west half has units now
        items = [i for i in small_city() if i.level != "unit"]
        items.append(
            GridInput(
                code=unit_code(COMM_A, 9),
                level="unit",
                name="only unit",
                geometry=lonlat(mbox(0, 0, 200, 200)),
            )
        )
        reg.write(items, by=SYSTEM)
        assert grid_version(second) != rolled_back_version
        assert reg.locate(lon, lat).grid.code == unit_code(COMM_A, 9)
        second.rollback()


def test_a_past_moment_outside_the_snapshot_is_answered_by_postgis(city: Registry) -> None:
    assert snapshot_for(city.session, city.city) is not None
    long_ago = now() - timedelta(days=30)  # before the grids were registered
    assert snapshot_for(city.session, city.city, long_ago) is None
    with pytest.raises(NotFound):
        city.locate(*point_lonlat(50, 50), at=long_ago)


def test_counter_moves_on_every_writing_statement(session: Session) -> None:
    one = session.execute(text("SELECT version FROM change_counters WHERE name='grids'")).scalar()
    session.execute(text("UPDATE grids SET name = name WHERE false"))
    two = session.execute(text("SELECT version FROM change_counters WHERE name='grids'")).scalar()
    assert two != one


def test_a_city_without_unit_grids_answers_not_found(registry: Registry) -> None:
    # an empty registry (a new city) is a state like any other: 404, not an error
    snap = snapshot_for(registry.session, registry.city)
    assert snap is not None and not snap.unit_rows
    with pytest.raises(NotFound):
        registry.locate(113.65, 34.75)

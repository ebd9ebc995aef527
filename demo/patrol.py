"""A week of generated patrol GPS fixes for the demo city's grid workers.

Workers walk the lanes of their community — the unit grid boundaries, which include the roads
— at walking pace, reporting a fix every 10 s, with what real phones do: GPS noise, fixes with
poor accuracy, the odd jump of a few hundred metres, stops where the fixes jitter in place, a
lunch break, signal gaps of a few minutes, days off, and a few workers who cut their rounds
short (so some grids go unseen: the blind spots).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import metric

__all__ = ["DemoPatrol", "build_demo_patrol"]

_FIX_S = 10.0
_WALK_MPS = 1.2
_NOISE_M = 4.0
_SHIFTS = (("08:30", "11:30"), ("14:00", "17:30"))
_FAMILY = "张王李赵刘陈杨黄周吴"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞")


@dataclass
class DemoPatrol:
    """Workers (one phone each) and their fixes."""

    workers: pd.DataFrame  # code, name, team, grid_codes (list), device_id
    fixes: pd.DataFrame  # device_id, time (datetime64[us, UTC]), lon, lat, accuracy_m, speed_mps


def build_demo_patrol(
    grids: gpd.GeoDataFrame,
    week_start: str = "2026-11-16",
    workers_per_community: float = 2.2,
    seed: int = 7,
    tz: str = "Asia/Shanghai",
) -> DemoPatrol:
    """Generate the demo week (Monday ``week_start`` + 7 days, local time ``tz``).

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        The demo city (``demo.city.build_demo_city``): ``code, level, parent_code, name,
        geometry`` in EPSG:4326.
    week_start : str
        Local date of the Monday the week starts on.
    workers_per_community : float
        Mean number of workers per community (about 60 for the 25 demo communities).
    seed : int
        Random seed; the same arguments give the same fixes.
    tz : str
        Local time zone of the shifts.
    """
    rng = np.random.default_rng([seed, 41])
    units = grids[grids["level"] == "unit"]
    communities = grids[grids["level"] == "community"].reset_index(drop=True)
    crs = metric.utm_crs_for_geometries(np.asarray(units.geometry))
    counts = rng.poisson(workers_per_community - 1, len(communities)) + 1
    days = pd.date_range(pd.Timestamp(week_start), periods=7, freq="D")
    workers, frames = [], []
    for c, community in communities.iterrows():
        mine = units[units["parent_code"] == community["code"]]
        lanes = _lane_graph(np.asarray(metric.to_metric(np.asarray(mine.geometry), crs)))
        for k in range(int(counts[c])):
            code = f"W{community['code'][6:12]}{k + 1:02d}"
            device = f"phone-{code}"
            name = _FAMILY[rng.integers(len(_FAMILY))] + "".join(
                _GIVEN[i] for i in rng.integers(len(_GIVEN), size=rng.integers(1, 3))
            )
            workers.append(
                {
                    "code": code,
                    "name": name,
                    "team": community["name"],
                    "grid_codes": list(mine["code"]),
                    "device_id": device,
                }
            )
            diligence = rng.choice([1.0, 0.9, 0.6, 0.3], p=[0.55, 0.25, 0.15, 0.05])
            # each worker keeps to the lanes around a home spot: corners far from every
            # worker's home go unseen for days
            home = int(rng.integers(len(lanes.nodes)))
            reach = float(rng.uniform(150, 350))
            for day in days:
                if day.day_of_week >= 5 and rng.random() < 0.6:
                    continue  # weekend: most are off
                if rng.random() < 0.05:
                    continue  # sick day
                for shift in _SHIFTS:
                    frames.append(
                        _shift(lanes, (home, reach), day, shift, diligence, device, rng, crs, tz)
                    )
    fixes = pd.concat([f for f in frames if len(f)], ignore_index=True)
    fixes = fixes.sort_values(["device_id", "time"], kind="stable", ignore_index=True)
    return DemoPatrol(pd.DataFrame(workers), fixes)


@dataclass
class _Lanes:
    nodes: np.ndarray  # (n, 2) metric coordinates
    neighbours: list[list[int]]


def _lane_graph(polygons: np.ndarray) -> _Lanes:
    """The walkable network: every unit-grid edge, joined where edges meet."""
    boundary = shapely.union_all(shapely.boundary(polygons))
    coords, index = shapely.get_coordinates(
        shapely.get_parts(shapely.line_merge(boundary)), return_index=True
    )
    key = np.round(coords, 1)
    nodes, node_of = np.unique(key, axis=0, return_inverse=True)
    node_of = node_of.ravel()
    same_line = index[1:] == index[:-1]
    a, b = node_of[:-1][same_line], node_of[1:][same_line]
    neighbours: list[list[int]] = [[] for _ in range(len(nodes))]
    for u, v in zip(a.tolist(), b.tolist(), strict=True):
        if u != v:
            neighbours[u].append(v)
            neighbours[v].append(u)
    return _Lanes(nodes, neighbours)


def _shift(
    lanes: _Lanes,
    area: tuple[int, float],
    day: pd.Timestamp,
    shift: tuple[str, str],
    diligence: float,
    device: str,
    rng: np.random.Generator,
    crs,
    tz: str,
) -> pd.DataFrame:
    start = pd.Timestamp(f"{day.date()} {shift[0]}", tz=tz) + pd.Timedelta(
        minutes=float(rng.normal(0, 8))
    )
    end = pd.Timestamp(f"{day.date()} {shift[1]}", tz=tz) + pd.Timedelta(
        minutes=float(rng.normal(0, 8))
    )
    end = start + (end - start) * diligence
    n = int((end - start).total_seconds() // _FIX_S)
    if n < 10:
        return pd.DataFrame()
    path = _walk(lanes, area, n * _FIX_S * _WALK_MPS, rng)
    along = np.arange(n) * _FIX_S * _WALK_MPS
    # stops: a few pauses of 5-20 minutes where the worker stands still
    for _ in range(rng.poisson(2)):
        at = rng.integers(n)
        length = int(rng.integers(30, 120))
        along[at:] -= np.minimum(np.arange(n - at), length) * _FIX_S * _WALK_MPS
    along = np.clip(along, 0, path.length)
    points = shapely.line_interpolate_point(path, along)
    x, y = shapely.get_x(points), shapely.get_y(points)
    x = x + rng.normal(0, _NOISE_M, n)
    y = y + rng.normal(0, _NOISE_M, n)
    accuracy = rng.uniform(4, 15, n)
    poor = rng.random(n) < 0.02
    accuracy[poor] = rng.uniform(60, 200, poor.sum())
    x[poor] += rng.normal(0, 60, poor.sum())
    jump = rng.random(n) < 0.003
    x[jump] += rng.choice([-1, 1], jump.sum()) * rng.uniform(300, 800, jump.sum())
    keep = np.ones(n, dtype=bool)
    for _ in range(rng.poisson(1.5)):  # signal gaps of 2-15 minutes
        at = rng.integers(n)
        keep[at : at + int(rng.integers(12, 90))] = False
    keep &= rng.random(n) > 0.01  # and the odd lost fix
    times = start + pd.to_timedelta(np.arange(n) * _FIX_S + rng.uniform(0, 0.9, n), unit="s")
    lon, lat = metric._transformer(crs, metric.WGS84).transform(x, y)
    speed = np.r_[0.0, np.hypot(np.diff(x), np.diff(y)) / _FIX_S]
    return pd.DataFrame(
        {
            "device_id": device,
            "time": times.tz_convert("UTC").floor("s")[keep],
            "lon": np.asarray(lon)[keep].round(7),
            "lat": np.asarray(lat)[keep].round(7),
            "accuracy_m": accuracy[keep].round(1),
            "speed_mps": np.minimum(speed, 3.0)[keep].round(2),
        }
    )


def _walk(
    lanes: _Lanes, area: tuple[int, float], distance: float, rng: np.random.Generator
) -> shapely.LineString:
    """A random walk along lanes within ``area`` (home node, reach in metres), avoiding turning
    back, at least ``distance`` metres long."""
    home, reach = area
    near = np.hypot(*(lanes.nodes - lanes.nodes[home]).T) <= reach
    starts = np.flatnonzero(near)
    node = int(starts[rng.integers(starts.size)])
    while not lanes.neighbours[node]:
        node = int(rng.integers(len(lanes.nodes)))
    route, walked, previous = [node], 0.0, -1
    while walked < distance:
        around = lanes.neighbours[node]
        options = [v for v in around if v != previous and near[v]] or around
        nxt = options[int(rng.integers(len(options)))]
        walked += float(np.hypot(*(lanes.nodes[nxt] - lanes.nodes[node])))
        previous, node = node, nxt
        route.append(node)
    return shapely.LineString(lanes.nodes[route])

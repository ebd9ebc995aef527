"""Vector tile latency through the API: p50/p95 on cache miss, cache hit and 304.

Runs a live server on a throw-away database with the demo world (grids, catalogue, hotspots
and 20,000 cases), or with ``--size large`` the large city of ``bigcity.py`` (30,000 irregular
unit grids, 1M cases of a year, ≥ 300k open). Every tile covering the city at zooms 12–16 (or
``--per-zoom`` of them at random) is fetched for both layers: the first pass misses the
server's tile cache, the second hits it, the third sends If-None-Match and gets 304.
Baselines in the same run: the same tiles rendered by ``TileService.render`` straight on a
session (no HTTP, no cache), the old per-tile query (ST_AsMVT over the raw open cases, no
pre-counted clusters), and the data-version query every request pays (memoised for 1 s).
Run: ``python bench/bench_tiles.py [--cases 20000] [--zooms 12-16]`` or
``python bench/bench_tiles.py --size large [--cases 1000000] [--per-zoom 60]``.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import httpx2 as httpx  # the dev dependency (pyproject: httpx2)
import numpy as np
from bigcity import load_large_city
from common import admin_headers, live_server, machine_line, scratch_database
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.clock import now
from service.demo import load_demo_world
from service.grids.repository import GridFilter, GridRepository
from service.maps import clusters
from service.maps.tiles import (
    CASE_POINTS_FROM_ZOOM,
    CLUSTER_CELL,
    MAX_POINTS,
    NO_FILTERS,
    TileService,
    tile_request,
)
from service.settings import AppSettings

HALF_WORLD = math.pi * 6378137.0


def _stats(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):7.2f} ms   p95 {np.percentile(ms, 95):7.2f} ms"


def _ms(samples: list[float], pick: np.ndarray, q: int) -> str:
    return f"{np.percentile(np.array(samples)[pick], q) * 1000:6.2f}"


def _tiles(extent: tuple[float, float, float, float], zooms: range) -> list[tuple[int, int, int]]:
    """Every tile (z, x, y) covering the lon/lat extent at each zoom."""
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    (x0, x1), (y0, y1) = to_merc.transform([extent[0], extent[2]], [extent[1], extent[3]])
    out = []
    for z in zooms:
        size = 2 * HALF_WORLD / 2**z
        for x in range(int((x0 + HALF_WORLD) // size), int((x1 + HALF_WORLD) // size) + 1):
            for y in range(int((HALF_WORLD - y1) // size), int((HALF_WORLD - y0) // size) + 1):
                out.append((z, x, y))
    return out


def _old_render(service: TileService, req, at) -> bytes:
    """The cases tile as it was drawn before the pre-counted clusters: ST_AsMVT over the raw
    open cases of the tile (points from zoom 14 unless crowded, else clusters)."""
    sql, params = service.case_statements(req, NO_FILTERS, at, SYSTEM)
    if req.z >= CASE_POINTS_FROM_ZOOM:
        given = params | {"limit": MAX_POINTS + 1}
        n = service.session.execute(text(sql["count"]), given)
        if int(n.scalar_one()) <= MAX_POINTS:
            return bytes(service.session.execute(text(sql["points"]), given).one()[1] or b"")
    return service._scalar(sql["clusters"], params | {"cell": CLUSTER_CELL})


def main(argv: list[str] | None = None) -> int:
    """Load the demo world, time direct rendering and HTTP miss/hit/304, print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("demo", "large"), default="demo")
    parser.add_argument("--cases", type=int, help="default 20,000 (demo), 1,000,000 (large)")
    parser.add_argument("--zooms", default="12-16", help="first-last zoom")
    parser.add_argument("--per-zoom", type=int, default=0, help="tiles per zoom (0: all)")
    opts = parser.parse_args(argv)
    opts.cases = opts.cases or (1_000_000 if opts.size == "large" else 20_000)
    first, last = (int(v) for v in opts.zooms.split("-"))
    print(machine_line(), f"; load average {os.getloadavg()[0]:.1f}")
    with scratch_database() as (engine, url):
        os.environ["CITYGRID_DATABASE_URL"] = url
        settings = AppSettings()
        with Session(engine) as session:
            t0 = time.perf_counter()
            if opts.size == "large":
                load_large_city(session, settings, cases=opts.cases)
            else:
                load_demo_world(session, settings, cases=opts.cases)
            session.commit()
            print(f"loaded in {time.perf_counter() - t0:.1f} s")
            extent = GridRepository(session).extent(
                GridFilter(city=settings.grids.city, at=now(), level="district")
            )
            session.execute(text("ANALYZE"))  # as autovacuum would after a bulk load
            session.commit()
            grids, open_cases = session.execute(
                text(
                    "SELECT (SELECT count(*) FROM grids WHERE level = 'unit'),"
                    " (SELECT count(*) FROM cases WHERE status IN"
                    " ('reported', 'registered', 'dispatched', 'handling', 'fed_back'))"
                )
            ).one()
            # the pre-counted clusters, built as the first tile request after a change would
            build = clusters.rebuild(session, settings.grids.city, now())
            session.commit()
        assert extent is not None
        tiles = _tiles(extent, range(first, last + 1))
        if opts.per_zoom:
            rng = np.random.default_rng(1)
            zs = np.array([t[0] for t in tiles])
            pick = [
                i
                for z in range(first, last + 1)
                for i in rng.permutation(np.flatnonzero(zs == z))[: opts.per_zoom]
            ]
            tiles = [tiles[i] for i in sorted(pick)]
        print(
            f"{opts.size} city: {grids} unit grids, {opts.cases} cases, {open_cases} open;"
            f" {len(tiles)} tiles per layer at zooms {first}-{last}, sequential requests"
        )
        print(
            f"pre-counted clusters: {build['open_cases']} open cases counted into zooms 0-"
            f"{clusters.MAX_CLUSTER_ZOOM} in {build['seconds']:.2f} s (once per cases change)"
        )

        direct: dict[str, list[float]] = {"grids": [], "cases": []}
        old: list[float] = []
        version: dict[str, list[float]] = {"grids": [], "cases": []}
        sizes: dict[str, list[int]] = {"grids": [], "cases": []}
        with Session(engine) as session:
            service = TileService(session, settings)
            for layer in direct:
                for z, x, y in tiles:
                    req = tile_request(layer, z, x, y)
                    t = time.perf_counter()
                    service.data_version(layer, now())
                    version[layer].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    data = service.render(req, NO_FILTERS, now(), SYSTEM)
                    direct[layer].append(time.perf_counter() - t)
                    sizes[layer].append(len(data))
                    if layer == "cases":
                        t = time.perf_counter()
                        _old_render(service, req, now())
                        old.append(time.perf_counter() - t)
            session.rollback()

        miss: dict[str, list[float]] = {"grids": [], "cases": []}
        hit: dict[str, list[float]] = {"grids": [], "cases": []}
        not_modified: dict[str, list[float]] = {"grids": [], "cases": []}
        statuses: dict[int, int] = {}
        auth = admin_headers(engine, settings)  # case tiles need a login (maps.read)
        with live_server() as base, httpx.Client(base_url=base, headers=auth) as client:
            client.get("/tiles/grids/10/0/0.mvt")  # warm the pool outside the measured set
            client.get("/tiles/cases/10/0/0.mvt")
            for layer in miss:
                etags = {}
                for run in (miss, hit, not_modified):
                    for z, x, y in tiles:
                        headers = {}
                        if run is not_modified:
                            headers["If-None-Match"] = etags[(z, x, y)]
                        t = time.perf_counter()
                        r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", headers=headers)
                        run[layer].append(time.perf_counter() - t)
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        etags[(z, x, y)] = r.headers["etag"]

        print(f"statuses {statuses}")
        for layer in ("grids", "cases"):
            kb = np.array(sizes[layer]) / 1024
            print(f"{layer}: tile size median {np.median(kb):.1f} KB, max {kb.max():.1f} KB")
            print(f"  HTTP cache miss                : {_stats(miss[layer])}")
            print(f"  HTTP cache hit                 : {_stats(hit[layer])}")
            print(f"  HTTP If-None-Match → 304       : {_stats(not_modified[layer])}")
            print(f"  SQL direct (no HTTP, no cache) : {_stats(direct[layer])}")
            if layer == "cases":
                print(f"  baseline: old raw-case SQL     : {_stats(old)}")
            print(f"  data-version query, direct     : {_stats(version[layer])}")
            zs = np.array([z for z, _, _ in tiles])
            for z in range(first, last + 1):
                pick = zs == z
                line = (
                    f"    z{z:<2} {pick.sum():4d} tiles, median {np.median(kb[pick]):6.1f} KB:"
                    f" miss p50/p95 {_ms(miss[layer], pick, 50)}/{_ms(miss[layer], pick, 95)} ms,"
                    f" SQL p50 {_ms(direct[layer], pick, 50)} ms"
                )
                if layer == "cases":
                    line += f", old SQL p50/p95 {_ms(old, pick, 50)}/{_ms(old, pick, 95)} ms"
                print(line)
    print(
        f"load average at the end {os.getloadavg()[0]:.1f} (other work on the machine skews HTTP)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

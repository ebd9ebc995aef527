"""Vector tile latency through the API: p50/p95 on cache miss, cache hit and 304.

Runs a live server on a throw-away database with the demo world (grids, catalogue, hotspots
and 20,000 cases). Every tile covering the demo district at zooms 12–16 is fetched for both
layers: the first pass misses the server's tile cache, the second hits it, the third sends
If-None-Match and gets 304. Baseline in the same run: the same tiles rendered by
``TileService.render`` straight on a session (the ST_AsMVT SQL, no HTTP, no cache), and the
data-version query every request pays (memoised for 1 s in the server).
Run: ``python bench/bench_tiles.py [--cases 20000] [--zooms 12-16]``.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import httpx2 as httpx  # the dev dependency (pyproject: httpx2)
import numpy as np
from common import admin_headers, live_server, machine_line, scratch_database
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.clock import now
from service.demo import load_demo_world
from service.grids.repository import GridFilter, GridRepository
from service.maps.tiles import TileService, tile_request
from service.settings import AppSettings

HALF_WORLD = math.pi * 6378137.0


def _stats(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):7.2f} ms   p95 {np.percentile(ms, 95):7.2f} ms"


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


def main(argv: list[str] | None = None) -> int:
    """Load the demo world, time direct rendering and HTTP miss/hit/304, print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--zooms", default="12-16", help="first-last zoom")
    opts = parser.parse_args(argv)
    first, last = (int(v) for v in opts.zooms.split("-"))
    print(machine_line())
    with scratch_database() as (engine, url):
        os.environ["CITYGRID_DATABASE_URL"] = url
        settings = AppSettings()
        with Session(engine) as session:
            load_demo_world(session, settings, cases=opts.cases)
            session.commit()
            extent = GridRepository(session).extent(
                GridFilter(city=settings.grids.city, at=now(), level="district")
            )
            session.execute(text("ANALYZE"))  # as autovacuum would after a bulk load
            session.commit()
        assert extent is not None
        tiles = _tiles(extent, range(first, last + 1))
        print(
            f"demo district, {opts.cases} cases; {len(tiles)} tiles per layer at zooms "
            f"{first}-{last}, sequential requests"
        )

        direct: dict[str, list[float]] = {"grids": [], "cases": []}
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
                    data = service.render(req, (None, None), now(), SYSTEM)
                    direct[layer].append(time.perf_counter() - t)
                    sizes[layer].append(len(data))
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
            print(f"  baseline ST_AsMVT SQL, direct  : {_stats(direct[layer])}")
            print(f"  data-version query, direct     : {_stats(version[layer])}")
            zs = np.array([z for z, _, _ in tiles])
            for z in range(first, last + 1):
                pick = zs == z
                print(
                    f"    z{z:<2} {pick.sum():3d} tiles, median {np.median(kb[pick]):6.1f} KB:"
                    f" miss p50 {np.median(np.array(miss[layer])[pick]) * 1000:6.2f} ms,"
                    f" SQL p50 {np.median(np.array(direct[layer])[pick]) * 1000:6.2f} ms"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Bulk point → unit-grid assignment: ``gis.locate.GridIndex`` against a geopandas ``sjoin``.

Grids: the demo city's ~1,500 unit grids (``demo.city.build_demo_city(seed=7)``), or an
irregular Voronoi tiling (``--grids voronoi``, ``--n-grids`` cells of ~10,000 m² clipped to an
irregular outline around (113.65, 34.75)). Points: ``--points`` seeded uniform points in the
grids' bounding box.

Timings are the best of ``--repeat`` runs. The sjoin baseline builds the point GeoDataFrame from
the coordinates (as a user would) and joins with ``predicate="intersects"`` against grids whose
spatial index is already built, the fair counterpart of ``GridIndex.locate`` on a built index;
``GridIndex build`` is reported on its own row. Assignments are checked against sjoin: on
points with exactly one match the codes must be equal, on points with several matches (shared
edges) GridIndex must give the lowest of them, on points with none it must give none.

The in-database paths (PostGIS, on ``CITYGRID_DATABASE_URL`` or the embedded cluster) follow:
text COPY of the points, then a covers-join against ``ST_Subdivide``d grids with GiST, and the
same join against whole polygons on a sample (``--naive-points``).

Run: ``python bench/bench_locate.py [--points 1000000] [--grids demo|voronoi] [--no-db]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import machine_line  # noqa: E402

from gis.locate import GridIndex  # noqa: E402

CENTER = (113.65, 34.75)
UNIT_AREA_M2 = 10_000.0


# -- inputs ------------------------------------------------------------------------------------


def demo_grids(seed: int = 7) -> gpd.GeoDataFrame | None:
    """Unit grids of the demo city, or None when ``demo.city`` is not available."""
    try:
        from demo.city import build_demo_city
    except ImportError:
        return None
    city = build_demo_city(seed=seed)
    return city[city["level"] == "unit"][["code", "level", "geometry"]].reset_index(drop=True)


def voronoi_grids(n_grids: int = 1500, seed: int = 7) -> gpd.GeoDataFrame:
    """Voronoi cells of a jittered lattice, clipped to an irregular outline around CENTER."""
    rng = np.random.default_rng(seed)
    cx, cy = CENTER
    m_per_deg_lat = 110_574.0
    m_per_deg_lon = 111_320.0 * np.cos(np.radians(cy))
    area_m2 = n_grids * UNIT_AREA_M2
    # Irregular outline: 24 rays of random length, scaled to the wanted area.
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = rng.uniform(0.75, 1.25, angles.size)
    outline_m = shapely.Polygon(np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]))
    outline_m = affinity.scale(outline_m, *(2 * [np.sqrt(area_m2 / outline_m.area)]), origin=(0, 0))
    # Seeds on a jittered square lattice of one seed per unit area.
    spacing = np.sqrt(UNIT_AREA_M2)
    minx, miny, maxx, maxy = outline_m.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, spacing), np.arange(miny, maxy, spacing))
    seeds = np.column_stack([gx.ravel(), gy.ravel()])
    seeds += rng.uniform(-0.4, 0.4, seeds.shape) * spacing
    seeds = seeds[shapely.contains_xy(outline_m, seeds[:, 0], seeds[:, 1])]
    to_lonlat = np.array([1 / m_per_deg_lon, 1 / m_per_deg_lat])
    outline = shapely.transform(outline_m, lambda xy: CENTER + xy * to_lonlat)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(CENTER + seeds * to_lonlat), extend_to=outline)
    )
    cells = shapely.intersection(cells, outline)
    cells = cells[shapely.area(cells) > 0]
    # Codes west→east, north→south, 99 units per community, as in the code scheme.
    centre = shapely.centroid(cells)
    cells = cells[np.lexsort((shapely.get_x(centre), -np.round(shapely.get_y(centre), 3)))]
    community, unit = np.divmod(np.arange(len(cells)), 99)
    codes = [
        f"410102{1 + c // 999:03d}{1 + c % 999:03d}{1 + u:02d}"
        for c, u in zip(community, unit, strict=True)
    ]
    return gpd.GeoDataFrame({"code": codes, "level": "unit"}, geometry=cells, crs=4326)


def random_points(grids: gpd.GeoDataFrame, n: int, seed: int = 11) -> tuple[np.ndarray, ...]:
    """``n`` seeded uniform points (lon, lat) in the grids' bounding box."""
    minx, miny, maxx, maxy = grids.total_bounds
    rng = np.random.default_rng(seed)
    return rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)


# -- measured paths ----------------------------------------------------------------------------


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Smallest wall time of ``repeat`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def sjoin_pairs(grids: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> gpd.GeoDataFrame:
    """What a user writes: points from xy, then an intersects join with the grids."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=grids.crs)
    return gpd.sjoin(points, grids, predicate="intersects")


def agreement(codes: np.ndarray, joined: gpd.GeoDataFrame, n: int, grid_codes) -> dict:
    """Compare GridIndex codes with sjoin pairs (see module docstring for the rules)."""
    pairs = pd.DataFrame(
        {
            "point": joined.index.to_numpy(),
            "code": np.asarray(grid_codes, dtype=object)[joined["index_right"].to_numpy()],
        }
    )
    per_point = pairs.groupby("point")["code"].agg(["min", "size"])
    matches = np.zeros(n, dtype=np.int64)
    lowest = np.full(n, None, dtype=object)
    matches[per_point.index] = per_point["size"].to_numpy()
    lowest[per_point.index] = per_point["min"].to_numpy()
    single, ties, none = matches == 1, matches > 1, matches == 0
    return {
        "single": int(single.sum()),
        "single_agree": int((codes[single] == lowest[single]).sum()),
        "ties": int(ties.sum()),
        "ties_lowest": int((codes[ties] == lowest[ties]).sum()),
        "none": int(none.sum()),
        "none_agree": int(sum(c is None for c in codes[none])),
    }


def run_memory_paths(
    grids_gdf: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray, repeat: int = 3
) -> list[dict]:
    """Time the in-memory paths; one dict per row (``method``, ``seconds``, ``points``, ...).

    The ``GridIndex.locate`` row carries ``codes`` (per-point code or None) so that other paths
    can be checked against it, and ``agreement`` with sjoin.
    """
    codes, geoms = list(grids_gdf["code"]), list(grids_gdf.geometry)
    n = len(lon)
    build_s, index = best_of(repeat, lambda: GridIndex(codes, geoms))
    locate_s, found = best_of(repeat, lambda: index.codes_for(lon, lat))
    grids_gdf.sindex  # noqa: B018 - built once, like the GridIndex, outside the timed join
    sjoin_s, joined = best_of(repeat, lambda: sjoin_pairs(grids_gdf, lon, lat))
    rows, cells = index.raster_shape, index.raster_shape[0] * index.raster_shape[1]
    return [
        {
            "method": "GridIndex build",
            "seconds": build_s,
            "points": None,
            "note": f"raster {rows[0]}x{rows[1]} = {cells:,} cells, "
            f"{index.boundary_cell_fraction:.1%} boundary cells",
        },
        {
            "method": "GridIndex.locate",
            "seconds": locate_s,
            "points": n,
            "codes": found,
            "agreement": agreement(found, joined, n, codes),
        },
        {"method": "GridIndex build + locate", "seconds": build_s + locate_s, "points": n},
        {
            "method": "geopandas sjoin (points_from_xy + sjoin)",
            "seconds": sjoin_s,
            "points": n,
            "baseline": True,
        },
    ]


def run_db_paths(
    grids_gdf: gpd.GeoDataFrame,
    lon: np.ndarray,
    lat: np.ndarray,
    reference: np.ndarray,
    naive_points: int,
) -> list[dict]:
    """Time the in-database paths on PostGIS (``CITYGRID_DATABASE_URL`` or the embedded one).

    Points arrive by text COPY; the join takes, per point, the lowest code among grids whose
    geometry ``ST_Covers`` it. "subdivided" joins against ``ST_Subdivide(geom, 64)`` pieces with
    a GiST index (mapit's trick), "whole polygons" against the grids themselves with a GiST
    index. The naive path runs on the first ``naive_points`` points only (it is slow) and its
    rate is extrapolated.
    """

    from service.db import migrations
    from service.db.engine import make_engine, resolve_database_url
    from service.settings import DatabaseSettings

    engine = make_engine(resolve_database_url(DatabaseSettings()))
    migrations.upgrade(engine)  # ensures PostGIS
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("CREATE TEMP TABLE b_grids (code text, geom geometry(MultiPolygon, 4326))")
        with cur.copy("COPY b_grids (code, geom) FROM STDIN") as copy:
            for code, geom in zip(grids_gdf["code"], grids_gdf.geometry, strict=True):
                multi = geom if geom.geom_type == "MultiPolygon" else shapely.MultiPolygon([geom])
                copy.write_row((code, shapely.to_wkb(multi, hex=True, include_srid=False)))
        cur.execute("UPDATE b_grids SET geom = ST_SetSRID(geom, 4326)")
        cur.execute("CREATE INDEX ON b_grids USING gist (geom)")
        t = time.perf_counter()
        cur.execute(
            "CREATE TEMP TABLE b_parts AS SELECT code, ST_Subdivide(geom, 64) AS geom "
            "FROM b_grids; CREATE INDEX ON b_parts USING gist (geom); ANALYZE b_parts; "
            "ANALYZE b_grids"
        )
        subdivide_s = time.perf_counter() - t

        n = len(lon)
        csv = (
            pd.DataFrame({"id": np.arange(n), "lon": lon, "lat": lat})
            .to_csv(index=False, header=False, float_format="%.9f")
            .encode()
        )
        cur.execute(
            "CREATE TEMP TABLE b_pts (id int PRIMARY KEY, lon float8, lat float8, "
            "geom geometry(Point, 4326))"
        )
        t = time.perf_counter()
        with cur.copy("COPY b_pts (id, lon, lat) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(csv)
        cur.execute("UPDATE b_pts SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326)")
        cur.execute("CREATE INDEX ON b_pts USING gist (geom); ANALYZE b_pts")
        load_s = time.perf_counter() - t

        def join(table: str, limit: int) -> tuple[float, dict[int, str]]:
            t0 = time.perf_counter()
            cur.execute(
                f"SELECT p.id, min(g.code) FROM (SELECT * FROM b_pts WHERE id < {limit}) p "
                f"JOIN {table} g ON ST_Covers(g.geom, p.geom) GROUP BY p.id"
            )
            found = dict(cur.fetchall())
            return time.perf_counter() - t0, found

        sub_s, sub = join("b_parts", n)
        naive_n = min(naive_points, n)
        naive_s, naive = join("b_grids", naive_n)
        raw.rollback()
    finally:
        raw.close()
        engine.dispose()

    def agree(found: dict[int, str], count: int) -> str:
        same = sum(found.get(i) == reference[i] for i in range(count))
        return f"{same:,}/{count:,} points agree with GridIndex"

    return [
        {"method": "PostGIS COPY points (text) + geom", "seconds": load_s, "points": n},
        {"method": "PostGIS ST_Subdivide(64) + GiST build", "seconds": subdivide_s, "points": None},
        {
            "method": "PostGIS join, subdivided + GiST",
            "seconds": sub_s,
            "points": n,
            "note": agree(sub, n),
        },
        {
            "method": f"PostGIS join, whole polygons ({naive_n:,} pts)",
            "seconds": naive_s,
            "points": naive_n,
            "note": agree(naive, naive_n),
        },
    ]


# -- report ------------------------------------------------------------------------------------


def print_table(rows: list[dict]) -> None:
    """Method, seconds, points/s and speed-up against the baseline row."""
    base = next((r["seconds"] for r in rows if r.get("baseline")), None)
    print(f"{'method':<42} {'seconds':>9} {'points/s':>13} {'vs sjoin':>9}")
    for r in rows:
        rate = f"{r['points'] / r['seconds']:>13,.0f}" if r.get("points") else f"{'':>13}"
        speed = f"{base / r['seconds']:>8.1f}x" if base and r.get("points") else f"{'':>9}"
        print(f"{r['method']:<42} {r['seconds']:>9.3f} {rate} {speed}")
        if r.get("note"):
            print(f"{'':<4}{r['note']}")
    for r in rows:
        if r.get("agreement"):
            a = r["agreement"]
            print(
                f"agreement with sjoin: {a['single_agree']:,}/{a['single']:,} single matches "
                f"equal, "
                f"{a['ties_lowest']:,}/{a['ties']:,} shared-edge ties to the lowest code, "
                f"{a['none_agree']:,}/{a['none']:,} uncovered points uncovered"
            )


def main(argv: list[str] | None = None) -> int:
    """Build the grids and points, run the paths, print the table; 1 if results disagree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--grids", choices=("demo", "voronoi"), default="demo")
    parser.add_argument("--n-grids", type=int, default=1500, help="voronoi grids only")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-db", action="store_true", help="skip the PostGIS paths")
    parser.add_argument(
        "--naive-points",
        type=int,
        default=200_000,
        help="points for the slow whole-polygon PostGIS join",
    )
    opts = parser.parse_args(argv)

    grids = demo_grids(opts.seed) if opts.grids == "demo" else None
    source = "demo city units (demo.city.build_demo_city)"
    if grids is None:
        if opts.grids == "demo":
            print("demo.city is not available; using the Voronoi grids instead")
        grids = voronoi_grids(opts.n_grids, opts.seed)
        source = "Voronoi tiling"
    lon, lat = random_points(grids, opts.points)
    print(machine_line())
    print(f"{len(grids):,} grids ({source}), {opts.points:,} points, best of {opts.repeat}\n")
    rows = run_memory_paths(grids, lon, lat, repeat=opts.repeat)
    if not opts.no_db:
        reference = next(r["codes"] for r in rows if "codes" in r)
        rows += run_db_paths(grids, lon, lat, reference, opts.naive_points)
    print_table(rows)
    a = next(r["agreement"] for r in rows if r.get("agreement"))
    ok = (a["single_agree"], a["ties_lowest"], a["none_agree"]) == (
        a["single"],
        a["ties"],
        a["none"],
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

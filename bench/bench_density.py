"""Heat-map aggregates on 1M case points, each beside a same-run baseline.

Modules: ``gis.density`` (estimators), ``gis.gi_star`` (Gi*), ``layers.overlay`` (the PNG).

Points: ``--points`` seeded case points around (113.65, 34.75): 70 % in 40 Gaussian clusters
(σ 50-400 m, like markets and school gates), 30 % uniform over the ~15 km² demo district's
bounding box.

* **Hexagon bins** (``hexbin_counts``, 200 m flat-to-flat) against what a user writes with
  geopandas: a hexagon polygon grid over the points' extent (same lattice, built beforehand
  and reported on its own row), points from xy projected to the same UTM zone, ``sjoin``
  (``within``) and a group-by count. Counts per hexagon are compared.
* **Kernel density** (``kernel_density``, σ 200 m, 25 m cells) and the PNG overlay
  (``raster_to_png``), against a direct sum of Gaussians over all points at ``--kde-cells``
  sampled cells (the exact answer; its time is extrapolated to the whole raster) — the
  maximum relative error on cells above 1 % of the peak is printed.
* **Gi* hot spots** (``gi_star``, 999 permutations) on the demo city's ~1,500 unit grids and
  on a ~30,000-grid Voronoi tiling, with values = cases per km² from ``grid_density``;
  baseline: ``esda.G_Local`` alone on libpysal vertex-queen weights built from the lon/lat
  polygons (no projection, no tolerance, esda's own p-values), z-scores compared.

Timings are the best of ``--repeat`` runs (Gi* on 30,000 grids: one run).

Run: ``.venv/bin/python bench/bench_density.py [--points 1000000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_locate import demo_grids, voronoi_grids  # noqa: E402
from common import machine_line  # noqa: E402

from gis import metric  # noqa: E402
from gis.density import grid_density, hexbin_counts, kernel_density  # noqa: E402
from gis.gi_star import gi_star  # noqa: E402
from gis.locate import GridIndex  # noqa: E402
from layers.overlay import raster_to_png  # noqa: E402

CENTER = (113.65, 34.75)
HEX_M = 200.0
BANDWIDTH_M, CELL_M = 200.0, 25.0


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def case_points(n: int, bounds: np.ndarray, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """70 % in 40 Gaussian clusters, 30 % uniform in ``bounds`` (lon/lat)."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = bounds
    n_clustered = int(n * 0.7)
    centre = rng.integers(0, 40, n_clustered)
    cx, cy = rng.uniform(minx, maxx, 40), rng.uniform(miny, maxy, 40)
    sigma_m = rng.uniform(50, 400, 40)
    m_per_deg_lat = 110_574.0
    m_per_deg_lon = 111_320.0 * math.cos(math.radians(CENTER[1]))
    lon = np.concatenate(
        [
            cx[centre] + rng.normal(0, 1, n_clustered) * sigma_m[centre] / m_per_deg_lon,
            rng.uniform(minx, maxx, n - n_clustered),
        ]
    )
    lat = np.concatenate(
        [
            cy[centre] + rng.normal(0, 1, n_clustered) * sigma_m[centre] / m_per_deg_lat,
            rng.uniform(miny, maxy, n - n_clustered),
        ]
    )
    return lon, lat


# -- hexagons ----------------------------------------------------------------------------------


def hex_grid_frame(x: np.ndarray, y: np.ndarray, width: float, crs) -> gpd.GeoDataFrame:
    """Every pointy-top hexagon of the documented lattice over the metric extent."""
    h = width * math.sqrt(3) / 2
    rows = np.arange(math.floor(y.min() / h) - 1, math.ceil(y.max() / h) + 2)
    cols = np.arange(math.floor(x.min() / width) - 1, math.ceil(x.max() / width) + 2)
    col, row = (a.ravel() for a in np.meshgrid(cols, rows))
    cx, cy = (col + (row % 2) / 2) * width, row * h
    angles = np.radians(30.0 + 60.0 * np.arange(7))
    r = width / math.sqrt(3)
    ring = np.stack([cx[:, None] + r * np.cos(angles), cy[:, None] + r * np.sin(angles)], -1)
    return gpd.GeoDataFrame({"col": col, "row": row}, geometry=shapely.polygons(ring), crs=crs)


def sjoin_hexbin(hexes: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> pd.Series:
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326).to_crs(hexes.crs)
    joined = gpd.sjoin(points, hexes, predicate="within")
    return joined.groupby(["col", "row"]).size()


def run_hexbin(lon: np.ndarray, lat: np.ndarray, repeat: int) -> None:
    crs = metric.utm_crs_for_xy(lon, lat)
    ours_s, ours = best_of(repeat, lambda: hexbin_counts(lon, lat, HEX_M, crs=crs))
    x, y = metric.to_metric_xy(lon, lat, crs)
    build_s, hexes = best_of(1, lambda: hex_grid_frame(x, y, HEX_M, crs))
    hexes.sindex  # noqa: B018 - built outside the timed join, like a prepared grid layer
    base_s, base = best_of(repeat, lambda: sjoin_hexbin(hexes, lon, lat))
    mine = ours.set_index(["col", "row"])["count"]
    same = mine.reindex(base.index).eq(base).sum()
    n = len(lon)
    print(f"hexagon bins, {HEX_M:.0f} m flat-to-flat, {n:,} points -> {len(ours):,} hexagons")
    print(f"  {'hexbin_counts':<46} {ours_s:8.3f} s {n / ours_s:>13,.0f} points/s")
    print(
        f"  {'baseline: points_from_xy + to_crs + sjoin + count':<46} {base_s:8.3f} s "
        f"{n / base_s:>13,.0f} points/s   ({base_s / ours_s:.1f}x slower)"
    )
    print(f"  {'  (hexagon polygon grid for sjoin, built once)':<46} {build_s:8.3f} s")
    print(
        f"  agreement: {same:,}/{len(base):,} non-empty hexagons equal, totals "
        f"{int(mine.sum()):,} vs {int(base.sum()):,}\n"
    )


# -- kernel density ----------------------------------------------------------------------------


def run_kde(lon: np.ndarray, lat: np.ndarray, repeat: int, sample_cells: int) -> None:
    kde_s, raster = best_of(repeat, lambda: kernel_density(lon, lat, BANDWIDTH_M, CELL_M))
    png_s, overlay = best_of(repeat, lambda: raster_to_png(raster))
    rows, cols = raster.values.shape
    # Exact answer at sampled cells: a direct sum of Gaussians over every point.
    x, y = metric.to_metric_xy(lon, lat, raster.crs)
    rng = np.random.default_rng(3)
    strong = np.flatnonzero(raster.values.ravel() > 0.01 * raster.values.max())
    cells = rng.choice(strong, min(sample_cells, strong.size), replace=False)
    r, c = np.divmod(cells, cols)
    t = time.perf_counter()
    direct = np.empty(cells.size)
    for k in range(cells.size):
        cx = raster.x0 + (c[k] + 0.5) * CELL_M
        cy = raster.y0 - (r[k] + 0.5) * CELL_M
        d2 = (x - cx) ** 2 + (y - cy) ** 2
        direct[k] = np.exp(-d2 / (2 * BANDWIDTH_M**2)).sum() / (2 * math.pi * BANDWIDTH_M**2)
    direct_s = (time.perf_counter() - t) / cells.size * rows * cols
    error = np.abs(raster.values.ravel()[cells] - direct * 1e6) / (direct * 1e6)
    print(
        f"kernel density, Gaussian sigma {BANDWIDTH_M:.0f} m, {CELL_M:.0f} m cells: "
        f"{rows}x{cols} raster, integral {raster.total:,.1f} of {len(lon):,} points"
    )
    print(f"  {'kernel_density':<46} {kde_s:8.3f} s")
    print(
        f"  {'raster_to_png (Web-Mercator resample + PNG)':<46} {png_s:8.3f} s   "
        f"{overlay.width}x{overlay.height} px, {len(overlay.png) / 1024:,.0f} KiB"
    )
    print(
        f"  {'baseline: direct sum, whole raster (extrap.)':<46} {direct_s:8.1f} s   "
        f"from {cells.size} cells; max rel. error of ours {error.max():.2%}, "
        f"median {np.median(error):.3%}\n"
    )


# -- Gi* ---------------------------------------------------------------------------------------


def esda_alone(grids: gpd.GeoDataFrame, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gi* z-scores and neighbour counts from esda on libpysal's vertex-queen graph."""
    from esda.getisord import G_Local
    from libpysal.graph import Graph

    graph = Graph.build_contiguity(grids.geometry.reset_index(drop=True), rook=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gi = G_Local(
            values, graph.assign_self_weight(1), transform="B", star=True, seed=1, n_jobs=1
        )
    return np.asarray(gi.Zs), np.asarray(graph.cardinalities)


def run_gi(name: str, grids: gpd.GeoDataFrame, lon, lat, repeat: int) -> None:
    codes, geoms = list(grids["code"]), list(grids.geometry)
    index = GridIndex(codes, geoms)
    density_s, table = best_of(repeat, lambda: grid_density(codes, geoms, index.locate(lon, lat)))
    values = table["value"]
    gi_s, result = best_of(repeat, lambda: gi_star(codes, geoms, values))
    base_s, (z, cardinality) = best_of(repeat, lambda: esda_alone(grids, values.to_numpy()))
    # Grids whose neighbourhoods agree (the tolerance and island rules can add neighbours).
    both = (cardinality == result["neighbours"].to_numpy()) & np.isfinite(z)
    agree = np.allclose(result["z"].to_numpy()[both], z[both], rtol=1e-9)
    classes = result["class"].value_counts()
    hot = int(classes[["hot_99", "hot_95", "hot_90"]].sum())
    cold = int(classes[["cold_99", "cold_95", "cold_90"]].sum())
    print(f"Gi* hot spots, {len(codes):,} grids ({name}), 999 permutations")
    print(f"  {'grid_density (locate + counts + areas)':<46} {density_s:8.3f} s")
    print(
        f"  {'gi_star':<46} {gi_s:8.3f} s   {hot} hot, {cold} cold, "
        f"{int(result['island'].sum())} islands joined"
    )
    print(
        f"  {'baseline: esda.G_Local on vertex-queen W':<46} {base_s:8.3f} s   z equal on the "
        f"{both.sum():,} grids with the same neighbours: {agree}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kde-cells", type=int, default=200)
    parser.add_argument("--big-grids", type=int, default=30_000)
    opts = parser.parse_args(argv)
    print(machine_line())
    demo = demo_grids(7)
    small = demo if demo is not None else voronoi_grids(1500, 7)
    lon, lat = case_points(opts.points, small.total_bounds)
    print(f"{opts.points:,} points, best of {opts.repeat}\n")
    run_hexbin(lon, lat, opts.repeat)
    run_kde(lon, lat, opts.repeat, opts.kde_cells)
    run_gi("demo city units" if demo is not None else "Voronoi", small, lon, lat, opts.repeat)
    big = voronoi_grids(opts.big_grids, 7)
    big_lon, big_lat = case_points(opts.points, big.total_bounds)
    run_gi("Voronoi tiling", big, big_lon, big_lat, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

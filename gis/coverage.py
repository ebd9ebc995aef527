"""Patrol coverage of unit grids and hotspots, computed in metres on a raster.

Covered share
    The share of a grid's area lying within ``radius_m`` of a patrol track. Tracks are burnt
    into a raster of ``cell_m`` cells (every segment sampled at half a cell), a Euclidean
    distance transform gives each cell's distance to the nearest track cell, and a grid's share
    is its covered cells over its cells. Against an exact GEOS buffer-and-intersect the share is
    within about ``cell_m / radius_m`` of the truth (a few per cent at the 2 m / 25 m defaults);
    the test suite checks this. When street lines are given, the share of the grid's street
    cells that are covered is reported too: a grid walked along its streets is well covered even
    if its courtyards are not.
Visits
    A visit is a stretch of one track inside one grid. Stepping out and back within
    ``merge_s`` (default 10 min) is the same visit, so walking along a grid edge does not count
    dozens of visits.
Dwell and effort
    Each segment between two consecutive fixes of a track counts for the grid of its first fix;
    the sum over all workers is the patrol effort in worker-seconds.

Positions are metric ``x, y`` of :attr:`CoverageRaster.crs`; times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from gis import metric
from gis.locate import GridIndex

__all__ = ["CoverageRaster", "FixTable", "grid_coverage", "zone_coverage"]

_MAX_CELLS = 400_000_000
_BURN_CHUNK = 1_000_000  # track vertices sampled at a time


@dataclass(frozen=True)
class FixTable:
    """Kept fixes of many tracks, sorted by track then time (as :func:`gis.patrol.clean_fixes`
    numbers them)."""

    track: np.ndarray
    worker: np.ndarray
    t: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.t)
        if any(len(a) != n for a in (self.track, self.worker, self.x, self.y)):
            raise ValueError("track, worker, t, x and y must have one length")
        if n > 1:
            tr, t = np.asarray(self.track), np.asarray(self.t)
            order_ok = (tr[1:] > tr[:-1]) | ((tr[1:] == tr[:-1]) & (t[1:] >= t[:-1]))
            if not order_ok.all():
                raise ValueError("fixes must be sorted by track, then time")

    def __len__(self) -> int:
        return len(self.t)

    def segment_seconds(self) -> np.ndarray:
        """Duration from each fix to the next fix of its track (0 at a track's end)."""
        dt = np.zeros(len(self), dtype=np.float64)
        if len(self) > 1:
            same = self.track[1:] == self.track[:-1]
            dt[:-1] = np.where(same, self.t[1:] - self.t[:-1], 0.0)
        return dt


@dataclass(frozen=True)
class CoverageRaster:
    """Unit grids burnt into a metric raster: each cell holds the grid covering its centre.

    Build it once per grid set with :meth:`build`; it is reused for every period.
    """

    crs: CRS
    x0: float
    y0: float
    cell_m: float
    labels: np.ndarray  # (rows, cols) int32, -1 outside every grid; row 0 is the south edge
    codes: tuple[str, ...]

    @classmethod
    def build(
        cls,
        codes: list[str],
        geoms: np.ndarray,
        cell_m: float = 2.0,
        index: GridIndex | None = None,
    ) -> CoverageRaster:
        """Rasterise unit grids given in WGS 84 (``index`` reuses an existing point index)."""
        if not cell_m > 0:
            raise ValueError(f"cell_m must be positive, got {cell_m}")
        index = index or GridIndex(list(codes), list(geoms))
        if list(index.codes) != list(codes):
            raise ValueError("index must be built over the same codes in the same order")
        crs = metric.utm_crs_for_geometries(np.asarray(geoms))
        minx, miny, maxx, maxy = shapely.total_bounds(metric.to_metric(np.asarray(geoms), crs))
        cols = int(np.ceil((maxx - minx) / cell_m)) + 1
        rows = int(np.ceil((maxy - miny) / cell_m)) + 1
        if rows * cols > _MAX_CELLS:
            raise ValueError(
                f"a {cell_m} m raster of this area needs {rows * cols:,} cells; use a larger cell_m"
            )
        labels = np.empty((rows, cols), dtype=np.int32)
        xs = minx + (np.arange(cols) + 0.5) * cell_m
        inverse = metric._transformer(crs, metric.WGS84)
        for r in range(rows):  # a row at a time keeps the lon/lat work arrays small
            lon, lat = inverse.transform(xs, np.full(cols, miny + (r + 0.5) * cell_m))
            labels[r] = index.locate(np.asarray(lon), np.asarray(lat))
        return cls(crs, float(minx), float(miny), float(cell_m), labels, tuple(codes))

    @property
    def cells_per_grid(self) -> np.ndarray:
        """Number of cells of each grid (its area is this times ``cell_m**2``)."""
        inside = self.labels[self.labels >= 0]
        return np.bincount(inside, minlength=len(self.codes))

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row, column and an in-raster mask for metric points."""
        col = np.floor((np.asarray(x) - self.x0) / self.cell_m).astype(np.int64)
        row = np.floor((np.asarray(y) - self.y0) / self.cell_m).astype(np.int64)
        rows, cols = self.labels.shape
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        return row, col, inside

    def burn_lines(self, fixes: FixTable) -> np.ndarray:
        """Boolean raster of the cells the tracks pass through.

        Tracks are sampled every half cell in chunks of whole tracks, so memory stays bounded
        by the chunk (a day of 5,000 workers is ~180M samples at 2 m cells).
        """
        marked = np.zeros(self.labels.shape, dtype=bool)
        for part in _track_chunks(fixes.track, _BURN_CHUNK):
            x, y = _densified(fixes.x[part], fixes.y[part], fixes.track[part], self.cell_m / 2.0)
            self._mark(marked, x, y)
        return marked

    def burn_geometries(self, lines: np.ndarray) -> np.ndarray:
        """Boolean raster of the cells metric line geometries pass through."""
        coords, index = shapely.get_coordinates(np.asarray(lines), return_index=True)
        return self._burn(*_densified(coords[:, 0], coords[:, 1], index, self.cell_m / 2.0))

    def covered(self, fixes: FixTable, radius_m: float) -> np.ndarray:
        """Boolean raster of the cells whose centre lies within ``radius_m`` of a track."""
        if not radius_m >= 0:
            raise ValueError(f"radius_m must be >= 0, got {radius_m}")
        marked = self.burn_lines(fixes)
        out = np.zeros_like(marked)
        if not marked.any():
            return out
        # the distance transform only needs the marked cells' bounding box plus the radius
        pad = int(np.ceil(radius_m / self.cell_m)) + 1
        rows, cols = np.nonzero(marked.any(axis=1))[0], np.nonzero(marked.any(axis=0))[0]
        r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, marked.shape[0])
        c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, marked.shape[1])
        dist = ndimage.distance_transform_edt(~marked[r0:r1, c0:c1], sampling=self.cell_m)
        out[r0:r1, c0:c1] = dist <= radius_m
        return out

    def _burn(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        marked = np.zeros(self.labels.shape, dtype=bool)
        self._mark(marked, x, y)
        return marked

    def _mark(self, marked: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        row, col, inside = self.cell_of(x, y)
        marked[row[inside], col[inside]] = True


def grid_coverage(
    raster: CoverageRaster,
    fixes: FixTable,
    grid_of_fix: np.ndarray,
    radius_m: float = 25.0,
    streets: np.ndarray | None = None,
    merge_s: float = 600.0,
    covered: np.ndarray | None = None,
) -> pd.DataFrame:
    """Coverage of every grid of ``raster`` by the tracks in ``fixes``.

    Parameters
    ----------
    raster : CoverageRaster
        The unit grids.
    fixes : FixTable
        Kept fixes of the period, sorted by track then time, in ``raster.crs`` metres.
    grid_of_fix : np.ndarray of int
        Index into ``raster.codes`` of the grid covering each fix (-1 outside every grid), e.g.
        from :meth:`gis.locate.GridIndex.locate` on the fixes' lon/lat.
    radius_m : float
        A cell within this distance of a track counts as seen.
    streets : np.ndarray of LineString, optional
        Street centre lines in ``raster.crs``; adds ``street_share``.
    merge_s : float
        Leaving a grid and coming back within this time is one visit.
    covered : np.ndarray of bool, optional
        :meth:`CoverageRaster.covered` of the same fixes and radius, when already computed.

    Returns
    -------
    pandas.DataFrame
        One row per grid, in ``raster.codes`` order: ``code, covered_share, street_share,
        visits, workers, dwell_s, first_visit_t, last_visit_t, mean_revisit_s`` (times in the
        input's seconds; NaN where a grid was not visited / has no streets / one visit only).
    """
    n = len(raster.codes)
    grid_of_fix = np.asarray(grid_of_fix, dtype=np.int64)
    if grid_of_fix.shape != (len(fixes),):
        raise ValueError("grid_of_fix must give one grid index per fix")
    if covered is None:
        covered = raster.covered(fixes, radius_m)
    labels = raster.labels
    cells = raster.cells_per_grid
    seen = np.bincount(labels[covered & (labels >= 0)], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame = pd.DataFrame({"code": list(raster.codes), "covered_share": seen / cells})
        frame["street_share"] = np.nan
        if streets is not None and len(streets):
            street = raster.burn_geometries(streets) & (labels >= 0)
            total = np.bincount(labels[street], minlength=n)
            frame["street_share"] = np.bincount(labels[street & covered], minlength=n) / total
    visits = _visits(fixes, grid_of_fix, merge_s)
    frame = frame.join(_visit_table(fixes, grid_of_fix, visits, n))
    return frame


def zone_coverage(
    raster: CoverageRaster,
    fixes: FixTable,
    zones: np.ndarray,
    radius_m: float = 25.0,
    merge_s: float = 600.0,
    covered: np.ndarray | None = None,
) -> pd.DataFrame:
    """Coverage of (possibly overlapping) zones such as hotspot influence zones.

    ``zones`` are metric polygons in ``raster.crs``. The covered share is the covered cells in
    the zone over the zone's exact area: parts of a zone beyond the grids' raster count as not
    covered. Columns as :func:`grid_coverage` except ``street_share``. ``covered`` reuses
    :meth:`CoverageRaster.covered` of the same fixes and radius when the caller has it.
    """
    if covered is None:
        covered = raster.covered(fixes, radius_m)
    rows = []
    for zone in np.asarray(zones):
        minx, miny, maxx, maxy = zone.bounds
        near = np.flatnonzero(
            (fixes.x >= minx) & (fixes.x <= maxx) & (fixes.y >= miny) & (fixes.y <= maxy)
        )
        label = np.full(len(fixes), -1, dtype=np.int64)
        label[near[shapely.contains_xy(zone, fixes.x[near], fixes.y[near])]] = 0
        share = _cell_share(raster, covered, zone)
        table = _visit_table(fixes, label, _visits(fixes, label, merge_s), 1)
        rows.append({"covered_share": share, **table.iloc[0].to_dict()})
    columns = ["covered_share", "visits", "workers", "dwell_s", "first_visit_t"]
    columns += ["last_visit_t", "mean_revisit_s"]
    return pd.DataFrame(rows, columns=columns)


def _cell_share(raster: CoverageRaster, covered: np.ndarray, zone: BaseGeometry) -> float:
    minx, miny, maxx, maxy = zone.bounds
    c0 = max(int(np.floor((minx - raster.x0) / raster.cell_m)), 0)
    r0 = max(int(np.floor((miny - raster.y0) / raster.cell_m)), 0)
    c1 = min(int(np.ceil((maxx - raster.x0) / raster.cell_m)) + 1, raster.labels.shape[1])
    r1 = min(int(np.ceil((maxy - raster.y0) / raster.cell_m)) + 1, raster.labels.shape[0])
    if r1 <= r0 or c1 <= c0:
        return 0.0 if zone.area else float("nan")
    cx = raster.x0 + (np.arange(c0, c1) + 0.5) * raster.cell_m
    cy = raster.y0 + (np.arange(r0, r1) + 0.5) * raster.cell_m
    gx, gy = np.meshgrid(cx, cy)
    mask = shapely.contains_xy(zone, gx, gy)
    # the exact zone area is the denominator: parts outside the raster count as not covered
    total = zone.area / raster.cell_m**2
    return float(covered[r0:r1, c0:c1][mask].sum() / total) if total else float("nan")


@dataclass(frozen=True)
class _Visits:
    grid: np.ndarray
    track: np.ndarray
    start: np.ndarray
    end: np.ndarray


def _visits(fixes: FixTable, grid_of_fix: np.ndarray, merge_s: float) -> _Visits:
    """Runs of consecutive fixes of one track in one grid, merged when the track comes back to
    the grid within ``merge_s``."""
    if len(fixes) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Visits(empty, empty, np.zeros(0), np.zeros(0))
    track, t = fixes.track, fixes.t
    new_run = np.r_[True, (track[1:] != track[:-1]) | (grid_of_fix[1:] != grid_of_fix[:-1])]
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], len(t)] - 1
    # a run lasts until the next fix of its track (the segment leaving it still counts)
    last = np.where(
        (ends + 1 < len(t)) & (track[np.minimum(ends + 1, len(t) - 1)] == track[ends]),
        t[np.minimum(ends + 1, len(t) - 1)],
        t[ends],
    )
    g, tr, s, e = grid_of_fix[starts], track[starts], t[starts], last
    inside = g >= 0
    g, tr, s, e = g[inside], tr[inside], s[inside], e[inside]
    order = np.lexsort((s, tr, g))
    g, tr, s, e = g[order], tr[order], s[order], e[order]
    same = np.r_[False, (g[1:] == g[:-1]) & (tr[1:] == tr[:-1])]
    # the runs of one track never overlap in time, so the previous run of a (grid, track)
    # group is also the one that ended last
    prev_end = np.r_[-np.inf, e[:-1]]
    merged = same & (s - prev_end <= merge_s)
    visit = np.cumsum(~merged) - 1
    k = int(visit.max()) + 1 if visit.size else 0
    v_start = np.full(k, np.inf)
    v_end = np.full(k, -np.inf)
    np.minimum.at(v_start, visit, s)
    np.maximum.at(v_end, visit, e)
    first = np.flatnonzero(~merged)
    return _Visits(g[first], tr[first], v_start, v_end)


def _visit_table(fixes: FixTable, grid_of_fix: np.ndarray, visits: _Visits, n: int) -> pd.DataFrame:
    inside = grid_of_fix >= 0
    dwell = np.bincount(grid_of_fix[inside], fixes.segment_seconds()[inside], minlength=n)
    count = np.bincount(visits.grid, minlength=n)
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    if visits.grid.size:
        np.fmin.at(first, visits.grid, visits.start)
        np.fmax.at(last, visits.grid, visits.start)
    # distinct (grid, worker) pairs through one integer key: a 1-D unique is far faster
    worker = np.asarray(fixes.worker[inside], dtype=np.int64)
    key = np.unique(grid_of_fix[inside] * (int(worker.max(initial=0)) + 1) + worker)
    workers = np.bincount(key // (int(worker.max(initial=0)) + 1), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        revisit = np.where(count > 1, (last - first) / (count - 1), np.nan)
    last_seen = np.full(n, np.nan)
    if inside.any():
        np.fmax.at(last_seen, grid_of_fix[inside], fixes.t[inside])
    return pd.DataFrame(
        {
            "visits": count,
            "workers": workers,
            "dwell_s": dwell,
            "first_visit_t": first,
            "last_visit_t": last_seen,
            "mean_revisit_s": revisit,
        }
    )


def _track_chunks(track: np.ndarray, size: int) -> list[slice]:
    """Slices of about ``size`` vertices that never cut a track (vertices sorted by track)."""
    n = len(track)
    if n <= size:
        return [slice(0, n)]
    starts = np.flatnonzero(np.r_[True, track[1:] != track[:-1]])
    cuts = [0]
    for s in starts:
        if s - cuts[-1] >= size:
            cuts.append(int(s))
    cuts.append(n)
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def _densified(
    x: np.ndarray, y: np.ndarray, part: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step`` metres (or closer) along polylines given as vertex arrays and the
    part number of each vertex; consecutive vertices of one part form a segment."""
    x, y, part = np.asarray(x, float), np.asarray(y, float), np.asarray(part)
    if x.size < 2:
        return x, y
    same = part[1:] == part[:-1]
    dx, dy = x[1:] - x[:-1], y[1:] - y[:-1]
    pieces = np.where(same, np.ceil(np.hypot(dx, dy) / step).astype(np.int64), 0)
    pieces = np.maximum(pieces, same.astype(np.int64))
    seg = np.repeat(np.arange(pieces.size), pieces)
    first_of = np.r_[0, np.cumsum(pieces)[:-1]]
    frac = (np.arange(seg.size) - first_of[seg]) / pieces[seg]
    px = np.r_[x[:-1][seg] + dx[seg] * frac, x]
    py = np.r_[y[:-1][seg] + dy[seg] * frac, y]
    return px, py

"""Patrol tracks in PostGIS: rebuilt from fixes, read back with their timing.

A track is stored as a ``LINESTRINGM`` whose M value is each vertex's Unix time, so one WKB
carries where and when; GIS tools read it as an ordinary line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from sqlalchemy.orm import Session

from gis.metric import to_metric_xy, utm_crs_for_xy
from gis.patrol import CleaningRules, clean_fixes
from service.clock import now
from service.db.engine import driver_cursor
from service.db.pgcopy import copy_arrow
from service.http.timeparse import from_epoch_us

_US = 1_000_000
_EWKB_LINESTRING_M_SRID = 0x40000000 | 0x20000000 | 2


class TrackWriter:
    """Replaces the tracks of some devices inside time windows."""

    def __init__(self, session: Session, city: str, rules: CleaningRules) -> None:
        self.session = session
        self.city = city
        self.rules = rules

    def rebuild(
        self,
        windows: pd.DataFrame,
        fixes: dict[str, np.ndarray],
        progress: Callable[[str, int, int], None],
    ) -> tuple[int, dict[str, int]]:
        """Delete the tracks inside ``windows`` (device_key, lo, hi in µs, worker) and write
        new ones from ``fixes`` (every stored and new fix in those windows).

        Returns the number of tracks written and how many fixes each cleaning rule took.
        """
        keys = windows["device_key"].tolist()
        lo, hi = from_epoch_us(windows["lo"].to_numpy()), from_epoch_us(windows["hi"].to_numpy())
        with driver_cursor(self.session) as cur:
            cur.execute(
                "DELETE FROM patrol_tracks t "
                "USING unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS w(k, lo, hi) "
                "WHERE t.device_key = w.k AND t.started_at >= w.lo AND t.ended_at <= w.hi",
                (keys, lo, hi),
            )
        device, at_us = fixes["device_key"].astype(np.int64), fixes["at_us"].astype(np.int64)
        if at_us.size == 0:
            return 0, {}
        base = int(at_us.min())
        t = (at_us - base) / _US
        crs = utm_crs_for_xy(fixes["lon"], fixes["lat"])
        x, y = to_metric_xy(fixes["lon"], fixes["lat"], crs)
        session = self._session_numbers(device, at_us, keys)
        cleaned = clean_fixes(
            device, t, x, y, accuracy_m=fixes["accuracy_m"], session=session, rules=self.rules
        )
        progress("clean", int(at_us.size), int(at_us.size))
        kept = np.flatnonzero(cleaned.kept)
        order = kept[np.lexsort((t[kept], cleaned.track[kept]))]
        track = cleaned.track[order]
        if track.size == 0:
            return 0, cleaned.counts()
        worker_of = dict(zip(windows["device_key"], windows["worker"], strict=True))
        table = _track_table(
            self.city,
            track,
            device[order],
            at_us[order],
            fixes["lon"][order],
            fixes["lat"][order],
            x[order],
            y[order],
            worker_of,
        )
        with driver_cursor(self.session) as cur:
            copy_arrow(cur, "patrol_tracks", table)
        progress("tracks", table.num_rows, table.num_rows)
        return table.num_rows, cleaned.counts()

    def _session_numbers(
        self, device: np.ndarray, at_us: np.ndarray, keys: list[int]
    ) -> np.ndarray:
        """The patrol session each fix falls in (-1 outside every session)."""
        with driver_cursor(self.session) as cur:
            cur.execute(
                "SELECT id, device_key, (extract(epoch FROM started_at) * 1000000)::bigint, "
                "(extract(epoch FROM ended_at) * 1000000)::bigint FROM patrol_sessions "
                "WHERE device_key = ANY(%s)",
                (keys,),
            )
            rows = cur.fetchall()
        out = np.full(at_us.size, -1, dtype=np.int64)
        if not rows:
            return out
        sessions = pd.DataFrame(rows, columns=["id", "device", "start", "end"]).sort_values("start")
        # open sessions end in NULL: with only open ones the column would hold None objects,
        # which do not compare with the fixes' times (a float column holds NaN instead)
        sessions["end"] = sessions["end"].astype("float64")
        fixes = pd.DataFrame({"device": device, "t": at_us, "pos": np.arange(at_us.size)})
        fixes = fixes.sort_values("t")
        hit = pd.merge_asof(
            fixes, sessions, left_on="t", right_on="start", by="device", direction="backward"
        )
        inside = hit["id"].notna() & (hit["end"].isna() | (hit["t"] < hit["end"]))
        out[hit["pos"].to_numpy()] = np.where(inside, hit["id"].fillna(-1), -1).astype(np.int64)
        return out


def _track_table(
    city: str,
    track: np.ndarray,
    device: np.ndarray,
    at_us: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    worker_of: dict[int, str],
) -> pa.Table:
    """One row per track, vertices given sorted by track then time."""
    starts = np.flatnonzero(np.r_[True, track[1:] != track[:-1]])
    ends = np.r_[starts[1:], track.size]
    step = np.hypot(np.diff(x), np.diff(y))
    step = np.where(track[1:] == track[:-1], step, 0.0)
    length = np.add.reduceat(np.r_[step, 0.0], starts)
    m = at_us / _US
    geoms = [
        _ewkb_linestring_m(lon[a:b], lat[a:b], m[a:b]) for a, b in zip(starts, ends, strict=True)
    ]
    built = now()
    return pa.table(
        {
            "city": pa.array([city] * starts.size, pa.string()),
            "device_key": pa.array(device[starts], pa.int64()),
            "worker_code": pa.array([worker_of[int(d)] for d in device[starts]], pa.string()),
            "started_at": pa.array(at_us[starts], pa.timestamp("us", tz="UTC")),
            "ended_at": pa.array(at_us[ends - 1], pa.timestamp("us", tz="UTC")),
            "n_fixes": pa.array(ends - starts, pa.int32()),
            "length_m": pa.array(length, pa.float64()),
            "built_at": pa.array([built] * starts.size, pa.timestamp("us", tz="UTC")),
            "geom": pa.array(geoms, pa.binary()),
        }
    )


def _ewkb_linestring_m(lon: np.ndarray, lat: np.ndarray, m: np.ndarray) -> bytes:
    """EWKB of a LINESTRING M in EPSG:4326 (shapely builds no M geometries from arrays)."""
    head = np.array([1], "u1").tobytes()
    head += np.array([_EWKB_LINESTRING_M_SRID, 4326, lon.size], "<u4").tobytes()
    return head + np.column_stack([lon, lat, m]).astype("<f8").tobytes()


@dataclass(frozen=True)
class StoredTracks:
    """Vertices of stored tracks, sorted by track then time."""

    track_id: np.ndarray  # per track
    device_key: np.ndarray  # per track
    worker_code: np.ndarray  # per track
    vertex_track: np.ndarray  # per vertex: position in the per-track arrays
    lon: np.ndarray
    lat: np.ndarray
    t: np.ndarray  # Unix seconds


def read_tracks(session: Session, city: str, start: datetime, end: datetime) -> StoredTracks:
    """Every track of ``city`` that has a vertex in ``[start, end)`` (whole tracks)."""
    with driver_cursor(session) as cur:
        cur.execute(
            "SELECT id, device_key, worker_code, ST_AsBinary(geom) FROM patrol_tracks "
            "WHERE city = %s AND started_at < %s AND ended_at >= %s ORDER BY id",
            (city, end, start),
        )
        rows = cur.fetchall()
    if not rows:
        z, i = np.zeros(0), np.zeros(0, dtype=np.int64)
        return StoredTracks(i, i, z.astype(object), i, z, z, z)
    ids, devices, workers, wkb = zip(*rows, strict=True)
    geoms = shapely.from_wkb(np.array([bytes(b) for b in wkb], dtype=object))
    coords, index = shapely.get_coordinates(geoms, include_m=True, return_index=True)
    return StoredTracks(
        np.array(ids, np.int64),
        np.array(devices, np.int64),
        np.array(workers, dtype=object),
        index.astype(np.int64),
        coords[:, 0],
        coords[:, 1],
        coords[:, 2],
    )

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
from gis.patrol import REASONS, CleaningRules, clean_fixes
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
                "WHERE t.city = %s AND t.device_key = w.k AND t.started_at >= w.lo "
                "AND t.ended_at <= w.hi",
                (keys, lo, hi, self.city),
            )
        device, at_us = fixes["device_key"].astype(np.int64), fixes["at_us"].astype(np.int64)
        if at_us.size == 0:
            return 0, {}
        # Unix seconds, each a function of its own fix alone (no batch-dependent origin): the
        # cleaning then decides alike whichever fixes are cleaned together
        t = at_us / _US
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
    known_length: np.ndarray | None = None,
) -> pa.Table:
    """One row per track, vertices given sorted by track then time.

    ``known_length`` (per vertex) is added to the length of the vertex's track: the length of
    a stretch whose vertices have no ``x``/``y`` (NaN) because it is known already.
    """
    starts = np.flatnonzero(np.r_[True, track[1:] != track[:-1]])
    ends = np.r_[starts[1:], track.size]
    step = np.hypot(np.diff(x), np.diff(y))
    if known_length is None:
        step = np.where(track[1:] == track[:-1], step, 0.0)
        length = np.add.reduceat(np.r_[step, 0.0], starts)
    else:
        step = np.where((track[1:] == track[:-1]) & np.isfinite(step), step, 0.0)
        length = np.add.reduceat(np.r_[step, 0.0], starts) + np.add.reduceat(known_length, starts)
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


@dataclass
class Extension:
    """Tracks of phones whose new fixes continue their last track, ready to write: the stored
    tracks they replace (``replaced`` ids) and the new rows (``table``)."""

    devices: np.ndarray  # device keys extended this way
    replaced: list[int]
    table: pa.Table | None
    counts: dict[str, int]


def context_seconds(rules: CleaningRules) -> float:
    """How far back in time (s) a new fix can change what cleaning decides, beyond the last few
    fixes (a spike of up to three fixes, the stationary window around a fix and a stationary
    run's length): fixes that far before the first changed one decide alike with or without
    the new fixes; the same span again before them gives the cleaning its context."""
    return rules.stationary_window_s * 1.5 + rules.gap_s + 60.0


# a spike reaches back three kept fixes and its test chains through three widths: this many
# fixes before a boundary settle every spike decision after it
_SPIKE_FIXES = 16


class TrackExtender:
    """Appends a batch to its phones' last tracks without re-reading or re-cleaning them.

    For a phone whose new fixes all come after its last stored fix, cleaning can only change
    its decisions near the end of the stored fixes (see :func:`context_seconds`). The stored
    fixes of the last ``2 * context`` are cleaned twice — alone, and with the new fixes — and
    the phone's last stored track is kept up to a cut ``context`` before its last fix, with
    the fixes after the cut as cleaned with the new ones appended. This is taken only where
    it is checked to equal a full rebuild: the cleaning of the stored fixes alone must give the
    stored track after the cut (the context reaches far enough back), and adding the new fixes
    must change nothing before the cut (they reach no further back); any other phone goes
    through the full rebuild (:meth:`TrackWriter.rebuild`).
    """

    def __init__(self, session: Session, city: str, rules: CleaningRules) -> None:
        self.session = session
        self.city = city
        self.rules = rules
        self.writer = TrackWriter(session, city, rules)

    def plan(
        self,
        last: pd.DataFrame,
        context: dict[str, np.ndarray],
        new: dict[str, np.ndarray],
        horizon_us: int | None,
    ) -> Extension:
        """``last``: per candidate phone its last track (device_key, track_id, started_us,
        worker, and the track's vertices as ``lon``/``lat``/``m`` arrays per row); ``context``:
        its stored fixes from some time before that track's end; ``new``: the batch's fixes
        of these phones (not stored yet)."""
        empty = Extension(np.zeros(0, np.int64), [], None, {})
        if last.empty:
            return empty
        last = last.sort_values("device_key", ignore_index=True)
        span = int(context_seconds(self.rules) * _US)
        ctx = _sorted_fixes(context)
        fresh = _sorted_fixes(new)
        # per phone: last stored fix, cut, context start
        keys = last["device_key"].to_numpy(np.int64)
        pos = pd.Index(keys)
        c_dev = pos.get_indexer(ctx["device_key"])
        n_dev = pos.get_indexer(fresh["device_key"])
        last_fix = np.full(keys.size, np.iinfo(np.int64).min)
        np.maximum.at(last_fix, c_dev, ctx["at_us"])
        first_new = np.full(keys.size, np.iinfo(np.int64).max)
        np.minimum.at(first_new, n_dev, fresh["at_us"])
        # the 16th last stored fix of good accuracy bounds where spikes can change
        good = ~(ctx["accuracy_m"] > self.rules.max_accuracy_m)
        rank = _rank_from_end(c_dev[good], keys.size)
        spike_edge = np.full(keys.size, np.iinfo(np.int64).min)
        hit = rank == _SPIKE_FIXES - 1
        spike_edge[c_dev[good][hit]] = ctx["at_us"][good][hit]
        settle = int(self.rules.stationary_window_s * 1.5 + 60.0) * _US
        cut = np.minimum(last_fix - span, spike_edge - settle)
        start = cut - span
        ok = (
            (last_fix > np.iinfo(np.int64).min)
            & (spike_edge > np.iinfo(np.int64).min)
            & (first_new > last_fix)
            & (last["started_us"].to_numpy(np.int64) < start)
        )
        if horizon_us is not None:
            ok &= start >= horizon_us
        # enough fixes in the context before the cut, and the context actually read
        in_ctx = (ctx["at_us"] >= start[c_dev]) & (ctx["at_us"] < cut[c_dev])
        ok &= np.bincount(c_dev[in_ctx & good], minlength=keys.size) >= _SPIKE_FIXES
        ok &= start >= last["read_lo_us"].to_numpy(np.int64)  # the context was read from there
        if not ok.any():
            return empty
        use_c = ok[c_dev] & (ctx["at_us"] >= start[c_dev])
        ctx = {k: v[use_c] for k, v in ctx.items()}
        fresh = {k: v[ok[n_dev]] for k, v in fresh.items()}
        joined = {k: np.concatenate([ctx[k], fresh[k]]) for k in ctx}
        order = np.lexsort((joined["at_us"], joined["device_key"]))
        both = {k: v[order] for k, v in joined.items()}
        is_new = np.r_[np.zeros(ctx["at_us"].size, bool), np.ones(fresh["at_us"].size, bool)]
        is_new = is_new[order]
        reason_b, track_b = self._clean(both)
        alone = {k: v[~is_new] for k, v in both.items()}
        reason_a, track_a = self._clean(alone)

        dev_b = pos.get_indexer(both["device_key"])
        at_b = both["at_us"]
        before = at_b < cut[dev_b]
        start_b = _track_starts(both["device_key"], track_b)
        start_a_full = np.zeros(at_b.size, bool)
        start_a_full[~is_new] = _track_starts(alone["device_key"], track_a)
        reason_a_full = np.zeros(at_b.size, np.uint8)
        reason_a_full[~is_new] = reason_a
        # new fixes change nothing before the cut
        stored_before = before & ~is_new
        differs = stored_before & (
            (reason_a_full != reason_b) | ((reason_b == 0) & (start_a_full != start_b))
        )
        bad = np.zeros(keys.size, bool)
        bad[dev_b[differs]] = True

        # the stored fixes alone, after the cut, give the stored track (all one track)
        verts_dev = np.repeat(np.arange(keys.size), last["lon"].map(len).to_numpy())
        v_lon = np.concatenate(last["lon"].to_list())
        v_lat = np.concatenate(last["lat"].to_list())
        v_at = np.round(np.concatenate(last["m"].to_list()) * _US).astype(np.int64)
        v_after = v_at >= cut[verts_dev]
        kept_a_after = ~is_new & ~before
        kept_a_after[~is_new] &= reason_a == 0
        bad[dev_b[kept_a_after & start_a_full]] = True
        mine = pd.MultiIndex.from_arrays([dev_b[kept_a_after], at_b[kept_a_after]])
        theirs = pd.MultiIndex.from_arrays([verts_dev[v_after], v_at[v_after]])
        bad[np.asarray(mine[~mine.isin(theirs)].get_level_values(0), int)] = True
        bad[np.asarray(theirs[~theirs.isin(mine)].get_level_values(0), int)] = True

        # the link: the last kept fix before the cut is the track's last vertex before it
        kept_b = reason_b == 0
        link_b = np.full(keys.size, -1)
        sel = np.flatnonzero(kept_b & before)
        np.maximum.at(link_b, dev_b[sel], sel)  # sorted by device then time: the last one
        v_before = ~v_after
        link_v = np.full(keys.size, np.iinfo(np.int64).min)
        np.maximum.at(link_v, verts_dev[v_before], v_at[v_before])
        prefix_n = np.bincount(verts_dev[v_before], minlength=keys.size)
        has_link = link_b >= 0
        bad |= ~has_link | (prefix_n < 2)
        bad[has_link] |= at_b[link_b[has_link]] != link_v[has_link]
        ok &= ~bad
        if not ok.any():
            return empty

        # the new tracks: the stored prefix joined to the link's track, then what follows
        take = ok[dev_b] & ~before & kept_b
        pre = ok[verts_dev] & v_before
        label_pre = track_b[link_b[verts_dev[pre]]]
        track = np.r_[label_pre, track_b[take]]
        device = np.r_[keys[verts_dev[pre]], both["device_key"][take]]
        at_us = np.r_[v_at[pre], at_b[take]]
        lon = np.r_[v_lon[pre], both["lon"][take]]
        lat = np.r_[v_lat[pre], both["lat"][take]]
        # lengths: the stored track's, less its stretch from the link on, plus the new stretch
        # from the link on (only those vertices are projected; a day's track is not)
        crs = utm_crs_for_xy(both["lon"], both["lat"])
        gone = ok[verts_dev] & (v_at >= link_v[verts_dev])
        gx, gy = to_metric_xy(v_lon[gone], v_lat[gone], crs)
        gdev = verts_dev[gone]
        same = gdev[1:] == gdev[:-1]
        gstep = np.where(same, np.hypot(np.diff(gx), np.diff(gy)), 0.0)
        removed = np.bincount(gdev[:-1], weights=gstep, minlength=keys.size)
        known = np.zeros(at_us.size)
        prefix_len = last["length_m"].to_numpy(np.float64) - removed
        x = np.full(at_us.size, np.nan)
        y = np.full(at_us.size, np.nan)
        # projected: the link (last stored vertex kept) and the new stretch after it
        placed = np.r_[v_at[pre] == link_v[verts_dev[pre]], np.ones(int(take.sum()), bool)]
        x[placed], y[placed] = to_metric_xy(lon[placed], lat[placed], crs)
        order = np.lexsort((at_us, track))
        # the known length rides on each extended track's first vertex
        first_vertex = np.zeros(at_us.size, bool)
        pre_dev = verts_dev[pre]
        first_vertex[: pre_dev.size] = np.r_[True, pre_dev[1:] != pre_dev[:-1]]
        known[: pre_dev.size][first_vertex[: pre_dev.size]] = prefix_len[
            pre_dev[first_vertex[: pre_dev.size]]
        ]
        worker_of = dict(zip(keys.tolist(), last["worker"], strict=True))
        table = _track_table(
            self.city,
            track[order],
            device[order],
            at_us[order],
            lon[order],
            lat[order],
            x[order],
            y[order],
            worker_of,
            known_length=known[order],
        )
        decided = ok[dev_b] & ~before
        found = np.bincount(reason_b[decided], minlength=len(REASONS))
        counts = {name: int(n) for name, n in zip(REASONS, found, strict=True)}
        ids = last["track_id"].to_numpy(np.int64)[ok]
        return Extension(keys[ok], ids.tolist(), table, counts)

    def write(self, extension: Extension) -> int:
        """Replace the extended tracks; returns the number of tracks written."""
        if extension.table is None:
            return 0
        with driver_cursor(self.session) as cur:
            # the city too: on Citus that makes it a one-shard statement
            cur.execute(
                "DELETE FROM patrol_tracks WHERE city = %s AND id = ANY(%s)",
                (self.city, extension.replaced),
            )
            copy_arrow(cur, "patrol_tracks", extension.table)
        return extension.table.num_rows

    def _clean(self, fixes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Reasons and track numbers of fixes sorted by device then time (as the full rebuild
        cleans them: same projection, time origin, sessions)."""
        device, at_us = fixes["device_key"], fixes["at_us"]
        t = at_us / _US  # as TrackWriter.rebuild
        crs = utm_crs_for_xy(fixes["lon"], fixes["lat"])
        x, y = to_metric_xy(fixes["lon"], fixes["lat"], crs)
        session = self.writer._session_numbers(device, at_us, np.unique(device).tolist())
        cleaned = clean_fixes(
            device, t, x, y, accuracy_m=fixes["accuracy_m"], session=session, rules=self.rules
        )
        return cleaned.reason, cleaned.track


def _sorted_fixes(fixes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = ("device_key", "at_us", "lon", "lat", "accuracy_m")
    out = {n: np.asarray(fixes[n]) for n in names}
    out["device_key"] = out["device_key"].astype(np.int64)
    out["at_us"] = out["at_us"].astype(np.int64)
    out["accuracy_m"] = out["accuracy_m"].astype(np.float64)
    order = np.lexsort((out["at_us"], out["device_key"]))
    return {n: v[order] for n, v in out.items()}


def _rank_from_end(group: np.ndarray, n_groups: int) -> np.ndarray:
    """For items sorted by group: 0 for each group's last item, 1 for the one before, …"""
    sizes = np.bincount(group, minlength=n_groups)
    ends = np.cumsum(sizes)
    return ends[group] - 1 - np.arange(group.size)


def _track_starts(device: np.ndarray, track: np.ndarray) -> np.ndarray:
    """For fixes sorted by device then time: whether a kept fix starts a track (its device's
    previous kept fix is in another track, or there is none)."""
    out = np.zeros(track.size, bool)
    kept = np.flatnonzero(track >= 0)
    if kept.size:
        d, k = device[kept], track[kept]
        out[kept] = np.r_[True, (d[1:] != d[:-1]) | (k[1:] != k[:-1])]
    return out

"""GPS fix intake: validate a batch, store new fixes with binary COPY, rebuild affected tracks.

One path serves the batch API, CSV/GPX uploads and the CLI:

1. **Validate** every row (device registered, datum known, lon/lat in range, time readable,
   not in the future, inside the city, in time order per device). ``mode="all"`` refuses the
   whole batch on any bad row; ``mode="rows"`` stores the good rows and lists the bad ones.
2. **Store** the fixes not stored yet: a fix is identified by device and timestamp, so a resent
   batch stores nothing twice (counted as ``replayed``; the stored copy stays). New fixes go in
   with one binary COPY.
3. **Rebuild tracks** of the affected devices over the batch's time window, widened by the
   track gap, to the tracks it touches and by the cleaning's reach, from the stored and the new
   fixes together (late uploads from a phone that was offline slot into place). A phone whose
   new fixes continue its last track has that track extended instead, from its last minutes of
   stored fixes (:class:`~service.patrol.tracks.TrackExtender`); either way the tracks are
   those one rebuild of all the phone's fixes gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gis import datum as datums
from gis.limits import FileLimits, check_csv
from gis.metric import to_metric, to_metric_xy, utm_crs_for_geometries
from gis.patrol import CleaningRules
from service.accounts.principal import Principal
from service.clock import now
from service.db.engine import driver_cursor
from service.db.models import Device, Grid
from service.db.pgcopy import copy_arrow
from service.errors import InvalidInput, NotFound
from service.grids.repository import geom_of
from service.http.rowerrors import BulkReport, RowErrors
from service.http.timeparse import epoch_us, from_epoch_us
from service.http.uploads import file_refusals
from service.patrol.partitions import retention_horizon
from service.patrol.tracks import Extension, TrackExtender, TrackWriter, context_seconds
from service.patrol.workers import PatrolService
from service.settings import AppSettings

_US = 1_000_000
_LOCK_SPACE = 0x6678  # advisory-lock namespace of fix intake ("fx")
_LOCK_BUCKETS = 256
_LAST_US = 253_402_300_799 * _US  # 9999-12-31 23:59:59 UTC: about the last datetime
_OFFSET = r"(?:[zZ]|[+-]\d{2}:?\d{2})$"


@dataclass
class IngestReport(BulkReport):
    """What one batch of fixes did: fixes stored, repeats inside the batch, phones whose tracks
    were rebuilt, and what cleaning left out."""

    stored: int = 0
    repeated: int = 0
    devices: int = 0
    tracks: int = 0
    cleaning: dict[str, int] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        """Fixes stored and repeated, phones and tracks rebuilt, cleaning counts."""
        return {
            "stored": self.stored,
            "repeated_in_batch": self.repeated,
            "devices": self.devices,
            "tracks_rebuilt": self.tracks,
            "cleaning": self.cleaning,
        }


def read_fix_file(
    path: Path, device_id: str | None = None, limits: FileLimits | None = None
) -> pd.DataFrame:
    """Fixes from a CSV (``device_id, time, lon, lat[, accuracy_m, speed_mps, datum]``) or a GPX
    file (track points with times; ``device_id`` names the phone that recorded it), within
    ``limits``."""
    suffix = path.suffix.lower()
    limits = limits or FileLimits()
    try:
        with file_refusals():
            frame = _read_table(path, suffix, limits)
    except (pa.ArrowInvalid, ValueError, OSError, DataSourceError, DataLayerError) as exc:
        raise InvalidInput(f"cannot read the fix file: {exc}", field="file") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if device_id is not None:
        if "device_id" in frame.columns and frame["device_id"].notna().any():
            raise InvalidInput(
                "the file has a device_id column; do not also give device_id", field="device_id"
            )
        frame["device_id"] = device_id
    return frame


def _read_table(path: Path, suffix: str, limits: FileLimits) -> pd.DataFrame:
    if suffix == ".gpx":
        return _read_gpx(path, limits)
    if suffix == ".csv":
        check_csv(path, limits)
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={"device_id": pa.string(), "time": pa.string()},
                strings_can_be_null=True,
            ),
        ).to_pandas()
    raise InvalidInput(
        f"cannot read {path.suffix or 'this'} files as fixes; send CSV or GPX", field="file"
    )


def _read_gpx(path: Path, limits: FileLimits) -> pd.DataFrame:
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(path)}
    layer = "track_points" if "track_points" in layers else "route_points"
    if layer not in layers:
        raise InvalidInput("the GPX file has no track or route points", field="file")
    count = int(pyogrio.read_info(path, layer=layer, force_feature_count=True)["features"])
    limits.check_rows(count, "track points")
    # pyogrio allocates max_features rows up front: the count, not the limit
    gdf = pyogrio.read_dataframe(path, layer=layer, max_features=count + 1)
    if "time" not in gdf.columns:
        raise InvalidInput("the GPX points carry no <time>; fixes need one", field="file")
    times = pd.to_datetime(gdf["time"], utc=True, errors="coerce")
    return pd.DataFrame(
        {
            "time": times.map(lambda v: None if pd.isna(v) else v.isoformat()).astype(object),
            "lon": gdf.geometry.x.to_numpy(),
            "lat": gdf.geometry.y.to_numpy(),
        }
    )


class FixIngester:
    """One batch of fixes on one session (the caller commits)."""

    def __init__(
        self,
        session: Session,
        settings: AppSettings,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.rules = CleaningRules(
            max_accuracy_m=settings.patrol.max_accuracy_m,
            max_speed_mps=settings.patrol.max_speed_mps,
            gap_s=settings.patrol.gap_s,
            stationary_radius_m=settings.patrol.stationary_radius_m,
            stationary_window_s=settings.patrol.stationary_window_s,
        )
        self.progress = progress or (lambda step, done, total: None)

    def run(
        self, frame: pd.DataFrame, by: Principal, *, mode: str = "all", datum: str = "wgs84"
    ) -> IngestReport:
        """Validate, store and rebuild tracks; see the module docstring. Every device of the
        batch must belong to a worker in ``by``'s scope (403 naming it, nothing stored)."""
        if mode not in ("all", "rows"):
            raise InvalidInput("mode must be 'all' (all or nothing) or 'rows'", field="mode")
        try:
            datums.check_datum(datum)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="datum") from exc
        if len(frame) == 0:
            raise InvalidInput("the batch has no fixes", field="fixes")
        report = IngestReport(rows=len(frame))
        clock = time.perf_counter()
        cols, errors = self._validate(frame, datum)
        known = cols["worker"][cols["device_key"] >= 0]
        PatrolService(self.session, self.settings).check_fix_scope(list(set(known)), by)
        report.seconds["validate"] = time.perf_counter() - clock
        report.record(errors)
        if mode == "all":
            report.refuse_any("fix(es)")
        good = {k: v[~errors.bad] for k, v in cols.items()}
        good, report.repeated = _first_per_key(good)
        self.progress("validate", len(frame), len(frame))

        clock = time.perf_counter()
        self._lock_devices(good["device_key"])
        extender = TrackExtender(self.session, self.city, self.rules)
        extension = self._plan_extension(extender, good)
        # every other phone: its stored fixes in the batch's window, replays told apart
        rest = ~np.isin(good["device_key"], extension.devices)
        others = {k: v[rest] for k, v in good.items()}
        windows = self._windows(others)
        stored = self._stored_fixes(windows)
        fresh = ~_isin_keys(others, stored)
        report.replayed = int((~fresh).sum())
        new = {k: v[fresh] for k, v in others.items()}
        appended = {k: v[~rest] for k, v in good.items()}  # all after the phone's stored fixes
        report.seconds["plan"] = time.perf_counter() - clock
        clock = time.perf_counter()
        with driver_cursor(self.session) as cur:
            report.stored = copy_arrow(
                cur,
                "gps_fixes",
                self._fix_table({k: np.concatenate([new[k], appended[k]]) for k in new}),
            )
        report.seconds["store"] = time.perf_counter() - clock
        self.progress("store", report.stored, report.stored)

        clock = time.perf_counter()
        report.devices = len(windows) + extension.devices.size
        report.tracks, report.cleaning = self._rebuild_tracks(windows, stored, new)
        report.tracks += extender.write(extension)
        for name, n in extension.counts.items():
            report.cleaning[name] = report.cleaning.get(name, 0) + n
        report.seconds["tracks"] = time.perf_counter() - clock
        return report

    # -- validation ----------------------------------------------------------------------------
    def _validate(self, frame: pd.DataFrame, datum: str) -> tuple[dict[str, np.ndarray], RowErrors]:
        for name in ("device_id", "time", "lon", "lat"):
            if name not in frame.columns:
                raise InvalidInput(
                    f"fixes need a {name!r} column (device_id, time, lon, lat; optional "
                    "accuracy_m, speed_mps, datum)",
                    field=name,
                )
        n = len(frame)
        errors = RowErrors(n)
        device_id = frame["device_id"].astype(object).to_numpy()
        known = self._devices()
        # looked up once per distinct phone (a batch has a few hundred), not once per row
        codes, uniques = pd.factorize(device_id, use_na_sentinel=True)
        found = [known.get(d, (-1, "")) for d in uniques]
        unique_key = np.array([k for k, _ in found] + [-1], dtype=np.int64)
        unique_worker = np.array([w for _, w in found] + [""], dtype=object)
        device_key = unique_key[codes]  # code -1 (a missing id) picks the last entry: unknown
        unknown = device_key < 0
        message = np.empty(n, dtype=object)
        message[unknown] = [f"unknown device {d!r}; register it first" for d in device_id[unknown]]
        errors.add(unknown, "device_id", message)
        lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(float)
        errors.add(~(np.abs(lon) <= 180), "lon", "lon must be a number in -180..180")
        errors.add(~(np.abs(lat) <= 90), "lat", "lat must be a number in -90..90")
        row_datum = (
            frame["datum"].fillna(datum).astype(str).str.lower().to_numpy(object)
            if "datum" in frame.columns
            else np.full(n, datum, dtype=object)
        )
        errors.add(
            ~np.isin(row_datum, list(datums.DATUMS)),
            "datum",
            f"unknown datum; use one of {', '.join(datums.DATUMS)}",
        )
        at_us = self._times(frame["time"], errors)
        limit = (now().timestamp() + self.settings.patrol.future_tolerance_s) * _US
        errors.add(at_us > limit, "time", "the fix is in the future; check the phone's clock")
        horizon = retention_horizon(self.settings)
        if horizon is not None:
            errors.add(
                (at_us < epoch_us(horizon)) & (at_us != np.iinfo(np.int64).min),
                "time",
                f"the fix is older than the {self.settings.patrol.fix_retention_days} days raw "
                "fixes are kept (CITYGRID_PATROL_FIX_RETENTION_DAYS); its day is no longer stored",
            )
        wlon, wlat = lon.copy(), lat.copy()
        for name in datums.DATUMS:
            pick = (row_datum == name) & ~errors.bad
            if pick.any() and name != "wgs84":
                wlon[pick], wlat[pick] = datums.to_wgs84(lon[pick], lat[pick], name)
        ok = ~errors.bad
        inside = np.zeros(n, dtype=bool)
        inside[ok] = self._inside_city(wlon[ok], wlat[ok])
        errors.add(
            ~inside,
            "lon",
            f"the fix lies more than {self.settings.patrol.outside_city_m:g} m outside the city "
            "(wrong datum or swapped lon/lat?)",
        )
        errors.add(_out_of_order(device_key, at_us, ~errors.bad), "time", _ORDER_HELP)
        cols = {
            "device_key": device_key,
            "at_us": at_us,
            "lon": wlon,
            "lat": wlat,
            "accuracy_m": _optional_float(frame, "accuracy_m", errors),
            "speed_mps": _optional_float(frame, "speed_mps", errors),
            "worker": unique_worker[codes],
        }
        return cols, errors

    def _times(self, values: pd.Series, errors: RowErrors) -> np.ndarray:
        """Microseconds since the epoch; naive times are local (``CITYGRID_TIMEZONE``)."""
        if pd.api.types.is_numeric_dtype(values):
            at = pd.to_datetime(values, unit="s", utc=True, errors="coerce")
        else:
            text = values.astype("string").str.strip()
            has_offset = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(bool)
            at = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
            if has_offset.any():
                at[has_offset] = pd.to_datetime(
                    text[has_offset], utc=True, errors="coerce", format="ISO8601"
                )
            if (~has_offset).any():
                local = pd.to_datetime(text[~has_offset], errors="coerce", format="ISO8601")
                at[~has_offset] = local.dt.tz_localize(
                    self.settings.grids.timezone, ambiguous="NaT", nonexistent="NaT"
                ).dt.tz_convert("UTC")
        at = at.astype("datetime64[us, UTC]")
        missing = at.isna().to_numpy()
        errors.add(missing, "time", "time must be ISO 8601 (e.g. 2026-11-20T08:00:05+08:00)")
        us = at.to_numpy(dtype="datetime64[us]").astype(np.int64)
        return np.where(missing, np.iinfo(np.int64).min, us)

    def _devices(self) -> dict[str, tuple[int, str]]:
        rows = self.session.execute(
            select(Device.device_id, Device.id, Device.worker_code).where(Device.city == self.city)
        )
        return {d: (k, w) for d, k, w in rows}

    def _inside_city(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        if lon.size == 0:
            return np.zeros(0, dtype=bool)
        area = self.session.scalars(
            select(Grid).where(
                Grid.city == self.city, Grid.level == "city", Grid.valid_to.is_(None)
            )
        ).first()
        if area is None:
            raise NotFound("the city boundary is not registered yet; import the grids first")
        boundary = geom_of(area)
        crs = utm_crs_for_geometries(boundary)
        zone = to_metric(boundary, crs).buffer(self.settings.patrol.outside_city_m)
        shapely.prepare(zone)
        x, y = to_metric_xy(lon, lat, crs)
        return shapely.contains_xy(zone, x, y)

    # -- storage -------------------------------------------------------------------------------
    def _lock_devices(self, device_key: np.ndarray) -> None:
        """Serialise batches of the same phones until this transaction ends.

        Two batches of one phone at once would both miss the other's fixes (a duplicate-key
        error for the second) and both rebuild the same tracks. Transaction-scoped advisory
        locks on 256 buckets of device keys, taken in order (no deadlock), make the second
        wait and then see the first's fixes as replayed.
        """
        buckets = sorted({int(k) % _LOCK_BUCKETS for k in np.unique(device_key)})
        with driver_cursor(self.session) as cur:
            cur.execute(
                "SELECT count(pg_advisory_xact_lock(%s, b)) FROM unnest(%s::int[]) AS b",
                (_LOCK_SPACE, buckets),
            )

    def _plan_extension(self, extender: TrackExtender, good: dict[str, np.ndarray]) -> Extension:
        """The phones whose batch continues their last track, and their new tracks (see
        :class:`~service.patrol.tracks.TrackExtender`); the others are rebuilt in full."""
        none = Extension(np.zeros(0, np.int64), [], None, {})
        if good["at_us"].size == 0:
            return none
        span = (
            pd.DataFrame({"device_key": good["device_key"], "at": good["at_us"]})
            .groupby("device_key")["at"]
            .min()
        )
        keys = span.index.to_numpy()
        gap = int(self.rules.gap_s * _US)
        # only a last track ending within the gap before the batch can continue into it
        with driver_cursor(self.session) as cur:
            cur.execute(
                "SELECT w.k, t.id, t.started_at, t.ended_at, t.length_m, ST_AsBinary(t.geom) "
                "FROM unnest(%s::bigint[], %s::timestamptz[]) AS w(k, lo) "
                "CROSS JOIN LATERAL (SELECT id, started_at, ended_at, length_m, geom "
                "FROM patrol_tracks p WHERE p.device_key = w.k AND p.city = %s "
                "ORDER BY p.started_at DESC LIMIT 1) t "
                "WHERE t.ended_at >= w.lo",
                (keys.tolist(), from_epoch_us(span.to_numpy() - gap), self.city),
            )
            rows = cur.fetchall()
        if not rows:
            return none
        k, ids, started, ended, length, wkb = zip(*rows, strict=True)
        geoms = shapely.from_wkb(np.array([bytes(b) for b in wkb], dtype=object))
        coords, index = shapely.get_coordinates(geoms, include_m=True, return_index=True)
        bounds = np.r_[0, np.cumsum(np.bincount(index, minlength=len(rows)))]
        worker = pd.Series(good["worker"]).groupby(good["device_key"]).first()
        reach = int(3 * context_seconds(self.rules) * _US)
        last = pd.DataFrame(
            {
                "device_key": np.array(k, np.int64),
                "track_id": np.array(ids, np.int64),
                "started_us": [epoch_us(v) for v in started],
                "read_lo_us": [epoch_us(v) - reach for v in ended],
                "worker": worker.loc[list(k)].to_numpy(),
                "length_m": np.array(length, np.float64),
                "lon": [coords[a:b, 0] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
                "lat": [coords[a:b, 1] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
                "m": [coords[a:b, 2] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
            }
        )
        # stored fixes from well before the track's end on, with no upper bound (whatever the
        # clock said when they came): a stored fix after the batch's first one sends the phone
        # to the full rebuild
        latest = _LAST_US
        context = self._stored_fixes(
            pd.DataFrame(
                {
                    "device_key": last["device_key"],
                    "lo": last["read_lo_us"],
                    "hi": np.full(len(last), latest),
                }
            )
        )
        mine = np.isin(good["device_key"], last["device_key"].to_numpy())
        horizon = retention_horizon(self.settings)
        return extender.plan(
            last,
            context,
            {k: v[mine] for k, v in good.items()},
            None if horizon is None else int(epoch_us(horizon)),
        )

    def _windows(self, good: dict[str, np.ndarray]) -> pd.DataFrame:
        """Per device: the batch's time span widened by the gap and to the tracks it touches,
        then to tracks that end or start within the cleaning's reach of it (a track split at
        a jump, seconds from the next), and by that reach: what the cleaning decides inside
        the window does not depend on fixes outside it, as in a rebuild of every fix."""
        if good["at_us"].size == 0:
            return pd.DataFrame(columns=["device_key", "lo", "hi", "worker"])
        span = (
            pd.DataFrame({"device_key": good["device_key"], "at": good["at_us"]})
            .groupby("device_key")["at"]
            .agg(["min", "max"])
        )
        gap = int(self.rules.gap_s * _US)
        reach = int(context_seconds(self.rules) * _US)
        lo = (span["min"] - gap).to_numpy().copy()
        hi = (span["max"] + gap).to_numpy().copy()
        keys = span.index.to_numpy()
        margin = 0  # the first round finds the tracks the window touches, as before
        for _ in range(100):
            with driver_cursor(self.session) as cur:
                cur.execute(
                    "SELECT w.k, min(t.started_at), max(t.ended_at) FROM "
                    "unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS w(k, lo, hi) "
                    "JOIN patrol_tracks t ON t.device_key = w.k AND t.ended_at >= w.lo "
                    "AND t.started_at <= w.hi GROUP BY w.k",
                    (keys.tolist(), from_epoch_us(lo - margin), from_epoch_us(hi + margin)),
                )
                touched = {k: (epoch_us(a), epoch_us(b)) for k, a, b in cur.fetchall()}
            widened = False
            for i, k in enumerate(keys):
                if k in touched:
                    a, b = touched[k]
                    widened |= a < lo[i] or b > hi[i]
                    lo[i] = min(lo[i], a)
                    hi[i] = max(hi[i], b)
            if not widened and margin:
                break
            margin = reach
        lo -= reach
        hi += reach
        horizon = retention_horizon(self.settings)
        if horizon is not None:
            # raw fixes before the retention horizon are gone (their partitions dropped): a
            # rebuild reaching back there would replace whole tracks by what is left of them,
            # so windows stop at the horizon and tracks that start before it stay as they are
            lo = np.maximum(lo, epoch_us(horizon))
        worker = pd.Series(good["worker"]).groupby(good["device_key"]).first()
        return pd.DataFrame(
            {"device_key": keys, "lo": lo, "hi": hi, "worker": worker.loc[keys].to_numpy()}
        )

    def _stored_fixes(self, windows: pd.DataFrame) -> dict[str, np.ndarray]:
        """The fixes already stored inside the windows.

        A batch that continues its phones' tracks reads back every fix of those tracks (a
        shift's worth). The server packs each device's fixes into one ``bytea`` of fixed-width
        big-endian values (:data:`_STORED_ROW`), read straight into numpy arrays: one row per
        device instead of one per fix (a binary COPY out hands every fix over as its own
        message, which cost more Python time than anything else in the intake).
        """
        names = ("device_key", "at_us", "lon", "lat", "accuracy_m")
        if windows.empty:
            return {n: np.zeros(0) for n in names}
        sql, params = stored_fixes_query(self.city, windows)
        packed = (
            "SELECT string_agg(int8send(r.device_key) || timestamptz_send(r.at) || "
            "float8send(r.lon) || float8send(r.lat) || float8send(r.accuracy_m), ''::bytea) "
            f"FROM ({sql}) AS r(device_key, at, lon, lat, accuracy_m) GROUP BY r.device_key"
        )
        with driver_cursor(self.session) as cur:
            cur.execute(packed, params, binary=True)
            data = b"".join(bytes(b) for (b,) in cur.fetchall())
        rows = np.frombuffer(data, dtype=_STORED_ROW)
        return {
            "device_key": rows["device_key"].astype(np.int64),
            "at_us": rows["at"].astype(np.int64) + _PG_EPOCH_US,
            "lon": rows["lon"].astype(float),
            "lat": rows["lat"].astype(float),
            "accuracy_m": rows["accuracy_m"].astype(float),
        }

    def _fix_table(self, new: dict[str, np.ndarray]) -> pa.Table:
        n = new["at_us"].size
        return pa.table(
            {
                "city": pa.array(np.full(n, self.city, dtype=object), pa.string()),
                "device_key": pa.array(new["device_key"], pa.int64()),
                "at": pa.array(new["at_us"], pa.timestamp("us", tz="UTC")),
                "lon": pa.array(new["lon"], pa.float64()),
                "lat": pa.array(new["lat"], pa.float64()),
                "accuracy_m": pa.array(new["accuracy_m"], pa.float32(), from_pandas=True),
                "speed_mps": pa.array(new["speed_mps"], pa.float32(), from_pandas=True),
            }
        )

    # -- tracks --------------------------------------------------------------------------------
    def _rebuild_tracks(
        self, windows: pd.DataFrame, stored: dict[str, np.ndarray], new: dict[str, np.ndarray]
    ) -> tuple[int, dict[str, int]]:
        if windows.empty:
            return 0, {}
        fixes = {
            k: np.concatenate([np.asarray(stored[k]), np.asarray(new[k])])
            for k in ("device_key", "at_us", "lon", "lat", "accuracy_m")
        }
        writer = TrackWriter(self.session, self.city, self.rules)
        return writer.rebuild(windows, fixes, self.progress)


def stored_fixes_query(city: str, windows: pd.DataFrame) -> tuple[str, tuple[Any, ...]]:
    """SQL and parameters reading the stored fixes of ``windows`` (device_key, lo, hi in µs).

    Besides each device's own window, the fixes are bounded by the span of all windows as
    constants: the planner prunes ``gps_fixes`` to the day partitions of that span (one for a
    batch within a local day) instead of touching, and locking, every partition.
    """
    lo, hi = windows["lo"].to_numpy(), windows["hi"].to_numpy()
    # one index range scan per device on (city, device_key, at), whatever the statistics of
    # freshly loaded partitions say: as a join, the planner may scan the city's whole index
    # range of the span instead (OFFSET 0 keeps the LATERAL subquery from being flattened)
    sql = (
        "SELECT f.device_key, f.at, f.lon, f.lat, coalesce(f.accuracy_m::float8, 'NaN') "
        "FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS w(k, lo, hi) "
        "CROSS JOIN LATERAL (SELECT * FROM gps_fixes g WHERE g.city = %s AND g.device_key = w.k "
        "AND g.at BETWEEN w.lo AND w.hi AND g.at BETWEEN %s AND %s OFFSET 0) AS f"
    )
    params = (
        windows["device_key"].tolist(),
        from_epoch_us(lo),
        from_epoch_us(hi),
        city,
        from_epoch_us(np.array([lo.min()]))[0],
        from_epoch_us(np.array([hi.max()]))[0],
    )
    return sql, params


# one fix as _stored_fixes packs it: big-endian int8, timestamptz (µs since 2000-01-01), float8s
_STORED_ROW = np.dtype(
    [
        ("device_key", ">i8"),
        ("at", ">i8"),
        ("lon", ">f8"),
        ("lat", ">f8"),
        ("accuracy_m", ">f8"),
    ]
)
_PG_EPOCH_US = 946_684_800 * _US


_ORDER_HELP = "out of order: an earlier row of this device has a later time; send oldest first"


def _optional_float(frame: pd.DataFrame, name: str, errors: RowErrors) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    raw = frame[name]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(float)
    errors.add(raw.notna().to_numpy() & ~(values >= 0), name, f"{name} must be a number >= 0")
    return values


def _out_of_order(device_key: np.ndarray, at_us: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Rows earlier than an earlier (valid) row of the same device, in the order received."""
    t = pd.Series(np.where(ok, at_us, np.iinfo(np.int64).min))
    previous = t.groupby(device_key).cummax().groupby(device_key).shift(1)
    return ok & (t < previous.fillna(np.iinfo(np.int64).min)).to_numpy()


def _first_per_key(cols: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Drop repeats of a (device, time) within the batch, keeping the first."""
    key = pd.DataFrame({"d": cols["device_key"], "t": cols["at_us"]})
    repeat = key.duplicated().to_numpy()
    return {k: v[~repeat] for k, v in cols.items()}, int(repeat.sum())


def _isin_keys(good: dict[str, np.ndarray], stored: dict[str, np.ndarray]) -> np.ndarray:
    if stored["at_us"].size == 0:
        return np.zeros(good["at_us"].size, dtype=bool)
    have = pd.MultiIndex.from_arrays([stored["device_key"], stored["at_us"]])
    return pd.MultiIndex.from_arrays([good["device_key"], good["at_us"]]).isin(have)

"""Bulk case intake: a million rows mapped and stored in one vectorised pass.

The same rules as ``CaseService.intake`` — grid valid at report time with boundary candidates,
hotspots active then (nearest first), routing, working-time deadline, duplicates, recurrence,
idempotency — computed with numpy/shapely over whole columns, then streamed into PostGIS with
COPY while the next chunk is being encoded. ``mode="all"`` stores everything or nothing;
``mode="rows"`` stores the good rows and reports the bad ones.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Queue
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pyogrio.errors import DataLayerError, DataSourceError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gis import datum as datums
from gis.hotspots import HotspotIndex
from gis.locate import GridIndex
from gis.metric import to_metric_xy, utm_crs_for_xy
from gis.proximity import duplicate_links, recurrence_links
from service.cases import SOURCES
from service.catalogue import load_router
from service.clock import work_clock
from service.errors import InvalidInput
from service.factory import AppSettings
from service.grid_index import index_for
from service.models import Case, Category, Hotspot
from service.registry import now
from service.repository import GridRepository, geom_of
from service.workflow import OPEN_STATUSES

MAX_ERRORS_LISTED = 1000
CHUNK_ROWS = 50_000
COLUMNS = (
    "id",
    "city",
    "category_code",
    "source",
    "status",
    "description",
    "address",
    "reporters",
    "fields",
    "reported_at",
    "deadline_at",
    "updated_at",
    "datum",
    "lon",
    "lat",
    "grid_id",
    "grid_code",
    "grid_candidates",
    "hotspot_ids",
    "department",
    "routed_by",
    "duplicate_of",
    "recurring_of",
    "idempotency_key",
    "request_hash",
)


@dataclass
class ImportReport:
    """What a bulk import did."""

    rows: int = 0
    created: int = 0
    replayed: int = 0
    unassigned: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "rows": self.rows,
            "created": self.created,
            "replayed": self.replayed,
            "unassigned": self.unassigned,
            "error_count": self.error_count,
            "errors": self.errors,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def read_case_file(path: Path) -> pd.DataFrame:
    """A case table from CSV, (Geo)Parquet or a vector file (GeoJSON, GPKG …)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={
                        "category_code": pa.string(),
                        "idempotency_key": pa.string(),
                        "reporter_phone": pa.string(),
                    },
                    strings_can_be_null=True,
                ),
            ).to_pandas()
        elif suffix in (".parquet", ".geoparquet"):
            frame = pd.read_parquet(path)
        else:
            gdf = gpd.read_file(path)
            if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
                gdf = gdf.to_crs(4326)
            frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
            frame["lon"], frame["lat"] = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    except (pa.ArrowInvalid, ValueError, OSError, DataSourceError, DataLayerError) as exc:
        raise InvalidInput(
            f"cannot read the case file (CSV, Parquet or a vector file such as GeoJSON): {exc}",
            field="file",
        ) from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


class _Errors:
    """Per-row errors collected column by column."""

    def __init__(self, n: int) -> None:
        self.field = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)

    def add(self, mask: np.ndarray, name: str, reason: str | np.ndarray) -> None:
        fresh = mask & (self.field == None)  # noqa: E711 - elementwise on objects
        self.field[fresh] = name
        self.reason[fresh] = reason if isinstance(reason, str) else reason[fresh]

    @property
    def bad(self) -> np.ndarray:
        return self.field != None  # noqa: E711

    def listed(self) -> list[dict[str, Any]]:
        rows = np.flatnonzero(self.bad)[:MAX_ERRORS_LISTED]
        return [{"row": int(r) + 1, "field": self.field[r], "reason": self.reason[r]} for r in rows]


class CaseImporter:
    """One bulk import on one session (the caller commits)."""

    def __init__(
        self,
        session: Session,
        settings: AppSettings,
        progress: Callable[[str, int], None] | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.progress = progress or (lambda step, done: None)

    def run(
        self,
        frame: pd.DataFrame,
        *,
        mode: str = "all",
        datum: str = "wgs84",
        allow_unassigned: bool = False,
    ) -> ImportReport:
        """Validate, map and store ``frame``; see the module docstring."""
        if mode not in ("all", "rows"):
            raise InvalidInput("mode must be 'all' (all or nothing) or 'rows'", field="mode")
        if not len(frame):
            raise InvalidInput("the file has no rows", field="file")
        missing = [c for c in ("category_code", "lon", "lat") if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"missing column(s): {', '.join(missing)} (needed: category_code, lon, lat)",
                field="file",
            )
        report = ImportReport(rows=len(frame))
        with _timed(report, "validate"):
            cols = self._validate(frame, datum)
            errors = cols.pop("errors")
        self.progress("validated", len(frame))
        with _timed(report, "locate grids"):
            epochs = self._locate(cols, errors, allow_unassigned)
        replay = self._idempotency(cols, errors)
        report.replayed = int(replay.sum())
        report.error_count = int(errors.bad.sum())
        report.errors = errors.listed()
        if report.error_count and mode == "all":
            first = report.errors[0]
            raise InvalidInput(
                f"{report.error_count} of {len(frame)} row(s) rejected, nothing stored; first: "
                f"row {first['row']}: {first['reason']}",
                field="rows",
                errors=report.errors,
                error_count=report.error_count,
            )
        keep = ~errors.bad & ~replay
        if not keep.any():
            return report
        cols = {k: v[keep] for k, v in cols.items()}
        with _timed(report, "duplicates+recurrence"):
            self._proximity(cols)
        with _timed(report, "map+store (pipelined)"):
            self._store(cols, self._context(epochs))
        report.created = int(keep.sum())
        report.unassigned = int((cols["grid_code"] == None).sum())  # noqa: E711
        return report

    def _cursor(self) -> Any:
        """A raw psycopg cursor on the session's connection (arrays and COPY, no ORM cost)."""
        # An open session connection always has its driver connection (Optional in the stubs).
        return cast(Any, self.session.connection().connection.driver_connection).cursor()

    # -- validation ------------------------------------------------------------------------
    def _validate(self, frame: pd.DataFrame, default_datum: str) -> dict[str, Any]:
        n = len(frame)
        errors = _Errors(n)
        cats = {
            c.code: c
            for c in self.session.scalars(select(Category).where(Category.city == self.city))
        }
        code = frame["category_code"].astype("string").fillna("").str.strip().to_numpy(object)
        errors.add(
            ~np.isin(code, list(cats)), "category_code", "unknown category; see GET /api/categories"
        )
        lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(float)
        errors.add(
            ~np.isfinite(lon) | (np.abs(lon) > 180), "lon", "lon must be a number in -180..180"
        )
        errors.add(~np.isfinite(lat) | (np.abs(lat) > 90), "lat", "lat must be a number in -90..90")
        datum_col = (
            frame["datum"].astype("string").fillna(default_datum).to_numpy(object)
            if "datum" in frame
            else np.full(n, default_datum, dtype=object)
        )
        errors.add(
            ~np.isin(datum_col, datums.DATUMS), "datum", "datum must be wgs84, gcj02 or bd09"
        )
        source = (
            frame["source"].astype("string").fillna("import").to_numpy(object)
            if "source" in frame
            else np.full(n, "import", dtype=object)
        )
        errors.add(
            ~np.isin(source, SOURCES), "source", f"source must be one of {', '.join(SOURCES)}"
        )
        t_now = now()
        reported = self._times(frame, errors, t_now)
        fields = self._required_fields(frame, code, cats, errors)
        key = (
            frame["idempotency_key"].astype("string").to_numpy(object)
            if "idempotency_key" in frame
            else np.full(n, None, dtype=object)
        )
        # numpy's stubs take no None as the object fill value.
        key = np.where(pd.isna(key), None, key)  # type: ignore[call-overload]
        dup_key = pd.Series(key).duplicated(keep="first").to_numpy() & (key != None)  # noqa: E711
        errors.add(
            dup_key, "idempotency_key", "the same idempotency_key appears earlier in the file"
        )
        ok = np.isfinite(lon) & np.isfinite(lat) & np.isin(datum_col, datums.DATUMS)
        wlon, wlat = lon.copy(), lat.copy()
        for name in ("gcj02", "bd09"):
            sel = ok & (datum_col == name)
            if sel.any():
                wlon[sel], wlat[sel] = datums.to_wgs84(lon[sel], lat[sel], name)
        text = {
            name: (
                frame[name].astype("string").to_numpy(object)
                if name in frame
                else np.full(n, None, dtype=object)
            )
            for name in ("description", "address", "reporter_name", "reporter_phone")
        }
        distinct, inverse = np.unique(code.astype(str), return_inverse=True)
        hashed = pd.util.hash_pandas_object(
            frame.drop(columns=["idempotency_key"], errors="ignore"), index=False
        )
        return {
            "errors": errors,
            "category_code": code,
            "lon": wlon,
            "lat": wlat,
            "datum": datum_col,
            "source": source,
            "reported_at": reported,
            "fields": fields,
            "idempotency_key": key,
            "request_hash": hashed.map("{:016x}".format).to_numpy(object),
            # numpy's stubs take no None as the object fill value.
            **{k: np.where(pd.isna(v), None, v) for k, v in text.items()},  # type: ignore[call-overload]
            "deadline_amount": np.array(
                [cats[c].deadline_amount if c in cats else 0.0 for c in distinct]
            )[inverse],
            "deadline_unit": np.array(
                [cats[c].deadline_unit if c in cats else "hours" for c in distinct], dtype=object
            )[inverse],
        }

    def _times(self, frame: pd.DataFrame, errors: _Errors, t_now: datetime) -> np.ndarray:
        n = len(frame)
        now64 = np.datetime64(t_now.replace(tzinfo=None), "us")
        if "reported_at" not in frame:
            return np.full(n, now64)
        raw = frame["reported_at"]
        parsed = pd.to_datetime(raw, errors="coerce", utc=False, format="mixed")
        if getattr(parsed.dt, "tz", None) is None:
            parsed = parsed.dt.tz_localize(
                self.settings.grids.timezone, ambiguous="NaT", nonexistent="NaT"
            )
        utc = parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
        given = raw.notna().to_numpy()
        errors.add(given & np.isnat(utc), "reported_at", "reported_at is not a date-time")
        utc = np.where(given, utc, now64)
        errors.add(
            utc > now64 + np.timedelta64(5, "m"), "reported_at", "reported_at is in the future"
        )
        return utc

    def _required_fields(
        self, frame: pd.DataFrame, code: np.ndarray, cats: dict[str, Category], errors: _Errors
    ) -> np.ndarray:
        n = len(frame)
        extra = [c for c in frame.columns if c.startswith("field_")]
        fields = np.full(n, "{}", dtype=object)
        if extra:
            sub = frame[extra].rename(columns=lambda c: c[len("field_") :])
            has = sub.notna().any(axis=1).to_numpy()
            fields[has] = [
                json.dumps(
                    {k: v for k, v in row.items() if pd.notna(v)}, ensure_ascii=False, default=str
                )
                for row in sub[has].to_dict("records")
            ]
        for cat in cats.values():
            for name in cat.required_fields:
                col = f"field_{name}"
                present = frame[col].notna().to_numpy() if col in frame else np.zeros(n, dtype=bool)
                errors.add(
                    (code == cat.code) & ~present,
                    f"field_{name}",
                    f"category {cat.code} ({cat.name}) needs column field_{name}",
                )
        return fields

    # -- mapping ---------------------------------------------------------------------------
    # -- mapping ---------------------------------------------------------------------------
    def _locate(
        self, cols: dict[str, Any], errors: _Errors, allow_unassigned: bool
    ) -> list[tuple[GridIndex, np.ndarray]]:
        """Grid valid at each report time (all rows at once: cheap, and errors come early)."""
        n = len(cols["lon"])
        grid_id = np.full(n, -1, dtype=np.int64)
        grid_code = np.full(n, None, dtype=object)
        epoch = np.full(n, -1, dtype=np.int64)
        found_all = np.full(n, -1, dtype=np.int64)  # position in its epoch's index
        valid = ~errors.bad
        times = cols["reported_at"]
        indexes: list[tuple[GridIndex, np.ndarray]] = []
        if valid.any():
            versions = GridRepository(self.session).versions_overlapping(
                self.city, "unit", _aware(times[valid].min()), _aware(times[valid].max())
            )
            for lo, hi, rows in _epochs(versions):
                sel = np.flatnonzero(valid & (times >= lo) & (times < hi))
                if not len(sel) or not rows:
                    continue
                index, ids = index_for(rows)
                found = index.locate(cols["lon"][sel], cols["lat"][sel])
                hit = found >= 0
                grid_id[sel[hit]] = ids[found[hit]]
                grid_code[sel[hit]] = np.asarray(index.codes, dtype=object)[found[hit]]
                epoch[sel[hit]] = len(indexes)
                found_all[sel] = found
                indexes.append((index, ids))
        outside = valid & (grid_code == None)  # noqa: E711
        if outside.any() and not allow_unassigned:
            errors.add(
                outside,
                "lon,lat",
                "outside every unit grid valid at reported_at; set allow_unassigned to store it "
                "without a grid",
            )
        cols.update(grid_id=grid_id, grid_code=grid_code, _epoch=epoch, _found=found_all)
        return indexes

    def _context(self, epochs: list[tuple[GridIndex, np.ndarray]]) -> _Context:
        """Everything the per-chunk mapping needs, read from the database up front."""
        spots = list(self.session.scalars(select(Hotspot).where(Hotspot.city == self.city)))
        index = (
            HotspotIndex(
                [h.id for h in spots], [geom_of(h) for h in spots], [h.buffer_m for h in spots]
            )
            if spots
            else None
        )
        return _Context(
            epochs=epochs,
            radius_m=self.settings.grids.boundary_tolerance_m,
            spots=index,
            spot_ids=np.array([h.id for h in spots], dtype=np.int64),
            spot_owner=np.array([h.owner_unit for h in spots], dtype=object),
            spot_start=np.array([_naive(h.active_from) for h in spots], dtype="datetime64[us]"),
            spot_stop=np.array(
                [_naive(h.active_to) if h.active_to else np.datetime64("NaT") for h in spots],
                dtype="datetime64[us]",
            ),
            router=load_router(self.session, self.city),
            clock=work_clock(self.settings),
            city=self.city,
        )

    def _idempotency(self, cols: dict[str, Any], errors: _Errors) -> np.ndarray:
        key = cols["idempotency_key"]
        replay = np.zeros(len(key), dtype=bool)
        given = np.flatnonzero(key != None)  # noqa: E711
        if not len(given):
            return replay
        with self._cursor() as cur:
            cur.execute(
                "SELECT idempotency_key, id, request_hash FROM cases WHERE city = %s "
                "AND idempotency_key = ANY(%s)",
                (self.city, list(key[given])),
            )
            known = {k: (i, h) for k, i, h in cur.fetchall()}
        if not known:
            return replay
        hashes = cols["request_hash"]
        clash = np.zeros(len(key), dtype=bool)
        reason = np.full(len(key), None, dtype=object)
        for row in given:
            hit = known.get(key[row])
            if hit is None:
                continue
            if hit[1] == hashes[row]:
                replay[row] = True
            else:
                clash[row] = True
                reason[row] = f"idempotency_key was used for a different report (case {hit[0]})"
        errors.add(clash, "idempotency_key", reason)
        return replay

    def _proximity(self, cols: dict[str, Any]) -> None:
        """Suspected duplicates (open, same category, R m, T h) and recurrences; ids."""
        cases = self.settings.cases
        n = len(cols["lon"])
        t = cols["reported_at"]
        lo, hi = _aware(t.min()), _aware(t.max())
        window = pd.Timedelta(hours=cases.duplicate_window_hours)
        lookback = pd.Timedelta(days=cases.recurrence_days)
        cats = list(np.unique(cols["category_code"]))
        open_rows = self.session.execute(
            select(Case.id, Case.lon, Case.lat, Case.reported_at, Case.category_code).where(
                Case.city == self.city,
                Case.status.in_(OPEN_STATUSES),
                Case.duplicate_of.is_(None),
                Case.category_code.in_(cats),
                Case.reported_at.between(lo - window, hi + window),
            )
        ).all()
        closed_rows = self.session.execute(
            select(Case.id, Case.lon, Case.lat, Case.closed_at, Case.category_code).where(
                Case.city == self.city,
                Case.status == "closed",
                Case.category_code.in_(cats),
                Case.closed_at.between(lo - lookback, hi),
            )
        ).all()
        lon = np.concatenate([cols["lon"], [r[1] for r in open_rows]])
        lat = np.concatenate([cols["lat"], [r[2] for r in open_rows]])
        crs = utm_crs_for_xy(lon, lat)
        xy = np.column_stack(to_metric_xy(lon, lat, crs))
        secs = np.concatenate([_seconds(t), [_aware(r[3]).timestamp() for r in open_rows]])
        cat = np.concatenate([cols["category_code"], [r[4] for r in open_rows]]).astype(object)
        is_new = np.arange(len(lon)) < n
        link = duplicate_links(
            xy[:, 0], xy[:, 1], secs, cat, is_new, cases.duplicate_radius_m, window.total_seconds()
        )[:n]
        # ids up front so duplicates can point at rows of the same file
        ids = self._new_ids(n)
        open_ids = np.array([r[0] for r in open_rows], dtype=np.int64)
        dup = np.full(n, -1, dtype=np.int64)
        inside = (link >= 0) & (link < n)
        dup[inside] = ids[link[inside]]
        known = link >= n
        dup[known] = open_ids[link[known] - n]
        rec = np.full(n, -1, dtype=np.int64)
        if closed_rows:
            cxy = np.column_stack(
                to_metric_xy(
                    np.array([r[1] for r in closed_rows]),
                    np.array([r[2] for r in closed_rows]),
                    crs,
                )
            )
            found = recurrence_links(
                xy[:n, 0],
                xy[:n, 1],
                secs[:n],
                cols["category_code"].astype(object),
                cxy[:, 0],
                cxy[:, 1],
                # closed_at BETWEEN ... leaves no NULL closed_at in closed_rows.
                np.array([_aware(cast(datetime, r[3])).timestamp() for r in closed_rows]),
                np.array([r[4] for r in closed_rows], dtype=object),
                cases.duplicate_radius_m,
                lookback.total_seconds(),
            )
            closed_ids = np.array([r[0] for r in closed_rows], dtype=np.int64)
            rec = np.where(found >= 0, closed_ids[np.maximum(found, 0)], -1)
        cols.update(id=ids, duplicate_of=dup, recurring_of=rec)

    def _new_ids(self, n: int) -> np.ndarray:
        """``n`` fresh case ids from the sequence (one round trip when they are contiguous,
        which they are unless another session draws ids at the same moment)."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT min(i), max(i) FROM (SELECT nextval('cases_id_seq') AS i "
                "FROM generate_series(1, %s)) s",
                (n,),
            )
            low, high = cur.fetchone()
            if high - low + 1 == n:
                return np.arange(low, high + 1, dtype=np.int64)
            # interleaved with another writer: the block is not contiguous; take our own ids
            cur.execute(
                "SELECT i FROM (SELECT nextval('cases_id_seq') AS i FROM generate_series(1, %s)) s",
                (n,),
            )
            return np.array([r[0] for r in cur.fetchall()], dtype=np.int64)

    # -- storage ---------------------------------------------------------------------------
    def _store(self, cols: dict[str, Any], ctx: _Context) -> None:
        """Map and encode chunk k+1 in a worker thread while chunk k streams into COPY."""
        n = len(cols["lon"])
        chunks: Queue[bytes | BaseException | None] = Queue(maxsize=3)

        def produce() -> None:
            try:
                for start in range(0, n, CHUNK_ROWS):
                    part = {k: v[start : start + CHUNK_ROWS] for k, v in cols.items()}
                    sink = io.BytesIO()
                    pacsv.write_csv(
                        _chunk_table(part, ctx), sink, pacsv.WriteOptions(include_header=False)
                    )
                    chunks.put(sink.getvalue())
                chunks.put(None)
            except BaseException as exc:  # handed to the main thread, which re-raises
                chunks.put(exc)

        worker = threading.Thread(target=produce, daemon=True)
        worker.start()
        sent = 0
        with (
            self._cursor() as cur,
            cur.copy(f"COPY cases ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            while (chunk := chunks.get()) is not None:
                if isinstance(chunk, BaseException):
                    raise chunk
                copy.write(chunk)
                sent = min(sent + CHUNK_ROWS, n)
                self.progress("stored", sent)
        worker.join()


@dataclass
class _Context:
    """Read-only inputs of the per-chunk mapping (safe to use from the worker thread)."""

    epochs: list[tuple[GridIndex, np.ndarray]]
    radius_m: float
    spots: HotspotIndex | None
    spot_ids: np.ndarray
    spot_owner: np.ndarray
    spot_start: np.ndarray
    spot_stop: np.ndarray
    router: Any
    clock: Any
    city: str


def _chunk_table(c: dict[str, Any], ctx: _Context) -> pa.Table:
    """Boundary candidates, hotspots, department and deadline for one chunk, as a table."""
    n = len(c["lon"])
    candidates = np.full(n, "[]", dtype=object)
    for k, (index, _) in enumerate(ctx.epochs):
        sel = np.flatnonzero(c["_epoch"] == k)
        if len(sel):
            candidates[sel] = _candidate_json(
                index, c["lon"][sel], c["lat"][sel], c["_found"][sel], ctx.radius_m
            )
    spot_ids, owner = _hotspots(c, ctx)
    department, routed_by = _routes(c, owner, ctx)
    hours = np.where(
        c["deadline_unit"] == "days",
        c["deadline_amount"] * ctx.clock.hours.hours_per_day,
        c["deadline_amount"],
    )
    deadline = ctx.clock.add(c["reported_at"], hours, "hours")
    stamp = pa.timestamp("us", tz="UTC")
    updated = np.full(n, np.datetime64(now().replace(tzinfo=None), "us"))
    return pa.table(
        {
            "id": c["id"],
            "city": pa.array(np.full(n, ctx.city, dtype=object)),
            "category_code": c["category_code"],
            "source": c["source"],
            "status": pa.array(np.full(n, "reported", dtype=object)),
            "description": c["description"],
            "address": c["address"],
            "reporters": _reporters_json(
                c["reporter_name"], c["reporter_phone"], c["source"], c["reported_at"]
            ),
            "fields": c["fields"],
            "reported_at": pa.array(c["reported_at"], stamp),
            "deadline_at": pa.array(deadline, stamp),
            "updated_at": pa.array(updated, stamp),
            "datum": c["datum"],
            "lon": c["lon"],
            "lat": c["lat"],
            "grid_id": pa.array(c["grid_id"], mask=c["grid_id"] < 0),
            "grid_code": c["grid_code"],
            "grid_candidates": candidates,
            "hotspot_ids": spot_ids,
            "department": department,
            "routed_by": routed_by,
            "duplicate_of": pa.array(c["duplicate_of"], mask=c["duplicate_of"] < 0),
            "recurring_of": pa.array(c["recurring_of"], mask=c["recurring_of"] < 0),
            "idempotency_key": c["idempotency_key"],
            "request_hash": c["request_hash"],
        }
    )


def _hotspots(c: dict[str, Any], ctx: _Context) -> tuple[np.ndarray, np.ndarray]:
    """Active hotspots whose zone covers each point ("{id,…}" nearest first) and the nearest
    owner unit."""
    n = len(c["lon"])
    ids = np.full(n, "{}", dtype=object)
    owner = np.full(n, None, dtype=object)
    if ctx.spots is None:
        return ids, owner
    point, pos, _ = ctx.spots.match(c["lon"], c["lat"])
    t = c["reported_at"]
    live = (ctx.spot_start[pos] <= t[point]) & (
        np.isnat(ctx.spot_stop[pos]) | (t[point] < ctx.spot_stop[pos])
    )
    point, pos = point[live], pos[live]
    if not len(point):
        return ids, owner
    ids = _join_groups(point, ctx.spot_ids[pos].astype(str), n, "{}", "{", "}")
    owners = ctx.spot_owner[pos]
    has = np.flatnonzero(owners != None)  # noqa: E711
    if len(has):
        # pairs are sorted by point then distance: the first owner is the nearest
        first = has[np.r_[True, point[has][1:] != point[has][:-1]]]
        owner[point[first]] = owners[first]
    return ids, owner


def _routes(c: dict[str, Any], owner: np.ndarray, ctx: _Context) -> tuple[np.ndarray, ...]:
    """Department per row, by the same rules as the single intake (vectorised)."""
    department, routed_by = ctx.router.route_many(c["category_code"], c["grid_code"], owner)
    return department, routed_by


# -- helpers ------------------------------------------------------------------------------------
@contextmanager
def _timed(report: ImportReport, phase: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        report.seconds[phase] = time.perf_counter() - start


def _epochs(versions: list[Any]):  # noqa: ANN202
    """Time slices in which the set of valid versions does not change."""
    marks = sorted(
        {_naive(v.valid_from) for v in versions}
        | {_naive(v.valid_to) for v in versions if v.valid_to}
    )
    edges = [np.datetime64("0001-01-01", "us"), *marks, np.datetime64("9999-01-01", "us")]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        rows = [
            v
            for v in versions
            if _naive(v.valid_from) <= lo and (v.valid_to is None or _naive(v.valid_to) >= hi)
        ]
        yield lo, hi, rows


def _join_groups(
    group: np.ndarray, items: Any, n: int, empty: str, open_: str, close: str
) -> np.ndarray:
    """Per group id (``group`` sorted ascending), its items joined with ", " and wrapped
    (string work in Arrow's C++ kernels: Python-level joins cost seconds per million)."""
    out = np.full(n, empty, dtype=object)
    if not len(group):
        return out
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    offsets = pa.array(np.r_[starts, len(group)].astype(np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(items, pa.string()))
    joined = pc.binary_join_element_wise(open_, pc.binary_join(lists, ", "), close, "")
    out[group[starts]] = joined.to_numpy(zero_copy_only=False)
    return out


def _candidate_json(
    index: GridIndex, lon: np.ndarray, lat: np.ndarray, found: np.ndarray, radius_m: float
) -> np.ndarray:
    point, grid, dist = index.candidates_many(lon, lat, radius_m, found)
    # only points with more than their own grid in reach keep a list (near a boundary)
    keep = (np.bincount(point, minlength=len(lon)) > 1)[point]
    point, grid, dist = point[keep], grid[keep], dist[keep]
    codes = pa.array(np.asarray(index.codes, dtype=object)[grid], pa.string())
    metres = pc.cast(pa.array(np.round(dist, 2)), pa.string())
    item = pc.binary_join_element_wise('{"code": "', codes, '", "distance_m": ', metres, "}", "")
    return _join_groups(point, item, len(lon), "[]", "[", "]")


def _reporters_json(
    name: np.ndarray, phone: np.ndarray, source: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """Reporter entries where the file names one (the case row already holds source/time)."""
    out = np.full(len(name), "[]", dtype=object)
    who = np.flatnonzero((name != None) | (phone != None))  # noqa: E711
    for i in who:
        when = pd.Timestamp(at[i]).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = {"name": name[i], "phone": phone[i], "source": source[i], "at": when}
        out[i] = json.dumps([{k: v for k, v in entry.items() if v is not None}], ensure_ascii=False)
    return out


def _naive(value: datetime) -> np.datetime64:
    return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")


def _aware(value: np.datetime64 | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()


def _seconds(t: np.ndarray) -> np.ndarray:
    return t.astype("datetime64[us]").astype(np.int64) / 1e6

"""Bulk case intake: a million rows mapped and stored in one vectorised pass.

The same rules as ``CaseService.intake`` — grid valid at report time with boundary candidates,
hotspots active then (nearest first), routing, working-time deadline, duplicates, recurrence,
idempotency — computed with numpy/shapely over whole columns, then streamed into PostGIS with
binary COPY (Arrow tables encoded by pgpq) while the next chunk is being mapped. ``mode="all"``
stores everything or nothing; ``mode="rows"`` stores the good rows and reports the bad ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from gis import datum as datums
from gis.hotspots import HotspotIndex
from gis.locate import GridIndex
from gis.metric import to_metric_xy, utm_crs_for_xy
from gis.proximity import DuplicateFinder, RecurrenceFinder
from service.cases.campaigns import tag_imported
from service.cases.cases import SOURCES
from service.cases.catalogue import load_router
from service.cases.workflow import OPEN_STATUSES
from service.clock import now, work_clock
from service.db.distribute import bump_counters
from service.db.engine import driver_cursor
from service.db.models import Case, Category, Hotspot
from service.db.pgcopy import copy_pipelined
from service.errors import InvalidInput
from service.grids.index import index_for
from service.grids.repository import GridRepository, geom_of
from service.http.rowerrors import BulkReport, RowErrors
from service.settings import AppSettings

CHUNK_ROWS = 50_000


_STAMP = pa.timestamp("us", tz="UTC")


# The rows as they travel: PostgreSQL's binary COPY format, encoded from Arrow by pgpq, so the
# server parses no text for numbers, timestamps and arrays (a third of its COPY time with CSV).
# Binary values carry no type name, so each Arrow type must have exactly the wire layout of its
# column: int64 for bigint, UTC microseconds for timestamptz (pgpq writes them as timestamp,
# the same eight bytes), list<int64> for bigint[] (element type int8), text for varchar; JSONB
# travels as its text behind a version byte and is still parsed by the server.
COPY_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("city", pa.string()),
        ("category_code", pa.string()),
        ("source", pa.string()),
        ("status", pa.string()),
        ("description", pa.string()),
        ("address", pa.string()),
        ("reporters", pa.string()),
        ("fields", pa.string()),
        ("reported_at", _STAMP),
        ("deadline_at", _STAMP),
        ("updated_at", _STAMP),
        ("datum", pa.string()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("grid_id", pa.int64()),
        ("grid_code", pa.string()),
        ("grid_candidates", pa.string()),
        ("hotspot_ids", pa.list_(pa.int64())),
        ("department", pa.string()),
        ("routed_by", pa.string()),
        ("duplicate_of", pa.int64()),
        ("recurring_of", pa.int64()),
        ("idempotency_key", pa.string()),
        ("request_hash", pa.string()),
    ]
)


COLUMNS = tuple(COPY_SCHEMA.names)


JSONB_COLUMNS = frozenset({"reporters", "fields", "grid_candidates"})


@dataclass
class ImportReport(BulkReport):
    """What a bulk case import did: cases created, and how many outside every grid."""

    created: int = 0
    unassigned: int = 0

    def figures(self) -> dict[str, Any]:
        """Cases created, and stored without a grid."""
        return {"created": self.created, "unassigned": self.unassigned}


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
        with report.timed("validate"):
            cols = self._validate(frame, datum)
            errors = cols.pop("errors")
        self.progress("validated", len(frame))
        with report.timed("locate grids"):
            epochs = self._locate(cols, errors, allow_unassigned)
        with report.timed("idempotency"):
            replay = self._idempotency(cols, errors)
        report.replayed = int(replay.sum())
        report.record(errors)
        if mode == "all":
            report.refuse_any("row(s)", field="rows")
        keep = ~errors.bad & ~replay
        if not keep.any():
            return report
        cols = {k: v.filter(keep) if isinstance(v, pa.Array) else v[keep] for k, v in cols.items()}
        with report.timed("ids, duplicate/recurrence finders"):
            links = self._links(cols)
        with report.timed("map+links+store (pipelined)"):
            self._store(cols, links, self._context(epochs))
        with report.timed("campaign tags"):
            times = cols["reported_at"]
            low, high = int(links.ids.min()), int(links.ids.max())
            tag_imported(
                self.session, self.city, low, high, _aware(times.min()), _aware(times.max())
            )
        report.created = int(keep.sum())
        report.unassigned = int((cols["grid_code"] == None).sum())  # noqa: E711
        return report

    # -- validation ------------------------------------------------------------------------
    def _validate(self, frame: pd.DataFrame, default_datum: str) -> dict[str, Any]:
        n = len(frame)
        errors = RowErrors(n)
        cats = {
            c.code: c
            for c in self.session.scalars(select(Category).where(Category.city == self.city))
        }
        code = frame["category_code"].astype("string").fillna("").str.strip().to_numpy(object)
        errors.add(~_isin(code, cats), "category_code", "unknown category; see GET /api/categories")
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
        known_datum = _isin(datum_col, datums.DATUMS)
        errors.add(~known_datum, "datum", "datum must be wgs84, gcj02 or bd09")
        source = (
            frame["source"].astype("string").fillna("import").to_numpy(object)
            if "source" in frame
            else np.full(n, "import", dtype=object)
        )
        errors.add(~_isin(source, SOURCES), "source", f"source must be one of {', '.join(SOURCES)}")
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
        ok = np.isfinite(lon) & np.isfinite(lat) & known_datum
        wlon, wlat = lon.copy(), lat.copy()
        for name in ("gcj02", "bd09"):
            sel = ok & (datum_col == name)
            if sel.any():
                wlon[sel], wlat[sel] = datums.to_wgs84(lon[sel], lat[sel], name)
        reporter = {
            name: (
                frame[name].astype("string").to_numpy(object)
                if name in frame
                else np.full(n, None, dtype=object)
            )
            for name in ("reporter_name", "reporter_phone")
        }
        # free text goes to the database untouched: kept in Arrow (no Python strings)
        text = {
            name: (_text_array(frame[name]) if name in frame else pa.nulls(n, pa.string()))
            for name in ("description", "address")
        }
        inverse, distinct = pd.factorize(code)
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
            "request_hash": _hex16(hashed.to_numpy(np.uint64)),
            # numpy's stubs take no None as the object fill value.
            **{k: np.where(pd.isna(v), None, v) for k, v in reporter.items()},  # type: ignore[call-overload]
            **text,
            "deadline_amount": np.array(
                [cats[c].deadline_amount if c in cats else 0.0 for c in distinct]
            )[inverse],
            "deadline_unit": np.array(
                [cats[c].deadline_unit if c in cats else "hours" for c in distinct], dtype=object
            )[inverse],
        }

    def _times(self, frame: pd.DataFrame, errors: RowErrors, t_now: datetime) -> np.ndarray:
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
        self, frame: pd.DataFrame, code: np.ndarray, cats: dict[str, Category], errors: RowErrors
    ) -> pa.Array:
        n = len(frame)
        fields = _fields_json(frame, [c for c in frame.columns if c.startswith("field_")])
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
        self, cols: dict[str, Any], errors: RowErrors, allow_unassigned: bool
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

    def _idempotency(self, cols: dict[str, Any], errors: RowErrors) -> np.ndarray:
        """Rows already stored under their key: a replay when the report is the same, an error
        when the key was used for a different one."""
        key = cols["idempotency_key"]
        replay = np.zeros(len(key), dtype=bool)
        given = np.flatnonzero(key != None)  # noqa: E711
        if not len(given):
            return replay
        with driver_cursor(self.session) as cur:
            # the keys travel as one JSON text: psycopg adapts a Python list to a text[]
            # literal element by element (seconds per million keys)
            cur.execute(
                "SELECT idempotency_key, id, request_hash FROM cases WHERE city = %s "
                "AND idempotency_key = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))",
                (self.city, json.dumps(key[given].tolist())),
            )
            known = cur.fetchall()
        if not known:
            return replay
        stored_key, stored_id, stored_hash = (
            np.array(c, dtype=object) for c in zip(*known, strict=True)
        )
        at = pd.Index(stored_key).get_indexer(key[given])  # keys are unique per city
        rows, at = given[at >= 0], at[at >= 0]
        ours = cols["request_hash"].take(pa.array(rows)).to_numpy(zero_copy_only=False)
        same = stored_hash[at] == ours
        replay[rows[same]] = True
        clash = np.zeros(len(key), dtype=bool)
        clash[rows[~same]] = True
        reason = np.full(len(key), None, dtype=object)
        reason[rows[~same]] = [
            f"idempotency_key was used for a different report (case {i})"
            for i in stored_id[at[~same]]
        ]
        errors.add(clash, "idempotency_key", reason)
        return replay

    def _links(self, cols: dict[str, Any]) -> _Links:
        """Ids, and the finders of suspected duplicates (open, same category, R m, T h) and
        recurrences; the links themselves are found chunk by chunk while storing."""
        cases = self.settings.cases
        n = len(cols["lon"])
        t = cols["reported_at"]
        lo, hi = _aware(t.min()), _aware(t.max())
        window = pd.Timedelta(hours=cases.duplicate_window_hours)
        lookback = pd.Timedelta(days=cases.recurrence_days)
        cats = pd.unique(cols["category_code"]).tolist()
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
        x, y = to_metric_xy(lon, lat, crs)
        secs = np.concatenate([_seconds(t), [_aware(r[3]).timestamp() for r in open_rows]])
        cat = np.concatenate([cols["category_code"], [r[4] for r in open_rows]]).astype(object)
        duplicates = DuplicateFinder(
            x,
            y,
            secs,
            cat,
            np.arange(len(lon)) < n,
            cases.duplicate_radius_m,
            window.total_seconds(),
        )
        # ids up front, in report-time order (the order rows are stored in), so duplicates
        # can point at rows of the same file
        ids = np.empty(n, dtype=np.int64)
        ids[duplicates.order] = self._new_ids(n)
        recurrences = None
        if closed_rows:
            cx, cy = to_metric_xy(
                np.array([r[1] for r in closed_rows]), np.array([r[2] for r in closed_rows]), crs
            )
            recurrences = RecurrenceFinder(
                cx,
                cy,
                # closed_at BETWEEN ... leaves no NULL closed_at in closed_rows.
                np.array([_aware(cast(datetime, r[3])).timestamp() for r in closed_rows]),
                np.array([r[4] for r in closed_rows], dtype=object),
                cases.duplicate_radius_m,
                lookback.total_seconds(),
            )
        return _Links(
            ids=ids,
            duplicates=duplicates,
            open_ids=np.array([r[0] for r in open_rows], dtype=np.int64),
            recurrences=recurrences,
            closed_ids=np.array([r[0] for r in closed_rows], dtype=np.int64),
            x=x[:n],
            y=y[:n],
            t=secs[:n],
            category=cat[:n],
        )

    def _new_ids(self, n: int) -> np.ndarray:
        """``n`` fresh case ids from the sequence (one round trip when they are contiguous,
        which they are unless another session draws ids at the same moment)."""
        with driver_cursor(self.session) as cur:
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
    def _store(self, cols: dict[str, Any], links: _Links, ctx: _Context) -> None:
        """Link, map and encode chunk k+1 in a worker thread while chunk k streams into COPY;
        rows go in report-time order (the order of their ids)."""
        n = len(cols["lon"])

        def batches() -> Iterator[tuple[pa.RecordBatch, int]]:
            for start in range(0, n, CHUNK_ROWS):
                rows, duplicate_of, recurring_of = links.next(CHUNK_ROWS)
                part = {k: _rows(v, rows) for k, v in cols.items()}
                part.update(
                    id=links.ids[rows], duplicate_of=duplicate_of, recurring_of=recurring_of
                )
                yield _chunk_batch(part, ctx), min(start + CHUNK_ROWS, n)

        with driver_cursor(self.session) as cur:
            copy_pipelined(
                cur,
                "cases",
                COPY_SCHEMA,
                batches(),
                jsonb=JSONB_COLUMNS,
                progress=lambda stored: self.progress("stored", stored),
            )
        bump_counters(self.session, "cases")  # the COPY passed no SQL hook (Citus only)


@dataclass
class _Links:
    """Ids and link finders of the stored rows (the finders are used by the worker thread
    only, one chunk after the other)."""

    ids: np.ndarray
    duplicates: DuplicateFinder
    open_ids: np.ndarray
    recurrences: RecurrenceFinder | None
    closed_ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    category: np.ndarray

    def next(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next ``count`` rows in report-time order, with the ids they duplicate and
        recur (-1: none)."""
        rows, link = self.duplicates.next(count)
        n = len(self.ids)
        duplicate_of = np.full(len(rows), -1, dtype=np.int64)
        inside = (link >= 0) & (link < n)
        duplicate_of[inside] = self.ids[link[inside]]
        known = link >= n
        duplicate_of[known] = self.open_ids[link[known] - n]
        recurring_of = np.full(len(rows), -1, dtype=np.int64)
        if self.recurrences is not None:
            found = self.recurrences.links(
                self.x[rows], self.y[rows], self.t[rows], self.category[rows]
            )
            recurring_of = np.where(found >= 0, self.closed_ids[np.maximum(found, 0)], -1)
        return rows, duplicate_of, recurring_of


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


def _chunk_batch(c: dict[str, Any], ctx: _Context) -> pa.RecordBatch:
    """Boundary candidates, hotspots, department and deadline for one chunk, as a batch of
    :data:`COPY_SCHEMA`."""
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
    columns = {
        "id": c["id"],
        "city": pa.repeat(pa.scalar(ctx.city, pa.string()), n),
        "category_code": c["category_code"],
        "source": c["source"],
        "status": pa.repeat(pa.scalar("reported", pa.string()), n),
        "description": c["description"],
        "address": c["address"],
        "reporters": _reporters_json(
            c["reporter_name"], c["reporter_phone"], c["source"], c["reported_at"]
        ),
        "fields": c["fields"],
        "reported_at": c["reported_at"],  # naive datetime64: UTC
        "deadline_at": deadline,
        "updated_at": pa.repeat(pa.scalar(now(), _STAMP), n),
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
    return pa.RecordBatch.from_arrays(
        [_arrow(columns[f.name], f.type) for f in COPY_SCHEMA], schema=COPY_SCHEMA
    )


def _rows(values: Any, rows: np.ndarray) -> Any:
    """``values[rows]`` for numpy or Arrow; a slice (no copy) when the rows are a run, as they
    are for a file already in report-time order."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and (np.diff(rows) == 1).all():
        return values[rows[0] : rows[-1] + 1]
    return values.take(pa.array(rows)) if isinstance(values, pa.Array) else values[rows]


def _arrow(values: Any, type_: pa.DataType) -> pa.Array:
    """``values`` (numpy or Arrow) as an Arrow array of exactly ``type_``."""
    if isinstance(values, pa.Array):
        return values if values.type == type_ else values.cast(type_)
    return pa.array(values, type_)


def _hotspots(c: dict[str, Any], ctx: _Context) -> tuple[pa.ListArray, np.ndarray]:
    """Active hotspots whose zone covers each point (ids, nearest first) and the nearest
    owner unit."""
    n = len(c["lon"])
    owner = np.full(n, None, dtype=object)
    no_spots = pa.ListArray.from_arrays(
        pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.int64())
    )
    if ctx.spots is None:
        return no_spots, owner
    point, pos, _ = ctx.spots.match(c["lon"], c["lat"])
    t = c["reported_at"]
    live = (ctx.spot_start[pos] <= t[point]) & (
        np.isnat(ctx.spot_stop[pos]) | (t[point] < ctx.spot_stop[pos])
    )
    point, pos = point[live], pos[live]
    if not len(point):
        return no_spots, owner
    # pairs are sorted by point then distance: each point's ids are one run, nearest first
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(point, minlength=n), out=offsets[1:])
    ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(ctx.spot_ids[pos], pa.int64()))
    owners = ctx.spot_owner[pos]
    has = np.flatnonzero(owners != None)  # noqa: E711
    if len(has):
        # the first owner of a point's run is the nearest
        first = has[np.r_[True, point[has][1:] != point[has][:-1]]]
        owner[point[first]] = owners[first]
    return ids, owner


def _routes(c: dict[str, Any], owner: np.ndarray, ctx: _Context) -> tuple[np.ndarray, ...]:
    """Department per row, by the same rules as the single intake (vectorised)."""
    department, routed_by = ctx.router.route_many(c["category_code"], c["grid_code"], owner)
    return department, routed_by


# -- helpers ------------------------------------------------------------------------------------
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
) -> pa.Array:
    """Reporter entries where the file names one (the case row already holds source/time)."""
    who = pa.array((name != None) | (phone != None))  # noqa: E711
    seconds = pc.floor_temporal(pa.array(at, _STAMP), 1, "second").cast(pa.timestamp("s", tz="UTC"))
    when = pc.strftime(seconds, "%Y-%m-%dT%H:%M:%SZ").to_numpy(zero_copy_only=False)
    entry = _json_object(
        [
            _json_members("name", name),
            _json_members("phone", phone),
            _json_members("source", source),
            _json_members("at", when),
        ]
    )
    listed = pc.binary_join_element_wise("[", entry, "]", "")
    return pc.if_else(who, listed, pa.scalar("[]", pa.string()))


def _naive(value: datetime) -> np.datetime64:
    return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")


def _aware(value: np.datetime64 | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()


def _seconds(t: np.ndarray) -> np.ndarray:
    return t.astype("datetime64[us]").astype(np.int64) / 1e6


def _isin(values: np.ndarray, allowed: Any) -> np.ndarray:
    """Elementwise membership by hashing (``np.isin`` sorts object arrays)."""
    return pd.Series(values, dtype=object, copy=False).isin(list(allowed)).to_numpy()


def _text_array(column: pd.Series) -> pa.Array:
    """A column as one Arrow string array (no copy when pandas already holds it in Arrow)."""
    values = pa.array(column.astype("string"))
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.string())


def _hex16(hashes: np.ndarray) -> pa.Array:
    """``"{:016x}".format`` of each uint64, vectorised (an Arrow string array)."""
    digits = hashes.astype(">u8").tobytes().hex().encode("ascii")
    return pa.array(np.frombuffer(digits, dtype="S16")).cast(pa.string())


def _fields_json(frame: pd.DataFrame, columns: list[str]) -> pa.Array:
    """Per row, a JSON object of its non-empty ``field_<name>`` values under ``<name>``
    (``"{}"`` when none)."""
    if not columns:
        return pa.repeat(pa.scalar("{}", pa.string()), len(frame))
    return _json_object([_json_members(c[len("field_") :], frame[c]) for c in columns])


def _json_members(key: str, values: Any) -> pa.Array:
    """Per row ``', "key": <value as JSON>'`` where the value is present, else ``''``: each
    distinct value is serialised once (files where every row has one cost no Python per row)."""
    column = pd.Series(values, copy=False)
    present = column.notna().to_numpy()
    members = np.full(len(column), "", dtype=object)
    if present.any():
        codes, distinct = pd.factorize(column[present])
        head = ", " + json.dumps(key, ensure_ascii=False) + ": "
        members[present] = np.array(
            [head + json.dumps(v, ensure_ascii=False, default=str) for v in distinct.tolist()],
            dtype=object,
        )[codes]
    return pa.array(members, pa.string())


def _json_object(members: list[pa.Array]) -> pa.Array:
    """Per row, ``{…}`` around its members from :func:`_json_members` (the per-row joins run in
    Arrow)."""
    # every present member starts with ", ": drop the first one (no null-skipping join here:
    # pyarrow's null_handling="skip" drops the rows where every item is null)
    items = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*members, ""), 2)
    return pc.binary_join_element_wise("{", items, "}", "")

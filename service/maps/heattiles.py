"""Heat layers as vector tiles: per-grid values stored once per filter, joined per tile.

The choropleth layers of the dispatcher map (case density per grid, Gi* hot spots, patrol
coverage, blind spots) colour unit grids. Sent as one GeoJSON they cost ~1 MB per 1,500 grids
— 20 MB for a 30,000-grid city, drawn all at once. Here a layer is computed once per
*request* (layer, its options, the filter's window, category and grid, and the caller's scope:
``layer_key``) by :class:`service.maps.heat.HeatService` — the same numbers and legend as
``/api/heat`` — and its per-grid feature properties (value, class, ``fill``, the click-through
fields) are stored in ``heat_layer_values`` with the legend in ``heat_layer_builds``. A tile
``/tiles/heat/{layer}/{z}/{x}/{y}.mvt`` joins the stored values to the unit grids meeting the
tile (MVT layer ``heat``, geometry simplified like the grid tiles); the legend is
``/api/heat/{layer}?features=false``.

Stored values are tagged with the data version they were computed at: the cases and grids
change counters, the next grid validity boundary and the coverage fingerprint of the window
(:meth:`HeatStore.version`). A request that finds another version recomputes them (one
request per layer and filter, under an advisory lock: concurrent visitors wait for it rather
than compute it again); a restarted service finds them in the database. The open and overdue
counts in the grids layer's click-through are as of the last write to cases (a deadline
passing alone does not recompute a 30,000-grid layer). Stored layers not asked for in
``PRUNE_AFTER`` are deleted. Rendered tiles are kept too (``heat_layer_tiles``, deleted with
the values they were drawn from), so the first visitor after a restart is not the one who
renders them again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from service.clock import now
from service.db.engine import session_scope
from service.errors import NotFound
from service.maps.heat import HeatFilter, HeatService
from service.maps.tiles import BUFFER, EXTENT, TILE_ENV, TileRequest, tile_unit_m
from service.maps.versions import data_version
from service.patrol.coverage import CoverageService
from service.settings import AppSettings

# heat layers with one feature per unit grid (``code``): the ones that can be tiled
TILED_LAYERS: tuple[str, ...] = ("grids", "gi", "coverage", "blind")
# what a tile carries of each grid: its code and colour (the style needs no more); the other
# properties, a popup's, come from ``HeatStore.properties`` on a click. The name, unit, person,
# phone and counts of every grid made the tiles of a dispatcher's view 1.4 MB on the large city.
TILE_PROPS: tuple[str, ...] = ("code", "fill")
# a quarter of the grid tiles' resolution: 4 units per pixel of a 256-pixel tile still draws
# the fill exactly, and each vertex costs fewer bytes (smaller deltas) with the simplification
# following the coarser unit
HEAT_EXTENT = EXTENT // 4
HEAT_BUFFER = BUFFER // 4
# part of every layer key: stored tiles drawn with another property set or extent are never
# served
TILE_FORMAT = f"tile-props:{','.join(TILE_PROPS)};extent:{HEAT_EXTENT}"
PRUNE_AFTER = timedelta(days=7)
USED_AT_STEP = timedelta(hours=1)  # used_at is rewritten at most this often


@dataclass(frozen=True)
class StoredLayer:
    """A heat layer's stored values: its key, legend and window."""

    key: str
    legend: dict[str, Any]
    window: dict[str, Any]
    features: int
    built_at: datetime | None = None
    # the values of an earlier data version, served while they are computed again
    stale: bool = False

    def about(self) -> dict[str, Any]:
        """When the values were computed and whether newer ones are being computed."""
        built = self.built_at.isoformat() if self.built_at is not None else None
        return {"built_at": built, "stale": self.stale}


# stored layers being computed again in the background, by (city, layer key): one at a time
_REFRESHING: set[tuple[str, str]] = set()
_REFRESHING_LOCK = threading.Lock()


def refresh_in_background(
    sessions: sessionmaker[Session],
    settings: AppSettings,
    name: str,
    flt: HeatFilter,
    options: dict[str, Any],
) -> None:
    """Compute the stored layer of this request at the current data version, on a session of
    its own (run after the answer, e.g. as a background task); nothing when this process is
    already at it (another process waits on the advisory lock, then finds it stored)."""
    mark = (settings.grids.city, layer_key(settings.grids.city, name, flt, options))
    with _REFRESHING_LOCK:
        if mark in _REFRESHING:
            return
        _REFRESHING.add(mark)
    try:
        with session_scope(sessions) as session:
            HeatStore(session, settings, HeatService(session, settings)).ensure(name, flt, options)
    finally:
        with _REFRESHING_LOCK:
            _REFRESHING.discard(mark)


def check_layer(name: str) -> str:
    """``name`` when it is a tiled heat layer, else a 404 naming the tiled layers."""
    if name not in TILED_LAYERS:
        raise NotFound(
            f"no tiled heat layer {name!r}; tiled layers are {', '.join(TILED_LAYERS)}",
            field="layer",
            layers=list(TILED_LAYERS),
        )
    return name


def layer_options(
    layer: str,
    *,
    per: str = "km2",
    size_m: float = 250.0,
    bandwidth_m: float | None = None,
    permutations: int = 999,
    metric: str = "share",
    min_cases: int = 3,
) -> dict[str, Any]:
    """The options of ``layer`` among the query parameters of ``/api/heat`` (the others are
    ignored, so they do not split one layer into several cached answers)."""
    by_layer: dict[str, dict[str, Any]] = {
        "grids": {"per": per},
        "hexbins": {"size_m": size_m},
        "kde": {} if bandwidth_m is None else {"bandwidth_m": bandwidth_m},
        "gi": {"per": per, "permutations": permutations},
        "coverage": {"metric": metric},
        "tracks": {} if bandwidth_m is None else {"bandwidth_m": bandwidth_m},
        "blind": {"min_cases": min_cases},
    }
    return by_layer.get(layer, {})


def whole_days(
    start: datetime | None, end: datetime | None, tz: str
) -> tuple[datetime | None, datetime]:
    """A window without ``to`` ends at the next local midnight (not "now", which would make
    every request a new layer to compute and store); ``from`` defaults later to 30 days."""
    if end is None:
        local = now().astimezone(ZoneInfo(tz))
        end = datetime.combine(local.date() + timedelta(days=1), dt_time(), tzinfo=ZoneInfo(tz))
    return start, end


def layer_key(city: str, name: str, flt: HeatFilter, options: dict[str, Any]) -> str:
    """The key of one layer request: layer, options, window, filters and scope."""
    raw = json.dumps(
        [
            TILE_FORMAT,
            city,
            name,
            sorted(options.items()),
            flt.start.isoformat(),
            flt.end.isoformat(),
            flt.category,
            flt.grid,
            repr(flt.scope),
        ],
        default=str,
    )
    return hashlib.sha256(raw.encode()).hexdigest()


class HeatStore:
    """Stored heat layers of one city on one session."""

    def __init__(self, session: Session, settings: AppSettings, heat: HeatService) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.heat = heat

    def version(self, flt: HeatFilter) -> str:
        """What the stored values of ``flt`` depend on, as text: the cases counter (not the
        next deadline), the grids' version and the coverage fingerprint of the window."""
        cases = data_version(self.session, self.city, "cases", now())[0]
        grids = data_version(self.session, self.city, "grids", now())
        cov = CoverageService(self.session, self.settings).fingerprint(flt.start, flt.end)
        return json.dumps([cases, [str(g) for g in grids], cov], default=str)

    def ensure(
        self,
        name: str,
        flt: HeatFilter,
        options: dict[str, Any],
        version: str | None = None,
        stale_ok: bool = False,
    ) -> StoredLayer:
        """The stored layer for this request, computed and stored first when missing or
        computed at another data version (``version``: already read by the caller). With
        ``stale_ok`` the values of another version are returned as they are (``stale``: the
        caller has them computed again, :func:`refresh_in_background`): a write to cases
        must not make the next visitor of a large city wait minutes for the map."""
        check_layer(name)
        key = layer_key(self.city, name, flt, options)
        version = version or self.version(flt)
        found = self._stored(key, version)
        if found is not None:
            return found
        if stale_ok:
            older = self._stored(key, None)
            if older is not None:
                return older
        # one computation per layer request: a second visitor waits for the first
        self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('heat_layer_values'), hashtext(:key))"),
            {"key": key},
        )
        found = self._stored(key, version)
        if found is not None:
            return found
        return self._compute(key, name, flt, options, version)

    def serve(
        self,
        name: str,
        flt: HeatFilter,
        options: dict[str, Any],
        schedule: Callable[..., Any],
        sessions: sessionmaker[Session],
        version: str | None = None,
    ) -> StoredLayer:
        """What an answer draws (stale-while-revalidate): the stored layer of the current
        version, else that of an earlier one while ``schedule`` (a background-task runner, e.g.
        ``BackgroundTasks.add_task``) has the current one computed after the answer."""
        stored = self.ensure(name, flt, options, version, stale_ok=True)
        if stored.stale:
            schedule(refresh_in_background, sessions, self.settings, name, flt, options)
        return stored

    def _stored(self, key: str, version: str | None) -> StoredLayer | None:
        """The stored layer of ``key`` at ``version`` (None: at whatever version)."""
        row = self.session.execute(
            text(
                "SELECT legend, request, features, used_at, built_at, version"
                " FROM heat_layer_builds WHERE city = :city AND layer_key = :key"
                " AND (CAST(:version AS text) IS NULL OR version = :version)"
            ),
            {"city": self.city, "key": key, "version": version},
        ).first()
        if row is None:
            return None
        moment = now()
        if moment - row.used_at > USED_AT_STEP:
            self.session.execute(
                text(
                    "UPDATE heat_layer_builds SET used_at = :at"
                    " WHERE city = :city AND layer_key = :key"
                ),
                {"city": self.city, "key": key, "at": moment},
            )
        return StoredLayer(
            key,
            row.legend,
            row.request["window"],
            row.features,
            row.built_at,
            stale=version is None,
        )

    def _compute(
        self, key: str, name: str, flt: HeatFilter, options: dict[str, Any], version: str
    ) -> StoredLayer:
        t0 = time.perf_counter()
        body = self.heat._layer(name, flt, **options)
        rows = [
            {"city": self.city, "key": key, "code": f["properties"]["code"], "props": props}
            for f in body["features"]
            for props in [json.dumps(f["properties"])]
        ]
        for table in ("heat_layer_values", "heat_layer_tiles"):  # of the previous version
            self.session.execute(
                text(f"DELETE FROM {table} WHERE city = :city AND layer_key = :key"),
                {"city": self.city, "key": key},
            )
        if rows:
            self.session.execute(
                text(
                    "INSERT INTO heat_layer_values (city, layer_key, code, props)"
                    " VALUES (:city, :key, :code, CAST(:props AS jsonb))"
                ),
                rows,
            )
        window = {"from": body["from"], "to": body["to"]}
        request = {"options": options, "window": window, "category": flt.category}
        request["grid"] = flt.grid
        moment = now()
        self.session.execute(
            text(
                "INSERT INTO heat_layer_builds (city, layer_key, layer, request, version,"
                " legend, features, built_at, used_at, seconds) VALUES (:city, :key, :layer,"
                " CAST(:request AS jsonb), :version, CAST(:legend AS jsonb), :features, :at,"
                " :at, :seconds) ON CONFLICT (city, layer_key) DO UPDATE SET"
                " version = EXCLUDED.version, legend = EXCLUDED.legend,"
                " features = EXCLUDED.features, built_at = EXCLUDED.built_at,"
                " used_at = EXCLUDED.used_at, seconds = EXCLUDED.seconds"
            ),
            {
                "city": self.city,
                "key": key,
                "layer": name,
                "request": json.dumps(request, default=str),
                "version": version,
                "legend": json.dumps(body["legend"]),
                "features": len(rows),
                "at": moment,
                "seconds": time.perf_counter() - t0,
            },
        )
        self._prune(moment)
        return StoredLayer(key, body["legend"], window, len(rows), moment)

    def _prune(self, moment: datetime) -> None:
        """Forget stored layers nobody asked for in :data:`PRUNE_AFTER`."""
        params = {"city": self.city, "before": moment - PRUNE_AFTER}
        for table in ("heat_layer_values", "heat_layer_tiles"):
            self.session.execute(
                text(
                    f"DELETE FROM {table} v USING heat_layer_builds b"
                    " WHERE v.city = :city AND b.city = :city AND v.layer_key = b.layer_key"
                    " AND b.used_at < :before"
                ),
                params,
            )
        self.session.execute(
            text("DELETE FROM heat_layer_builds WHERE city = :city AND used_at < :before"),
            params,
        )

    def properties(self, stored: StoredLayer, code: str) -> dict[str, Any]:
        """All stored properties of grid ``code`` in ``stored`` (a tile's popup), or a 404
        naming the code."""
        props = self.session.execute(
            text(
                "SELECT props FROM heat_layer_values"
                " WHERE city = :city AND layer_key = :key AND code = :code"
            ),
            {"city": self.city, "key": stored.key, "code": code},
        ).scalar()
        if props is None:
            raise NotFound(f"no unit grid {code!r} in this heat layer", field="code")
        return dict(props)

    def tile(self, stored: StoredLayer, req: TileRequest, at: datetime) -> bytes:
        """The unit grids meeting the tile with the stored properties of ``stored``
        (grid versions valid at ``at``: the window's end). Rendered once, then kept with the
        values (a restarted service draws the same view from the database)."""
        where = {
            "city": self.city,
            "key": stored.key,
            "z": req.z,
            "x": req.x,
            "y": req.y,
            "datum": req.datum,
        }
        kept = self.session.execute(
            text(
                "SELECT data FROM heat_layer_tiles WHERE city = :city AND layer_key = :key"
                " AND z = :z AND x = :x AND y = :y AND datum = :datum"
            ),
            where,
        ).scalar()
        if kept is not None:
            return bytes(kept)
        dx, dy = req.shift()
        value = self.session.execute(
            text(_TILE),
            {
                **where,
                "dx": dx,
                "dy": dy,
                "at": at,
                "tolerance": tile_unit_m(req.z) * EXTENT / HEAT_EXTENT,
            },
        ).scalar()
        data = bytes(value) if value is not None else b""
        self.session.execute(
            text(
                "INSERT INTO heat_layer_tiles (city, layer_key, z, x, y, datum, data)"
                " VALUES (:city, :key, :z, :x, :y, :datum, :data) ON CONFLICT DO NOTHING"
            ),
            {**where, "data": data},
        )
        return data


# jsonb properties (the ``TILE_PROPS`` of the stored ones) become the features' attributes
# (ST_AsMVT expands a jsonb column); the
# grids meeting the tile come from their spatial index, each one's values by primary key
# (LATERAL ... OFFSET 0, never flattened: the planner must not start from the layer's 30,000
# values, which it takes for one row until the table is analysed)
_TILE_PROPS_SQL = ", ".join(f"'{k}', v.props->'{k}'" for k in TILE_PROPS)
_TILE = f"""
{TILE_ENV}SELECT ST_AsMVT(t, 'heat', {HEAT_EXTENT}, 'geom') FROM (
    SELECT jsonb_build_object({_TILE_PROPS_SQL}) AS props,
           ST_AsMVTGeom(
               ST_Simplify(ST_Transform(ST_Translate(g.geom, :dx, :dy), 3857), :tolerance, true),
               env.merc, {HEAT_EXTENT}, {HEAT_BUFFER}, true
           ) AS geom
    FROM env, grids g,
    LATERAL (
        SELECT props FROM heat_layer_values
        WHERE city = :city AND layer_key = :key AND code = g.code
        OFFSET 0
    ) v
    WHERE g.city = :city AND g.level = 'unit'
      AND g.valid_from <= :at AND (g.valid_to IS NULL OR g.valid_to > :at)
      AND g.geom && env.wgs AND ST_Intersects(g.geom, env.wgs)
) t
WHERE t.geom IS NOT NULL
"""

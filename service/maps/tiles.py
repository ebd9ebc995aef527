"""Mapbox vector tiles of grids and open cases, built by PostGIS (``ST_AsMVT``).

Tiles are in Web Mercator tile coordinates (extent 4096, buffer 64) on the XYZ scheme (y = 0
at the north edge), for Leaflet.VectorGrid and the like.

``grids`` — current grid versions; the levels depend on the zoom (``level=`` forces one):

=========  ===================
zoom       levels
=========  ===================
0–9        city, district
10–12      district, street
13–14      street, community
15–22      community, unit
=========  ===================

A tile holds exactly the grids whose boundary intersects the tile (touching included), with
``code, name, level, responsible_unit`` and the row id as feature id. Geometry is simplified
by one tile unit (``ST_Simplify`` in metres) before ``ST_AsMVTGeom`` snaps it to the tile grid,
so a polygon smaller than a tile unit vanishes.

``cases`` — open cases (reported … fed_back). From zoom 14 on, one point per case in the MVT
layer ``cases`` with ``id, category_code, status, overdue (deadline_at < now), reported_at``
(ISO 8601 in the display time zone); cases up to the 64-unit buffer around the tile are
included so symbols are not cut at tile edges. Below zoom 14 — or when a tile would carry
more than 10,000 points — the tile holds the MVT layer ``case_clusters`` instead: the tile is
cut into 8 × 8 cells (512 tile units, 32 screen pixels on a 256 px tile), and each cell
with cases becomes one point at their mean position with ``count`` and ``overdue`` (how many of
them are overdue); a case belongs to exactly one tile there (west and north edges inclusive).
So no tile carries more than 10,000 features. Filters: ``category`` (code prefix) and ``grid``
(a grid's whole subtree). The clusters of an unfiltered WGS 84 tile for a city-wide principal
(zoom ≤ 13) are read from cells pre-counted per state of the cases table
(:mod:`service.maps.clusters`) instead of the raw cases, which also tell a crowded point tile
(zoom 14–16) without reading it. Points are read in one pass, at most 10,001 of them, through
the partial GiST index ``ix_cases_open_geom`` of the open cases' positions.

``datum=gcj02`` serves the same tiles for a GCJ-02 base map (AMap, Tencent): every geometry
is shifted by the GCJ-02 offset at the tile's centre (the offset varies by a metre or two across
a tile at zoom 12 and deeper, far below the 100–700 m it corrects).

Caching: rendered tiles live in a per-app LRU (:class:`TileCache`) keyed by the tile, its
filters and the layer's *data version*, a change detector read from the database in well
under a millisecond: the table's change counter (bumped by a statement trigger inside every
writing transaction, so it changes exactly when the new rows become visible) and the next
moment a tile changes by itself — the earliest future deadline of an open case (an overdue
flag flips then), the next grid validity boundary. Any committed insert, update or status
change, a deadline passing or a grid version starting or ending changes it.
The version is read at most once per ``version_ttl`` seconds (default 1 s) per layer, so a
change shows in tiles within that time.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from cachetools import LRUCache
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.codes import LEVELS
from gis.datum import from_wgs84
from service.accounts.principal import Principal
from service.accounts.scope import case_sql, scope_key
from service.campaigns.campaigns import CampaignService
from service.cases.workflow import OPEN_SQL
from service.clock import now
from service.errors import BadParameter, NotFound, Unauthenticated
from service.grids.registry import Registry
from service.maps import clusters
from service.maps.versions import data_version
from service.settings import AppSettings

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
TILE_LAYERS: tuple[str, ...] = ("grids", "cases")
# base maps drawn in these datums can be served (AMap/Tencent tiles are GCJ-02 Web Mercator)
TILE_DATUMS: tuple[str, ...] = ("wgs84", "gcj02")
EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
# (first zoom, levels shown from there on)
GRID_LEVELS_BY_ZOOM: tuple[tuple[int, tuple[str, ...]], ...] = (
    (0, ("city", "district")),
    (10, ("district", "street")),
    (13, ("street", "community")),
    (15, ("community", "unit")),
)
CASE_POINTS_FROM_ZOOM = 14
MAX_POINTS = 10_000
CLUSTER_CELL = 512  # tile units: 8 × 8 cells of 32 px per tile, at most 64 clusters
WORLD_M = 2 * 20037508.342789244  # Web Mercator world width in metres


# (category prefix, grid code prefix, (campaign id, last edited)) of a case tile
Filters = tuple[str | None, str | None, tuple[int, str] | None]
NO_FILTERS: Filters = (None, None, None)


@dataclass(frozen=True)
class TileRequest:
    """One tile of one layer, with its filters (validated by :func:`tile_request`)."""

    layer: str
    z: int
    x: int
    y: int
    level: str | None = None
    category: str | None = None
    grid: str | None = None
    datum: str = "wgs84"
    campaign: int | None = None

    def shift(self) -> tuple[float, float]:
        """Degrees to add to WGS 84 coordinates so they sit on a ``datum`` base map here.

        GCJ-02 moves points by a few hundred metres, smoothly: one shift taken at the tile's
        centre is within a metre or two across a city-scale tile (zoom 12 and deeper).
        """
        if self.datum == "wgs84":
            return 0.0, 0.0
        n = 2.0**self.z
        lon = (self.x + 0.5) / n * 360.0 - 180.0
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (self.y + 0.5) / n))))
        slon, slat = from_wgs84(np.array([lon]), np.array([lat]), self.datum)
        return float(slon[0] - lon), float(slat[0] - lat)


@dataclass(frozen=True)
class Tile:
    """Encoded tile bytes and their strong ETag, and the bytes gzipped (tiles over
    :data:`GZIP_FROM` bytes): compressed once when rendered, not on every answer."""

    data: bytes
    etag: str
    gzipped: bytes | None = None

    @property
    def size(self) -> int:
        """Bytes this tile takes in a cache."""
        return max(len(self.data) + len(self.gzipped or b""), 1)


GZIP_FROM = 1024


def make_tile(data: bytes) -> Tile:
    """A :class:`Tile` of encoded bytes: ETag from their hash, gzipped once when large."""
    etag = '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'
    packed = gzip.compress(data, compresslevel=6, mtime=0) if len(data) >= GZIP_FROM else None
    return Tile(data, etag, packed)


def tile_request(
    layer: str,
    z: int,
    x: int,
    y: int,
    *,
    level: str | None = None,
    category: str | None = None,
    grid: str | None = None,
    datum: str = "wgs84",
    campaign: int | None = None,
) -> TileRequest:
    """Check a tile address and its filters; domain errors name the parameter."""
    if layer not in TILE_LAYERS:
        raise NotFound(
            f"no tile layer {layer!r}; layers are {', '.join(TILE_LAYERS)}",
            field="layer",
            layers=list(TILE_LAYERS),
        )
    if not 0 <= z <= MAX_ZOOM:
        raise BadParameter(f"z must be between 0 and {MAX_ZOOM}, got {z}", field="z")
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < 2**z:
            raise BadParameter(
                f"{name} must be between 0 and {2**z - 1} at zoom {z}, got {value}", field=name
            )
    if layer == "grids" and (category is not None or grid is not None or campaign is not None):
        name = "category" if category is not None else "grid" if grid is not None else "campaign"
        raise BadParameter(f"{name} filters the cases layer only", field=name)
    if campaign is not None and not 1 <= campaign < 2**63:
        raise BadParameter(f"campaign must be a campaign id, got {campaign}", field="campaign")
    if layer == "cases" and level is not None:
        raise BadParameter("level applies to the grids layer only", field="level")
    if category is not None and not (category.isascii() and category.isalnum()):
        raise BadParameter(
            f"category must be a category code or prefix such as 05 or 0102, got {category!r}",
            field="category",
        )
    if grid is not None and not (grid.isascii() and grid.isdigit()):
        raise BadParameter(f"grid must be a grid code (digits), got {grid!r}", field="grid")
    if level is not None and level not in LEVELS:
        raise BadParameter(
            f"unknown level {level!r}; levels are {', '.join(LEVELS)}", field="level"
        )
    if datum not in TILE_DATUMS:
        raise BadParameter(
            f"datum must be one of {', '.join(TILE_DATUMS)} (Web-Mercator base maps)",
            field="datum",
        )
    return TileRequest(layer, z, x, y, level, category or None, grid or None, datum, campaign)


def grid_levels(z: int, forced: str | None = None) -> tuple[str, ...]:
    """Grid levels drawn at zoom ``z`` (just ``forced`` when given)."""
    if forced:
        return (forced,)
    shown = GRID_LEVELS_BY_ZOOM[0][1]
    for first, levels in GRID_LEVELS_BY_ZOOM:
        if z >= first:
            shown = levels
    return shown


def tile_unit_m(z: int) -> float:
    """Size of one tile unit (1/EXTENT of a tile) in Web Mercator metres at zoom ``z``."""
    return WORLD_M / 2**z / EXTENT


class TileCache:
    """Thread-safe LRU of encoded tiles (bounded in bytes) plus memoised data versions."""

    def __init__(self, max_bytes: int = 64 * 2**20, version_ttl: float = 1.0) -> None:
        self.version_ttl = version_ttl
        self._tiles: LRUCache[Hashable, Tile] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda tile: tile.size
        )
        self._versions: dict[Hashable, tuple[float, Hashable]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Tile | None:
        """The cached tile for ``key``, if any."""
        with self._lock:
            return self._tiles.get(key)

    def put(self, key: Hashable, tile: Tile) -> None:
        """Keep ``tile`` (a tile larger than the whole cache is not kept)."""
        with self._lock:
            try:
                self._tiles[key] = tile
            except ValueError:  # larger than max_bytes
                pass

    def version(self, key: Hashable, read: Callable[[], Hashable]) -> Hashable:
        """The data version for ``key``: ``read()`` at most once per ``version_ttl`` seconds."""
        t = time.monotonic()
        with self._lock:
            memo = self._versions.get(key)
        if memo is not None and t - memo[0] < self.version_ttl:
            return memo[1]
        value = read()
        with self._lock:
            self._versions[key] = (t, value)
        return value

    def fresh_version(self, key: Hashable) -> Hashable | None:
        """The memoised data version for ``key`` if read within ``version_ttl`` (no I/O)."""
        with self._lock:
            memo = self._versions.get(key)
        if memo is not None and time.monotonic() - memo[0] < self.version_ttl:
            return memo[1]
        return None

    def __len__(self) -> int:
        """How many tiles are cached."""
        with self._lock:
            return len(self._tiles)


def _scope(req: TileRequest, by: Principal) -> tuple[Any, ...] | None:
    """What of the caller decides the tile: nothing for grids; for cases, ``maps.read`` (403
    naming it) and the caller's scope (:func:`service.accounts.scope.scope_key`)."""
    if req.layer != "cases":
        return None
    if by.kind == "anonymous":  # public grids never make cases public
        raise Unauthenticated(
            "log in or send a token or an API key: case tiles need the permission maps.read",
            field="authorization",
            permission="maps.read",
        )
    by.require("maps.read")
    return scope_key(by)


def cached_tile(city: str, req: TileRequest, cache: TileCache, by: Principal) -> Tile | None:
    """The tile straight from ``cache`` when that needs no query: no filters to check against
    the data, and the layer's data version read within the last ``version_ttl``. Case tiles
    are cached per scope: principals who see the same cases share them."""
    scope = _scope(req, by)
    if req.category is not None or req.grid is not None or req.campaign is not None:
        return None
    version = cache.fresh_version((city, req.layer))
    if version is None:
        return None
    key = (city, req.layer, req.z, req.x, req.y, req.level, req.datum, NO_FILTERS, version)
    return cache.get(key + (scope,))


class TileService:
    """Vector tiles for one city on one session."""

    def __init__(self, session: Session, settings: AppSettings) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city

    def tile(self, req: TileRequest, cache: TileCache, by: Principal) -> Tile:
        """The encoded tile for ``req`` as ``by`` may see it: grids for anyone the route lets
        in, cases only those in ``by``'s scope (from ``cache`` while the data version holds)."""
        scope = _scope(req, by)
        t = now()
        filters = self._filters(req, by)
        version = cache.version((self.city, req.layer), lambda: self.data_version(req.layer, t))
        key = (
            *(self.city, req.layer, req.z, req.x, req.y, req.level, req.datum),
            *(filters, version, scope),
        )
        cached = cache.get(key)
        if cached is not None:
            return cached
        data = self.render(req, filters, t, by)
        tile = make_tile(data)
        cache.put(key, tile)
        return tile

    # -- filters ---------------------------------------------------------------------------
    def _filters(self, req: TileRequest, by: Principal) -> Filters:
        """(category prefix, grid code prefix, campaign), each checked against the stored
        data; the campaign must be one ``by`` may read, and comes with the moment it was last
        edited (an edit tags cases again: the cache key must move with it)."""
        category = grid_prefix = campaign = None
        if req.category is not None:
            category = req.category
            hit = self.session.execute(
                text(
                    "SELECT 1 FROM categories WHERE city = :city "
                    "AND starts_with(code, :prefix) LIMIT 1"
                ),
                {"city": self.city, "prefix": category},
            ).first()
            if hit is None:
                raise NotFound(
                    f"no category code starts with {category!r}; see GET /api/categories",
                    field="category",
                )
        if req.grid is not None:
            registry = Registry(self.session, self.settings)
            grid_prefix = registry.subtree_prefix(req.grid)
        if req.campaign is not None:
            found = CampaignService(self.session, self.settings).visible(req.campaign, by)
            campaign = (found.id, found.updated_at.isoformat())
        return category, grid_prefix, campaign

    # -- data versions ---------------------------------------------------------------------
    def data_version(self, layer: str, at: datetime) -> Hashable:
        """A tuple that changes whenever the layer's tiles may change (``service.db.versions``)."""
        return data_version(self.session, self.city, layer, at)

    # -- rendering -------------------------------------------------------------------------
    def render(
        self,
        req: TileRequest,
        filters: Filters,
        at: datetime,
        by: Principal,
    ) -> bytes:
        """Encode the tile in PostGIS (cases: those in ``by``'s scope)."""
        if req.layer == "grids":
            return self._grids(req, at)
        sql, params = self.case_statements(req, filters, at, by)
        # the pre-counted cells answer the unfiltered tiles of a city-wide principal
        counted = None
        if (
            req.z <= clusters.COUNTED_TO_ZOOM
            and all(f is None for f in filters)
            and req.datum == "wgs84"
            and by.city_wide
        ):
            counted = clusters.current(self.session, self.city, at)
        if req.z >= CASE_POINTS_FROM_ZOOM:
            # more cases inside the tile than it may carry as points: known from the cells
            crowded = counted is not None and (
                clusters.inside(self.session, self.city, req.z, req.x, req.y) > MAX_POINTS
            )
            if not crowded:
                # answers carry local time: format reported_at in the display zone. A SET
                # LOCAL statement (not set_config()) so that Citus passes it on to the worker
                # that formats the rows (citus.propagate_set_commands, see `distribute`)
                zone = self.settings.grids.timezone.replace("'", "''")
                self.session.execute(text(f"SET LOCAL TIME ZONE '{zone}'"))
                # one pass: the points of the buffered tile, at most MAX_POINTS + 1 of them
                n, data = self.session.execute(
                    text(sql["points"]), params | {"limit": MAX_POINTS + 1}
                ).one()
                if int(n) <= MAX_POINTS:
                    return bytes(data) if data is not None else b""
        if counted is not None and req.z <= clusters.MAX_CLUSTER_ZOOM:
            cells = clusters.tile_params(self.city, req.z, req.x, req.y, counted, at)
            return self._scalar(clusters.TILE_SQL, cells)
        return self._scalar(sql["clusters"], params | {"cell": CLUSTER_CELL})

    def case_statements(
        self,
        req: TileRequest,
        filters: Filters,
        at: datetime,
        by: Principal,
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """The SQL of a case tile (``count``, ``points``, ``clusters``) limited to ``by``'s
        scope, and its parameters (``limit`` and ``cell`` are added by the caller) — what
        :meth:`render` runs, and what the plan tests explain."""
        category, grid_prefix, campaign = filters
        scope, scope_params = case_sql(by, "c")
        dx, dy = req.shift()
        params: dict[str, Any] = {
            "z": req.z,
            "x": req.x,
            "y": req.y,
            "city": self.city,
            "at": at,
            "category": category,
            "grid_prefix": grid_prefix,
            "campaign": campaign[0] if campaign else None,
            "dx": dx,
            "dy": dy,
            **scope_params,
        }
        sql = {
            "count": _COUNT_CASES.replace(_SCOPE, scope),
            "points": _CASE_POINTS.replace(_SCOPE, scope),
            "clusters": _CASE_CLUSTERS.replace(_SCOPE, scope),
        }
        return sql, params

    def _grids(self, req: TileRequest, at: datetime) -> bytes:
        params = {
            "z": req.z,
            "x": req.x,
            "y": req.y,
            "city": self.city,
            "levels": list(grid_levels(req.z, req.level)),
            "at": at,
            "tolerance": tile_unit_m(req.z),
            "dx": req.shift()[0],
            "dy": req.shift()[1],
        }
        return self._scalar(_GRIDS, params)

    def _scalar(self, sql: str, params: dict[str, Any]) -> bytes:
        value = self.session.execute(text(sql), params).scalar()
        return bytes(value) if value is not None else b""


# the tile in Web Mercator (what ST_AsMVTGeom clips to) and, for the index lookup, in WGS 84
# shifted back by the datum offset (:dx, :dy) of a GCJ-02 tile
TILE_ENV = """WITH env AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS merc,
           ST_Translate(ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326), -:dx, -:dy) AS wgs
)
"""

_GRIDS = f"""
{TILE_ENV}SELECT ST_AsMVT(t, 'grids', {EXTENT}, 'geom', 'id') FROM (
    SELECT g.id, g.code, g.name, g.level, g.responsible_unit,
           ST_AsMVTGeom(
               ST_Simplify(ST_Transform(ST_Translate(g.geom, :dx, :dy), 3857), :tolerance, true),
               env.merc, {EXTENT}, {BUFFER}, true
           ) AS geom
    FROM grids g, env
    WHERE g.city = :city
      AND g.level = ANY(:levels)
      AND g.valid_from <= :at AND (g.valid_to IS NULL OR g.valid_to > :at)
      AND g.geom && env.wgs
      AND ST_Intersects(g.geom, env.wgs)
) t
WHERE t.geom IS NOT NULL
"""


# the caller's scope (service.accounts.scope.case_sql) goes in place of this mark
_SCOPE = "/* scope */ true"

_CASE_WHERE = f"""
    c.city = :city
    AND c.status IN {OPEN_SQL}
    AND (CAST(:category AS text) IS NULL OR starts_with(c.category_code, :category))
    AND (CAST(:grid_prefix AS text) IS NULL OR starts_with(c.grid_code, :grid_prefix))
    AND (CAST(:campaign AS bigint) IS NULL OR EXISTS (
        SELECT 1 FROM campaign_cases cc
        WHERE cc.city = :city AND cc.campaign_id = :campaign AND cc.case_id = c.id
    ))
    AND {_SCOPE}
"""

# points: the tile plus its buffer, so a symbol near the edge is drawn by both tiles
_BUFFERED_ENV = (
    f"ST_Translate(ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), 4326), "
    "-:dx, -:dy)"
)

_COUNT_CASES = f"""
SELECT count(*) FROM (
    SELECT 1 FROM cases c
    WHERE {_CASE_WHERE} AND c.geom && {_BUFFERED_ENV}
    LIMIT :limit
) n
"""

_CASE_POINTS = f"""
WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS merc, {_BUFFERED_ENV} AS wgs),
pts AS MATERIALIZED (
    SELECT c.id, c.category_code, c.status,
           COALESCE(c.deadline_at < :at, false) AS overdue,
           to_char(c.reported_at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM') AS reported_at,
           ST_AsMVTGeom(
               ST_Transform(ST_Translate(c.geom, :dx, :dy), 3857),
               env.merc, {EXTENT}, {BUFFER}, true
           ) AS geom
    FROM cases c, env
    WHERE {_CASE_WHERE} AND c.geom && env.wgs
    LIMIT :limit
)
SELECT (SELECT count(*) FROM pts) AS n,
       (SELECT ST_AsMVT(t, 'cases', {EXTENT}, 'geom', 'id') FROM pts t
        WHERE t.geom IS NOT NULL AND (SELECT count(*) FROM pts) < :limit) AS mvt
"""

# clusters: each case in exactly one tile (west/north edges inclusive), one point per cell
_CASE_CLUSTERS = f"""
WITH env AS (
    SELECT ST_XMin(e) AS x0, ST_YMax(e) AS y1, ST_XMax(e) - ST_XMin(e) AS size,
           ST_XMax(e) AS x1, ST_YMin(e) AS y0,
           ST_Translate(ST_Transform(e, 4326), -:dx, -:dy) AS wgs
    FROM ST_TileEnvelope(:z, :x, :y) AS e
), pts AS (
    SELECT ({EXTENT} * (ST_X(m) - env.x0) / env.size) AS px,
           ({EXTENT} * (env.y1 - ST_Y(m)) / env.size) AS py,
           COALESCE(deadline_at < :at, false) AS overdue
    FROM env, cases c, LATERAL ST_Transform(ST_Translate(c.geom, :dx, :dy), 3857) AS m
    WHERE {_CASE_WHERE} AND c.geom && env.wgs
      AND ST_X(m) >= env.x0 AND ST_X(m) < env.x1 AND ST_Y(m) > env.y0 AND ST_Y(m) <= env.y1
), cells AS (
    SELECT floor(px / :cell) AS cx, floor(py / :cell) AS cy, count(*) AS n,
           count(*) FILTER (WHERE overdue) AS n_overdue, avg(px) AS px, avg(py) AS py
    FROM pts GROUP BY 1, 2
)
SELECT ST_AsMVT(t, 'case_clusters', {EXTENT}, 'geom') FROM (
    SELECT ST_MakePoint(round(px), round(py)) AS geom,
           n::int AS count, n_overdue::int AS overdue
    FROM cells
) t
"""

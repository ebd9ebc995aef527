"""Server-side aggregates behind the dispatcher's heat maps (nothing raw goes to the browser).

Every layer is computed from the database for a filter (time window, category prefix, grid
subtree) and returned ready to draw: GeoJSON with a ``fill`` colour per feature and a
``legend``, or a transparent PNG with its bounds. See ``gis.density``, ``gis.gi_star`` and
``gis.coverage`` for the statistics, ``layers.overlay`` for the PNG.

Layers
    ``grids``       unit grids with responsible people, cases, open/overdue now, density per
                    km² (or per patrol hour), patrol coverage of the window — the click-through
    ``hexbins``     cases in metric hexagons (``size_m`` flat to flat)
    ``kde``         kernel density surface of cases (PNG)
    ``gi``          Getis-Ord Gi* hot/cold spots of the per-grid density (permutation test)
    ``coverage``    covered share and hours since the last visit per grid
    ``tracks``      density surface of patrol track vertices (PNG)
    ``blind``       grids with problems and (almost) no patrol: cases per patrol hour
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Lock
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely
from cachetools import LRUCache
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from gis.datum import from_wgs84, transform_geometries
from gis.density import grid_density, hexbin_counts, kernel_density
from gis.gi_star import gi_star
from gis.metric import utm_crs_for_geometries
from layers.overlay import raster_to_png
from layers.styles import HOT_SPOT_COLOURS, classify, hot_spot_legend
from service.accounts.principal import Principal
from service.accounts.privacy import name_for, phone_for
from service.accounts.scope import case_condition, scope_key
from service.cases.catalogue import Catalogue
from service.cases.workflow import OPEN_STATUSES
from service.clock import now
from service.db.engine import driver_cursor
from service.db.models import Case, Grid
from service.errors import InvalidInput, NotFound
from service.grids.registry import Registry
from service.grids.repository import GridFilter, geom_of
from service.maps.versions import data_version
from service.patrol.coverage import CoverageService
from service.patrol.tracks import read_tracks
from service.patrol.workers import PatrolService
from service.settings import AppSettings

LAYERS = ("grids", "hexbins", "kde", "gi", "coverage", "tracks", "blind")
MAX_WINDOW = timedelta(days=366)


@dataclass(frozen=True)
class HeatFilter:
    """What a heat layer aggregates: cases reported (and patrols walked) in ``[start, end)``,
    optionally one category (prefix) and one grid's subtree — of those ``by`` may see.

    Two filters are equal (one cached answer) when everything but ``by`` is equal and the
    principals see the same: ``scope`` is :func:`service.accounts.scope.scope_key`.
    """

    start: datetime
    end: datetime
    category: str | None
    grid: str | None
    by: Principal = field(compare=False, repr=False)
    scope: tuple[Any, ...] = ()


class HeatCache:
    """Answers by filter and data version, so a map opened by many dispatchers (or a layer
    switched on and off) is computed once while nothing changes."""

    def __init__(self, maxsize: int = 64) -> None:
        self._answers: LRUCache[Any, dict[str, Any]] = LRUCache(maxsize=maxsize)
        self._lock = Lock()

    def get(self, key: Any) -> dict[str, Any] | None:
        """The cached answer, if any."""
        with self._lock:
            return self._answers.get(key)

    def put(self, key: Any, body: dict[str, Any]) -> None:
        """Remember an answer."""
        with self._lock:
            self._answers[key] = body


class HeatService:
    """Heat-map layers for one city on one session."""

    def __init__(
        self, session: Session, settings: AppSettings, cache: HeatCache | None = None
    ) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.registry = Registry(session, settings)
        self.cache = cache

    def checked(
        self,
        start: datetime | None,
        end: datetime | None,
        category: str | None = None,
        grid: str | None = None,
        *,
        by: Principal,
    ) -> HeatFilter:
        """A filter of what ``by`` may see, with defaults (the last 30 days) and every part
        checked: a wrong category or grid is a 404 naming it, never an empty map that
        pretends to be fine."""
        end = end or now()
        start = start or end - timedelta(days=30)
        if end <= start:
            raise InvalidInput("'to' must be after 'from'", field="to")
        if end - start > MAX_WINDOW:
            raise InvalidInput("the window is at most 366 days", field="from")
        if category:
            codes = [c.code for c in Catalogue(self.session, self.settings).categories()]
            if not any(c.startswith(category) for c in codes):
                raise NotFound(
                    f"no category {category!r} (give a code or prefix)", field="category"
                )
        if grid:
            self.registry.subtree_prefix(grid)
        return HeatFilter(start, end, category or None, grid or None, by, scope_key(by))

    # -- layers ---------------------------------------------------------------------------------
    def layer(
        self, name: str, flt: HeatFilter, datum: str = "wgs84", **options: Any
    ) -> dict[str, Any]:
        """One layer by name (see the module docstring), in ``datum`` coordinates (GCJ-02 for
        an AMap base map)."""
        key: tuple[Any, ...] = ()
        if self.cache is not None:
            key = (self.city, name, flt, datum, tuple(sorted(options.items())))
            key += (self._version(flt),)
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        body = self._layer(name, flt, **options)
        body = body if datum == "wgs84" else _shifted(body, datum)
        if self.cache is not None:
            self.cache.put(key, body)
        return body

    def _version(self, flt: HeatFilter) -> tuple[Any, ...]:
        """Changes whenever any layer of ``flt`` could: a write to cases or grids, an open
        case's deadline passing, a grid version starting or ending (``service.db.versions``),
        new or rebuilt tracks of the window (the coverage fingerprint)."""
        moment = now()
        return (
            data_version(self.session, self.city, "cases", moment),
            data_version(self.session, self.city, "grids", moment),
            CoverageService(self.session, self.settings).fingerprint(flt.start, flt.end),
        )

    def _layer(self, name: str, flt: HeatFilter, **options: Any) -> dict[str, Any]:
        builders: dict[str, Callable[..., dict[str, Any]]] = {
            "grids": self.grids,
            "hexbins": self.hexbins,
            "kde": self.kde,
            "gi": self.gi,
            "coverage": self.coverage,
            "tracks": self.tracks,
            "blind": self.blind,
        }
        if name not in builders:
            raise NotFound(f"no heat layer {name!r}; layers are {', '.join(LAYERS)}", field="layer")
        return builders[name](flt, **options)

    def grids(self, flt: HeatFilter, per: str = "km2") -> dict[str, Any]:
        """Unit grids with everything a click shows, coloured by case density."""
        codes, geoms, rows = self._grids(flt)
        table = self._density(flt, codes, geoms, per)
        coverage = self._coverage(flt)
        open_now = self._open_counts(flt)
        fills, legend = classify(table["value"].to_numpy(), _density_title(per))
        features = []
        for code, geom, row, fill in zip(codes, geoms, rows, fills, strict=True):
            t: Any = table.loc[code]
            cov = coverage.get(code, {})
            persons = row.responsible_persons or []
            features.append(
                _feature(
                    geom,
                    code=code,
                    name=row.name,
                    responsible_unit=row.responsible_unit,
                    responsible_person=name_for(flt.by, persons[0].get("name"))
                    if persons
                    else None,
                    responsible_phone=phone_for(flt.by, persons[0].get("phone"))
                    if persons
                    else None,
                    cases=int(t["count"]),
                    per_km2=_round(t["per_km2"]),
                    per_patrol_hour=_round(t.get("per_patrol_hour", np.nan)),
                    open=open_now.get(code, (0, 0))[0],
                    overdue=open_now.get(code, (0, 0))[1],
                    covered_share=_round(cov.get("covered_share", np.nan), 3),
                    visits=int(cov.get("visits", 0)),
                    fill=fill,
                )
            )
        return _collection(features, legend.as_json(), flt)

    def hexbins(self, flt: HeatFilter, size_m: float = 250.0) -> dict[str, Any]:
        """Cases counted in hexagons of ``size_m`` metres (flat to flat)."""
        if not 50 <= size_m <= 5000:
            raise InvalidInput("size_m must be between 50 and 5000 metres", field="size_m")
        lon, lat = self._cases(flt)
        _, geoms, _ = self._grids(flt)
        crs = utm_crs_for_geometries(np.asarray(geoms, dtype=object))
        hexes = hexbin_counts(lon, lat, size_m, crs=crs)
        fills, legend = classify(hexes["count"].to_numpy(), f"Cases per {size_m:g} m hexagon")
        features = [
            _feature(g, count=int(c), fill=f)
            for g, c, f in zip(hexes.geometry, hexes["count"], fills, strict=True)
        ]
        return _collection(features, legend.as_json(), flt)

    def kde(self, flt: HeatFilter, bandwidth_m: float = 150.0) -> dict[str, Any]:
        """Kernel density surface of the cases as a PNG overlay."""
        lon, lat = self._cases(flt)
        return self._surface(flt, lon, lat, bandwidth_m, "Cases per km² (kernel density)")

    def gi(self, flt: HeatFilter, per: str = "km2", permutations: int = 999) -> dict[str, Any]:
        """Statistically significant hot and cold spots of the per-grid density."""
        if not 99 <= permutations <= 9999:
            raise InvalidInput("permutations must be between 99 and 9999", field="permutations")
        codes, geoms, _ = self._grids(flt)
        if len(codes) < 3:
            raise InvalidInput("hot-spot analysis needs at least 3 unit grids", field="grid")
        table = self._density(flt, codes, geoms, per).fillna({"value": 0.0})
        spots = gi_star(codes, geoms, table["value"], permutations=permutations)
        features = [
            _feature(
                geom,
                code=code,
                value=_round(table.loc[code, "value"]),
                z=_round(spots.loc[code, "z"], 2),
                p=_round(spots.loc[code, "p_value"], 4),
                **{"class": str(spots.loc[code, "class"])},
                fill=HOT_SPOT_COLOURS[str(spots.loc[code, "class"])],
            )
            for code, geom in zip(codes, geoms, strict=True)
        ]
        return _collection(features, hot_spot_legend().as_json(), flt)

    def coverage(
        self, flt: HeatFilter, metric: Literal["share", "since"] = "share"
    ) -> dict[str, Any]:
        """Patrol coverage per grid: covered share, or hours since the last visit."""
        codes, geoms, _ = self._grids(flt)
        cov = self._coverage(flt)
        if metric == "share":
            values = [cov.get(c, {}).get("covered_share", np.nan) for c in codes]
            fills, legend = classify(
                values, "Covered share (within 25 m of a track)", cmap="Greens"
            )
        else:
            last = [cov.get(c, {}).get("last_visit_t", np.nan) for c in codes]
            hours = (flt.end.timestamp() - np.asarray(last, dtype=float)) / 3600.0
            values = list(hours)
            fills, legend = classify(
                hours, "Hours since the last visit (grey: none)", cmap="Purples"
            )
        features = [
            _feature(
                g,
                code=c,
                covered_share=_round(cov.get(c, {}).get("covered_share", np.nan), 3),
                visits=int(cov.get(c, {}).get("visits", 0)),
                value=_round(v, 2),
                fill=f,
            )
            for c, g, v, f in zip(codes, geoms, values, fills, strict=True)
        ]
        return _collection(features, legend.as_json(), flt)

    def tracks(self, flt: HeatFilter, bandwidth_m: float = 60.0) -> dict[str, Any]:
        """Density surface of patrol track vertices (where workers spend their time)."""
        stored = read_tracks(self.session, self.city, flt.start, flt.end)
        keep = (stored.t >= flt.start.timestamp()) & (stored.t < flt.end.timestamp())
        mine = PatrolService(self.session, self.settings).worker_codes(flt.by)
        if mine is not None:  # only the tracks of the workers in scope
            keep &= np.isin(stored.worker_code, mine)[stored.vertex_track]
        return self._surface(
            flt,
            stored.lon[keep],
            stored.lat[keep],
            bandwidth_m,
            "Patrol fixes per km² (track density)",
            cmap="Blues",
        )

    def blind(self, flt: HeatFilter, min_cases: int = 3) -> dict[str, Any]:
        """Grids with at least ``min_cases`` cases and the fewest patrol hours per case:
        "many problems, little patrol". Grids not listed are fine or quiet."""
        if min_cases < 1:
            raise InvalidInput("min_cases must be at least 1", field="min_cases")
        codes, geoms, _ = self._grids(flt)
        table = self._density(flt, codes, geoms, "patrol_hour")
        hours = table["patrol_hours"].to_numpy()
        counts = table["count"].to_numpy()
        cases_per_hour = np.where(hours > 0, counts / np.maximum(hours, 1e-9), np.inf)
        pick = (counts >= min_cases) & (cases_per_hour >= _upper_quartile(cases_per_hour))
        values = np.where(np.isinf(cases_per_hour), np.nan, cases_per_hour)[pick]
        fills, legend = classify(
            values, "Cases per patrol hour (grey: never patrolled)", cmap="Reds"
        )
        chosen = np.flatnonzero(pick)
        features = [
            _feature(
                geoms[i],
                code=codes[i],
                cases=int(counts[i]),
                patrol_hours=_round(hours[i], 2),
                cases_per_patrol_hour=_round(values[k], 2),
                fill=fills[k],
            )
            for k, i in enumerate(chosen)
        ]
        return _collection(features, legend.as_json(), flt)

    # -- data -----------------------------------------------------------------------------------
    def _grids(self, flt: HeatFilter) -> tuple[list[str], list[Any], list[Grid]]:
        prefix = self.registry.subtree_prefix(flt.grid) if flt.grid else None
        rows = self.registry.repo.list(
            GridFilter(city=self.city, at=flt.end, level="unit", subtree_prefix=prefix)
        )
        if flt.by.grid_prefixes is not None:  # the principal's grids only
            rows = [r for r in rows if flt.by.covers_grid(r.code)]
        if not rows:
            raise NotFound("no unit grids in this area (and your scope) at that time", field="grid")
        return [r.code for r in rows], [geom_of(r) for r in rows], rows

    def _case_filter(self, flt: HeatFilter) -> list[Any]:
        """Cases reported in the window (merged duplicates are not separate problems)."""
        where = [
            Case.city == self.city,
            Case.reported_at >= flt.start,
            Case.reported_at < flt.end,
            Case.status != "merged",
        ]
        if flt.category:
            where.append(Case.category_code.startswith(flt.category, autoescape=True))
        if flt.grid:
            prefix = self.registry.subtree_prefix(flt.grid)
            where.append(Case.grid_code.startswith(prefix, autoescape=True))
        scope = case_condition(flt.by)
        if scope is not None:
            where.append(scope)
        return where

    def counts_query(self, flt: HeatFilter) -> Select[str | None, int]:
        """Cases per unit grid of ``flt`` (in its principal's scope): the query behind the
        density layers, explained by the plan tests."""
        return (
            select(Case.grid_code, func.count())
            .where(*self._case_filter(flt), Case.grid_code.is_not(None))
            .group_by(Case.grid_code)
        )

    def _cases(self, flt: HeatFilter) -> tuple[np.ndarray, np.ndarray]:
        # plain driver rows: ORM row objects would cost more than the aggregation itself
        stmt = select(Case.lon, Case.lat).where(*self._case_filter(flt))
        compiled = stmt.compile(dialect=self.session.get_bind().dialect)
        with driver_cursor(self.session) as cur:
            cur.execute(str(compiled), compiled.params)
            lonlat = np.array(cur.fetchall(), dtype=float).reshape(-1, 2)
        return lonlat[:, 0], lonlat[:, 1]

    def _density(
        self, flt: HeatFilter, codes: list[str], geoms: list[Any], per: str
    ) -> pd.DataFrame:
        if per not in ("km2", "grid", "patrol_hour"):
            raise InvalidInput("per must be km2, grid or patrol_hour", field="per")
        # counted in the database: a month of a big city is ~100k cases, one row per grid back
        per_grid = {code: n for code, n in self.session.execute(self.counts_query(flt))}
        counts = pd.Series(per_grid, dtype=float)
        counts = counts[counts.index.isin(codes)]
        hours = None
        if per == "patrol_hour":
            cov = self._coverage(flt)
            hours = {c: v.get("dwell_s", 0.0) / 3600.0 for c, v in cov.items()}
        return grid_density(codes, geoms, counts=counts, per=per, patrol_hours=hours)  # type: ignore[arg-type]

    def _coverage(self, flt: HeatFilter) -> dict[str, dict[str, float]]:
        result = CoverageService(self.session, self.settings).compute(flt.start, flt.end)
        table: Any = result.grids.set_index("code").to_dict("index")
        return table

    def _open_counts(self, flt: HeatFilter) -> dict[str, tuple[int, int]]:
        moment = now()
        stmt = (
            select(
                Case.grid_code,
                func.count(),
                func.count().filter(Case.deadline_at < moment),
            )
            .where(Case.city == self.city, Case.status.in_(OPEN_STATUSES))
            .group_by(Case.grid_code)
        )
        scope = case_condition(flt.by)
        if scope is not None:
            stmt = stmt.where(scope)
        if flt.category:
            stmt = stmt.where(Case.category_code.startswith(flt.category, autoescape=True))
        rows = self.session.execute(stmt)
        return {code: (int(n), int(late)) for code, n, late in rows if code is not None}

    def _surface(
        self,
        flt: HeatFilter,
        lon: np.ndarray,
        lat: np.ndarray,
        bandwidth_m: float,
        title: str,
        cmap: str = "YlOrRd",
    ) -> dict[str, Any]:
        if not 10 <= bandwidth_m <= 2000:
            raise InvalidInput(
                "bandwidth_m must be between 10 and 2000 metres", field="bandwidth_m"
            )
        _, geoms, _ = self._grids(flt)
        west, south, east, north = shapely.total_bounds(np.asarray(geoms, dtype=object))
        crs = utm_crs_for_geometries(np.asarray(geoms, dtype=object))
        raster = kernel_density(
            lon, lat, bandwidth_m, bandwidth_m / 3.0, bounds=(west, south, east, north), crs=crs
        )
        positive = raster.values[raster.values > 0]
        vmax = float(np.quantile(positive, 0.99)) if positive.size else 1.0
        overlay = raster_to_png(raster, cmap=cmap, vmax=vmax)
        _, legend = classify(np.linspace(0, vmax, 6), title, cmap=cmap)
        return {
            "type": "ImageOverlay",
            "image": "data:image/png;base64," + base64.b64encode(overlay.png).decode(),
            "bounds": [list(overlay.bounds[0]), list(overlay.bounds[1])],
            "points": int(lon.size),
            "legend": legend.as_json(),
            **_window(flt),
        }


def _shifted(body: dict[str, Any], datum: str) -> dict[str, Any]:
    """The layer with its coordinates converted from WGS 84 to ``datum``."""
    if body.get("type") == "ImageOverlay":
        (south, west), (north, east) = body["bounds"]
        lon, lat = from_wgs84(np.array([west, east]), np.array([south, north]), datum)
        return {**body, "bounds": [[lat[0], lon[0]], [lat[1], lon[1]]]}
    features = []
    for f in body["features"]:
        geom = transform_geometries(shapely.geometry.shape(f["geometry"]), "wgs84", datum)
        features.append({**f, "geometry": shapely.geometry.mapping(geom)})
    return {**body, "features": features}


def _feature(geom: Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": shapely.geometry.mapping(shapely.set_precision(geom, 1e-6)),
        "properties": props,
    }


def _collection(features: list[dict[str, Any]], legend: dict[str, Any], flt: HeatFilter):
    return {"type": "FeatureCollection", "legend": legend, **_window(flt), "features": features}


def _window(flt: HeatFilter) -> dict[str, Any]:
    from service.http.timeparse import iso

    return {"from": iso(flt.start), "to": iso(flt.end)}


def _round(value: Any, digits: int = 3) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _density_title(per: str) -> str:
    return {
        "km2": "Cases per km²",
        "grid": "Cases per grid",
        "patrol_hour": "Cases per patrol hour (grey: no patrol)",
    }[per]


def _upper_quartile(values: np.ndarray) -> float:
    finite = values[np.isfinite(values) & (values > 0)]
    return float(np.quantile(finite, 0.75)) if finite.size else 0.0

"""Deterministic demo cases (reported problems) in and around the demo city.

Cases are points with a category, a report time and a source, partly clustered around the
hotspots of :mod:`demo.hotspots` that cause them. Category names come from the caller (the
service passes its catalogue seed); the short texts a reporter would write are demo data and
live here, keyed by category code.

Rules a user relies on
----------------------
* **Seeded and stable.** The same arguments give an identical frame. Inputs that are not given
  are built with the same ``seed`` (``build_demo_city(seed)``, ``build_demo_hotspots(seed)``).
* **Cases keep the category weights.** A case's category is drawn first from the weights; then,
  for categories that a hotspot kind causes, a share of the cases is placed in the influence
  zone (geometry grown by ``buffer_m``, clipped to the district) of one hotspot of that kind
  that is active at the report time, chosen in proportion to ``risk_weight``. Everything else
  is spread over the unit grids in proportion to area times a land-use factor (commercial
  busiest), and about 0.5 % of all cases lie 20–300 m outside the district. With the default
  categories about 45 % of the cases are clustered near hotspots: 85 % of street vending
  (0501, 0502) at farmer markets and school gates, 85 % of construction cases (03xx) at sites
  open at the report time, 75 % of garbage (0102, 0103) along the rail line and 95 % of straw
  burning (0601) in the urban-rural fringe. A construction case reported when no site is open
  joins the background spread.
* **Points are uniform inside the chosen area**: the area is cut into triangles (constrained
  Delaunay, in lon/lat, so a point inside a unit grid is inside it in lon/lat, never off by a
  reprojection) and a point is drawn in a triangle chosen by area. Over a district, equal
  lon/lat areas are equal ground areas to well under 0.1 %.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely import Polygon

from demo.city import build_demo_city, district_of, in_lonlat, land_use_of
from demo.hotspots import TIMEZONE, build_demo_hotspots
from gis.metric import to_metric, to_wgs84, utm_crs_for_geometries

__all__ = ["CASE_SOURCES", "DEFAULT_CATEGORY_WEIGHTS", "DESCRIPTIONS", "generate_cases"]

# What a reporter would write, per event category code (demo texts, not catalogue names). A
# code without texts here (the "other" classes xx99) is described by its catalogue name.
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "0101": ("路边私搭乱建简易棚", "居民楼下违规搭建彩钢房"),
    "0102": ("路边有暴露垃圾未清运", "垃圾散落在地无人清理", "绿化带内有生活垃圾"),
    "0103": ("空地积存渣土未清运", "路边堆放建筑渣土"),
    "0104": ("路面油污未清洗", "人行道脏污不洁"),
    "0105": ("人行道上乱堆物料", "门店门口堆放杂物"),
    "0106": ("有人焚烧垃圾", "绿地内焚烧树叶冒烟"),
    "0201": ("墙面张贴非法小广告", "电线杆上贴满小广告"),
    "0202": ("违规设置户外广告牌", "广告横幅未经审批悬挂"),
    "0203": ("门头牌匾破损未修复", "店铺违规设置牌匾"),
    "0301": ("夜间施工噪音扰民", "工地机械作业噪声大"),
    "0302": ("施工围挡占用人行道", "施工材料占道堆放"),
    "0303": ("工地扬尘严重未覆盖", "工地裸土未覆盖防尘网", "渣土车出场未冲洗带泥上路"),
    "0304": ("路边倾倒施工废弃料", "建筑垃圾未及时清运"),
    "0401": ("路面出现塌陷坑",),
    "0402": ("自来水管破裂路面冒水",),
    "0403": ("闻到燃气泄漏气味",),
    "0404": ("下水道堵塞污水外溢", "雨水篦子破损"),
    "0405": ("路口积水严重影响通行",),
    "0406": ("路边发现起火冒烟",),
    "0501": ("流动摊贩沿街叫卖", "游商推车占道售卖水果", "三轮车流动售卖"),
    "0502": ("摊点占道经营", "商贩在人行道摆摊", "早市摊位占用机动车道"),
    "0503": ("商户店外摆放商品", "饭店门前摆桌经营"),
    "0504": ("夜市摊点超时经营", "早市收市后未清场"),
    "0505": ("路口有黑车拉客",),
    "0506": ("夜间露天烧烤油烟大", "路边露天烧烤摊"),
    "0601": ("田间焚烧秸秆浓烟", "村边焚烧秸秆"),
    "0699": ("其他城市管理问题",),
}

# Relative frequencies of the categories in a year of cases (normalised when drawn).
DEFAULT_CATEGORY_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("0101", 0.03), ("0102", 0.10), ("0103", 0.05), ("0104", 0.05), ("0105", 0.03),
    ("0106", 0.02), ("0199", 0.01),
    ("0201", 0.06), ("0202", 0.02), ("0203", 0.02), ("0299", 0.005),
    ("0301", 0.025), ("0302", 0.025), ("0303", 0.06), ("0304", 0.03), ("0399", 0.01),
    ("0401", 0.005), ("0402", 0.01), ("0403", 0.003), ("0404", 0.02), ("0405", 0.012),
    ("0406", 0.005), ("0499", 0.005),
    ("0501", 0.10), ("0502", 0.09), ("0503", 0.05), ("0504", 0.02), ("0505", 0.02),
    ("0506", 0.03), ("0599", 0.01),
    ("0601", 0.03), ("0699", 0.005),
)  # fmt: skip

CASE_SOURCES: tuple[tuple[str, float], ...] = (
    ("patrol", 0.45),
    ("citizen", 0.40),
    ("inspector", 0.15),
)


@dataclass(frozen=True)
class _Affinity:
    """Categories (by code prefix) that a hotspot kind causes, and the share placed near one."""

    prefixes: tuple[str, ...]
    kinds: tuple[str, ...]
    share: float


_AFFINITIES: tuple[_Affinity, ...] = (
    _Affinity(("0501", "0502"), ("farmer_market", "school_gate"), 0.85),  # street vending
    _Affinity(("03",), ("construction_site",), 0.85),  # dust, noise, debris
    _Affinity(("0102", "0103"), ("rail_corridor",), 0.75),  # garbage dumped along the tracks
    _Affinity(("0601",), ("urban_rural_fringe",), 0.95),  # straw burning in the fields
)
_OUTSIDE_SHARE = 0.005
_OUTSIDE_RING_M = (20.0, 300.0)  # cases outside the district lie this far from its edge
_SEGMENT_M = 20.0  # vertex spacing of zones and of the outside ring before reprojection
_LAND_USE_WEIGHT = {
    "商业": 3.0,
    "混合": 2.0,
    "居住": 1.5,
    "公共服务": 1.2,
    "道路交通": 1.0,
    "工业": 0.8,
    "绿地": 0.5,
}
# Reports per hour of the day (local time): quiet nights, morning and afternoon peaks.
_HOURLY = np.array(
    [0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.7, 1.4, 2.2, 2.6, 2.6, 2.3,
     1.6, 1.5, 2.1, 2.4, 2.4, 2.1, 1.6, 1.2, 0.9, 0.7, 0.5, 0.3]
)  # fmt: skip
_WEEKEND = 0.8  # fewer patrols at weekends

# Its own random stream (numbers distinct from demo.city's and demo.hotspots'; never change).
_CASES_STREAM = 201


def generate_cases(
    n: int,
    seed: int = 7,
    city: gpd.GeoDataFrame | None = None,
    hotspots: gpd.GeoDataFrame | None = None,
    start: str | pd.Timestamp = "2026-01-01",
    end: str | pd.Timestamp = "2026-11-20",
    categories: Sequence[tuple[str, float]] | None = None,
    names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Generate ``n`` demo cases (reported problems) in and around the demo city.

    Parameters
    ----------
    n : int
        Number of cases (>= 0). One million take a few seconds.
    seed : int
        Random seed; the same arguments always give an identical frame.
    city : geopandas.GeoDataFrame, optional
        Grids as returned by ``demo.city.build_demo_city``. Default ``build_demo_city(seed)``.
    hotspots : geopandas.GeoDataFrame, optional
        Hotspots as returned by ``build_demo_hotspots`` (needs ``kind``, ``buffer_m``,
        ``active_from``, ``active_to``, ``risk_weight``, ``geometry``). Default
        ``build_demo_hotspots(seed, city)``.
    start, end : str or pandas.Timestamp
        Report times lie in ``[start, end)``; naive values are Asia/Shanghai local time (a
        date means its midnight). At least one hour apart.
    categories : sequence of (str, float), optional
        ``(4-digit category code, weight)`` pairs; default ``DEFAULT_CATEGORY_WEIGHTS``.
    names : mapping of str to str, optional
        Catalogue name per category code (the service passes its catalogue seed). A code with
        no text of its own in ``DESCRIPTIONS`` is described by its name; a code with neither
        gets a generic description naming the code.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``reported_at``. Columns ``lon``, ``lat`` (WGS 84 float64),
        ``category_code`` (str), ``reported_at`` (datetime64[us, Asia/Shanghai], whole
        seconds, more in daytime and on weekdays), ``source`` ("patrol", "citizen" or
        "inspector"), ``description`` (short Chinese text) and ``idempotency_key`` (unique
        str, ``demo-<digest>-<row>``; the digest covers ``seed``, ``n``, the time range and
        the categories, so calls that differ in those never share a key).

    Raises
    ------
    ValueError
        If ``n`` is negative, the time range is shorter than an hour, a category code or
        weight is malformed, or ``city`` / ``hotspots`` lack what the generator needs.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n={n!r} must be a non-negative integer number of cases")
    codes, weights = _category_table(categories)
    t0, t1 = _time_range(start, end)
    city = build_demo_city(seed=seed) if city is None else city
    hotspots = build_demo_hotspots(seed=seed, city=city) if hotspots is None else hotspots
    areas = _sampling_areas(city, hotspots)
    rng = np.random.default_rng([seed, _CASES_STREAM])
    category = rng.choice(codes.size, size=n, p=weights)
    seconds = _report_seconds(rng, n, t0, t1)
    area = _choose_areas(rng, codes, category, seconds + _epoch(t0.normalize()), areas)
    lon, lat = areas.sample(rng, area)
    source = np.asarray([s for s, _ in CASE_SOURCES])[
        rng.choice(len(CASE_SOURCES), size=n, p=_normalised([w for _, w in CASE_SOURCES]))
    ]
    description = _descriptions(rng, codes, category, names or {})
    order = np.argsort(seconds, kind="stable")
    return pd.DataFrame(
        {
            "lon": lon[order],
            "lat": lat[order],
            "category_code": pd.array(codes[category][order], dtype="str"),
            "reported_at": _timestamps(t0.normalize(), seconds[order]),
            "source": pd.array(source[order], dtype="str"),
            "description": pd.array(description[order], dtype="str"),
            "idempotency_key": pd.array(_keys(n, seed, t0, t1, codes, weights), dtype="str"),
        }
    )


# --- sampling areas -------------------------------------------------------------------------------


@dataclass
class _Areas:
    """Sampling areas as triangles in lon/lat: unit grids, hotspot zones, the outside ring."""

    n_units: int
    unit_weight: np.ndarray  # background weight per unit grid
    hotspot_kind: np.ndarray
    hotspot_weight: np.ndarray  # risk weight, 0 for a hotspot whose zone misses the district
    active_from: np.ndarray  # epoch seconds
    active_to: np.ndarray
    triangles: np.ndarray  # (T, 3, 2) lon/lat
    first: np.ndarray  # first triangle of each area (areas: units, hotspots, outside ring)
    count: np.ndarray
    cum_area: np.ndarray

    @property
    def outside(self) -> int:
        """Index of the ring just outside the district."""
        return self.first.size - 1

    def sample(self, rng: np.random.Generator, area: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One uniform random point inside the given area for each entry of ``area``."""
        first, count = self.first[area], self.count[area]
        low = np.where(first > 0, self.cum_area[first - 1], 0.0)
        high = self.cum_area[first + count - 1]
        target = low + rng.random(area.size) * (high - low)
        tri = np.searchsorted(self.cum_area, target, side="right")
        tri = np.clip(tri, first, first + count - 1)
        a, b, c = (self.triangles[tri, k] for k in range(3))
        u, v = rng.random(area.size), rng.random(area.size)
        flip = u + v > 1.0  # fold the far half of the parallelogram back into the triangle
        u, v = np.where(flip, 1.0 - u, u), np.where(flip, 1.0 - v, v)
        xy = a + u[:, None] * (b - a) + v[:, None] * (c - a)
        return xy[:, 0], xy[:, 1]


def _sampling_areas(city: gpd.GeoDataFrame, hotspots: gpd.GeoDataFrame) -> _Areas:
    city = in_lonlat(city, "city")
    hotspots = in_lonlat(hotspots, "hotspots")
    missing = {"key", "kind", "buffer_m", "active_from", "active_to", "risk_weight"} - set(
        hotspots.columns
    )
    if missing:
        raise ValueError(
            f"hotspots lack columns {sorted(missing)}; pass build_demo_hotspots() output"
        )
    district_ll = district_of(city)
    crs = utm_crs_for_geometries(district_ll)
    district = to_metric(district_ll, crs)
    units = city[city["level"] == "unit"]
    unit_ll = np.asarray(units.geometry.values)
    factor = np.array([_LAND_USE_WEIGHT.get(u, 1.0) for u in land_use_of(units)])
    unit_weight = shapely.area(to_metric(unit_ll, crs)) * factor
    zones = _zones(hotspots, district_ll, crs)
    inner, outer = (district.buffer(d) for d in _OUTSIDE_RING_M)
    ring = to_wgs84(shapely.segmentize(shapely.difference(outer, inner), _SEGMENT_M), crs)
    triangles, first, count = _triangulate(np.concatenate([unit_ll, zones, [ring]]))
    weight = hotspots["risk_weight"].to_numpy(dtype=float)
    return _Areas(
        n_units=unit_ll.size,
        unit_weight=unit_weight / unit_weight.sum(),
        hotspot_kind=hotspots["kind"].to_numpy(dtype=object),
        hotspot_weight=np.where(count[unit_ll.size : -1] > 0, weight, 0.0),
        active_from=_epoch_array(hotspots["active_from"], missing=-(2**62)),
        active_to=_epoch_array(hotspots["active_to"], missing=2**62),
        triangles=triangles,
        first=first,
        count=count,
        cum_area=np.cumsum(_triangle_areas(triangles)),
    )


def _zones(hotspots: gpd.GeoDataFrame, district_ll: Polygon, crs: CRS) -> np.ndarray:
    """Influence zone of each hotspot a case category is drawn to, clipped to the district."""
    drawn = {k for a in _AFFINITIES for k in a.kinds}
    zones = np.full(len(hotspots), None, dtype=object)
    for k, (key, kind, buffer_m, geom) in enumerate(
        zip(hotspots["key"], hotspots["kind"], hotspots["buffer_m"], hotspots.geometry, strict=True)
    ):
        if kind not in drawn:
            continue
        if buffer_m > 0:
            grown = shapely.buffer(to_metric(geom, crs), float(buffer_m), quad_segs=16)
            zone = to_wgs84(shapely.segmentize(grown, _SEGMENT_M), crs)
        elif isinstance(geom, Polygon | shapely.MultiPolygon):
            zone = geom
        else:
            raise ValueError(
                f"hotspot {key!r} is a {geom.geom_type} with buffer_m={buffer_m}; a point or "
                "line hotspot needs buffer_m > 0 for cases to cluster around it"
            )
        zones[k] = shapely.intersection(zone, district_ll)
    return zones


def _triangulate(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles of every polygon (None or empty: none), grouped by input in input order."""
    present = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    count = np.zeros(geoms.size, dtype=np.int64)
    polys = shapely.get_parts(geoms[present])
    _, owner = shapely.get_parts(geoms[present], return_index=True)
    owner = np.flatnonzero(present)[owner]
    polys, owner = polys[shapely.area(polys) > 0], owner[shapely.area(polys) > 0]
    tris, which = shapely.get_parts(
        shapely.constrained_delaunay_triangles(polys), return_index=True
    )
    owner = owner[which]
    xy = shapely.get_coordinates(tris).reshape(-1, 4, 2)[:, :3]
    np.add.at(count, owner, 1)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    return xy, first, count


def _triangle_areas(xy: np.ndarray) -> np.ndarray:
    # lon/lat areas: the scale to m² is constant across a district to well under 0.1 %.
    ab, ac = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
    return 0.5 * np.abs(ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0])


def _choose_areas(
    rng: np.random.Generator,
    codes: np.ndarray,
    category: np.ndarray,
    at: np.ndarray,
    areas: _Areas,
) -> np.ndarray:
    """Area of each case: a hotspot zone, a unit grid, or the ring outside the district."""
    n = category.size
    area = np.full(n, -1, dtype=np.int64)
    outside = rng.random(n) < _OUTSIDE_SHARE
    area[outside] = areas.outside
    draw = rng.random(n)
    for affinity in _AFFINITIES:
        drawn = np.array([c.startswith(affinity.prefixes) for c in codes], dtype=bool)
        rows = np.flatnonzero(drawn[category] & ~outside & (draw < affinity.share))
        candidates = np.flatnonzero(np.isin(areas.hotspot_kind, affinity.kinds))
        if not rows.size or not candidates.size:
            continue
        active = (areas.active_from[candidates] <= at[rows, None]) & (
            at[rows, None] < areas.active_to[candidates]
        )
        cum = np.cumsum(active * areas.hotspot_weight[candidates], axis=1)
        total = cum[:, -1]
        pick = (cum <= (rng.random(rows.size) * total)[:, None]).sum(axis=1)
        ok = total > 0  # no such hotspot active then: the case falls back to the background
        area[rows[ok]] = areas.n_units + candidates[np.minimum(pick[ok], candidates.size - 1)]
    rest = np.flatnonzero(area < 0)
    area[rest] = rng.choice(areas.n_units, size=rest.size, p=areas.unit_weight)
    return area


def _category_table(
    categories: Sequence[tuple[str, float]] | None,
) -> tuple[np.ndarray, np.ndarray]:
    pairs = list(DEFAULT_CATEGORY_WEIGHTS if categories is None else categories)
    if not pairs:
        raise ValueError("categories is empty; give (code, weight) pairs or None for the default")
    codes, weights = [], []
    for item in pairs:
        try:
            code, weight = item
            weight = float(weight)
        except (TypeError, ValueError):
            raise ValueError(
                f"category {item!r} must be a (4-digit code, weight) pair, e.g. ('0102', 0.1)"
            ) from None
        if not (isinstance(code, str) and len(code) == 4 and code.isdigit()):
            raise ValueError(f"category code {code!r} must be a 4-digit string such as '0102'")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of category {code} is {weight}; use a finite number >= 0")
        codes.append(code)
        weights.append(weight)
    if len(set(codes)) != len(codes):
        raise ValueError("categories repeat a code; give each code once with its total weight")
    if sum(weights) <= 0:
        raise ValueError("category weights sum to 0; give at least one positive weight")
    return np.asarray(codes), _normalised(weights)


def _normalised(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _time_range(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    t0, t1 = _local(start, "start"), _local(end, "end")
    if t1 - t0 < pd.Timedelta(hours=1):
        raise ValueError(f"end {t1} must be at least one hour after start {t0}")
    return t0, t1


def _local(value, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}={value!r} is not a date or time such as '2026-01-01'") from None
    if ts is pd.NaT:
        raise ValueError(f"{what} is missing; give a date such as '2026-01-01'")
    return ts.tz_localize(TIMEZONE) if ts.tz is None else ts.tz_convert(TIMEZONE)


def _report_seconds(
    rng: np.random.Generator, n: int, t0: pd.Timestamp, t1: pd.Timestamp
) -> np.ndarray:
    """Whole seconds after local midnight of ``t0``, in [t0, t1), by day of week and hour."""
    anchor = t0.normalize()
    lo = math.ceil((t0 - anchor).total_seconds())
    hi = math.ceil((t1 - anchor).total_seconds())
    slot_start = np.arange(math.ceil(hi / 3600)) * 3600
    valid_lo = np.maximum(slot_start, lo)
    valid_len = np.clip(np.minimum(slot_start + 3600, hi) - valid_lo, 0, 3600)
    weekday = (anchor.day_of_week + slot_start // 86400) % 7
    weight = _HOURLY[(slot_start // 3600) % 24] * np.where(weekday >= 5, _WEEKEND, 1.0)
    slot = rng.choice(slot_start.size, size=n, p=_normalised(weight * valid_len))
    return valid_lo[slot] + np.floor(rng.random(n) * valid_len[slot]).astype(np.int64)


def _epoch(ts: pd.Timestamp) -> int:
    return int(ts.timestamp())  # whole seconds: only called on local midnights


def _epoch_array(values: pd.Series, missing: int) -> np.ndarray:
    stamps = pd.DatetimeIndex(values)
    if stamps.tz is None:
        stamps = stamps.tz_localize(TIMEZONE)
    seconds = stamps.as_unit("s").asi8
    return np.where(stamps.isna(), missing, seconds)


def _timestamps(anchor: pd.Timestamp, seconds: np.ndarray) -> pd.Series:
    utc = np.datetime64(_epoch(anchor), "s") + seconds.astype("timedelta64[s]")
    return pd.Series(
        pd.DatetimeIndex(utc.astype("datetime64[us]")).tz_localize("UTC").tz_convert(TIMEZONE)
    )


def _descriptions(
    rng: np.random.Generator, codes: np.ndarray, category: np.ndarray, names: Mapping[str, str]
) -> np.ndarray:
    texts: list[str] = []
    first, count = [], []
    for code in codes:
        variants = DESCRIPTIONS.get(code) or (names.get(code) or f"城市管理问题(类别{code})",)
        first.append(len(texts))
        count.append(len(variants))
        texts.extend(variants)
    first_arr, count_arr = np.asarray(first), np.asarray(count)
    pick = first_arr[category] + np.floor(rng.random(category.size) * count_arr[category])
    return np.asarray(texts, dtype=object)[pick.astype(np.int64)]


def _keys(
    n: int, seed: int, t0: pd.Timestamp, t1: pd.Timestamp, codes: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """``demo-<digest of the arguments>-<row>``: unique in a call, distinct across calls."""
    digest = hashlib.blake2b(
        repr((seed, n, t0.isoformat(), t1.isoformat(), codes.tolist(), weights.tolist())).encode(),
        digest_size=5,
    ).hexdigest()
    if not n:
        return np.empty(0, dtype=str)
    width = max(7, len(str(n - 1)))
    rows = np.strings.zfill(np.arange(n).astype(f"U{width}"), width)
    return np.strings.add(f"demo-{digest}-", rows)

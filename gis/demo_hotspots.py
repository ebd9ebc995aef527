"""Deterministic demo hotspots and cases on top of the demo city (``gis.demo``).

Hotspots (热点) are places that breed problems: farmer markets at main-road junctions, a rail
corridor across the district, construction sites with real start and end dates, school gates,
an urban-rural fringe along part of the district edge and air-quality monitoring points. Cases
are reported problems: points with a category, a report time and a source, partly clustered
around the hotspots that cause them.

Rules a user relies on
----------------------
* **Seeded and stable.** The same arguments give identical frames (geometry bit for bit). Each
  hotspot kind draws from its own random stream (``seed`` plus a fixed number), so changing one
  kind never moves the others. Inputs that are not given are built with the same ``seed``:
  ``build_demo_hotspots(seed=8)`` sits on ``build_demo_city(seed=8)``.
* **Geometry is lon/lat (EPSG:4326), built and measured in the UTM zone of the district.** Every
  hotspot lies inside the district, except the rail line, which crosses the whole district and
  is clipped to the district grown by 200 m.
* **Active periods are half-open** ``[active_from, active_to)`` in Asia/Shanghai; ``active_to``
  is ``NaT`` for hotspots with no end (everything except construction sites).
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
from collections.abc import Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely import LineString, Polygon

from gis.demo import _chinese_number, _persons, build_demo_city, build_demo_roads
from gis.metric import WGS84, to_metric, to_wgs84, utm_crs_for_geometries

__all__ = [
    "CASE_CATEGORIES",
    "CASE_SOURCES",
    "DEFAULT_CATEGORY_WEIGHTS",
    "HOTSPOT_KINDS",
    "TIMEZONE",
    "build_demo_hotspots",
    "generate_cases",
]

TIMEZONE = "Asia/Shanghai"

HOTSPOT_KINDS: tuple[str, ...] = (
    "farmer_market",
    "rail_corridor",
    "construction_site",
    "school_gate",
    "urban_rural_fringe",
    "air_quality_point",
)

# Event categories of the standard catalogue (major 01-06, minor 99 = other), as seeded by the
# service: (code, name, short descriptions a reporter would write).
CASE_CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "0101": ("私搭乱建", ("路边私搭乱建简易棚", "居民楼下违规搭建彩钢房")),
    "0102": ("暴露垃圾", ("路边有暴露垃圾未清运", "垃圾散落在地无人清理", "绿化带内有生活垃圾")),
    "0103": ("积存渣土", ("空地积存渣土未清运", "路边堆放建筑渣土")),
    "0104": ("道路不洁", ("路面油污未清洗", "人行道脏污不洁")),
    "0105": ("乱堆物料", ("人行道上乱堆物料", "门店门口堆放杂物")),
    "0106": ("焚烧垃圾树叶", ("有人焚烧垃圾", "绿地内焚烧树叶冒烟")),
    "0199": ("其他市容环境问题", ("其他市容环境问题",)),
    "0201": ("非法小广告", ("墙面张贴非法小广告", "电线杆上贴满小广告")),
    "0202": ("违规户外广告", ("违规设置户外广告牌", "广告横幅未经审批悬挂")),
    "0203": ("违规牌匾标识", ("门头牌匾破损未修复", "店铺违规设置牌匾")),
    "0299": ("其他宣传广告问题", ("其他宣传广告问题",)),
    "0301": ("施工扰民", ("夜间施工噪音扰民", "工地机械作业噪声大")),
    "0302": ("施工占道", ("施工围挡占用人行道", "施工材料占道堆放")),
    "0303": (
        "工地扬尘",
        ("工地扬尘严重未覆盖", "工地裸土未覆盖防尘网", "渣土车出场未冲洗带泥上路"),
    ),
    "0304": ("施工废弃料", ("路边倾倒施工废弃料", "建筑垃圾未及时清运")),
    "0399": ("其他施工管理问题", ("其他施工管理问题",)),
    "0401": ("路面塌陷", ("路面出现塌陷坑",)),
    "0402": ("自来水管破裂", ("自来水管破裂路面冒水",)),
    "0403": ("燃气管道破裂", ("闻到燃气泄漏气味",)),
    "0404": ("下水道堵塞或破损", ("下水道堵塞污水外溢", "雨水篦子破损")),
    "0405": ("道路积水", ("路口积水严重影响通行",)),
    "0406": ("火灾", ("路边发现起火冒烟",)),
    "0499": ("其他突发事件", ("其他突发事件",)),
    "0501": ("无照经营游商", ("流动摊贩沿街叫卖", "游商推车占道售卖水果", "三轮车流动售卖")),
    "0502": ("占道经营", ("摊点占道经营", "商贩在人行道摆摊", "早市摊位占用机动车道")),
    "0503": ("店外经营", ("商户店外摆放商品", "饭店门前摆桌经营")),
    "0504": ("早夜市", ("夜市摊点超时经营", "早市收市后未清场")),
    "0505": ("黑车拉客", ("路口有黑车拉客",)),
    "0506": ("露天烧烤", ("夜间露天烧烤油烟大", "路边露天烧烤摊")),
    "0599": ("其他街面秩序问题", ("其他街面秩序问题",)),
    "0601": ("焚烧秸秆", ("田间焚烧秸秆浓烟", "村边焚烧秸秆")),
    "0699": ("其他", ("其他城市管理问题",)),
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

# Independent random streams (numbers distinct from gis.demo's; values must never change).
_STREAM = {
    "rail_corridor": 101,
    "farmer_market": 102,
    "construction_site": 103,
    "school_gate": 104,
    "urban_rural_fringe": 105,
    "air_quality_point": 106,
    "cases": 201,
}

_RAIL_CLIP_M = 200.0
_MARKET_SPACING_M = (600.0, 400.0, 250.0)
_RAIL_MIN_STREETS = 3
_SEGMENT_M = 20.0  # vertex spacing of the rail line and of zones before reprojection
_FRINGE_DEPTH_M = 400.0  # unit grids this close to the district edge ...
_FRINGE_HALF_ANGLE = 45.0  # ... and this many degrees either side of one compass direction
_ALWAYS_FROM = pd.Timestamp("2020-01-01")
_SITE_COMPANIES = (
    "中国建筑第七工程局有限公司",
    "河南五建建设集团有限公司",
    "郑州一建集团有限公司",
    "河南国基建设集团有限公司",
    "中建三局第一建设工程有限责任公司",
    "河南省第二建设集团有限公司",
    "中国二十二冶集团有限公司",
    "河南天工建设集团有限公司",
)
_COMPASS = (("东", 0.0), ("东北", 45.0), ("北", 90.0), ("西北", 135.0),
            ("西", 180.0), ("西南", 225.0), ("南", 270.0), ("东南", 315.0))  # fmt: skip


@dataclass
class _City:
    """The demo city in the district's UTM zone, with what hotspots are placed on."""

    crs: CRS
    city_name: str
    district_name: str
    district: Polygon  # metric
    street_geoms: np.ndarray
    street_names: np.ndarray
    community_names: dict[str, str]
    units: np.ndarray  # metric
    units_ll: np.ndarray
    unit_use: np.ndarray
    unit_community: np.ndarray
    roads: np.ndarray  # metric
    road_kind: np.ndarray
    road_name: np.ndarray
    road_tree: shapely.STRtree = field(init=False)
    _inner: dict[float, Polygon] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.road_tree = shapely.STRtree(self.roads)

    def inner(self, edge: float) -> Polygon:
        """The district shrunk by ``edge`` metres (cached: placement tries thousands of spots)."""
        if edge not in self._inner:
            self._inner[edge] = shapely.buffer(self.district, -edge)
            shapely.prepare(self._inner[edge])
        return self._inner[edge]

    def street_of(self, geom) -> str:
        """Name of the street that holds the representative point of ``geom``."""
        point = shapely.point_on_surface(geom)
        hit: np.ndarray | list[int]  # the covering streets, else the one nearest
        hit = np.flatnonzero(shapely.covers(self.street_geoms, point))
        if not hit.size:
            hit = [int(np.argmin(shapely.distance(self.street_geoms, point)))]
        return str(self.street_names[hit[0]])

    def near_road(self, geom, distance: float) -> bool:
        """Whether ``geom`` comes within ``distance`` metres of a road."""
        return self.road_tree.query(geom, predicate="dwithin", distance=distance).size > 0

    def road_angle(self, point: shapely.Point) -> tuple[float, int]:
        """Direction (radians) of the nearest road at ``point`` and that road's index."""
        i = int(self.road_tree.query_nearest(point, all_matches=False)[0])
        return _tangent(self.roads[i], point), i


@dataclass
class _Spot:
    """One hotspot row; geometry in the metric CRS."""

    key: str
    kind: str
    name: str
    buffer_m: float
    geometry: shapely.Geometry
    owner_unit: str
    owner: dict[str, str]
    risk_weight: float
    patrol_quota: int | None
    active_from: pd.Timestamp = _ALWAYS_FROM
    active_to: pd.Timestamp | None = None
    lonlat: shapely.Geometry | None = None  # exact lon/lat geometry, when built in lon/lat


def build_demo_hotspots(
    seed: int = 7,
    city: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Build the demo hotspots of the demo city.

    Six farmer markets beside main-road junctions, one rail corridor crossing at least three
    streets, eight construction sites (three of them finished by autumn 2026), ten school
    gates, one urban-rural fringe along part of the district edge and four air-quality
    monitoring points.

    Parameters
    ----------
    seed : int
        Random seed; the same arguments always give identical output.
    city : geopandas.GeoDataFrame, optional
        Grids as returned by ``gis.demo.build_demo_city`` (levels city … unit with ``code``,
        ``level``, ``parent_code``, ``name``, ``land_use``). Default ``build_demo_city(seed)``.
    roads : geopandas.GeoDataFrame, optional
        Roads of that city as returned by ``gis.demo.build_demo_roads`` with the same
        arguments. Default ``build_demo_roads(seed)``; pass it whenever ``city`` was built
        with other arguments.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, ordered by kind (as in ``HOTSPOT_KINDS``) then key. Columns ``key``
        (e.g. "market-01"), ``kind``, ``name``, ``buffer_m`` (float, metres), ``active_from``
        and ``active_to`` (Asia/Shanghai; ``active_to`` is NaT when open-ended), ``owner_unit``,
        ``owner_name``, ``owner_phone``, ``risk_weight`` (0.5–3), ``patrol_quota_per_week``
        (nullable Int64) and ``geometry`` (Point, LineString or Polygon).

    Raises
    ------
    ValueError
        If ``city`` lacks the district or unit grids, ``roads`` do not belong to ``city``, or
        the city is too small to place every hotspot (the message names the fix).
    """
    city = build_demo_city(seed=seed) if city is None else city
    roads = build_demo_roads(seed=seed) if roads is None else roads
    ctx = _city_context(city, roads)
    rail = _rail_corridor(ctx, _rng(seed, "rail_corridor"))
    markets = _farmer_markets(ctx, _rng(seed, "farmer_market"), [rail.geometry])
    places = [m.geometry for m in markets]
    sites = _construction_sites(ctx, _rng(seed, "construction_site"), [rail.geometry, *places])
    places += [s.geometry for s in sites]
    schools = _school_gates(ctx, _rng(seed, "school_gate"), places)
    fringe = _urban_rural_fringe(ctx, _rng(seed, "urban_rural_fringe"))
    air = _air_quality_points(ctx, _rng(seed, "air_quality_point"), places)
    return _hotspot_frame([*markets, rail, *sites, *schools, fringe, *air], ctx)


def generate_cases(
    n: int,
    seed: int = 7,
    city: gpd.GeoDataFrame | None = None,
    hotspots: gpd.GeoDataFrame | None = None,
    start: str | pd.Timestamp = "2026-01-01",
    end: str | pd.Timestamp = "2026-11-20",
    categories: Sequence[tuple[str, float]] | None = None,
) -> pd.DataFrame:
    """Generate ``n`` demo cases (reported problems) in and around the demo city.

    Parameters
    ----------
    n : int
        Number of cases (>= 0). One million take a few seconds.
    seed : int
        Random seed; the same arguments always give an identical frame.
    city : geopandas.GeoDataFrame, optional
        Grids as returned by ``gis.demo.build_demo_city``. Default ``build_demo_city(seed)``.
    hotspots : geopandas.GeoDataFrame, optional
        Hotspots as returned by ``build_demo_hotspots`` (needs ``kind``, ``buffer_m``,
        ``active_from``, ``active_to``, ``risk_weight``, ``geometry``). Default
        ``build_demo_hotspots(seed, city)``.
    start, end : str or pandas.Timestamp
        Report times lie in ``[start, end)``; naive values are Asia/Shanghai local time (a
        date means its midnight). At least one hour apart.
    categories : sequence of (str, float), optional
        ``(4-digit category code, weight)`` pairs; default ``DEFAULT_CATEGORY_WEIGHTS``.
        Codes outside ``CASE_CATEGORIES`` get a generic description.

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
    rng = _rng(seed, "cases")
    category = rng.choice(codes.size, size=n, p=weights)
    seconds = _report_seconds(rng, n, t0, t1)
    area = _choose_areas(rng, codes, category, seconds + _epoch(t0.normalize()), areas)
    lon, lat = areas.sample(rng, area)
    source = np.asarray([s for s, _ in CASE_SOURCES])[
        rng.choice(len(CASE_SOURCES), size=n, p=_normalised([w for _, w in CASE_SOURCES]))
    ]
    description = _descriptions(rng, codes, category)
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


# --- inputs ---------------------------------------------------------------------------------------


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM[stream]])


def _city_context(city: gpd.GeoDataFrame, roads: gpd.GeoDataFrame) -> _City:
    city = _lonlat(city, "city")
    roads = _lonlat(roads, "roads")
    for column in ("name", "kind"):
        if column not in roads.columns:
            raise ValueError(f"roads lack column {column!r}; pass gis.demo.build_demo_roads()")
    district_ll = _district(city)
    crs = utm_crs_for_geometries(district_ll)
    district = to_metric(district_ll, crs)
    units = city[city["level"] == "unit"]
    streets = city[city["level"] == "street"]
    communities = city[city["level"] == "community"]
    road_geoms = np.asarray(to_metric(roads.geometry.values, crs))
    _check_roads(road_geoms, roads["kind"].to_numpy(), district)
    names = city[city["level"].isin(["city", "district"])].set_index("level")["name"]
    return _City(
        crs=crs,
        city_name=str(names.get("city", "")),
        district_name=str(names.get("district", "")),
        district=district,
        street_geoms=np.asarray(to_metric(streets.geometry.values, crs)),
        street_names=streets["name"].to_numpy(dtype=object),
        community_names=dict(zip(communities["code"], communities["name"], strict=True)),
        units=np.asarray(to_metric(units.geometry.values, crs)),
        units_ll=np.asarray(units.geometry.values),
        unit_use=_land_use(units),
        unit_community=units["parent_code"].to_numpy(dtype=object),
        roads=road_geoms,
        road_kind=roads["kind"].to_numpy(dtype=object),
        road_name=roads["name"].to_numpy(dtype=object),
    )


def _lonlat(frame: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None:
        raise ValueError(f"{what} must be a GeoDataFrame with a CRS (EPSG:4326 from gis.demo)")
    return frame if frame.crs == WGS84 else frame.to_crs(WGS84)


def _district(city: gpd.GeoDataFrame) -> Polygon:
    for column in ("code", "level", "parent_code", "name"):
        if column not in city.columns:
            raise ValueError(f"city lacks column {column!r}; pass gis.demo.build_demo_city()")
    district = city[city["level"] == "district"].geometry.values
    if not len(district) or not (city["level"] == "unit").any():
        raise ValueError(
            "city has no district or no unit grids; pass the full frame of build_demo_city()"
        )
    geom = district[0] if len(district) == 1 else shapely.union_all(district)
    if not isinstance(geom, Polygon):
        raise ValueError("the district must be one polygon (as built by build_demo_city)")
    return geom


def _check_roads(roads: np.ndarray, kinds: np.ndarray, district: Polygon) -> None:
    inside = shapely.length(shapely.intersection(roads, district.buffer(1.0))).sum()
    if (kinds == "main").sum() < 2 or inside < 0.9 * shapely.length(roads).sum():
        raise ValueError(
            "roads do not belong to this city (they must lie inside its district and include "
            "main roads); pass roads=build_demo_roads(...) with the arguments used for the city"
        )


def _land_use(units: gpd.GeoDataFrame) -> np.ndarray:
    if "land_use" not in units.columns:
        return np.full(len(units), "", dtype=object)
    return units["land_use"].fillna("").to_numpy(dtype=object)


# --- hotspots -------------------------------------------------------------------------------------


def _rail_corridor(ctx: _City, rng: np.random.Generator) -> _Spot:
    """A gently curved line roughly north-south through the district, crossing 3+ streets."""
    clip = ctx.district.buffer(_RAIL_CLIP_M)
    minx, miny, maxx, maxy = ctx.district.bounds
    half = math.hypot(maxx - minx, maxy - miny)
    centre = np.asarray(ctx.district.centroid.coords[0])
    t = np.arange(-half, half + _SEGMENT_M, _SEGMENT_M)
    for _ in range(40):
        bearing = math.radians(rng.uniform(-35.0, 35.0))  # from north, clockwise
        shift = rng.uniform(-0.25, 0.25) * min(maxx - minx, maxy - miny)
        radius = rng.uniform(6_000.0, 15_000.0) * rng.choice([-1.0, 1.0])  # railway curve
        direction = np.array([math.sin(bearing), math.cos(bearing)])
        normal = np.array([direction[1], -direction[0]])
        xy = centre + np.outer(t, direction) + np.outer(shift + t**2 / (2 * radius), normal)
        parts = shapely.get_parts(shapely.intersection(LineString(xy), clip))
        if parts.size != 1:
            continue  # leaves and re-enters the clip area: not one corridor
        line = parts[0]
        crossed = shapely.length(shapely.intersection(ctx.street_geoms, line)) > 50.0
        if crossed.sum() >= _RAIL_MIN_STREETS:
            return _Spot(
                "rail-01",
                "rail_corridor",
                "京广铁路沿线",
                50.0,
                line,
                "中国铁路郑州局集团有限公司郑州工务段",
                _persons(rng, 1)[0],
                round(float(rng.uniform(1.5, 2.0)), 1),
                3,
            )
    raise ValueError(
        f"no rail line crosses {_RAIL_MIN_STREETS} streets of this city; build the city with "
        "n_streets >= 3 or another seed"
    )


def _farmer_markets(ctx: _City, rng: np.random.Generator, taken: list) -> list[_Spot]:
    """Rectangles of 3,000-8,000 m² in a corner of a junction on a main road."""
    points, main_idx, other_idx, both_main = _junctions(ctx)
    order = rng.permutation(points.size)
    order = order[np.argsort(~both_main[order], kind="stable")]  # main x main junctions first
    spots: list[_Spot] = []
    used_names: set[str] = set()
    tried: set[int] = set()
    # Markets keep apart; a small city that cannot fit six that far apart gets them closer.
    for spacing in _MARKET_SPACING_M:
        for k in order:
            if len(spots) == 6:
                break
            p = points[k]
            if k in tried or any(shapely.distance(p, s.geometry) < spacing for s in spots):
                continue
            tried.add(int(k))
            geom = _corner_rectangle(ctx, rng, p, _tangent(ctx.roads[main_idx[k]], p), taken)
            if geom is None:
                continue
            name = _market_name(ctx.road_name[main_idx[k]], ctx.road_name[other_idx[k]], used_names)
            spots.append(
                _Spot(
                    f"market-{len(spots) + 1:02d}",
                    "farmer_market",
                    name,
                    100.0,
                    geom,
                    f"{ctx.street_of(geom)}市场监管所",
                    _persons(rng, 1)[0],
                    round(float(rng.uniform(1.5, 2.5)), 1),
                    int(rng.choice([7, 14])),
                )
            )
    if len(spots) < 6:
        raise ValueError(
            f"only {len(spots)} of 6 farmer markets fit beside main-road junctions; build a "
            "larger city (n_units) or use another seed"
        )
    return spots


def _junctions(ctx: _City) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Crossings of a main road with another road, at least 150 m inside the district."""
    tree = ctx.road_tree
    i, j = tree.query(ctx.roads, predicate="intersects")
    main = ctx.road_kind == "main"
    keep = (i < j) & (ctx.road_name[i] != ctx.road_name[j]) & (main[i] | main[j])
    i, j = i[keep], j[keep]
    swap = ~main[i]  # the main road goes first
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    parts, pair = shapely.get_parts(
        shapely.intersection(ctx.roads[i], ctx.roads[j]), return_index=True
    )
    is_point = shapely.get_type_id(parts) == 0
    parts, pair = parts[is_point], pair[is_point]
    xy = np.round(shapely.get_coordinates(parts))  # one junction per metre cell
    _, first = np.unique(xy, axis=0, return_index=True)
    first = np.sort(first)
    parts, pair = parts[first], pair[first]
    inner = shapely.distance(parts, ctx.district.exterior) >= 150.0
    parts, pair = parts[inner], pair[inner]
    return parts, i[pair], j[pair], main[j[pair]]


def _corner_rectangle(
    ctx: _City, rng: np.random.Generator, p: shapely.Point, angle: float, taken: list
) -> Polygon | None:
    """A market rectangle set back from the junction in the first corner where it fits."""
    area = rng.uniform(3_000.0, 8_000.0)
    aspect = rng.uniform(1.2, 1.8)
    width = math.sqrt(area * aspect)
    height = area / width
    centre = np.asarray(p.coords[0])
    for setback in (15.0, 30.0, 50.0):
        for quadrant in rng.permutation(4):
            sx, sy = (1, 1, -1, -1)[quadrant], (1, -1, 1, -1)[quadrant]
            offset = _rotate(
                np.array([sx * (width / 2 + setback), sy * (height / 2 + setback)]), angle
            )
            geom = _rectangle(centre + offset, width, height, angle)
            if _fits(ctx, geom, taken, road_gap=6.0, gap=30.0, edge=20.0):
                return geom
    return None


def _market_name(main: str, other: str, used: set[str]) -> str:
    for candidate in (f"{main}农贸市场", f"{other}农贸市场", f"{main}{other}农贸市场"):
        if candidate not in used:
            used.add(candidate)
            return candidate
    k = 2
    while f"{main}第{_chinese_number(k)}农贸市场" in used:
        k += 1
    used.add(name := f"{main}第{_chinese_number(k)}农贸市场")
    return name


def _construction_sites(ctx: _City, rng: np.random.Generator, taken: list) -> list[_Spot]:
    """Eight rectangles of 10,000-40,000 m² inside blocks, three already finished."""
    geoms: list[Polygon] = []
    minx, miny, maxx, maxy = ctx.district.bounds
    for _ in range(5_000):
        if len(geoms) == 8:
            break
        centre = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if not ctx.district.contains(centre):
            continue
        angle, _ = ctx.road_angle(centre)
        area = rng.uniform(10_000.0, 40_000.0)
        aspect = rng.uniform(1.0, 2.0)
        width = math.sqrt(area * aspect)
        geom = _rectangle(np.asarray(centre.coords[0]), width, area / width, angle)
        if _fits(ctx, geom, taken + geoms, road_gap=8.0, gap=40.0, edge=40.0):
            geoms.append(geom)
    if len(geoms) < 8:
        raise ValueError(
            f"only {len(geoms)} of 8 construction sites fit between the roads; build the city "
            "with a larger road_spacing_m or n_units"
        )
    finished = set(rng.choice(8, size=3, replace=False).tolist())
    spots: list[_Spot] = []
    names: set[str] = set()
    for k, geom in enumerate(geoms):
        active_from, active_to = _site_period(rng, k in finished)
        spots.append(
            _Spot(
                f"site-{k + 1:02d}",
                "construction_site",
                _site_name(ctx, geom, names),
                150.0,
                geom,
                str(rng.choice(_SITE_COMPANIES)),
                _persons(rng, 1)[0],
                round(float(rng.uniform(2.0, 3.0)), 1),
                int(rng.choice([3, 5, 7])),
                active_from,
                active_to,
            )
        )
    return spots


def _site_period(rng: np.random.Generator, finished: bool) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start and end dates: finished sites end between 2025-08 and 2026-09, the rest in 2027."""
    day = pd.Timedelta(days=1)
    if finished:
        start = pd.Timestamp("2025-01-01") + int(rng.integers(0, 300)) * day
        return start, start + int(rng.integers(240, 330)) * day
    start = pd.Timestamp("2025-03-01") + int(rng.integers(0, 550)) * day
    end = pd.Timestamp("2026-12-15") + int(rng.integers(0, 380)) * day
    return start, end


def _site_name(ctx: _City, geom: Polygon, used: set[str]) -> str:
    """Named after the nearest road and the side of it the site is on (e.g. 兴华路东侧)."""
    centre = geom.centroid
    _, i = ctx.road_angle(centre)
    on_road = shapely.line_interpolate_point(
        ctx.roads[i], shapely.line_locate_point(ctx.roads[i], centre)
    )
    dx, dy = centre.x - on_road.x, centre.y - on_road.y
    side = ("东" if dx > 0 else "西") if abs(dx) >= abs(dy) else ("北" if dy > 0 else "南")
    base = f"{ctx.road_name[i]}{side}侧"
    k = 1
    while (name := base + ("" if k == 1 else f"{_chinese_number(k)}号") + "地块建设工地") in used:
        k += 1
    used.add(name)
    return name


def _school_gates(ctx: _City, rng: np.random.Generator, places: list) -> list[_Spot]:
    """Ten gates, one per community: on a road-side unit, preferably public-service land,
    clear of the market and site polygons ``places``."""
    spots: list[_Spot] = []
    for community in rng.permutation(sorted(ctx.community_names)):
        if len(spots) == 10:
            break
        gate = _gate_in(ctx, rng, str(community), places)
        if gate is None or any(shapely.distance(gate, s.geometry) < 300.0 for s in spots):
            continue
        school = ctx.community_names[community].removesuffix("社区")
        school += "小学" if rng.random() < 0.7 else "中学"
        spots.append(
            _Spot(
                f"school-{len(spots) + 1:02d}",
                "school_gate",
                f"{school}校门",
                100.0,
                gate,
                school,
                _persons(rng, 1)[0],
                round(float(rng.uniform(1.0, 2.0)), 1),
                5,
            )
        )
    if len(spots) < 10:
        raise ValueError(
            f"only {len(spots)} of 10 school gates could be placed; build the city with more "
            "communities (n_communities >= 10)"
        )
    return spots


def _gate_in(
    ctx: _City, rng: np.random.Generator, community: str, places: list
) -> shapely.Point | None:
    members = np.flatnonzero(ctx.unit_community == community)
    roadside = np.array([ctx.near_road(u, 1.0) for u in ctx.units[members]], dtype=bool)
    members = members[roadside]
    if not members.size:
        return None
    public = members[ctx.unit_use[members] == "公共服务"]
    unit = ctx.units[int(rng.choice(public if public.size else members))]
    inner = shapely.point_on_surface(unit)
    road = ctx.roads[int(ctx.road_tree.query_nearest(inner, all_matches=False)[0])]
    on_road = shapely.line_interpolate_point(road, shapely.line_locate_point(road, inner))
    step = np.subtract(inner.coords[0], on_road.coords[0])
    length = float(np.hypot(*step))
    if length < 10.0:
        return None
    gate = shapely.Point(np.asarray(on_road.coords[0]) + step * 8.0 / length)
    if not unit.contains(gate) or shapely.dwithin(gate, np.asarray(places), 10.0).any():
        return None
    return gate


def _urban_rural_fringe(ctx: _City, rng: np.random.Generator) -> _Spot:
    """Unit grids within 400 m of one side of the district edge, merged into one polygon."""
    centre = ctx.district.centroid
    points = shapely.point_on_surface(ctx.units)
    xy = shapely.get_coordinates(points) - np.asarray(centre.coords[0])
    bearing = np.degrees(np.arctan2(xy[:, 1], xy[:, 0]))
    edge = shapely.distance(points, ctx.district.exterior) <= _FRINGE_DEPTH_M
    for k in rng.permutation(len(_COMPASS)):
        direction, angle = _COMPASS[k]
        off = np.abs((bearing - angle + 180.0) % 360.0 - 180.0)
        chosen = np.flatnonzero(edge & (off <= _FRINGE_HALF_ANGLE))
        if chosen.size < 15:
            continue
        merged = shapely.get_parts(shapely.coverage_union_all(ctx.units_ll[chosen]))
        # The largest piece with its holes filled: a fringe is one stretch of land, and a filled
        # subset of a simply connected district stays inside it.
        geom_ll = Polygon(merged[int(np.argmax(shapely.area(merged)))].exterior)
        geom = to_metric(geom_ll, ctx.crs)
        return _Spot(
            "fringe-01",
            "urban_rural_fringe",
            f"城乡结合部({direction}郊)",
            0.0,
            geom,
            f"{ctx.street_of(geom)}办事处",
            _persons(rng, 1)[0],
            round(float(rng.uniform(2.0, 2.5)), 1),
            2,
            lonlat=geom_ll,
        )
    raise ValueError("no side of the district has 15 unit grids along its edge; use more units")


def _air_quality_points(ctx: _City, rng: np.random.Generator, places: list) -> list[_Spot]:
    """Four monitors in four different streets, on green or public-service land, outside the
    market and site polygons ``places``."""
    spots: list[_Spot] = []
    owner = f"{ctx.city_name}生态环境局{ctx.district_name.removesuffix('区')}分局"
    inner = shapely.point_on_surface(ctx.units)
    for s in rng.permutation(ctx.street_geoms.size):
        if len(spots) == 4:
            break
        members = np.flatnonzero(shapely.covers(ctx.street_geoms[s], inner))
        quiet = members[np.isin(ctx.unit_use[members], ["绿地", "公共服务"])]
        unit = ctx.units[int(rng.choice(quiet if quiet.size else members))]
        point = _point_in(unit, rng)
        if shapely.dwithin(point, np.asarray(places), 20.0).any():
            continue
        spots.append(
            _Spot(
                f"air-{len(spots) + 1:02d}",
                "air_quality_point",
                f"空气质量监测点{len(spots) + 1}",
                300.0,
                point,
                owner,
                _persons(rng, 1)[0],
                round(float(rng.uniform(0.5, 1.0)), 1),
                None,
            )
        )
    if len(spots) < 4:
        raise ValueError("air-quality points need a city with at least 4 streets (n_streets)")
    return spots


def _fits(ctx: _City, geom: Polygon, taken: list, road_gap: float, gap: float, edge: float) -> bool:
    """Inside the district ``edge`` metres from its border, clear of roads and other hotspots."""
    return (
        ctx.inner(edge).contains(geom)
        and not ctx.near_road(geom, road_gap)
        and not (taken and shapely.dwithin(geom, np.asarray(taken), gap).any())
    )


def _rectangle(centre: np.ndarray, width: float, height: float, angle: float) -> Polygon:
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [width / 2, height / 2]
    return Polygon(_rotate(corners, angle) + centre)


def _rotate(xy: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return xy @ np.array([[c, s], [-s, c]])


def _tangent(line: LineString, point: shapely.Point) -> float:
    at = shapely.line_locate_point(line, point)
    a = shapely.line_interpolate_point(line, max(at - 10.0, 0.0))
    b = shapely.line_interpolate_point(line, min(at + 10.0, line.length))
    return math.atan2(b.y - a.y, b.x - a.x)


def _point_in(polygon: Polygon, rng: np.random.Generator) -> shapely.Point:
    minx, miny, maxx, maxy = polygon.bounds
    while True:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(polygon, x, y):
            return shapely.Point(x, y)


def _hotspot_frame(spots: list[_Spot], ctx: _City) -> gpd.GeoDataFrame:
    spots = sorted(spots, key=lambda s: (HOTSPOT_KINDS.index(s.kind), s.key))
    geoms = to_wgs84(np.array([s.geometry for s in spots], dtype=object), ctx.crs)
    for k, spot in enumerate(spots):
        if spot.lonlat is not None:  # a metric round trip would move the unit-grid vertices
            geoms[k] = spot.lonlat

    def stamps(values: list) -> pd.Series:
        return pd.Series(pd.DatetimeIndex(values).as_unit("us").tz_localize(TIMEZONE))

    columns = {
        "key": pd.array([s.key for s in spots], dtype="str"),
        "kind": pd.array([s.kind for s in spots], dtype="str"),
        "name": pd.array([s.name for s in spots], dtype="str"),
        "buffer_m": np.array([s.buffer_m for s in spots], dtype=float),
        "active_from": stamps([s.active_from for s in spots]),
        "active_to": stamps([s.active_to for s in spots]),
        "owner_unit": pd.array([s.owner_unit for s in spots], dtype="str"),
        "owner_name": pd.array([s.owner["name"] for s in spots], dtype="str"),
        "owner_phone": pd.array([s.owner["phone"] for s in spots], dtype="str"),
        "risk_weight": np.array([s.risk_weight for s in spots], dtype=float),
        "patrol_quota_per_week": pd.array([s.patrol_quota for s in spots], dtype="Int64"),
    }
    return gpd.GeoDataFrame(columns, geometry=list(geoms), crs=WGS84)


# --- cases ----------------------------------------------------------------------------------------


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
    city = _lonlat(city, "city")
    hotspots = _lonlat(hotspots, "hotspots")
    missing = {"key", "kind", "buffer_m", "active_from", "active_to", "risk_weight"} - set(
        hotspots.columns
    )
    if missing:
        raise ValueError(
            f"hotspots lack columns {sorted(missing)}; pass build_demo_hotspots() output"
        )
    district_ll = _district(city)
    crs = utm_crs_for_geometries(district_ll)
    district = to_metric(district_ll, crs)
    units = city[city["level"] == "unit"]
    unit_ll = np.asarray(units.geometry.values)
    factor = np.array([_LAND_USE_WEIGHT.get(u, 1.0) for u in _land_use(units)])
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


def _descriptions(rng: np.random.Generator, codes: np.ndarray, category: np.ndarray) -> np.ndarray:
    texts: list[str] = []
    first, count = [], []
    for code in codes:
        name, variants = CASE_CATEGORIES.get(code, ("", (f"城市管理问题(类别{code})",)))
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

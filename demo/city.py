"""Deterministic demo city: a seeded district with roads, streets, communities and unit grids.

The demo gives every feature and benchmark realistic data without shipping real boundaries. The
build runs in the UTM zone of the centre and converts to lon/lat only at the end:

1. an irregular district outline (a star-shaped polygon with a few random harmonics);
2. a road network of wavy lines: two families of roads about ``road_spacing_m`` apart, the lines
   at about one and two thirds across the district being main roads, the rest secondary;
3. blocks = faces of the noded roads and the district boundary; some neighbouring faces are
   joined across a secondary road, and thin or tiny faces are merged into the neighbour they
   share the longest edge with (roads left inside a block are dropped from the network);
4. streets = contiguous groups of blocks (growth prefers not to cross main roads), communities =
   contiguous groups of blocks inside each street;
5. unit grids = a centroidal Voronoi partition of each block, noded together with every block
   boundary on a 1 cm grid and polygonized, so the whole set is one exactly shared-edge coverage;
6. communities, streets, the district and the city are coverage unions of their unit grids.

Because every level is built from the same noded edges, neighbours share identical vertices and
the lon/lat output tiles exactly (no slivers, no overlaps) at every level.

Each step draws from its own random stream (``seed`` plus a fixed step number), so later steps
can be added without changing the geometry of earlier ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely import LineString, Polygon

from gis.codes import LEVELS, CodeScheme
from gis.metric import WGS84, to_metric, to_wgs84, utm_crs_for

LAND_USES: tuple[str, ...] = ("居住", "商业", "工业", "公共服务", "绿地", "道路交通", "混合")
MANAGEMENT_GRADES: tuple[str, ...] = ("一级", "二级", "三级")
ROAD_KINDS: tuple[str, ...] = ("main", "secondary")

# Snap-rounding grid (metres) shared by every overlay: all vertices land on it, so edges that two
# faces share are bit-identical and stay identical after reprojection.
_GRID_M = 0.01
_RING_VERTICES = 240  # vertices of the district outline
_WAVE_STEP_M = 20.0  # sampling interval along a wavy road
_JOIN_SECONDARY = 0.25  # chance that a secondary road segment between two blocks is dropped
_MAX_JOINED_BLOCK = 2.2  # joined blocks stay below this many road_spacing_m² (unit balance)
_MIN_BLOCK_UNITS = 2.0  # a block smaller than this many unit areas is merged into a neighbour
_MIN_BLOCK_COMPACTNESS = 0.2  # Polsby-Popper; thinner blocks are merged (strips along the edge)
_MIN_UNIT_SHARE = 0.4  # a unit face below this share of the unit area is merged
_MIN_UNIT_COMPACTNESS = 0.25
_LLOYD_ITERATIONS = 6
_MAIN_ROAD_PENALTY = 0.1  # weight of a shared edge on a main road when growing streets

# Independent random streams per step (values must never change: they fix the demo geometry).
_STREAM = {
    "district": 1,
    "roads": 2,
    "blocks": 3,
    "streets": 4,
    "communities": 5,
    "units": 6,
    "names": 7,
    "people": 8,
    "land_use": 9,
}


@dataclass(frozen=True)
class DemoParams:
    """Parameters of the demo city; every field has a sensible default.

    Parameters
    ----------
    seed : int
        Random seed; the same parameters always give the same city.
    code_width : int
        14 (CJ/T 213) or 15 (DB11) digit grid codes.
    center : tuple of float
        ``(lon, lat)`` of the district centre (WGS 84).
    n_streets, n_communities, n_units : int
        Target numbers of streets, communities and unit grids. Streets and communities are met
        exactly; the unit count lands within about ±10 % of ``n_units``.
    unit_area_m2 : float
        Mean unit grid area; the district area is ``n_units * unit_area_m2``.
    road_spacing_m : float
        Mean distance between neighbouring parallel roads.
    row_height_m : float
        Height of the north→south rows used to number unit grids inside a community.
    county_code, city_name, district_name : str
        6-digit GB/T 2260 county code of the district and the Chinese names of city and district.
    """

    seed: int = 7
    code_width: int = 14
    center: tuple[float, float] = (113.65, 34.75)
    n_streets: int = 5
    n_communities: int = 25
    n_units: int = 1500
    unit_area_m2: float = 10_000.0
    road_spacing_m: float = 400.0
    row_height_m: float = 100.0
    county_code: str = "410105"
    city_name: str = "郑州市"
    district_name: str = "金水区"

    def __post_init__(self) -> None:
        scheme = CodeScheme(self.code_width)  # raises CodeError on a bad width
        lon, lat = self.center
        utm_crs_for(lon, lat)  # raises ValueError on coordinates out of range
        if len(self.county_code) != 6 or not self.county_code.isdigit():
            raise ValueError(
                f"county_code {self.county_code!r} must be a 6-digit GB/T 2260 code, e.g. 410105"
            )
        if not 1 <= self.n_streets <= 999:
            raise ValueError(f"n_streets={self.n_streets} must be between 1 and 999")
        if not self.n_streets <= self.n_communities <= 999 * self.n_streets:
            raise ValueError(
                f"n_communities={self.n_communities} must be at least n_streets="
                f"{self.n_streets} (every street needs a community) and at most 999 per street"
            )
        if self.n_units < 4 * self.n_communities:
            raise ValueError(
                f"n_units={self.n_units} is too small for {self.n_communities} communities; "
                "use at least 4 unit grids per community"
            )
        capacity = 10**scheme.sequence_digits - 1
        if self.n_units / self.n_communities > 0.8 * capacity:
            raise ValueError(
                f"about {self.n_units / self.n_communities:.0f} unit grids per community do not "
                f"fit the {capacity} sequence numbers of {self.code_width}-digit codes; raise "
                "n_communities or use code_width=15"
            )
        if self.unit_area_m2 <= 0 or self.road_spacing_m <= 0 or self.row_height_m <= 0:
            raise ValueError("unit_area_m2, road_spacing_m and row_height_m must be positive")
        if self.road_spacing_m**2 < 4 * self.unit_area_m2:
            raise ValueError(
                f"road_spacing_m={self.road_spacing_m} leaves blocks too small for unit grids of "
                f"{self.unit_area_m2} m²; use road_spacing_m >= 2 * sqrt(unit_area_m2)"
            )


@dataclass
class _Roads:
    """Road edges in metres: one row per noded edge between two junctions."""

    geoms: np.ndarray
    kind: np.ndarray
    name: np.ndarray


@dataclass
class _Layout:
    """Blocks and the roads that bound them, in the metric CRS."""

    crs: CRS
    blocks: np.ndarray
    block_main: np.ndarray  # whether the block touches a main road
    roads: _Roads
    main_roads: shapely.Geometry
    pairs: np.ndarray  # (n, 2) indices of blocks sharing an edge
    weights: np.ndarray  # their shared length, edges along main roads weighted down


def build_demo_city(
    seed: int = 7,
    code_width: int = 14,
    center: tuple[float, float] = (113.65, 34.75),
    n_streets: int = 5,
    n_communities: int = 25,
    n_units: int = 1500,
    **options,
) -> gpd.GeoDataFrame:
    """Build the demo city: one row per grid at all five levels, in EPSG:4326.

    Parameters
    ----------
    seed : int
        Random seed; the same arguments always give identical output.
    code_width : int
        14 or 15 digit grid codes (see ``gis.codes.CodeScheme``).
    center : tuple of float
        ``(lon, lat)`` of the district centre.
    n_streets, n_communities, n_units : int
        Numbers of streets and communities (exact) and the target number of unit grids.
    **options
        Further ``DemoParams`` fields (e.g. ``unit_area_m2``, ``county_code``).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``code, level, parent_code, name, responsible_unit, responsible_persons,
        land_use, management_grade, geometry``; rows ordered city, district, streets,
        communities, units, each level by code. Units tile their community, communities their
        street, streets the district; the city geometry equals the district geometry.

    Raises
    ------
    ValueError
        If the parameters cannot give a valid city (the message names the fix).
    """
    params = DemoParams(
        seed=seed,
        code_width=code_width,
        center=cast(tuple[float, float], tuple(center)),  # DemoParams checks it is a pair
        n_streets=n_streets,
        n_communities=n_communities,
        n_units=n_units,
        **options,
    )
    layout = _plan_layout(params)
    street_of_block = _group_blocks_into_streets(layout, params)
    community_of_block = _group_blocks_into_communities(layout, street_of_block, params)
    units, unit_block = _unit_faces(layout, params)
    grids = _assemble_hierarchy(
        layout, params, street_of_block, community_of_block, units, unit_block
    )
    return _to_frame(grids, layout.crs)


def build_demo_roads(
    seed: int = 7,
    center: tuple[float, float] = (113.65, 34.75),
    n_units: int = 1500,
    **options,
) -> gpd.GeoDataFrame:
    """Road network of the demo city built by ``build_demo_city`` with the same arguments.

    Every returned road lies on street, community or unit grid boundaries of that city: roads
    that ended up inside a merged block (or as dead ends) are left out.

    Parameters
    ----------
    seed : int
        Random seed (same meaning as in ``build_demo_city``).
    center : tuple of float
        ``(lon, lat)`` of the district centre.
    n_units : int
        Target number of unit grids, which sets the district size.
    **options
        Further ``DemoParams`` fields that shape the layout (``unit_area_m2``,
        ``road_spacing_m``).

    Returns
    -------
    geopandas.GeoDataFrame
        One LineString per connected road piece, columns ``name``, ``kind`` ("main" or
        "secondary") and ``geometry`` in EPSG:4326, ordered by kind then name.
    """
    # DemoParams checks that center is a (lon, lat) pair.
    center_pair = cast(tuple[float, float], tuple(center))
    params = DemoParams(seed=seed, center=center_pair, n_units=n_units, **options)
    layout = _plan_layout(params)
    return _roads_frame(layout)


# --- reading a demo city (for the generators built on it) ---------------------------------------


def in_lonlat(frame: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    """``frame`` in EPSG:4326, or ``ValueError`` naming ``what`` unless it is a GeoDataFrame
    with a CRS."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None:
        raise ValueError(f"{what} must be a GeoDataFrame with a CRS (EPSG:4326 from demo.city)")
    return frame if frame.crs == WGS84 else frame.to_crs(WGS84)


def district_of(city: gpd.GeoDataFrame) -> Polygon:
    """The district polygon of a frame built by ``build_demo_city`` (lon/lat), or ``ValueError``
    saying what the frame lacks."""
    for column in ("code", "level", "parent_code", "name"):
        if column not in city.columns:
            raise ValueError(f"city lacks column {column!r}; pass demo.city.build_demo_city()")
    district = city[city["level"] == "district"].geometry.values
    if not len(district) or not (city["level"] == "unit").any():
        raise ValueError(
            "city has no district or no unit grids; pass the full frame of build_demo_city()"
        )
    geom = district[0] if len(district) == 1 else shapely.union_all(district)
    if not isinstance(geom, Polygon):
        raise ValueError("the district must be one polygon (as built by build_demo_city)")
    return geom


def land_use_of(units: gpd.GeoDataFrame) -> np.ndarray:
    """Land use of each unit grid (``""`` where the frame has none)."""
    if "land_use" not in units.columns:
        return np.full(len(units), "", dtype=object)
    return units["land_use"].fillna("").to_numpy(dtype=object)


# --- step 1-3: district, roads, blocks ------------------------------------------------------------


def _rng(params: DemoParams, step: str) -> np.random.Generator:
    return np.random.default_rng([params.seed, _STREAM[step]])


def _plan_layout(params: DemoParams) -> _Layout:
    lon, lat = params.center
    crs = utm_crs_for(lon, lat)
    origin = shapely.get_coordinates(to_metric(shapely.points(lon, lat), crs))[0]
    district = _district_outline(params, origin)
    lines, kinds, names = _road_lines(params, district, origin)
    edges, edge_kind, edge_name = _noded_edges(district, lines, kinds, names)
    faces = _sorted_geoms(shapely.get_parts(shapely.polygonize(edges)))
    faces = _join_blocks(faces, edges[edge_kind == "main"], params)
    pairs, lengths = _shared_edges(faces)
    blocks, _ = _merge_faces(
        faces,
        np.zeros(len(faces), dtype=int),
        pairs,
        lengths,
        min_area=_MIN_BLOCK_UNITS * params.unit_area_m2,
        min_compactness=_MIN_BLOCK_COMPACTNESS,
    )
    blocks = _sorted_geoms(blocks)
    on_boundary = _edges_on_boundaries(edges, blocks) & (edge_kind != "boundary")
    roads = _Roads(edges[on_boundary], edge_kind[on_boundary], edge_name[on_boundary])
    main_roads = shapely.union_all(roads.geoms[roads.kind == "main"])
    block_main = shapely.dwithin(blocks, main_roads, 1.0)
    pairs, weights = _street_weights(blocks, main_roads)
    return _Layout(crs, blocks, block_main, roads, main_roads, pairs, weights)


def _district_outline(params: DemoParams, origin: np.ndarray) -> Polygon:
    """Star-shaped outline r(θ) = R·(1 + Σ a_k cos(kθ + φ_k)) scaled to the target area."""
    rng = _rng(params, "district")
    theta = np.linspace(0.0, 2.0 * np.pi, _RING_VERTICES, endpoint=False)
    radius = np.ones_like(theta)
    for k, amplitude in zip(range(2, 7), (0.14, 0.10, 0.07, 0.05, 0.03), strict=True):
        radius += amplitude * rng.uniform(0.5, 1.0) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    radius += rng.normal(0.0, 0.004, theta.size)  # small kinks, like a real surveyed boundary
    ring = np.column_stack([radius * np.cos(theta), radius * np.sin(theta)])
    unit_area = shapely.area(Polygon(ring))
    scale = math.sqrt(params.n_units * params.unit_area_m2 / unit_area)
    return shapely.set_precision(Polygon(ring * scale + origin), _GRID_M)


def _road_lines(
    params: DemoParams, district: Polygon, origin: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two families of wavy roads; about every third line of each family is a main road."""
    rng = _rng(params, "roads")
    minx, miny, maxx, maxy = district.bounds
    half = 0.5 * math.hypot(maxx - minx, maxy - miny) + params.road_spacing_m
    base = rng.uniform(-np.pi / 9, np.pi / 9)  # the grid is never axis-aligned by construction
    angles = (base, base + np.pi / 2 + rng.uniform(-np.pi / 18, np.pi / 18))
    lines: list[LineString] = []
    kinds: list[str] = []
    names: list[str] = []
    main_pool = list(_MAIN_ROAD_NAMES)
    rng.shuffle(main_pool)
    for family, angle in enumerate(angles):
        n = int(2 * half // params.road_spacing_m)
        offsets = (np.arange(n) - (n - 1) / 2) * params.road_spacing_m
        offsets += rng.uniform(-0.12, 0.12, n) * params.road_spacing_m
        main = _main_road_indices(offsets, district, origin, angle)
        for i, offset in enumerate(offsets):
            is_main = i in main
            amplitude = params.road_spacing_m * (0.12 if is_main else 0.06)
            lines.append(_wavy_line(origin, angle, offset, half, amplitude, rng))
            kinds.append("main" if is_main else "secondary")
            if is_main:
                names.append(main_pool.pop() if main_pool else f"主干道{len(names) + 1}")
            else:
                names.append(("纬", "经")[family] + _chinese_number(i + 1) + "路")
    return np.asarray(lines), np.asarray(kinds), np.asarray(names)


def _main_road_indices(
    offsets: np.ndarray, district: Polygon, origin: np.ndarray, angle: float
) -> set[int]:
    """Lines at about one third and two thirds across the district (at least two main roads)."""
    normal = np.array([-math.sin(angle), math.cos(angle)])
    ring = shapely.get_coordinates(district.exterior) - origin
    lo, hi = float((ring @ normal).min()), float((ring @ normal).max())
    targets = (lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3)
    return {int(np.argmin(np.abs(offsets - t))) for t in targets}


def _wavy_line(
    origin: np.ndarray,
    angle: float,
    offset: float,
    half: float,
    amplitude: float,
    rng: np.random.Generator,
) -> LineString:
    """A line through ``origin + offset·normal`` in direction ``angle``, with two sine waves."""
    t = np.arange(-half, half + _WAVE_STEP_M, _WAVE_STEP_M)
    wave = np.zeros_like(t)
    for share in (0.7, 0.3):
        wavelength = rng.uniform(900.0, 2600.0)
        wave += share * amplitude * np.sin(2 * np.pi * t / wavelength + rng.uniform(0, 2 * np.pi))
    direction = np.array([math.cos(angle), math.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    xy = origin + np.outer(t, direction) + np.outer(offset + wave, normal)
    return LineString(xy)


def _noded_edges(
    district: Polygon, lines: np.ndarray, kinds: np.ndarray, names: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node roads and the district boundary on the grid; label each edge with its source line."""
    clipped = shapely.intersection(lines, district, grid_size=_GRID_M)
    sources = np.concatenate([[district.exterior], clipped])
    noded = shapely.union_all(sources, grid_size=_GRID_M)
    edges = shapely.get_parts(noded)
    # The midpoint of an edge is on its own source line and off every other line (lines only
    # meet at edge ends), so the nearest source identifies it.
    mid = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    tree = shapely.STRtree(np.concatenate([[district.exterior], lines]))
    source = tree.query_nearest(mid, all_matches=False)[1]
    all_kinds = np.concatenate([["boundary"], kinds])
    all_names = np.concatenate([[""], names])
    return edges, all_kinds[source], all_names[source]


def _join_blocks(faces: np.ndarray, main_edges: np.ndarray, params: DemoParams) -> np.ndarray:
    """Join random pairs of neighbouring faces across secondary roads (never into a huge block),
    so the road pattern is not a full regular mesh."""
    rng = _rng(params, "blocks")
    pairs, lengths = _shared_edges(faces)
    along_main = _length_along(faces, pairs, shapely.union_all(main_edges))
    area = shapely.area(faces)
    joinable = (
        (lengths > 0)
        & (along_main < 0.5 * lengths)
        & (area[pairs].sum(axis=1) <= _MAX_JOINED_BLOCK * params.road_spacing_m**2)
        & (rng.random(len(pairs)) < _JOIN_SECONDARY)
    )
    taken = np.zeros(faces.size, dtype=bool)
    groups = np.arange(faces.size)
    for idx in rng.permutation(len(pairs)):
        a, b = pairs[idx]
        if joinable[idx] and not taken[a] and not taken[b]:
            taken[[a, b]] = True
            groups[b] = a
    return np.array(
        [shapely.coverage_union_all(faces[groups == g]) for g in np.unique(groups)],
        dtype=object,
    )


def _edges_on_boundaries(edges: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Whether each edge lies on a polygon boundary (judged by its midpoint: edges end at nodes)."""
    mid = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    tree = shapely.STRtree(shapely.boundary(polygons))
    hit = tree.query(mid, predicate="dwithin", distance=_GRID_M)[0]
    out = np.zeros(edges.size, dtype=bool)
    out[hit] = True
    return out


def _street_weights(blocks: np.ndarray, main_roads) -> tuple[np.ndarray, np.ndarray]:
    """Shared-edge lengths between blocks, with edges along main roads weighted down."""
    pairs, total = _shared_edges(blocks)
    along_main = _length_along(blocks, pairs, main_roads)
    return pairs, total - along_main + _MAIN_ROAD_PENALTY * along_main


def _length_along(faces: np.ndarray, pairs: np.ndarray, roads) -> np.ndarray:
    """Length of each pair's shared boundary that runs along ``roads``."""
    shared = shapely.intersection(
        shapely.boundary(faces[pairs[:, 0]]), shapely.boundary(faces[pairs[:, 1]])
    )
    return shapely.length(shapely.intersection(shared, shapely.buffer(roads, 1.0)))


# --- shared helpers for faces ---------------------------------------------------------------------


def _shared_edges(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``i < j`` of faces that touch, with the length of their shared boundary."""
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    sel = i < j
    i, j = i[sel], j[sel]
    lengths = shapely.length(
        shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j]))
    )
    return np.column_stack([i, j]).astype(int), lengths


def _merge_faces(
    faces: np.ndarray,
    groups: np.ndarray,
    pairs: np.ndarray,
    lengths: np.ndarray,
    min_area: float,
    min_compactness: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge small or thin faces into the same-group neighbour with the longest shared edge.

    Works on the adjacency graph (areas, perimeters, shared lengths), then dissolves each merged
    set with a coverage union, which keeps every shared vertex. Returns the merged faces and
    their group.
    """
    n = faces.size
    area = shapely.area(faces).astype(float)
    perimeter = shapely.length(faces).astype(float)
    links: list[dict[int, float]] = [{} for _ in range(n)]
    for (a, b), length in zip(pairs, lengths, strict=True):
        if length > 0 and groups[a] == groups[b]:
            links[a][b] = links[a].get(b, 0.0) + length
            links[b][a] = links[b].get(a, 0.0) + length
    members = {i: [i] for i in range(n)}

    def weak(i: int) -> bool:
        compact = 4 * math.pi * area[i] / perimeter[i] ** 2
        return area[i] < min_area or compact < min_compactness

    while True:
        candidates = [i for i in members if weak(i) and links[i]]
        if not candidates:
            break
        i = min(candidates, key=lambda k: (area[k], k))
        j = max(links[i], key=lambda k: (links[i][k], -k))
        shared = links[i].pop(j)
        links[j].pop(i)
        for k, length in links[i].items():
            links[k].pop(i)
            links[k][j] = links[k].get(j, 0.0) + length
            links[j][k] = links[j].get(k, 0.0) + length
        links[i] = {}
        area[j] += area[i]
        perimeter[j] += perimeter[i] - 2 * shared
        members[j].extend(members.pop(i))
    merged = [
        shapely.coverage_union_all(faces[m]) if len(m) > 1 else faces[m[0]]
        for m in members.values()
    ]
    return np.array(merged, dtype=object), groups[list(members)]


def _sorted_geoms(geoms: np.ndarray) -> np.ndarray:
    """Order faces by representative point (north first) so results never depend on GEOS order."""
    xy = shapely.get_coordinates(shapely.point_on_surface(geoms))
    return geoms[np.lexsort((xy[:, 0], -xy[:, 1]))]


# --- step 4: streets and communities --------------------------------------------------------------


def _group_blocks_into_streets(layout: _Layout, params: DemoParams) -> np.ndarray:
    if layout.blocks.size < params.n_communities:
        raise ValueError(
            f"the road network has only {layout.blocks.size} blocks for {params.n_communities} "
            "communities; lower n_communities or road_spacing_m"
        )
    everything = np.arange(layout.blocks.size)
    return _grow_regions(layout, everything, params.n_streets, _rng(params, "streets"))


def _group_blocks_into_communities(
    layout: _Layout, street_of_block: np.ndarray, params: DemoParams
) -> np.ndarray:
    """Split each street into communities; counts are proportional to street area."""
    rng = _rng(params, "communities")
    areas = shapely.area(layout.blocks)
    streets = np.arange(params.n_streets)
    street_area = np.array([areas[street_of_block == s].sum() for s in streets])
    block_count = np.array([(street_of_block == s).sum() for s in streets])
    quota = _apportion(street_area, params.n_communities, block_count)
    community = np.full(layout.blocks.size, -1)
    for s in streets:
        members = np.flatnonzero(street_of_block == s)
        community[members] = _grow_regions(layout, members, int(quota[s]), rng)
    return community


def _apportion(weights: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Largest-remainder split of ``total`` proportional to ``weights``, each in [1, cap]."""
    share = weights / weights.sum() * total
    quota = np.clip(np.floor(share).astype(int), 1, caps)
    while quota.sum() != total:
        room = quota < caps if quota.sum() < total else quota > 1
        if not room.any():
            raise ValueError(
                f"cannot place {total} communities in streets with {caps.tolist()} blocks; "
                "lower n_communities"
            )
        gap = (share - quota) if quota.sum() < total else (quota - share)
        pick = int(np.argmax(np.where(room, gap, -np.inf)))
        quota[pick] += 1 if quota.sum() < total else -1
    return quota


def _grow_regions(
    layout: _Layout, members: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Partition ``members`` (block indices) into ``k`` contiguous groups of similar area.

    Seeds are the blocks nearest to area-weighted k-means centres; then the group with the
    smallest area repeatedly takes the unassigned neighbour it shares the most (weighted) edge
    with, so groups stay contiguous and balanced.
    """
    local = {int(b): i for i, b in enumerate(members)}
    area = shapely.area(layout.blocks[members])
    xy = shapely.get_coordinates(shapely.point_on_surface(layout.blocks[members]))
    links: list[dict[int, float]] = [{} for _ in members]
    for (a, b), w in zip(layout.pairs, layout.weights, strict=True):
        # Blocks meeting at a single point are not neighbours: groups stay one polygon.
        if w > 0 and a in local and b in local:
            links[local[a]][local[b]] = w
            links[local[b]][local[a]] = w
    seeds = _kmeans_seeds(xy, area, k, rng)
    label = np.full(members.size, -1)
    label[seeds] = np.arange(k)
    group_area = area[seeds].astype(float)
    while (label < 0).any():
        for g in np.argsort(group_area, kind="stable"):
            frontier: dict[int, float] = {}
            for b in np.flatnonzero(label == g):
                for nb, w in links[b].items():
                    if label[nb] < 0:
                        frontier[nb] = frontier.get(nb, 0.0) + w
            if frontier:
                pick = max(frontier, key=lambda c: (frontier[c], -c))
                label[pick] = g
                group_area[g] += area[pick]
                break
        else:
            raise ValueError("blocks are not connected; use a different seed")
    return _balance_regions(label, area, links)


def _balance_regions(
    label: np.ndarray, area: np.ndarray, links: list[dict[int, float]]
) -> np.ndarray:
    """Move edge blocks from the largest group to smaller neighbours while that lowers the pair's
    larger area and keeps the donor contiguous (greedy growth can leave one group enclosed)."""
    label = label.copy()
    k = int(label.max()) + 1
    group_area = np.bincount(label, weights=area, minlength=k)
    for _ in range(4 * label.size):
        moved = False
        for g in np.argsort(-group_area, kind="stable"):
            moves = sorted(
                (group_area[label[nb]] + area[b], b, int(label[nb]))
                for b in np.flatnonzero(label == g)
                for nb, w in links[b].items()
                if w > 0 and label[nb] != g
            )
            for new_area, b, h in moves:
                if new_area >= group_area[g] or not _connected_without(label, links, g, b):
                    continue
                label[b] = h
                group_area[g] -= area[b]
                group_area[h] += area[b]
                moved = True
                break
            if moved:
                break
        if not moved:
            break
    return label


def _connected_without(
    label: np.ndarray, links: list[dict[int, float]], g: int, b: int | np.integer
) -> bool:
    rest = set(np.flatnonzero(label == g).tolist()) - {b}
    if not rest:
        return False
    start = next(iter(rest))
    seen, stack = {start}, [start]
    while stack:
        for nb, w in links[stack.pop()].items():
            if w > 0 and nb in rest and nb not in seen:
                seen.add(nb)
                stack.append(nb)
    return seen == rest


def _kmeans_seeds(
    xy: np.ndarray, weight: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of ``k`` distinct points nearest to weighted k-means centres."""
    first = int(rng.integers(xy.shape[0]))
    chosen = [first]
    dist = np.linalg.norm(xy - xy[first], axis=1)
    for _ in range(1, k):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(xy - xy[chosen[-1]], axis=1))
    centres = xy[chosen].astype(float)
    for _ in range(20):
        nearest = np.argmin(((xy[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        for c in range(k):
            sel = nearest == c
            if sel.any():
                centres[c] = np.average(xy[sel], axis=0, weights=weight[sel])
    seeds: list[int] = []
    for c in range(k):
        order = np.argsort(np.linalg.norm(xy - centres[c], axis=1), kind="stable")
        seeds.append(int(next(i for i in order if i not in seeds)))
    return np.asarray(seeds)


# --- step 5: unit grids ---------------------------------------------------------------------------


def _unit_faces(layout: _Layout, params: DemoParams) -> tuple[np.ndarray, np.ndarray]:
    """Centroidal Voronoi cells per block, noded with all block edges into one coverage."""
    rng = _rng(params, "units")
    rings = [shapely.boundary(layout.blocks)]
    for block in layout.blocks:
        k = max(1, round(block.area / params.unit_area_m2))
        if k > 1:
            rings.append(shapely.boundary(_lloyd_cells(block, k, rng)))
    noded = shapely.union_all(np.concatenate(rings), grid_size=_GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    block_of_face = _locate(faces, layout.blocks)
    pairs, lengths = _shared_edges(faces)
    return _merge_faces(
        faces,
        block_of_face,
        pairs,
        lengths,
        min_area=_MIN_UNIT_SHARE * params.unit_area_m2,
        min_compactness=_MIN_UNIT_COMPACTNESS,
    )


def _lloyd_cells(block: Polygon, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` Voronoi cells clipped to ``block`` after a few Lloyd relaxation steps."""
    points = _random_points(block, k, rng)
    for _ in range(_LLOYD_ITERATIONS):
        centre = shapely.get_coordinates(shapely.centroid(_voronoi_in(block, points)))
        # A centroid can fall outside a concave block; that point then stays where it is.
        inside = shapely.contains_xy(block, centre[:, 0], centre[:, 1])
        points[inside] = centre[inside]
    return _voronoi_in(block, points)


def _voronoi_in(block: Polygon, points: np.ndarray) -> np.ndarray:
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=block, ordered=True)
    return shapely.intersection(shapely.get_parts(cells), block)


def _random_points(polygon: Polygon, k: int, rng: np.random.Generator) -> np.ndarray:
    minx, miny, maxx, maxy = polygon.bounds
    found = np.empty((0, 2))
    while found.shape[0] < k:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(4 * k, 2))
        found = np.vstack([found, xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]])
    return found[:k]


def _locate(faces: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Index of the parent polygon that holds each face's interior point."""
    points = shapely.point_on_surface(faces)
    tree = shapely.STRtree(parents)
    face_idx, parent_idx = tree.query(points, predicate="within")
    out = np.full(faces.size, -1)
    out[face_idx] = parent_idx
    missing = np.flatnonzero(out < 0)
    if missing.size:  # a centimetre-scale face on a block edge: take the nearest block
        out[missing] = tree.query_nearest(points[missing], all_matches=False)[1]
    return out


# --- step 6: hierarchy, codes and attributes ------------------------------------------------------


@dataclass
class _Grid:
    """One output row, geometry still in the metric CRS."""

    geometry: shapely.Geometry
    code: str
    level: str
    parent_code: str | None
    name: str
    responsible_unit: str
    responsible_persons: list[dict[str, str]]
    land_use: str
    management_grade: str


@dataclass
class _Coder:
    """Everything needed to turn groups of unit faces into coded, named, attributed grids."""

    params: DemoParams
    scheme: CodeScheme
    units: np.ndarray
    use: np.ndarray
    grade: np.ndarray
    names: _Names
    people: np.random.Generator

    def grid(
        self, members: np.ndarray, level: str, code: str, parent: str | None, name: str
    ) -> _Grid:
        """A grid made of the unit faces ``members`` (coverage union keeps shared vertices)."""
        geom = (
            self.units[members[0]]
            if members.size == 1
            else shapely.coverage_union_all(self.units[members])
        )
        area = shapely.area(self.units[members])
        return _Grid(
            geom,
            code,
            level,
            parent,
            name,
            responsible_unit=_RESPONSIBLE[level].format(name=name),
            responsible_persons=_persons(self.people, _PERSONS[level]),
            land_use=_dominant(self.use[members], area),
            management_grade=_dominant(self.grade[members], area),
        )


_RESPONSIBLE = {
    "city": "{name}数字化城市管理监督指挥中心",
    "district": "{name}数字化城市管理监督指挥中心",
    "street": "{name}办事处",
    "community": "{name}居民委员会",
}
_PERSONS = {"city": 1, "district": 1, "street": 1, "community": 2}


def _assemble_hierarchy(
    layout: _Layout,
    params: DemoParams,
    street_of_block: np.ndarray,
    community_of_block: np.ndarray,
    units: np.ndarray,
    unit_block: np.ndarray,
) -> list[_Grid]:
    """Code and describe every grid, numbering each level in coding order inside its parent."""
    use, grade = _unit_attributes(layout, params, units, unit_block)
    coder = _Coder(
        params,
        CodeScheme(params.code_width),
        units,
        use,
        grade,
        _Names(params),
        _rng(params, "people"),
    )
    everything = np.arange(units.size)
    city_code = params.county_code[:4].ljust(params.code_width, "0")
    district_code = params.county_code.ljust(params.code_width, "0")
    city = coder.grid(everything, "city", city_code, None, params.city_name)
    district = coder.grid(everything, "district", district_code, city_code, params.district_name)
    # The demo city has a single district, so both share one geometry object.
    city.geometry = district.geometry
    grids = [city, district]
    unit_street = street_of_block[unit_block]
    unit_community = community_of_block[unit_block]
    for s_seq, s_members in _numbered_groups(units, everything, unit_street, None):
        s_code = coder.scheme.child_code(district_code, "district", s_seq)
        grids.append(coder.grid(s_members, "street", s_code, district_code, coder.names.street()))
        for c_seq, c_members in _numbered_groups(units, s_members, unit_community, None):
            c_code = coder.scheme.child_code(s_code, "street", c_seq)
            community = coder.grid(c_members, "community", c_code, s_code, coder.names.community())
            grids.append(community)
            grids.extend(_unit_grids(coder, community, c_members))
    return sorted(grids, key=lambda g: (LEVELS.index(g.level), g.code))


def _numbered_groups(
    units: np.ndarray, members: np.ndarray, label: np.ndarray, row_height: float | None
) -> list[tuple[int, np.ndarray]]:
    """Groups of ``members`` by ``label`` as ``(sequence, unit indices)`` in coding order."""
    groups = [members[label[members] == value] for value in np.unique(label[members])]
    geoms = [shapely.coverage_union_all(units[g]) for g in groups]
    return [(seq, groups[i]) for seq, i in enumerate(_coding_order(geoms, row_height), start=1)]


def _unit_grids(coder: _Coder, community: _Grid, members: np.ndarray) -> list[_Grid]:
    scheme = coder.scheme
    if members.size >= 10**scheme.sequence_digits:
        raise ValueError(
            f"community {community.code} holds {members.size} unit grids, more than "
            f"{scheme.width}-digit codes can number; raise n_communities or use code_width=15"
        )
    order = members[_coding_order(list(coder.units[members]), coder.params.row_height_m)]
    grids = []
    for seq, u in enumerate(order, start=1):
        grids.append(
            _Grid(
                geometry=coder.units[u],
                code=scheme.child_code(community.code, "community", seq),
                level="unit",
                parent_code=community.code,
                name=f"{community.name}第{str(seq).zfill(scheme.sequence_digits)}网格",
                responsible_unit=f"{community.name}网格工作站",
                responsible_persons=_persons(coder.people, int(coder.people.integers(1, 3))),
                land_use=str(coder.use[u]),
                management_grade=str(coder.grade[u]),
            )
        )
    return grids


def _coding_order(geoms: list | np.ndarray, row_height: float | None = None) -> np.ndarray:
    """Positions of ``geoms`` in coding order: rows north→south, then west→east.

    Rows are bands of ``row_height`` metres below the northernmost representative point; the
    default band is the side of the mean polygon area's square.
    """
    geoms = np.asarray(geoms, dtype=object)
    if row_height is None:
        row_height = math.sqrt(float(np.mean(shapely.area(geoms))))
    xy = shapely.get_coordinates(shapely.point_on_surface(geoms))
    row = np.floor((xy[:, 1].max() - xy[:, 1]) / row_height)
    return np.lexsort((xy[:, 0], row))


def _unit_attributes(
    layout: _Layout, params: DemoParams, units: np.ndarray, unit_block: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Land use (mostly the block's use) and grade (by distance to main roads) per unit."""
    rng = _rng(params, "land_use")
    uses = np.asarray(LAND_USES)
    base = np.array([0.45, 0.12, 0.08, 0.13, 0.12, 0.04, 0.06])
    near_main = np.array([0.30, 0.30, 0.04, 0.14, 0.08, 0.08, 0.06])
    block_use = np.array(
        [rng.choice(uses, p=near_main if on_main else base) for on_main in layout.block_main]
    )
    own = rng.random(units.size) < 0.2
    unit_use = np.where(own, rng.choice(uses, size=units.size, p=base), block_use[unit_block])
    dist = shapely.distance(shapely.point_on_surface(units), layout.main_roads)
    level = np.digitize(dist, [150.0, 400.0])  # 0: 一级, 1: 二级, 2: 三级
    level = np.where(unit_use == "商业", np.maximum(level - 1, 0), level)
    return unit_use, np.asarray(MANAGEMENT_GRADES)[level]


def _dominant(values: np.ndarray, area: np.ndarray) -> str:
    """The value covering the most area; land use with no value over half the area is 混合."""
    values = np.asarray(values)
    labels = np.unique(values)
    totals = np.array([area[values == v].sum() for v in labels])
    best = labels[int(np.argmax(totals))]
    if best in LAND_USES and totals.max() < 0.5 * totals.sum():
        return "混合"
    return str(best)


# --- names and people -----------------------------------------------------------------------------

_MAIN_ROAD_NAMES = tuple(
    "金水大道 文博大道 兴华路 中原大道 丰收路 明理路 "
    "商鼎路 龙湖大道 祥云路 凤鸣路 建业路 学苑路".split()
)
_STREET_FIRST = "锦华文丰兴凤龙金银明瑞和安康泰祥福德嘉盛"
_STREET_SECOND = "苑园湖桥岭台林河源坊庄城岗亭州"
_COMMUNITY_FIRST = tuple(
    "翠竹 书香 银河 阳光 幸福 和平 建设 青年 绿城 丹桂 紫荆 玉兰 东明 西华 南苑 "
    "北辰 新村 花园 春晖 晨曦 金桥 民主 团结 振兴 锦绣 康宁 福寿 清泉 星光 未来".split()
)
_COMMUNITY_SECOND = ("", *"东西南北一二三里苑园坊街庭湾府")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰红建国志新宇浩然欣怡子涵梓轩"
# Mainland mobile number blocks 13x, 15x (no 154) and 18x.
_MOBILE_PREFIXES = tuple(f"1{a}{b}" for a in "358" for b in "0123456789" if a + b != "54")


class _Names:
    """Unique street and community names drawn without replacement from the pools."""

    def __init__(self, params: DemoParams) -> None:
        rng = _rng(params, "names")
        streets = [a + b for a in _STREET_FIRST for b in _STREET_SECOND]
        communities = [a + b for a in _COMMUNITY_FIRST for b in _COMMUNITY_SECOND]
        self._streets = [streets[i] for i in rng.permutation(len(streets))]
        self._communities = [communities[i] for i in rng.permutation(len(communities))]
        self._used = {"street": 0, "community": 0}

    def street(self) -> str:
        return self._next("street", self._streets) + "街道"

    def community(self) -> str:
        return self._next("community", self._communities) + "社区"

    def _next(self, kind: str, pool: list[str]) -> str:
        i = self._used[kind]
        self._used[kind] += 1
        # Past the pool, repeat it with a numeric suffix so names stay unique.
        return pool[i % len(pool)] + (str(i // len(pool) + 1) if i >= len(pool) else "")


def _persons(rng: np.random.Generator, n: int) -> list[dict[str, str]]:
    people = []
    for _ in range(n):
        given = "".join(rng.choice(list(_GIVEN), size=int(rng.integers(1, 3))))
        phone = str(rng.choice(_MOBILE_PREFIXES)) + "".join(str(d) for d in rng.integers(0, 10, 8))
        people.append({"name": str(rng.choice(list(_SURNAMES))) + given, "phone": phone})
    return people


def _chinese_number(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


# --- output ---------------------------------------------------------------------------------------


def _to_frame(grids: list[_Grid], crs: CRS) -> gpd.GeoDataFrame:
    # One transform call for all levels: identical metric vertices map to identical lon/lat.
    geoms = to_wgs84(np.array([g.geometry for g in grids], dtype=object), crs)
    columns = {
        "code": [g.code for g in grids],
        "level": [g.level for g in grids],
        # object dtype keeps the city's parent as None (a str column would turn it into NaN)
        "parent_code": pd.Series([g.parent_code for g in grids], dtype=object),
        "name": [g.name for g in grids],
        "responsible_unit": [g.responsible_unit for g in grids],
        "responsible_persons": pd.Series([g.responsible_persons for g in grids], dtype=object),
        "land_use": [g.land_use for g in grids],
        "management_grade": [g.management_grade for g in grids],
    }
    return gpd.GeoDataFrame(columns, geometry=list(geoms), crs=WGS84)


def _roads_frame(layout: _Layout) -> gpd.GeoDataFrame:
    roads = layout.roads
    names, kinds, geoms = [], [], []
    for kind in ROAD_KINDS:
        for name in sorted(set(roads.name[roads.kind == kind])):
            sel = (roads.kind == kind) & (roads.name == name)
            merged = shapely.line_merge(shapely.union_all(roads.geoms[sel]), directed=False)
            for part in _sorted_lines(shapely.get_parts(merged)):
                names.append(str(name))
                kinds.append(kind)
                geoms.append(part)
    lonlat = to_wgs84(np.asarray(geoms, dtype=object), layout.crs)
    return gpd.GeoDataFrame({"name": names, "kind": kinds}, geometry=list(lonlat), crs=WGS84)


def _sorted_lines(lines: np.ndarray) -> np.ndarray:
    start = shapely.get_coordinates(shapely.get_point(lines, 0))
    return lines[np.lexsort((start[:, 1], start[:, 0]))]

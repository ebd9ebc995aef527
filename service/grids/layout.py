"""Laying out grids: generating children inside a parent, and checking a level's topology."""

from __future__ import annotations

from typing import Any, cast

import geopandas as gpd
from shapely import MultiPolygon

from gis.codes import LEVELS, CodeError
from gis.gridgen import generate_cells
from gis.topology import check_topology
from service.accounts.principal import Principal
from service.clock import now
from service.errors import Conflict, InvalidInput
from service.grids.registry import GridInput, Registry
from service.grids.render import grid_feature
from service.grids.repository import GridFilter, geom_of
from service.http.geojson import geometry_json


def generate_children(
    registry: Registry,
    parent_code: str,
    target_area_m2: float,
    shape: str,
    sliver_ratio: float,
    *,
    by: Principal,
) -> dict[str, Any]:
    """Cover ``parent_code`` with generated cells at the next level, coded west→east, north→south,
    as ``by`` (one audit row for the whole generation).

    Refuses a parent that already has current children (retire or re-import them instead).
    """
    parent = registry.get(parent_code)
    by.require_grid(parent.code, "grid")
    if parent.level == "unit":
        raise InvalidInput("unit grids have no children; pick a community", field="code")
    child_level = LEVELS[LEVELS.index(parent.level) + 1]
    existing = registry.repo.count(
        GridFilter(city=registry.city, at=now(), level=child_level, parent_code=parent.code)
    )
    if existing:
        raise Conflict(
            f"{parent.code} already has {existing} {child_level} grid(s); generating would "
            "overlap them",
            field="code",
        )
    try:
        parent_geom = cast(MultiPolygon, geom_of(parent))  # grids.geom is a MULTIPOLYGON column
        cells = generate_cells(
            parent_geom, target_area_m2=target_area_m2, shape=shape, sliver_ratio=sliver_ratio
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), field="target_area_m2") from exc
    digits = registry.scheme.prefix_length(child_level) - registry.scheme.prefix_length(
        parent.level
    )
    items = []
    for seq, cell in enumerate(cells, start=1):
        try:
            code = registry.scheme.child_code(parent.code, parent.level, seq)
        except CodeError as exc:
            raise InvalidInput(
                f"{len(cells)} cells do not fit the code: {exc}", field="target_area_m2"
            ) from exc
        name = f"{parent.name}第{seq:0{digits}d}网格"
        items.append(
            GridInput(
                code=code,
                level=child_level,
                name=name,
                geometry=cell,
                responsible_unit=parent.responsible_unit,
                land_use=parent.land_use,
                management_grade=parent.management_grade,
            )
        )
    batch = {
        "action": "grid.generate",
        "parent": parent.code,
        "target_area_m2": target_area_m2,
        "shape": shape,
        "sliver_ratio": sliver_ratio,
    }
    registry.write(items, by=by, batch=batch)
    rows = registry.repo.current_by_codes(registry.city, [i.code for i in items], now())
    return {
        "type": "FeatureCollection",
        "parent": parent.code,
        "count": len(items),
        "features": [grid_feature(rows[i.code]) for i in items],
    }


def topology_report(
    registry: Registry, level: str, parent_code: str, datum: str = "wgs84"
) -> dict[str, Any]:
    """Overlaps, gaps, cells outside the parent, invalid geometries and duplicate codes; each
    finding a GeoJSON feature located in ``datum``."""
    parent = registry.get(parent_code)
    at = now()
    children = registry.repo.list(
        GridFilter(city=registry.city, at=at, level=level, parent_code=parent.code)
    )
    frame = gpd.GeoDataFrame(
        {"code": [g.code for g in children]},
        geometry=[geom_of(g) for g in children],
        crs="EPSG:4326",
    )
    findings = check_topology(frame, geom_of(parent))
    features = [f.to_geojson_feature() for f in findings]
    for finding, feature in zip(findings, features, strict=True):
        if feature["geometry"] is not None:
            feature["geometry"] = geometry_json(finding.geometry, datum)
    return {
        "type": "FeatureCollection",
        "parent": parent.code,
        "level": level,
        "checked": len(children),
        "ok": not findings,
        "features": features,
    }

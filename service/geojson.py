"""GeoJSON rendering of grid rows (coordinates converted to the requested datum)."""

from __future__ import annotations

from typing import Any

import shapely

from gis import datum as datums
from service.models import Grid
from service.repository import geom_of


def grid_properties(grid: Grid) -> dict[str, Any]:
    """The attributes of a grid version as plain JSON values."""
    return {
        "code": grid.code,
        "name": grid.name,
        "level": grid.level,
        "parent_code": grid.parent_code,
        "version": grid.version,
        "area_m2": grid.area_m2,
        "responsible_unit": grid.responsible_unit,
        "responsible_persons": grid.responsible_persons or [],
        "land_use": grid.land_use,
        "management_grade": grid.management_grade,
        "valid_from": grid.valid_from.isoformat(),
        "valid_to": grid.valid_to.isoformat() if grid.valid_to else None,
    }


def geometry_json(geom: shapely.Geometry, datum: str = "wgs84") -> dict[str, Any]:
    """A GeoJSON geometry dict in ``datum``."""
    return shapely.geometry.mapping(datums.transform_geometries(geom, "wgs84", datum))


def grid_feature(grid: Grid, datum: str = "wgs84", with_geometry: bool = True) -> dict[str, Any]:
    """A grid version as a GeoJSON Feature (``id`` = code)."""
    return {
        "type": "Feature",
        "id": grid.code,
        "geometry": geometry_json(geom_of(grid), datum) if with_geometry else None,
        "properties": grid_properties(grid),
    }


def parse_geometry(value: Any, field: str = "geometry") -> shapely.Geometry:
    """A shapely geometry from a GeoJSON geometry dict; ``ValueError`` names what is wrong."""
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError(f"{field} must be a GeoJSON geometry object with 'type'")
    try:
        return shapely.geometry.shape(value)
    except Exception as exc:  # shapely raises several types for malformed input
        raise ValueError(f"{field} is not valid GeoJSON: {exc}") from exc

"""Grids as JSON: GeoJSON features with their attributes, in the requested datum."""

from __future__ import annotations

from typing import Any

from service.db.models import Grid
from service.grids.repository import geom_of
from service.http.geojson import geometry_json
from service.http.timeparse import iso


def grid_properties(grid: Grid, tz: str | None = None) -> dict[str, Any]:
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
        "valid_from": iso(grid.valid_from, tz),
        "valid_to": iso(grid.valid_to, tz),
    }


def grid_feature(grid: Grid, datum: str = "wgs84", with_geometry: bool = True) -> dict[str, Any]:
    """A grid version as a GeoJSON Feature (``id`` = code)."""
    return {
        "type": "Feature",
        "id": grid.code,
        "geometry": geometry_json(geom_of(grid), datum) if with_geometry else None,
        "properties": grid_properties(grid),
    }

"""GeoJSON geometry at the edge: shapely out in the requested datum, client JSON in."""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from gis import datum as datums


def geometry_json(geom: shapely.Geometry, datum: str = "wgs84") -> dict[str, Any]:
    """A GeoJSON geometry dict in ``datum``."""
    return shapely.geometry.mapping(datums.transform_geometries(geom, "wgs84", datum))


def parse_geometry(value: Any, field: str = "geometry") -> BaseGeometry:
    """A shapely geometry from a GeoJSON geometry dict; ``ValueError`` names what is wrong."""
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError(f"{field} must be a GeoJSON geometry object with 'type'")
    try:
        return shapely.geometry.shape(value)
    except Exception as exc:  # shapely raises several types for malformed input
        raise ValueError(f"{field} is not valid GeoJSON: {exc}") from exc

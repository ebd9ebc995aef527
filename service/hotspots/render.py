"""Hotspots as JSON: GeoJSON features with their zones, in the requested datum."""

from __future__ import annotations

from typing import Any

import shapely
from geoalchemy2.shape import to_shape

from gis.datum import transform_geometries
from service.db.models import Hotspot
from service.http.timeparse import iso


def hotspot_feature(spot: Hotspot, with_zone: bool = False, datum: str = "wgs84") -> dict[str, Any]:
    """A hotspot as a GeoJSON Feature (its own geometry; the zone on request), in ``datum``."""
    props: dict[str, Any] = {
        "id": spot.id,
        "key": spot.key,
        "kind": spot.kind,
        "name": spot.name,
        "buffer_m": spot.buffer_m,
        "active_from": iso(spot.active_from),
        "active_to": iso(spot.active_to),
        "owner_unit": spot.owner_unit,
        "owner_name": spot.owner_name,
        "owner_phone": spot.owner_phone,
        "risk_weight": spot.risk_weight,
        "patrol_quota_per_week": spot.patrol_quota_per_week,
    }
    if with_zone:
        zone = transform_geometries(to_shape(spot.zone), "wgs84", datum)
        props["zone"] = shapely.geometry.mapping(zone)
    return {
        "type": "Feature",
        "id": spot.id,
        "geometry": shapely.geometry.mapping(
            transform_geometries(to_shape(spot.geom), "wgs84", datum)
        ),
        "properties": props,
    }

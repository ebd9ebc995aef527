"""``/api/hotspots``: hotspot kinds, hotspots, nearby hotspots, grids a hotspot touches."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from gis.datum import transform_geometries
from service.accounts.principal import Principal
from service.auth import Allow, public_grids
from service.deps import HotspotServiceDep, RegistryDep, SettingsDep
from service.errors import InvalidInput
from service.hotspots.hotspots import HotspotInput
from service.hotspots.imports import hotspots_from_upload
from service.hotspots.render import hotspot_feature
from service.hotspots.schemas import HotspotCreate, HotspotEnd, HotspotKindIn, HotspotUpdate
from service.http.bodyguard import GuardedRoute
from service.http.geojson import parse_geometry
from service.http.paging import LimitQ, OffsetQ, feature_page, number_matched
from service.http.params import DatumQuery, IdPath, parse_bbox
from service.http.timeparse import aware

router = APIRouter(tags=["hotspots"], route_class=GuardedRoute)
Editor = Annotated[Principal, Allow("hotspots.edit")]


@router.get(
    "/api/hotspot-kinds",
    summary="Hotspot kinds of this city",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def list_kinds(hotspots: HotspotServiceDep) -> list[dict[str, Any]]:
    return [
        {
            "key": k.key,
            "name": k.name,
            "default_buffer_m": k.default_buffer_m,
            "default_risk_weight": k.default_risk_weight,
        }
        for k in hotspots.kinds()
    ]


@router.post("/api/hotspot-kinds", status_code=201, summary="Add a city's own hotspot kind")
def add_kind(body: HotspotKindIn, hotspots: HotspotServiceDep, by: Editor) -> dict[str, Any]:
    kind = hotspots.add_kind(
        body.key, body.name, body.default_buffer_m, body.default_risk_weight, by=by
    )
    return {
        "key": kind.key,
        "name": kind.name,
        "default_buffer_m": kind.default_buffer_m,
        "default_risk_weight": kind.default_risk_weight,
    }


@router.get(
    "/api/hotspots",
    summary="Hotspots (GeoJSON, paged)",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def list_hotspots(
    request: Request,
    response: Response,
    hotspots: HotspotServiceDep,
    settings: SettingsDep,
    kind: Annotated[str | None, Query()] = None,
    active_at: Annotated[datetime | None, Query(description="Only those active then")] = None,
    bbox: Annotated[
        str | None, Query(description="minlon,minlat,maxlon,maxlat: zones meeting the box")
    ] = None,
    zones: Annotated[bool, Query(description="Include influence zones")] = False,
    include_ended: Annotated[
        bool, Query(description="Also hotspots that have ended (default: only current ones)")
    ] = False,
    datum: Annotated[
        Literal["wgs84", "gcj02", "bd09"], Query(description="Coordinates of the answer")
    ] = "wgs84",
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
) -> dict[str, Any]:
    when = aware(active_at, settings.grids.timezone)
    # an as-of read sees what was active then; otherwise ended hotspots only when asked for
    args = (kind, when, parse_bbox(bbox))
    ended = include_ended or when is not None
    rows = hotspots.list(*args, limit=limit, offset=offset, include_ended=ended)
    matched = number_matched(
        len(rows), limit, offset, lambda: hotspots.count(*args, include_ended=ended)
    )
    features = [hotspot_feature(h, with_zone=zones, datum=datum) for h in rows]
    return feature_page(request, response, features, matched=matched, limit=limit, offset=offset)


@router.post("/api/hotspots", status_code=201, summary="Create a hotspot")
def create_hotspot(
    body: HotspotCreate, hotspots: HotspotServiceDep, settings: SettingsDep, by: Editor
) -> dict[str, Any]:
    try:
        geom = transform_geometries(parse_geometry(body.geometry), body.datum, "wgs84")
    except ValueError as exc:
        raise InvalidInput(str(exc), field="geometry") from exc
    tz = settings.grids.timezone
    item = HotspotInput(
        key=body.key,
        kind=body.kind,
        name=body.name,
        geometry=geom,
        buffer_m=body.buffer_m,
        active_from=aware(body.active_from, tz),
        active_to=aware(body.active_to, tz),
        owner_unit=body.owner_unit,
        owner_name=body.owner_name,
        owner_phone=body.owner_phone,
        risk_weight=body.risk_weight,
        patrol_quota_per_week=body.patrol_quota_per_week,
    )
    return hotspot_feature(hotspots.create([item], by=by)[0], with_zone=True)


@router.post("/api/hotspots/import", summary="Import hotspots (GeoJSON/GPKG/SHP zip/KML)")
def import_hotspots(
    hotspots: HotspotServiceDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("grids.import")],
    file: Annotated[UploadFile, File()],
    kind: Annotated[str | None, Form(description="Kind for features without one")] = None,
    crs: Annotated[str | None, Form()] = None,
    datum: Annotated[str, Form()] = "wgs84",
) -> dict[str, Any]:
    items, source = hotspots_from_upload(
        file,
        kind=kind,
        crs=crs,
        datum=datum,
        max_upload_mb=settings.grids.max_upload_mb,
        limits=settings.grids.file_limits,
        tz=settings.grids.timezone,
    )
    rows = hotspots.create(items, by=by, source=source)
    return {"created": [h.id for h in rows], "keys": [h.key for h in rows]}


@router.get(
    "/api/hotspots/near",
    summary="Hotspots near a point, nearest first",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def near(
    hotspots: HotspotServiceDep,
    settings: SettingsDep,
    lon: float,
    lat: float,
    datum: Annotated[str, Query()] = "wgs84",
    radius_m: Annotated[float, Query(gt=0, le=5000)] = 200.0,
    at: Annotated[datetime | None, Query()] = None,
) -> list[dict[str, Any]]:
    found = hotspots.near(lon, lat, datum, radius_m, aware(at, settings.grids.timezone))
    return [
        {**hotspot_feature(h)["properties"], "distance_m": round(d, 2), "in_zone": inside}
        for h, d, inside in found
    ]


@router.get(
    "/api/hotspots/{hotspot_id}",
    summary="One hotspot with its influence zone",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def get_hotspot(
    hotspot_id: IdPath, hotspots: HotspotServiceDep, datum: DatumQuery = "wgs84"
) -> dict[str, Any]:
    return hotspot_feature(hotspots.get(hotspot_id), with_zone=True, datum=datum)


@router.get(
    "/api/hotspots/{hotspot_id}/grids",
    summary="Grids a hotspot touches, with the share of the hotspot in each",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def hotspot_grids(
    hotspot_id: IdPath,
    hotspots: HotspotServiceDep,
    registry: RegistryDep,
    level: Annotated[Literal["unit", "community", "street", "district"], Query()] = "unit",
) -> dict[str, Any]:
    return hotspots.grids_touched(hotspot_id, registry, level)


@router.patch(
    "/api/hotspots/{hotspot_id}",
    summary="Change a hotspot (name, kind, geometry, buffer, risk weight, owner …)",
)
def update_hotspot(
    hotspot_id: IdPath,
    body: HotspotUpdate,
    hotspots: HotspotServiceDep,
    settings: SettingsDep,
    by: Editor,
) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True, exclude={"datum"})
    if values.get("geometry") is not None:
        try:
            values["geometry"] = transform_geometries(
                parse_geometry(values["geometry"]), body.datum, "wgs84"
            )
        except ValueError as exc:
            raise InvalidInput(str(exc), field="geometry") from exc
    tz = settings.grids.timezone
    for name in ("active_from", "active_to"):
        if values.get(name) is not None:
            values[name] = aware(values[name], tz)
    return hotspot_feature(hotspots.update(hotspot_id, values, by=by), with_zone=True)


@router.post(
    "/api/hotspots/{hotspot_id}/end",
    summary="End a hotspot (it stops matching cases and leaves current lists; history stays)",
)
def end_hotspot(
    hotspot_id: IdPath,
    hotspots: HotspotServiceDep,
    settings: SettingsDep,
    by: Editor,
    body: HotspotEnd | None = None,
) -> dict[str, Any]:
    at = aware(body.at, settings.grids.timezone) if body else None
    return hotspot_feature(hotspots.end(hotspot_id, at, by=by), with_zone=True)


@router.delete(
    "/api/hotspots/{hotspot_id}",
    summary="End a hotspot now (the same as POST …/end: rows are never deleted)",
)
def delete_hotspot(hotspot_id: IdPath, hotspots: HotspotServiceDep, by: Editor) -> dict[str, Any]:
    return hotspot_feature(hotspots.end(hotspot_id, by=by), with_zone=True)

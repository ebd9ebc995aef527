"""``/api/streets``: street centre lines (street-length patrol coverage), for GIS editors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from geoalchemy2.shape import to_shape
from shapely.geometry.base import BaseGeometry

from gis.datum import transform_geometries
from service.accounts.principal import Principal
from service.auth import Allow, public_grids
from service.db.models import Street
from service.deps import SettingsDep, StreetsDep
from service.errors import InvalidInput
from service.http.bodyguard import GuardedRoute
from service.http.geojson import geometry_json, parse_geometry
from service.http.paging import LimitQ, OffsetQ, feature_page, number_matched
from service.http.params import DatumQuery, IdPath, parse_bbox
from service.http.timeparse import iso
from service.streets.imports import import_street_upload
from service.streets.schemas import StreetCreate, StreetUpdate
from service.streets.streets import StreetInput

router = APIRouter(prefix="/api/streets", tags=["streets"], route_class=GuardedRoute)
Editor = Annotated[Principal, Allow("streets.edit")]
READ = [Allow("grids.read", public=public_grids)]


def street_feature(street: Street, datum: str = "wgs84") -> dict[str, Any]:
    """A street as a GeoJSON Feature in ``datum``."""
    return {
        "type": "Feature",
        "id": street.id,
        "geometry": geometry_json(to_shape(street.geom), datum),
        "properties": {
            "id": street.id,
            "name": street.name,
            "kind": street.kind,
            "updated_at": iso(street.updated_at),
        },
    }


def _geometry(value: dict[str, Any], datum: str) -> BaseGeometry:
    try:
        return transform_geometries(parse_geometry(value), datum, "wgs84")
    except ValueError as exc:
        raise InvalidInput(str(exc), field="geometry") from exc


@router.get("", summary="Streets (GeoJSON, paged)", dependencies=READ)
def list_streets(
    request: Request,
    response: Response,
    streets: StreetsDep,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    name: Annotated[str | None, Query(description="Part of the name")] = None,
    kind: Annotated[str | None, Query()] = None,
    datum: DatumQuery = "wgs84",
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
) -> dict[str, Any]:
    args = (parse_bbox(bbox), name, kind)
    rows = streets.list(*args, limit=limit, offset=offset)
    matched = number_matched(len(rows), limit, offset, lambda: streets.count(*args))
    features = [street_feature(s, datum) for s in rows]
    return feature_page(request, response, features, matched=matched, limit=limit, offset=offset)


@router.post("", status_code=201, summary="Add a street")
def create_street(body: StreetCreate, streets: StreetsDep, by: Editor) -> dict[str, Any]:
    item = StreetInput(
        geometry=_geometry(body.geometry, body.datum), name=body.name, kind=body.kind
    )
    return street_feature(streets.create([item], by=by)[0])


@router.post("/import", summary="Import streets from GeoJSON, GeoPackage, zipped Shapefile or KML")
def import_streets(
    streets: StreetsDep,
    settings: SettingsDep,
    by: Annotated[Principal, Allow("grids.import")],
    file: Annotated[UploadFile, File(description="GeoJSON, GPKG, SHP (zip) or KML")],
    crs: Annotated[str | None, Form(description="Source CRS if the file has none")] = None,
    datum: Annotated[str, Form(description="wgs84 | gcj02 | bd09")] = "wgs84",
    replace: Annotated[
        bool, Form(description="Replace every street of the city with the file's")
    ] = False,
) -> dict[str, Any]:
    return import_street_upload(
        streets,
        file,
        by=by,
        crs=crs,
        datum=datum,
        replace=replace,
        max_upload_mb=settings.grids.max_upload_mb,
        limits=settings.grids.file_limits,
    )


@router.get("/{street_id}", summary="One street", dependencies=READ)
def get_street(
    street_id: IdPath, streets: StreetsDep, datum: DatumQuery = "wgs84"
) -> dict[str, Any]:
    return street_feature(streets.get(street_id), datum)


@router.patch("/{street_id}", summary="Change a street's name, kind or line")
def update_street(
    street_id: IdPath, body: StreetUpdate, streets: StreetsDep, by: Editor
) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True, exclude={"datum"})
    if values.get("geometry") is not None:
        values["geometry"] = _geometry(values["geometry"], body.datum)
    return street_feature(streets.update(street_id, values, by=by))


@router.delete("/{street_id}", status_code=204, summary="Remove a street")
def delete_street(street_id: IdPath, streets: StreetsDep, by: Editor) -> Response:
    streets.delete(street_id, by=by)
    return Response(status_code=204)

"""``/api/grids``: the grid registry over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from gis.datum import transform_geometries
from service.accounts.principal import Principal
from service.auth import Allow, public_grids
from service.clock import now
from service.deps import LocatorDep, RegistryDep, SettingsDep
from service.errors import InvalidInput
from service.grids import exports, imports, layout
from service.grids.bulk_locate import bulk_locate_upload
from service.grids.registry import GridInput
from service.grids.render import grid_feature
from service.grids.repository import GridFilter
from service.grids.retire import retire_grid
from service.grids.schemas import GridCreate, GridRetire, GridUpdate, LocateOut
from service.http.bodyguard import GuardedRoute
from service.http.geojson import parse_geometry
from service.http.paging import LimitQ, OffsetQ, feature_page, number_matched
from service.http.params import parse_bbox
from service.http.timeparse import aware

router = APIRouter(prefix="/api/grids", tags=["grids"], route_class=GuardedRoute)

LevelQ = Annotated[
    Literal["city", "district", "street", "community", "unit"] | None,
    Query(description="Grid level"),
]
AtQ = Annotated[
    datetime | None,
    Query(description="Answer as of this instant (default now; no offset = local time)"),
]
DatumQ = Annotated[Literal["wgs84", "gcj02", "bd09"], Query(description="Coordinate datum")]
Editor = Annotated[Principal, Allow("grids.edit")]
Importer = Annotated[Principal, Allow("grids.import")]


@router.get(
    "",
    summary="List grids (GeoJSON FeatureCollection, paged)",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def list_grids(
    request: Request,
    response: Response,
    registry: RegistryDep,
    settings: SettingsDep,
    level: LevelQ = None,
    parent: Annotated[str | None, Query(description="Direct parent's code")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    within: Annotated[
        str | None,
        Query(
            pattern=r"^\d{1,15}$",
            description="A code prefix: only the grids whose codes start with it (a subtree, "
            "or an account's grid scope)",
        ),
    ] = None,
    at: AtQ = None,
    datum: DatumQ = "wgs84",
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
) -> dict[str, Any]:
    flt = GridFilter(
        city=registry.city,
        at=aware(at, settings.grids.timezone) or now(),
        level=level,
        parent_code=parent,
        subtree_prefix=within,
        bbox=parse_bbox(bbox),
    )
    rows = registry.grids(flt, limit=limit, offset=offset)
    features = [grid_feature(g, datum) for g in rows]
    matched = number_matched(len(rows), limit, offset, lambda: registry.count(flt))
    return feature_page(request, response, features, matched=matched, limit=limit, offset=offset)


@router.post("", status_code=201, summary="Create a grid, or a new version of one")
def create_grid(body: GridCreate, registry: RegistryDep, by: Editor) -> dict[str, Any]:
    try:
        geom = parse_geometry(body.geometry)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="geometry") from exc
    geom = transform_geometries(geom, body.datum, "wgs84")
    item = GridInput(
        code=body.code,
        level=body.level,
        name=body.name,
        geometry=geom,
        parent_code=body.parent_code,
        responsible_unit=body.responsible_unit,
        responsible_persons=[p.model_dump(exclude_none=True) for p in body.responsible_persons],
        land_use=body.land_use,
        management_grade=body.management_grade,
    )
    registry.write([item], by=by)
    return grid_feature(registry.get(body.code))


@router.get(
    "/locate",
    response_model=LocateOut,
    summary="Which unit grid covers a point",
    dependencies=[Allow("grids.read", public=public_grids)],
)
async def locate(
    locator: LocatorDep,
    settings: SettingsDep,
    lon: Annotated[float, Query(description="Longitude in the given datum")],
    lat: Annotated[float, Query(description="Latitude in the given datum")],
    datum: Annotated[
        str,
        # checked by the registry (422 naming the field); the enum documents the choices
        Query(
            description="Datum of lon/lat, in and out: wgs84 | gcj02 | bd09",
            json_schema_extra={"enum": ["wgs84", "gcj02", "bd09"]},
        ),
    ] = "wgs84",
    at: AtQ = None,
    radius_m: Annotated[float, Query(ge=0, le=1000, description="Candidate radius")] = 15.0,
) -> LocateOut:
    # async: answered from memory on the event loop when nothing changed (service.grids.locator)
    result = await locator.locate(lon, lat, datum, aware(at, settings.grids.timezone), radius_m)
    return LocateOut.from_result(result, datum)


@router.post(
    "/locate/bulk",
    summary="Locate many points (CSV or GeoParquet upload)",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def locate_bulk(
    registry: RegistryDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV with lon,lat columns, or GeoParquet")],
    datum: Annotated[str, Form()] = "wgs84",
) -> Response:
    body, media_type = bulk_locate_upload(
        registry, file, datum, settings.grids.max_upload_mb, settings.grids.file_limits
    )
    return Response(content=body, media_type=media_type)


@router.post("/import", summary="Import grids from GeoJSON, GeoPackage, zipped Shapefile or KML")
def import_grids(
    registry: RegistryDep,
    settings: SettingsDep,
    by: Importer,
    file: Annotated[UploadFile, File(description="GeoJSON, GPKG, SHP (zip) or KML")],
    level: Annotated[str | None, Form(description="Level for features without one")] = None,
    crs: Annotated[str | None, Form(description="Source CRS if the file has none")] = None,
    datum: Annotated[str, Form(description="wgs84 | gcj02 | bd09")] = "wgs84",
) -> dict[str, Any]:
    return imports.import_upload(
        registry,
        file,
        by=by,
        level=level,
        crs=crs,
        datum=datum,
        max_upload_mb=settings.grids.max_upload_mb,
        limits=settings.grids.file_limits,
    )


@router.get(
    "/export",
    summary="Download grids for field teams and GIS tools",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def export_grids(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    format: Annotated[Literal["geojson", "kml", "gpkg", "shp", "gpx"], Query()] = "geojson",
    level: LevelQ = None,
    parent: Annotated[str | None, Query(description="Subtree root code")] = None,
    datum: DatumQ = "wgs84",
    at: AtQ = None,
) -> Response:
    return exports.export_response(
        registry,
        request.headers.get("if-none-match"),
        fmt=format,
        level=level,
        parent=parent,
        datum=datum,
        at=aware(at, settings.grids.timezone),
    )


@router.get(
    "/topology",
    summary="Topology check of one level under one parent",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def topology(
    registry: RegistryDep,
    level: Annotated[Literal["district", "street", "community", "unit"], Query()],
    parent: Annotated[str, Query(description="Parent code")],
    datum: DatumQ = "wgs84",
) -> dict[str, Any]:
    return layout.topology_report(registry, level, parent, datum)


@router.post("/{code}/generate", status_code=201, summary="Generate unit grids inside a parent")
def generate(
    code: str,
    registry: RegistryDep,
    by: Editor,
    target_area_m2: Annotated[float, Query(gt=0)] = 10_000.0,
    shape: Annotated[Literal["square", "hexagon"], Query()] = "square",
    sliver_ratio: Annotated[float, Query(ge=0, lt=1)] = 0.25,
) -> dict[str, Any]:
    return layout.generate_children(registry, code, target_area_m2, shape, sliver_ratio, by=by)


@router.post(
    "/{code}/retire",
    summary="Retire a grid (close its current version without a successor)",
    responses={409: {"description": "Open cases, assigned workers or child grids depend on it"}},
)
def retire(code: str, body: GridRetire, registry: RegistryDep, by: Editor) -> dict[str, Any]:
    report = retire_grid(registry, code, by=by, move_to=body.move_to, absorb=body.absorb)
    return report.json()


@router.get(
    "/{code}",
    summary="One grid (the version valid now or at `at`)",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def get_grid(
    code: str,
    registry: RegistryDep,
    settings: SettingsDep,
    at: AtQ = None,
    datum: DatumQ = "wgs84",
) -> dict[str, Any]:
    return grid_feature(registry.get(code, aware(at, settings.grids.timezone)), datum)


@router.get(
    "/{code}/versions",
    summary="Every version of a grid",
    dependencies=[Allow("grids.read", public=public_grids)],
)
def grid_versions(code: str, registry: RegistryDep, datum: DatumQ = "wgs84") -> dict[str, Any]:
    rows = registry.versions(code)
    return {"type": "FeatureCollection", "features": [grid_feature(g, datum) for g in rows]}


@router.patch("/{code}", summary="Change attributes, or the boundary (creates a new version)")
def update_grid(code: str, body: GridUpdate, registry: RegistryDep, by: Editor) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True, exclude={"geometry", "datum"})
    if "responsible_persons" in values:  # null clears the list
        values["responsible_persons"] = [
            p.model_dump(exclude_none=True) for p in body.responsible_persons or []
        ]
    geometry = None
    if body.geometry is not None:
        try:
            geometry = transform_geometries(parse_geometry(body.geometry), body.datum, "wgs84")
        except ValueError as exc:
            raise InvalidInput(str(exc), field="geometry") from exc
    return grid_feature(registry.change(code, values, geometry, by=by))

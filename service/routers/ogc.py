"""OGC API – Features Part 1 (Core, GeoJSON, OAS 3.0) at ``/ogc``: one collection per level."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gis.codes import LEVELS
from service.bodyguard import GuardedRoute
from service.deps import RegistryDep, SettingsDep
from service.errors import BadParameter, NotFound
from service.geojson import grid_feature
from service.params import parse_bbox
from service.registry import now
from service.repository import GridFilter
from service.timeparse import aware

router = APIRouter(prefix="/ogc", tags=["OGC API - Features"], route_class=GuardedRoute)

GEOJSON = "application/geo+json"
JSON = "application/json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
TITLES = {
    "city": "City (市)",
    "district": "Districts (区/县)",
    "street": "Streets (街道/乡镇)",
    "community": "Communities (社区/村)",
    "unit": "Unit grids (单元网格)",
}
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _link(href: str, rel: str, type_: str = JSON, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def _collection_id(collection_id: str) -> str:
    if collection_id not in LEVELS:
        raise NotFound(
            f"no collection {collection_id!r}; collections are {', '.join(LEVELS)}",
            field="collectionId",
        )
    return collection_id


@router.get("", summary="Landing page")
def landing(request: Request) -> dict[str, Any]:
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return {
        "title": "citygrid grids",
        "description": "The five-level city management grid registry as OGC API - Features",
        "links": [
            _link(base, "self", title="This document"),
            _link(
                f"{root}/openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "API definition",
            ),
            _link(f"{root}/docs", "service-doc", "text/html", "API documentation"),
            _link(f"{base}/conformance", "conformance", title="Conformance classes"),
            _link(f"{base}/collections", "data", title="Collections"),
        ],
    }


@router.get("/conformance", summary="Conformance classes")
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


def _collection(request: Request, registry: Any, level: str) -> dict[str, Any]:
    base = _base(request)
    extent = registry.repo.extent(GridFilter(city=registry.city, at=now(), level=level))
    out: dict[str, Any] = {
        "id": level,
        "title": TITLES[level],
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            _link(f"{base}/collections/{level}", "self"),
            _link(f"{base}/collections/{level}/items", "items", GEOJSON, "Features"),
        ],
    }
    if extent:
        out["extent"] = {"spatial": {"bbox": [list(extent)], "crs": CRS84}}
    return out


@router.get("/collections", summary="Collections: one per grid level")
def collections(request: Request, registry: RegistryDep) -> dict[str, Any]:
    base = _base(request)
    return {
        "links": [_link(f"{base}/collections", "self")],
        "collections": [_collection(request, registry, level) for level in LEVELS],
    }


@router.get("/collections/{collection_id}", summary="One collection")
def collection(collection_id: str, request: Request, registry: RegistryDep) -> dict[str, Any]:
    return _collection(request, registry, _collection_id(collection_id))


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadParameter(f"{name} must be an integer", field=name) from exc
    if value < (1 if name == "limit" else 0):
        raise BadParameter(f"{name} must be at least {1 if name == 'limit' else 0}", field=name)
    return value


def _instant(raw: str | None, tz: str) -> datetime:
    if raw is None:
        return now()
    if "/" in raw:
        raise BadParameter(
            "datetime must be one instant (grids valid then); intervals are not supported",
            field="datetime",
        )
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadParameter("datetime must be an RFC 3339 instant", field="datetime") from exc
    return aware(value, tz) or now()


@router.get("/collections/{collection_id}/items", summary="Features of a collection")
def items(
    collection_id: str, request: Request, registry: RegistryDep, settings: SettingsDep
) -> JSONResponse:
    level = _collection_id(collection_id)
    known = {"limit", "offset", "bbox", "datetime", "f"}
    unknown = set(request.query_params) - known
    if unknown:
        raise BadParameter(
            f"unknown parameter(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    limit = min(_int_param(request, "limit", DEFAULT_LIMIT), MAX_LIMIT)
    offset = _int_param(request, "offset", 0)
    flt = GridFilter(
        city=registry.city,
        level=level,
        bbox=parse_bbox(request.query_params.get("bbox"), BadParameter),
        at=_instant(request.query_params.get("datetime"), settings.grids.timezone),
    )
    rows = registry.repo.list(flt, limit=limit, offset=offset)
    matched = registry.repo.count(flt)
    url = request.url
    links = [_link(str(url), "self", GEOJSON)]
    if offset + len(rows) < matched:
        links.append(
            _link(
                str(url.include_query_params(offset=offset + limit, limit=limit)), "next", GEOJSON
            )
        )
    if offset > 0:
        links.append(
            _link(
                str(url.include_query_params(offset=max(0, offset - limit), limit=limit)),
                "prev",
                GEOJSON,
            )
        )
    links.append(_link(f"{_base(request)}/collections/{level}", "collection"))
    body = {
        "type": "FeatureCollection",
        "features": [grid_feature(g) for g in rows],
        "numberMatched": matched,
        "numberReturned": len(rows),
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }
    return JSONResponse(body, media_type=GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature")
def item(
    collection_id: str, feature_id: str, request: Request, registry: RegistryDep
) -> JSONResponse:
    level = _collection_id(collection_id)
    grid = registry.repo.get(registry.city, feature_id, now())
    if grid is None or grid.level != level:
        raise NotFound(f"no feature {feature_id!r} in collection {level!r}", field="featureId")
    feature = grid_feature(grid)
    base = _base(request)
    feature["links"] = [
        _link(f"{base}/collections/{level}/items/{feature_id}", "self", GEOJSON),
        _link(f"{base}/collections/{level}", "collection"),
    ]
    return JSONResponse(feature, media_type=GEOJSON)

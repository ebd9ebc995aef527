"""OGC API – Features Part 1 (Core, GeoJSON, HTML, OAS 3.0) at ``/ogc``: one collection per
grid level, one feature per grid version."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session

from gis.codes import LEVELS
from service.auth import Allow, Anyone, public_grids
from service.clock import now
from service.db.models import Grid
from service.deps import SessionDep, SettingsDep
from service.errors import NotFound
from service.grids.ogc import features, html, params
from service.grids.ogc.openapi import (
    CONFORMANCE,
    CRS84,
    GEOJSON,
    GREGORIAN,
    HTML,
    ITEMS_ACCEPTED,
    ITEMS_QUERY,
    JSON,
    OPENAPI_JSON,
    OTHER_ACCEPTED,
    OTHER_QUERY,
    document,
)
from service.grids.render import grid_feature
from service.http.bodyguard import GuardedRoute

router = APIRouter(prefix="/ogc", tags=["OGC API - Features"], route_class=GuardedRoute)

TITLES = {
    "city": "City (市)",
    "district": "Districts (区/县)",
    "street": "Streets (街道/乡镇)",
    "community": "Communities (社区/村)",
    "unit": "Unit grids (单元网格)",
}
_VERSIONED_ID = re.compile(r"^(?P<code>.+)\.v(?P<version>[1-9][0-9]{0,8})$")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _link(href: str, rel: str, type_: str = JSON, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def _wants_html(request: Request) -> bool:
    """``f=html|json`` decides; else an Accept header naming text/html before any JSON type."""
    f = request.query_params.get("f")
    if f is not None:
        if f not in ("json", "html"):
            raise params.invalid(f"f must be json or html, got {f!r}", "f")
        return f == "html"
    accept = request.headers.get("accept", "")
    at = accept.find("text/html")
    return at >= 0 and not any(0 <= accept.find(t) < at for t in ("json", "*/*"))


def _self_and_alternate(request: Request, own_type: str) -> list[dict[str, str]]:
    """``self`` (this encoding) and ``alternate`` (the other one) for the requested URL."""
    url = request.url
    if _wants_html(request):
        return [
            _link(str(url.include_query_params(f="html")), "self", HTML, "This page"),
            _link(str(url.include_query_params(f="json")), "alternate", own_type, "As JSON"),
        ]
    return [
        _link(str(url.remove_query_params("f")), "self", own_type, "This document"),
        _link(str(url.include_query_params(f="html")), "alternate", HTML, "As HTML"),
    ]


def _answer(request: Request, body: dict[str, Any], media_type: str, title: str) -> Response:
    if _wants_html(request):
        return HTMLResponse(html.page(title, body))
    return JSONResponse(body, media_type=media_type)


def _collection_id(collection_id: str) -> str:
    if collection_id not in LEVELS:
        message = f"no collection {collection_id!r}; collections are {', '.join(LEVELS)}"
        raise NotFound(message, field="collectionId", code="NotFound", description=message)
    return collection_id


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _feature(grid: Grid, base: str) -> dict[str, Any]:
    feature = grid_feature(grid)
    feature["id"] = f"{grid.code}.v{grid.version}"
    feature["links"] = [
        _link(f"{base}/collections/{grid.level}/items/{feature['id']}", "self", GEOJSON),
        _link(f"{base}/collections/{grid.level}", "collection", JSON),
    ]
    return feature


@router.get(
    "", summary="Landing page", openapi_extra={"parameters": OTHER_QUERY}, dependencies=[Anyone()]
)
def landing(request: Request) -> Response:
    params.reject_unknown(request.query_params, OTHER_ACCEPTED)
    base = _base(request)
    body = {
        "title": "citygrid grids",
        "description": "The five-level city management grid registry as OGC API - Features",
        "links": [
            *_self_and_alternate(request, JSON),
            _link(f"{base}/api", "service-desc", OPENAPI_JSON, "API definition (OpenAPI 3.0)"),
            _link(f"{base}/api.html", "service-doc", HTML, "API documentation"),
            _link(f"{base}/conformance", "conformance", JSON, "Conformance classes"),
            _link(f"{base}/collections", "data", JSON, "Collections"),
        ],
    }
    return _answer(request, body, JSON, "citygrid grids")


@router.get(
    "/api",
    summary="API definition (OpenAPI 3.0)",
    openapi_extra={"parameters": OTHER_QUERY},
    dependencies=[Anyone()],
)
def api_definition(request: Request) -> Response:
    params.reject_unknown(request.query_params, OTHER_ACCEPTED)
    return _answer(request, document(_base(request)), OPENAPI_JSON, "API definition")


@router.get(
    "/api.html",
    summary="API documentation (HTML)",
    include_in_schema=False,
    dependencies=[Anyone()],
)
def api_documentation(request: Request) -> HTMLResponse:
    params.reject_unknown(request.query_params, frozenset())
    return HTMLResponse(html.page("API documentation", document(_base(request))))


@router.get(
    "/conformance",
    summary="Conformance classes",
    openapi_extra={"parameters": OTHER_QUERY},
    dependencies=[Anyone()],
)
def conformance(request: Request) -> Response:
    params.reject_unknown(request.query_params, OTHER_ACCEPTED)
    body = {"links": _self_and_alternate(request, JSON), "conformsTo": CONFORMANCE}
    return _answer(request, body, JSON, "Conformance classes")


def _collection(request: Request, session: Session, city: str, level: str) -> dict[str, Any]:
    base = _base(request)
    out: dict[str, Any] = {
        "id": level,
        "title": TITLES[level],
        "description": (
            f"{TITLES[level]}: one feature per grid version; the versions valid now unless "
            "datetime asks for another time or a period"
        ),
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            _link(f"{base}/collections/{level}", "self", JSON, TITLES[level]),
            _link(f"{base}/collections/{level}?f=html", "alternate", HTML, "As HTML"),
            _link(f"{base}/collections/{level}/items", "items", GEOJSON, "Features"),
            _link(f"{base}/collections/{level}/items?f=html", "items", HTML, "Features as HTML"),
        ],
    }
    extent = features.extent(session, city, level)
    if extent is not None:
        out["extent"] = {
            "spatial": {"bbox": [list(extent.bbox)], "crs": CRS84},
            "temporal": {
                "interval": [[_stamp(extent.start), _stamp(extent.end)]],
                "trs": GREGORIAN,
            },
        }
    return out


@router.get(
    "/collections",
    summary="Collections: one per grid level",
    openapi_extra={"parameters": OTHER_QUERY},
    dependencies=[Allow("grids.read", public=public_grids)],
)
def collections(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    params.reject_unknown(request.query_params, OTHER_ACCEPTED)
    body = {
        "links": _self_and_alternate(request, JSON),
        "collections": [
            _collection(request, session, settings.grids.city, level) for level in LEVELS
        ],
    }
    return _answer(request, body, JSON, "Collections")


@router.get(
    "/collections/{collection_id}",
    summary="One collection",
    openapi_extra={"parameters": OTHER_QUERY},
    dependencies=[Allow("grids.read", public=public_grids)],
)
def collection(
    collection_id: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    level = _collection_id(collection_id)
    params.reject_unknown(request.query_params, OTHER_ACCEPTED)
    body = _collection(request, session, settings.grids.city, level)
    return _answer(request, body, JSON, TITLES[level])


@router.get(
    "/collections/{collection_id}/items",
    summary="Features of a collection (limit, offset, bbox, datetime)",
    openapi_extra={"parameters": ITEMS_QUERY},
    dependencies=[Allow("grids.read", public=public_grids)],
)
def items(
    collection_id: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    level = _collection_id(collection_id)
    q = request.query_params
    params.reject_unknown(q, ITEMS_ACCEPTED)
    limit = params.limit(q.get("limit"))
    offset = params.offset(q.get("offset"))
    query = features.FeatureQuery(
        city=settings.grids.city,
        level=level,
        period=params.period(q.get("datetime"), settings.grids.timezone, now()),
        bbox=params.bbox(q.get("bbox")),
    )
    rows = features.page(session, query, limit, offset)
    matched = features.count(session, query)
    base = _base(request)
    own = HTML if _wants_html(request) else GEOJSON
    links = _self_and_alternate(request, GEOJSON)
    if offset + len(rows) < matched:
        nxt = request.url.include_query_params(offset=offset + limit, limit=limit)
        links.append(_link(str(nxt), "next", own, "Next page"))
    if offset > 0:
        prev = request.url.include_query_params(offset=max(0, offset - limit), limit=limit)
        links.append(_link(str(prev), "prev", own, "Previous page"))
    links.append(_link(f"{base}/collections/{level}", "collection", JSON, TITLES[level]))
    body = {
        "type": "FeatureCollection",
        "features": [_feature(g, base) for g in rows],
        "numberMatched": matched,
        "numberReturned": len(rows),
        "timeStamp": _stamp(datetime.now(UTC)),
        "links": links,
    }
    return _answer(request, body, GEOJSON, f"{TITLES[level]}: features")


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature (one grid version)",
    openapi_extra={"parameters": OTHER_QUERY},
    dependencies=[Allow("grids.read", public=public_grids)],
)
def item(
    collection_id: str,
    feature_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    level = _collection_id(collection_id)
    params.reject_unknown(request.query_params, OTHER_ACCEPTED)
    versioned = _VERSIONED_ID.match(feature_id)
    code, number = (
        (versioned["code"], int(versioned["version"])) if versioned else (feature_id, None)
    )
    grid = features.version(session, settings.grids.city, level, code, number, now())
    if grid is None:
        message = f"no feature {feature_id!r} in collection {level!r}"
        raise NotFound(message, field="featureId", code="NotFound", description=message)
    base = _base(request)
    body = _feature(grid, base)
    body["links"] = [
        *_self_and_alternate(request, GEOJSON),
        _link(f"{base}/collections/{level}", "collection", JSON, TITLES[level]),
    ]
    return _answer(request, body, GEOJSON, f"{TITLES[level]}: {body['id']}")

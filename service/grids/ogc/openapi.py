"""The API definition of ``/ogc`` (the landing page's ``service-desc``), OpenAPI 3.0.

Written with Part 1's OpenAPI building blocks (parameters ``limit``, ``bbox``, ``datetime``,
response schemas per resource, the 400/404/500 answers) and self-contained, so GDAL, QGIS or
OWSLib read it without reaching schemas.opengis.net. The query parameters here are the ones the
routes accept: ``ACCEPTED`` is derived from them and the routes refuse any other name.
"""

from __future__ import annotations

from typing import Any

from gis.codes import LEVELS

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
]
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000

DATETIME_TEXT = (
    "Select grid versions by time. Grids are versioned: a version is valid from `valid_from` "
    "(inclusive) to `valid_to` (exclusive; open while it is current), both carried in each "
    "feature's properties. An instant (`2026-03-01T08:00:00+08:00`) selects the versions valid "
    "at that instant; an interval (`start/end`, either end may be `..`) selects every version "
    "whose validity overlaps it, so one grid can appear in several versions; a date "
    "(`2026-03-01`) is that whole day. Values without an offset are read in the city's time "
    "zone. Without `datetime`, the versions valid now."
)

_F: dict[str, Any] = {
    "name": "f",
    "in": "query",
    "required": False,
    "description": "Encoding of the answer (default: from the Accept header, else JSON)",
    "schema": {"type": "string", "enum": ["json", "html"]},
    "style": "form",
    "explode": False,
}
_COLLECTION_ID: dict[str, Any] = {
    "name": "collectionId",
    "in": "path",
    "required": True,
    "description": "A grid level",
    "schema": {"type": "string", "enum": list(LEVELS)},
}
_FEATURE_ID: dict[str, Any] = {
    "name": "featureId",
    "in": "path",
    "required": True,
    "description": (
        "`{code}.v{version}` (one version of a grid, as in the features' `id`), or a bare "
        "grid code for the version valid now"
    ),
    "schema": {"type": "string"},
}
ITEMS_QUERY: list[dict[str, Any]] = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": (
            "The page size: at most this many features are returned. A value above the maximum "
            f"is served as {MAX_LIMIT} (the answer's `next` link continues)."
        ),
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LIMIT,
            "default": DEFAULT_LIMIT,
        },
        "style": "form",
        "explode": False,
    },
    {
        "name": "offset",
        "in": "query",
        "required": False,
        "description": "Skip this many features of the selection (paging; see the `next` link)",
        "schema": {"type": "integer", "minimum": 0, "default": 0},
        "style": "form",
        "explode": False,
    },
    {
        "name": "bbox",
        "in": "query",
        "required": False,
        "description": (
            "Only features whose geometry intersects the box are selected (the geometry, not "
            "its envelope): minlon,minlat,maxlon,maxlat in WGS 84 (CRS84), or six numbers with "
            "heights, which are ignored."
        ),
        "schema": {
            "type": "array",
            "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
            "items": {"type": "number"},
        },
        "style": "form",
        "explode": False,
    },
    {
        "name": "datetime",
        "in": "query",
        "required": False,
        "description": DATETIME_TEXT,
        "schema": {"type": "string"},
        "style": "form",
        "explode": False,
    },
    _F,
]
OTHER_QUERY: list[dict[str, Any]] = [_F]


def accepted(parameters: list[dict[str, Any]]) -> frozenset[str]:
    """Names of the query parameters in ``parameters``."""
    return frozenset(p["name"] for p in parameters if p["in"] == "query")


ITEMS_ACCEPTED = accepted(ITEMS_QUERY)
OTHER_ACCEPTED = accepted(OTHER_QUERY)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_STRING = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}


def _position() -> dict[str, Any]:
    return {"type": "array", "minItems": 2, "items": {"type": "number"}}


def _ring() -> dict[str, Any]:
    return {"type": "array", "minItems": 4, "items": _position()}


SCHEMAS: dict[str, Any] = {
    "link": {
        "type": "object",
        "required": ["href", "rel"],
        "properties": {
            "href": _STRING,
            "rel": _STRING,
            "type": _STRING,
            "hreflang": _STRING,
            "title": _STRING,
            "length": {"type": "integer"},
        },
    },
    "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
    "landingPage": {
        "type": "object",
        "required": ["links"],
        "properties": {
            "title": _STRING,
            "description": _STRING,
            "links": {"$ref": "#/components/schemas/links"},
        },
    },
    "confClasses": {
        "type": "object",
        "required": ["conformsTo"],
        "properties": {"conformsTo": {"type": "array", "items": _STRING}},
    },
    "extent": {
        "type": "object",
        "properties": {
            "spatial": {
                "type": "object",
                "properties": {
                    "bbox": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "array",
                            "minItems": 4,
                            "maxItems": 4,
                            "items": {"type": "number"},
                        },
                    },
                    "crs": {"type": "string", "enum": [CRS84]},
                },
            },
            "temporal": {
                "description": (
                    "From the first version's valid_from to the last version's valid_to "
                    "(null while any version is current)"
                ),
                "type": "object",
                "properties": {
                    "interval": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "array",
                            "minItems": 2,
                            "maxItems": 2,
                            "items": _nullable(_TIME),
                        },
                    },
                    "trs": {"type": "string", "enum": [GREGORIAN]},
                },
            },
        },
    },
    "collection": {
        "type": "object",
        "required": ["id", "links"],
        "properties": {
            "id": {"type": "string", "enum": list(LEVELS)},
            "title": _STRING,
            "description": _STRING,
            "links": {"$ref": "#/components/schemas/links"},
            "extent": {"$ref": "#/components/schemas/extent"},
            "itemType": {"type": "string", "enum": ["feature"]},
            "crs": {"type": "array", "items": _STRING},
        },
    },
    "collections": {
        "type": "object",
        "required": ["links", "collections"],
        "properties": {
            "links": {"$ref": "#/components/schemas/links"},
            "collections": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/collection"},
            },
        },
    },
    "polygonGeoJSON": {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": ["Polygon"]},
            "coordinates": {"type": "array", "items": _ring()},
        },
    },
    "multipolygonGeoJSON": {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": ["MultiPolygon"]},
            "coordinates": {"type": "array", "items": {"type": "array", "items": _ring()}},
        },
    },
    "geometryGeoJSON": {
        "oneOf": [
            {"$ref": "#/components/schemas/polygonGeoJSON"},
            {"$ref": "#/components/schemas/multipolygonGeoJSON"},
        ]
    },
    "gridProperties": {
        "type": "object",
        "required": ["code", "name", "level", "version", "valid_from", "valid_to"],
        "properties": {
            "code": {"type": "string", "description": "Grid code (GB/T 30428.2 / CJ/T 213)"},
            "name": _STRING,
            "level": {"type": "string", "enum": list(LEVELS)},
            "parent_code": _nullable(_STRING),
            "version": {"type": "integer", "minimum": 1},
            "area_m2": {"type": "number"},
            "responsible_unit": _nullable(_STRING),
            "responsible_persons": {"type": "array", "items": {"type": "object"}},
            "land_use": _nullable(_STRING),
            "management_grade": _nullable(_STRING),
            "valid_from": {**_TIME, "description": "Start of this version's validity"},
            "valid_to": _nullable(
                {**_TIME, "description": "End (exclusive); null while the version is current"}
            ),
        },
    },
    "featureGeoJSON": {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "string", "description": "`{code}.v{version}`"},
            "geometry": {"$ref": "#/components/schemas/geometryGeoJSON"},
            "properties": {"$ref": "#/components/schemas/gridProperties"},
            "links": {"$ref": "#/components/schemas/links"},
        },
    },
    "featureCollectionGeoJSON": {
        "type": "object",
        "required": ["type", "features"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/featureGeoJSON"},
            },
            "links": {"$ref": "#/components/schemas/links"},
            "timeStamp": _TIME,
            "numberMatched": {"type": "integer", "minimum": 0},
            "numberReturned": {"type": "integer", "minimum": 0},
        },
    },
    "exception": {
        "type": "object",
        "required": ["code"],
        "properties": {
            "code": _STRING,
            "description": _STRING,
            "detail": _STRING,
            "field": _STRING,
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/exception"}}},
    }


RESPONSES: dict[str, Any] = {
    "InvalidParameter": _error(
        "A query parameter is unknown or has an invalid value (the answer names it)"
    ),
    "NotFound": _error("No such collection or feature"),
    "ServerError": _error("A server error occurred"),
}


def _ok(description: str, media_type: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            media_type: {"schema": {"$ref": f"#/components/schemas/{schema}"}},
            HTML: {"schema": {"type": "string"}},
        },
    }


def _operation(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    parameters: list[dict[str, Any]],
    not_found: bool = False,
) -> dict[str, Any]:
    responses = {
        "200": ok,
        "400": {"$ref": "#/components/responses/InvalidParameter"},
        "500": {"$ref": "#/components/responses/ServerError"},
    }
    if not_found:
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["Features" if "Feature" in operation_id else "Capabilities"],
            "parameters": parameters,
            "responses": responses,
        }
    }


def document(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.0 definition of the API served at ``server_url`` (``…/ogc``)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "citygrid grids – OGC API – Features",
            "version": "1.0.0",
            "description": (
                "The five-level city management grid registry (city → district → street → "
                "community → unit grid) as OGC API – Features Part 1: one collection per level, "
                "one feature per grid version. " + DATETIME_TEXT
            ),
        },
        "servers": [{"url": server_url}],
        "tags": [
            {"name": "Capabilities", "description": "Landing page, conformance, collections"},
            {"name": "Features", "description": "The grids of one level"},
        ],
        "paths": {
            "/": _operation(
                "getLandingPage",
                "Landing page",
                _ok(
                    "Links to the API definition, conformance and collections", JSON, "landingPage"
                ),
                OTHER_QUERY,
            ),
            "/conformance": _operation(
                "getConformanceDeclaration",
                "Conformance classes",
                _ok("The conformance classes this API implements", JSON, "confClasses"),
                OTHER_QUERY,
            ),
            "/collections": _operation(
                "getCollections",
                "Collections: one per grid level",
                _ok("The collections with their extents", JSON, "collections"),
                OTHER_QUERY,
            ),
            "/collections/{collectionId}": _operation(
                "describeCollection",
                "One collection",
                _ok("The collection with its extent and links", JSON, "collection"),
                [_COLLECTION_ID, *OTHER_QUERY],
                not_found=True,
            ),
            "/collections/{collectionId}/items": _operation(
                "getFeatures",
                "Features of a collection",
                _ok(
                    "A page of features with numberMatched, numberReturned and next/prev links",
                    GEOJSON,
                    "featureCollectionGeoJSON",
                ),
                [_COLLECTION_ID, *ITEMS_QUERY],
                not_found=True,
            ),
            "/collections/{collectionId}/items/{featureId}": _operation(
                "getFeature",
                "One feature (one grid version)",
                _ok("The feature", GEOJSON, "featureGeoJSON"),
                [_COLLECTION_ID, _FEATURE_ID, *OTHER_QUERY],
                not_found=True,
            ),
            "/api": {
                "get": {
                    "operationId": "getAPIDefinition",
                    "summary": "This API definition",
                    "tags": ["Capabilities"],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.0 document",
                            "content": {OPENAPI_JSON: {"schema": {"type": "object"}}},
                        },
                        "400": {"$ref": "#/components/responses/InvalidParameter"},
                    },
                }
            },
            "/api.html": {
                "get": {
                    "operationId": "getAPIDocumentation",
                    "summary": "This API definition as a web page",
                    "tags": ["Capabilities"],
                    "responses": {
                        "200": {
                            "description": "The API documentation",
                            "content": {HTML: {"schema": {"type": "string"}}},
                        },
                        "400": {"$ref": "#/components/responses/InvalidParameter"},
                    },
                }
            },
        },
        "components": {"schemas": SCHEMAS, "responses": RESPONSES},
    }

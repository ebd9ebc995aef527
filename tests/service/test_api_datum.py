"""Every answer that carries coordinates takes ``datum`` and shifts them by the GCJ-02 offset.

One test walks the OpenAPI document of the app on the demo city and *calls* every GET route
with sample parameters (path parameters filled from the demo data), so that whether a route
carries coordinates is decided by its answers, not by a list: a new route cannot escape. Each
route ends up in exactly one class — it answered with coordinates (then it must declare a
``datum`` query parameter wgs84|gcj02|bd09, and with ``datum=gcj02`` every coordinate must be
the WGS 84 one shifted by GCJ-02, computed independently with ``prcoords``), it answered
without any (listed in ``NO_COORDINATES``), or it is exempt for a stated reason (``EXEMPT``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import prcoords
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.cases.catalogue import seed_catalogue
from service.citizen.tracking import tracking_number
from service.db.models import NotifySubscription
from service.grids.registry import Registry
from service.maps.heat import LAYERS
from service.settings import AppSettings
from tests.helpers.photos import jpeg

CST = ZoneInfo("Asia/Shanghai")
DATUMS = {"wgs84", "gcj02", "bd09"}
# Answers round to 7 decimals (~1 cm); the shift of a rounded position agrees to this.
TOLERANCE_DEG = 3e-7

# Routes whose answers were seen to carry no coordinates (checked: they must stay so).
NO_COORDINATES = {
    "/api/auth/me": "who is asking",
    "/api/users": "accounts",
    "/api/users/{user_id}": "one account",
    "/api/roles": "roles",
    "/api/permissions": "the permissions",
    "/api/keys": "API keys",
    "/api/audit": "the audit log (grid geometry only as a bounding box of the version written)",
    "/api/cases/counts": "counts per grid code or hotspot id",
    "/api/hotspot-kinds": "the kinds catalogue",
    "/api/hotspots/near": "properties and distances only (its datum is the input's)",
    "/api/hotspots/{hotspot_id}/grids": "grid codes with shares",
    "/api/categories": "the case catalogue",
    "/api/routing-rules": "routing rules",
    "/api/patrol/workers": "workers and their phones",
    "/api/patrol/workers/{code}": "one worker",
    "/api/coverage/hotspots": "coverage figures per hotspot id",
    "/api/coverage/blind-spots": "grid codes and hotspot ids",
    "/api/coverage/problems": "figures per grid code",
    "/open311/v2/services.{fmt}": "Open311 service list",
    "/api/assessment/indicators": "indicator definitions",
    "/api/assessment/figures": "figures per grid code",
    "/api/assessment/figures/export": "figures per grid code (CSV)",
    "/api/assessment/figures/{kind}/{key}": "one grid's figures",
    "/api/assessment/figures/{kind}/{key}/cases": "case ids behind a count",
    "/api/assessment/figures/worker/{key}/unpatrolled-grids": "grid codes left unpatrolled",
    "/api/assessment/schemes": "scoring scheme versions",
    "/api/assessment/schemes/{scheme_id}": "one scoring scheme",
    "/api/assessment/scores": "scores per grid code",
    "/api/assessment/scores/{kind}/{key}": "one score explained",
    "/api/assessment/lists": "red and yellow lists by grid code",
    "/api/assessment/lists/export": "the list per grid code (CSV)",
    "/open311/v2/services/{service_code}.{fmt}": "Open311 service definition",
    "/api/assessment/rounds": "inspection rounds: grid codes and logins",
    "/api/assessment/rounds/checklists": "checklists",
    "/api/assessment/rounds/checklists/{key}": "one checklist",
    "/api/assessment/rounds/mine": "my assignments: grid codes",
    "/api/assessment/rounds/{round_id}": "one round: grid codes and logins",
    "/api/assessment/rounds/{round_id}/scoresheets": "points per item and photo references",
    "/api/assessment/rounds/{round_id}/results": "scores per grid code",
    "/api/assessment/rounds/{round_id}/checklist": "the checklist items of one grid",
    "/api/orders": "supervision orders: units, case ids, demands",
    "/api/orders/rules": "escalation rules",
    "/api/orders/{order_id}": "one supervision order with its history",
    "/api/cases/{case_id}/orders": "the orders of a case (no positions)",
    "/api/campaigns": "campaigns: grid codes, hotspot keys, categories",
    "/api/campaigns/{campaign_id}": "one campaign: grid codes, hotspot keys, categories",
    "/api/campaigns/{campaign_id}/progress": "counts and shares per day",
    "/api/briefs": "issued documents: scope codes, periods, hashes",
    "/api/notify/kinds": "the event kinds",
    "/api/notify/subscriptions": "webhook subscriptions: URLs and scopes",
    "/api/notify/subscriptions/{subscription_id}": "one subscription",
    "/api/notify/deliveries": "the delivery log: kinds, grid codes and answers (no payloads)",
}
# Routes not checked here, and why.
EXEMPT = {
    # OGC API - Features Part 1 fixes the CRS: WGS 84 longitude/latitude (CRS84); clients such
    # as QGIS and GDAL rely on it, so these answers never shift.
    "/ogc": "OGC API Features landing page",
    "/ogc/conformance": "OGC API Features",
    "/ogc/collections": "OGC API Features (extents in CRS84)",
    "/ogc/collections/{collection_id}": "OGC API Features (extent in CRS84)",
    "/ogc/collections/{collection_id}/items": "OGC API Features: CRS84",
    "/ogc/collections/{collection_id}/items/{feature_id}": "OGC API Features: CRS84",
    "/ogc/api": "OGC API Features definition (OpenAPI)",
    # Open311 discovery and service lists carry no position; requests are checked below
    "/open311/discovery.{fmt}": "Open311 discovery (no positions)",
    # Binary vector tiles cannot be read here; they take datum (asserted below).
    "/tiles/{layer}/{z}/{x}/{y}.mvt": "Mapbox vector tiles",
    "/tiles/heat/{layer}/{z}/{x}/{y}.mvt": "Mapbox vector tiles of the heat layers",
    # The dispatcher page is HTML; its data comes from the routes above.
    "/": "HTML page",
    "/login": "the login page (HTML)",
    "/assessment/rounds": "the cross-scoring page (HTML); its data comes from the routes above",
    "/i18n/{locale}.json": "the pages' script texts (no positions)",
    # The phone page is HTML; its extent is WGS 84 and the script shifts it (and the phone's
    # position) as the base map needs; its data comes from the routes above.
    "/m/": "the grid worker's phone page (HTML)",
    # the citizen's pages are HTML (their data: /api/public/cases and /api/public/reports/…)
    "/report": "the citizen's report form (HTML)",
    "/report/status": "a report's status page (HTML)",
    "/public/map": "the public problem map page (HTML)",
    "/api/public/categories": "the categories citizens may report",
    # An issued document is a file kept byte for byte as issued (its map is a picture).
    "/api/briefs/{doc_id}": "an issued document (DOCX, PDF, HTML, XLSX)",
    # A photo's bytes: a picture (EXIF stripped) or a video; its metadata route takes datum.
    "/api/photos/{photo_id}/image": "a photo (JPEG) or video",
    "/api/photos/{photo_id}/thumbnail": "a thumbnail (JPEG)",
}
# Media types whose bodies are not read (their JSON/CSV variant of the same route is): KML, GPX,
# GeoPackage and zipped Shapefile exports (which declare EPSG:4326 and take datum), XLSX.
OPAQUE = re.compile(r"kml|gpx|geopackage|zip|spreadsheet|octet-stream|image/|protobuf|html")
GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
}


# -- finding coordinates in answers --------------------------------------------------------------


def _positions(coordinates: Any) -> Iterator[tuple[float, float]]:
    if coordinates and isinstance(coordinates[0], int | float):
        yield float(coordinates[0]), float(coordinates[1])
    else:
        for part in coordinates:
            yield from _positions(part)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_positions(node: Any) -> Iterator[tuple[float, float]]:
    """Every (lon, lat) in a JSON answer, in document order: GeoJSON geometries, objects with
    lon/lat (or long/lat, longitude/latitude) members, ``bbox`` arrays, and Leaflet ``bounds``
    ([[south, west], [north, east]])."""
    if isinstance(node, list):
        for item in node:
            yield from json_positions(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") in GEOMETRY_TYPES and isinstance(node.get("coordinates"), list):
        yield from _positions(node["coordinates"])
    for lon_key, lat_key in (("lon", "lat"), ("long", "lat"), ("longitude", "latitude")):
        if _number(node.get(lon_key)) and _number(node.get(lat_key)):
            yield float(node[lon_key]), float(node[lat_key])
    bbox = node.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and all(map(_number, bbox)):
        yield bbox[0], bbox[1]
        yield bbox[2], bbox[3]
    bounds = node.get("bounds")
    if isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, list) for b in bounds):
        for lat, lon in bounds:
            yield float(lon), float(lat)
    for key, value in node.items():
        if key not in ("coordinates", "bbox", "bounds"):
            yield from json_positions(value)


def csv_positions(text: str) -> Iterator[tuple[float, float]]:
    """(lon, lat) of every row of a CSV with lon/lat (or 经度/纬度) columns."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        return
    header = rows[0]
    for lon_name, lat_name in (("lon", "lat"), ("经度", "纬度")):
        if lon_name in header and lat_name in header:
            i, j = header.index(lon_name), header.index(lat_name)
            for row in rows[1:]:
                if row[i] and row[j]:
                    yield float(row[i]), float(row[j])


def positions(response) -> list[tuple[float, float]] | None:
    """The answer's coordinates, or None when its media type is not read."""
    media = response.headers.get("content-type", "")
    if OPAQUE.search(media):
        return None
    if "csv" in media:
        return list(csv_positions(response.text))
    if "json" in media:
        return list(json_positions(response.json()))
    raise AssertionError(f"unexpected media type {media!r}: classify it in this test")


# -- sample data ---------------------------------------------------------------------------------


@pytest.fixture
def world(
    demo_client: TestClient, demo_loaded: AppSettings, session: Session, demo_registry: Registry
) -> dict[str, Any]:
    """The demo city's grids plus a hotspot, two cases (one dispatched with a location), a
    patrol walk, and a topology gap: something for every route to show."""
    city = demo_loaded.grids.city
    seed_catalogue(session, city)
    session.commit()
    client = demo_client
    user_id = client.get("/api/auth/me").json()["id"]
    first = client.get("/api/grids", params={"level": "unit", "limit": 1}).json()["features"]
    community = first[0]["properties"]["parent_code"]
    units = client.get(
        "/api/grids", params={"level": "unit", "parent": community, "limit": 2}
    ).json()["features"]
    unit = units[0]["id"]
    inside = shapely.geometry.shape(units[0]["geometry"]).representative_point()
    lon, lat = inside.x, inside.y
    now = datetime.now(CST)

    spot = client.post(
        "/api/hotspots",
        json={
            "key": "datum-market",
            "kind": "farmer_market",
            "name": "测试市场",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "buffer_m": 30,
            "active_from": (now - timedelta(days=30)).isoformat(),
        },
    )
    assert spot.status_code == 201, spot.text
    street = client.post(
        "/api/streets",
        json={
            "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.0005, lat]]},
            "name": "测试路",
        },
    )
    assert street.status_code == 201, street.text
    cases = []
    for dx, days_ago in ((0.0, 0), (0.0002, 0), (0.0004, 20)):  # the last one is overdue
        r = client.post(
            "/api/cases",
            json={
                "category_code": "0102",
                "lon": lon + dx,
                "lat": lat,
                "description": "测试",
                "reported_at": (now - timedelta(days=days_ago)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        cases.append(r.json())
    assert cases[2]["overdue"]
    step = client.post(
        f"/api/cases/{cases[0]['id']}/actions",
        json={"action": "register", "actor": "值班长", "version": cases[0]["version"]},
    )
    assert step.status_code == 200, step.text
    step = client.post(
        f"/api/cases/{cases[0]['id']}/actions",
        json={
            "action": "dispatch",
            "actor": "派遣员",
            "version": step.json()["version"],
            "department": "环卫所",
            "lon": lon + 0.0001,
            "lat": lat + 0.0001,
        },
    )
    assert step.status_code == 200, step.text

    worker = client.put(
        "/api/patrol/workers/W-DATUM",
        json={"code": "W-DATUM", "name": "王伟", "grid_codes": [unit], "devices": ["p-datum"]},
    )
    assert worker.status_code == 201, worker.text
    start = now - timedelta(minutes=20)
    fixes = [
        {
            "time": (start + timedelta(seconds=10 * k)).isoformat(),
            "lon": lon + 0.00005 * k,
            "lat": lat,
            "accuracy_m": 5.0,
        }
        for k in range(30)
    ]
    posted = client.post("/api/patrol/fixes", json={"device_id": "p-datum", "fixes": fixes})
    assert posted.status_code == 200, posted.text

    # A gap in the community: one unit grid shrunk to 90 % about its centre (a new version).
    shrunk = shapely.affinity.scale(shapely.geometry.shape(units[1]["geometry"]), 0.9, 0.9)
    patched = client.patch(
        f"/api/grids/{units[1]['id']}", json={"geometry": shapely.geometry.mapping(shrunk)}
    )
    assert patched.status_code == 200, patched.text
    # an inspection round over the unit grid, scored by the (city-wide) admin
    rnd = client.post(
        "/api/assessment/rounds",
        json={"period": now.strftime("%Y-%m"), "grids": [unit], "scorers": ["admin"]},
    )
    assert rnd.status_code == 201, rnd.text
    # open, with a photo of the scored grid taken where the scorer stood
    opened = client.post(f"/api/assessment/rounds/{rnd.json()['id']}/open")
    assert opened.status_code == 200, opened.text
    scored = client.post(
        f"/api/assessment/rounds/{rnd.json()['id']}/photos",
        files={"file": ("s.jpg", jpeg(2), "image/jpeg")},
        data={"grid": unit, "lon": str(lon), "lat": str(lat)},
    )
    assert scored.status_code == 201, scored.text
    # a supervision order on the dispatched case
    order = client.post(
        "/api/orders",
        json={
            "case_ids": [cases[0]["id"]],
            "unit_kind": "department",
            "unit": "环卫所",
            "demand": "请于三日内清理完毕",
            "deadline": (now + timedelta(days=3)).isoformat(),
        },
    )
    assert order.status_code == 201, order.text
    # a campaign over the community, running today
    day = now.date()
    campaign = client.post(
        "/api/campaigns",
        json={
            "name": "占道经营专项整治",
            "start": (day - timedelta(days=3)).isoformat(),
            "end": (day + timedelta(days=3)).isoformat(),
            "scope": {"grids": [community]},
            "targets": [{"kind": "close_rate", "goal": 1}],
        },
    )
    assert campaign.status_code == 201, campaign.text
    # the daily set of the unit grid's street, yesterday (HTML only: quick)
    street_code = community[: demo_loaded.scheme.prefix_length("street")].ljust(len(community), "0")
    yesterday = (now - timedelta(days=1)).date().isoformat()
    brief = client.post(
        "/api/briefs", json={"scope": street_code, "date": yesterday, "formats": ["html"]}
    )
    assert brief.status_code == 201, brief.text
    # a feedback photo of the dispatched case, reported far from it (flagged: too_far)
    photo = client.post(
        f"/api/cases/{cases[0]['id']}/photos",
        files={"file": ("p.jpg", jpeg(1), "image/jpeg")},
        data={"step": "feedback", "lon": str(lon + 0.01), "lat": str(lat)},
    )
    assert photo.status_code == 201 and photo.json()["flags"] == ["too_far"], photo.text
    # a webhook subscription, stored as is (the app refuses this machine's addresses)
    subscription = NotifySubscription(
        city=city,
        name="测试订阅",
        url="http://127.0.0.1:9/hook",
        secret="whsec_test",
        events=["case.dispatched"],
        scope_kind="city",
        created_by="test",
    )
    session.add(subscription)
    session.commit()
    return {
        "order_id": order.json()["id"],
        "doc_id": brief.json()["items"][0]["id"],
        "photo_id": photo.json()["id"],
        "subscription_id": subscription.id,
        "round_id": rnd.json()["id"],
        "campaign_id": campaign.json()["id"],
        "unit": unit,
        "community": community,
        "lon": lon,
        "lat": lat,
        "case_id": cases[0]["id"],
        "tracking_number": tracking_number(demo_loaded.auth.secret_key, city, cases[0]["id"]),
        "user_id": user_id,
        "hotspot_id": spot.json()["id"],
        "street_id": street.json()["id"],
        "worker": "W-DATUM",
        "from": (now - timedelta(days=30)).replace(tzinfo=None).isoformat(timespec="seconds"),
        "to": (now + timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="seconds"),
        "today": now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None).isoformat(),
    }


def path_values(path: str, name: str, world: dict[str, Any]) -> list[Any]:
    """Values for a path parameter, from the demo data."""
    if name == "code":
        return [world["worker"] if path.startswith("/api/patrol") else world["unit"]]
    if name == "layer" and path.startswith("/api/heat"):
        return list(LAYERS)
    if name == "fmt":
        return ["json"]  # the XML twin of each Open311 document carries the same values
    if name == "kind":
        return ["grid"]
    if name == "key":
        if "/figures/worker/" in path:
            return [world["worker"]]
        return ["cross_inspection" if "/checklists/" in path else world["community"]]
    if name == "scheme_id":
        return [1]  # the default scheme, seeded by the migration
    if name == "round_id":
        return [world["round_id"]]
    if name == "order_id":
        return [world["order_id"]]
    if name == "campaign_id":
        return [world["campaign_id"]]
    if name == "doc_id":
        return [world["doc_id"]]
    if name == "locale":
        return ["zh_CN", "en"]
    return [
        {
            "case_id": world["case_id"],
            "service_request_id": world["case_id"],
            "hotspot_id": world["hotspot_id"],
            "street_id": world["street_id"],
            "service_code": "0102",
            "user_id": world["user_id"],
            "subscription_id": world["subscription_id"],
            "photo_id": world["photo_id"],
            "tracking_number": world["tracking_number"],
        }[name]
    ]


def query_values(path: str, world: dict[str, Any]) -> dict[str, Any]:
    """Query parameters worth setting (required ones, and those that add coordinates)."""
    values: dict[str, Any] = {
        "lon": world["lon"],
        "lat": world["lat"],
        "from": world["from"],
        "to": world["to"],
        "start": world["today"],
        "period": "day",
        "level": "unit",
        "parent": world["community"],
        "zones": "true",
        "within_hours": 24 * 30,
    }
    if path == "/api/coverage/grids":
        values["grid"] = world["community"]
    if path == "/api/assessment/rounds/{round_id}/checklist":
        values["grid"] = world["unit"]  # the round's grid
    if path.startswith("/api/assessment"):
        # an assessment period is a calendar period (this month), not a coverage window
        values |= {
            "period": world["today"][:7],
            "subject": "grid:community",
            "indicator": "reported",
        }
    return values


def calls(spec: dict, world: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(template, url, query) for every GET route, once per enum value of ``format``."""
    for template, operations in spec["paths"].items():
        operation = operations.get("get")
        if operation is None or template in EXEMPT:
            continue
        params = operation.get("parameters", [])
        urls = [template]
        for p in (p for p in params if p["in"] == "path"):
            urls = [
                u.replace("{" + p["name"] + "}", str(v))
                for u in urls
                for v in path_values(template, p["name"], world)
            ]
        names = {p["name"] for p in params if p["in"] == "query"}
        query = {k: v for k, v in query_values(template, world).items() if k in names}
        formats = next(
            (p["schema"].get("enum", [None]) for p in params if p["name"] == "format"), [None]
        )
        for url in urls:
            for fmt in formats:
                yield template, url, query if fmt is None else {**query, "format": fmt}


def datum_enum(operation: dict) -> set[str] | None:
    for p in operation.get("parameters", []):
        if p["name"] == "datum" and p["in"] == "query":
            return set(p["schema"].get("enum", []))
    return None


def gcj02(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 of a WGS 84 position by prcoords (independent of gis.datum)."""
    shifted = prcoords.wgs_gcj(prcoords.Coords(lat, lon))
    return shifted.lon, shifted.lat


# -- the test ------------------------------------------------------------------------------------


def test_every_answer_with_coordinates_takes_datum_and_shifts_by_gcj02(
    demo_client: TestClient, world: dict[str, Any]
) -> None:
    spec = demo_client.app.openapi()
    carrying: set[str] = set()
    silent: set[str] = set()
    for template, url, query in calls(spec, world):
        r = demo_client.get(url, params=query)
        assert r.status_code == 200, (url, query, r.text[:300])
        found = positions(r)
        if found is None:
            continue
        if not found:
            silent.add(template)
            continue
        carrying.add(template)
        operation = spec["paths"][template]["get"]
        assert datum_enum(operation) == DATUMS, f"{template} answers coordinates without datum"
        shifted_query = {**query, "datum": "gcj02"}
        if "lon" in query:  # a point given in the same datum as the answer
            shifted_query["lon"], shifted_query["lat"] = gcj02(query["lon"], query["lat"])
        g = demo_client.get(url, params=shifted_query)
        assert g.status_code == 200, (url, shifted_query, g.text[:300])
        shifted = positions(g)
        assert shifted is not None and len(shifted) == len(found), (url, query)
        for (lon, lat), (glon, glat) in zip(found, shifted, strict=True):
            elon, elat = gcj02(lon, lat)
            assert abs(glon - elon) < TOLERANCE_DEG and abs(glat - elat) < TOLERANCE_DEG, (
                url,
                query,
                (lon, lat),
                (glon, glat),
                (elon, elat),
            )

    routes = {t for t, ops in spec["paths"].items() if "get" in ops}
    # every GET route is classified, and the sample data made each one show coordinates
    assert silent - carrying == set(NO_COORDINATES), "classify these routes"
    assert carrying & set(NO_COORDINATES) == set()
    assert routes == carrying | set(NO_COORDINATES) | set(EXEMPT)
    # vector tiles shift for Web-Mercator base maps only: AMap/Tencent (GCJ-02), not Baidu
    tiles = spec["paths"]["/tiles/{layer}/{z}/{x}/{y}.mvt"]["get"]
    assert datum_enum(tiles) == {"wgs84", "gcj02"}
    heat_tiles = spec["paths"]["/tiles/heat/{layer}/{z}/{x}/{y}.mvt"]["get"]
    assert datum_enum(heat_tiles) == {"wgs84", "gcj02"}
    # the routes of the issue, for the record
    assert {"/api/cases/{case_id}/history", "/api/grids/topology"} <= carrying

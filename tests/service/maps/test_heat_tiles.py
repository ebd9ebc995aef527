"""Heat layers as vector tiles (``/tiles/heat``): the features carry exactly the values of
``/api/heat`` for the same grids, the stored values outlive a restart and follow the data, and
the tiles show only the caller's grids (real PostGIS, the small test city)."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import text

from service.accounts.principal import SYSTEM
from service.accounts.privacy import mask_name, mask_phone
from service.factory import create_app
from service.maps import heattiles
from service.maps.heat import HeatService
from tests.helpers.accounts import bearer, make_user, seeded
from tests.helpers.city import COMM_A, COMM_B, point_lonlat, small_city
from tests.service.maps.test_api_heat import WINDOW, heat_city  # noqa: F401  (fixture)

HALF = math.pi * 6378137.0
TO_MERC = Transformer.from_crs(4326, 3857, always_xy=True)
Z = 15


def _tiles() -> set[tuple[int, int]]:
    """The zoom-15 tiles covering the small city (its corners and middle)."""
    size = 2 * HALF / 2**Z
    out = set()
    for x, y in ((0, 0), (800, 0), (0, 200), (800, 200), (400, 100)):
        mx, my = TO_MERC.transform(*point_lonlat(x, y))
        out.add((math.floor((mx + HALF) / size), math.floor((HALF - my) / size)))
    return out


def _features(client: TestClient, layer: str, **params) -> dict[str, dict]:
    """Properties by grid code over the city's tiles (a grid on two tiles: the same)."""
    found: dict[str, dict] = {}
    for x, y in _tiles():
        r = client.get(f"/tiles/heat/{layer}/{Z}/{x}/{y}.mvt", params={**WINDOW, **params})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        tile = mapbox_vector_tile.decode(r.content)
        if "heat" in tile:  # drawn at the coarser heat-tile extent
            assert tile["heat"]["extent"] == heattiles.HEAT_EXTENT
        for f in tile.get("heat", {"features": []})["features"]:
            code = f["properties"]["code"]
            assert found.setdefault(code, f["properties"]) == f["properties"]
    return found


def _units() -> set[str]:
    return {g.code for g in small_city() if g.level == "unit"}


@pytest.mark.parametrize(
    ("layer", "params"),
    [
        ("grids", {}),
        ("grids", {"per": "grid"}),
        ("coverage", {"metric": "share"}),
        ("coverage", {"metric": "since"}),
        ("gi", {"permutations": 99}),
        ("blind", {"min_cases": 1}),
    ],
)
def test_tile_features_carry_the_values_of_the_geojson_layer(heat_city, layer, params):  # noqa: F811
    body = heat_city.get(f"/api/heat/{layer}", params={**WINDOW, **params}).json()
    want = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    got = _features(heat_city, layer, **params)
    assert set(got) == set(want)
    if layer != "blind":
        assert set(got) == _units()  # every unit grid of the city, once
    for code, props in want.items():
        # a tile carries each grid's code and colour only, the same as the GeoJSON's
        assert got[code] == {k: props[k] for k in heattiles.TILE_PROPS}, code
    legend = heat_city.get(
        f"/api/heat/{layer}", params={**WINDOW, **params, "features": "false"}
    ).json()
    assert legend["legend"] == body["legend"]
    assert legend["features"] == [] and legend["count"] == len(want)
    assert (legend["from"], legend["to"]) == (body["from"], body["to"])
    assert "properties" not in legend
    # a click on a grid: every property of the GeoJSON feature, from the stored layer
    for code, props in want.items():
        one = heat_city.get(
            f"/api/heat/{layer}", params={**WINDOW, **params, "features": "false", "code": code}
        )
        assert one.status_code == 200, one.text
        assert one.json()["properties"] == props, code
        assert one.json()["legend"] == body["legend"]


def test_the_properties_of_a_grid_not_in_the_layer_are_a_404_naming_the_code(heat_city):  # noqa: F811
    r = heat_city.get(
        "/api/heat/grids", params={**WINDOW, "features": "false", "code": "nosuchgrid"}
    )
    assert r.status_code == 404, r.text
    assert "nosuchgrid" in r.text and "code" in r.text


def _builds(session) -> list[tuple]:
    return [
        tuple(r)
        for r in session.execute(
            text("SELECT layer, version, built_at FROM heat_layer_builds ORDER BY layer")
        )
    ]


def test_stored_values_are_reused_after_a_restart_and_recomputed_when_the_data_changes(
    heat_city,  # noqa: F811
    settings,
    sessions,
    session,
    monkeypatch: pytest.MonkeyPatch,
):
    before = _features(heat_city, "grids")
    body = heat_city.get("/api/heat/grids", params=WINDOW).json()
    cases_before = {f["properties"]["code"]: f["properties"]["cases"] for f in body["features"]}
    stored = _builds(session)
    assert [b[0] for b in stored] == ["grids"]
    kept = session.execute(text("SELECT count(*) FROM heat_layer_tiles")).scalar_one()
    assert kept == len(_tiles())  # each tile rendered once and kept

    # a "restart": a new app (empty tile and heat caches) on the same database
    def refuse(*args, **kwargs):
        raise AssertionError("the stored layer should have been reused")

    monkeypatch.setattr(HeatService, "_layer", refuse)
    monkeypatch.setattr(heattiles, "_TILE", "SELECT 1 / 0")  # nor a tile rendered again
    with TestClient(create_app(settings, sessions=sessions)) as fresh:
        fresh.headers.update(heat_city.headers)
        assert _features(fresh, "grids") == before
        legend = fresh.get("/api/heat/grids", params={**WINDOW, "features": "false"})
        assert legend.status_code == 200, legend.text
    assert _builds(session) == stored
    monkeypatch.undo()
    # the restarted service drew from the kept tiles, rendering none again
    assert session.execute(text("SELECT count(*) FROM heat_layer_tiles")).scalar_one() == kept

    # a new case in the window: the version moves, the layer is computed again
    lon, lat = point_lonlat(150, 150)
    r = heat_city.post(
        "/api/cases",
        json={
            "category_code": "0102",
            "lon": lon,
            "lat": lat,
            "reported_at": "2026-11-18T10:00:00",
            "source": "patrol",
        },
    )
    assert r.status_code == 201, r.text
    code = r.json()["grid_code"]
    params = {**WINDOW, "features": "false", "code": code}
    with TestClient(create_app(settings, sessions=sessions)) as fresh:
        fresh.headers.update(heat_city.headers)
        # stale-while-revalidate: the values stored before the case are answered, marked
        # stale with the moment they were computed; they are computed again after the answer
        old = fresh.get("/api/heat/grids", params=params).json()
        assert old["stale"] is True and old["properties"]["cases"] == cases_before[code]
        assert _builds(session) != stored  # computed again once answered
        new = fresh.get("/api/heat/grids", params=params).json()
        assert new["stale"] is False and new["properties"]["cases"] == cases_before[code] + 1
        assert new["built_at"] > old["built_at"]
        after = _features(fresh, "grids")
    assert after.keys() == before.keys()
    again = _builds(session)
    assert len(again) == 1 and again[0][1] != stored[0][1]
    # the tiles of the old values went with them; those drawn since show the new ones
    assert session.execute(text("SELECT count(*) FROM heat_layer_tiles")).scalar_one() == kept


def test_heat_tiles_show_only_the_callers_grids(heat_city, settings, session):  # noqa: F811
    everything = _features(heat_city, "grids")
    user = make_user(session, settings, "intake", scope_grids=[COMM_A])
    scoped = TestClient(heat_city.app, headers=bearer(session, settings, user))
    mine = _features(scoped, "grids")
    assert mine and set(mine) == {c for c in everything if c.startswith(COMM_A[:12])}
    assert not any(c.startswith(COMM_B[:12]) for c in mine)
    # their legend is that of their own grids, stored apart from the admin's
    keys = session.execute(text("SELECT count(*) FROM heat_layer_builds")).scalar_one()
    assert keys == 2


def test_heat_tiles_need_maps_read_and_a_tiled_layer(heat_city, settings, session):  # noqa: F811
    x, y = sorted(_tiles())[0]
    url = f"/tiles/heat/grids/{Z}/{x}/{y}.mvt"
    anonymous = TestClient(heat_city.app)
    assert anonymous.get(url).status_code == 401
    seeded(session, settings).save_role("nothing", "无权限", "nothing", [], by=SYSTEM)
    nobody = make_user(session, settings, "nothing")
    refused = TestClient(heat_city.app, headers=bearer(session, settings, nobody)).get(url)
    assert refused.status_code == 403 and "maps.read" in refused.text
    r = heat_city.get(f"/tiles/heat/kde/{Z}/{x}/{y}.mvt")
    assert r.status_code == 404 and "grids" in r.text
    r = heat_city.get(f"/tiles/heat/grids/{Z}/0/{y}.mvt", params={"datum": "bd09"})
    assert r.status_code in (400, 422) and "datum" in r.text


def test_a_popup_shows_names_and_phones_only_to_roles_with_people_read(
    heat_city,  # noqa: F811
    settings,
    session,
):
    """The stored values are shared by callers of one scope, but not across who may see
    personal data: a viewer without ``people.read`` asking after the admin gets them masked."""
    code = sorted(_units())[0]
    query = {**WINDOW, "features": "false", "code": code}
    admin = heat_city.get("/api/heat/grids", params=query)
    assert admin.status_code == 200, admin.text
    shown = admin.json()["properties"]
    assert shown["responsible_phone"].isdigit() and "*" not in shown["responsible_person"]
    seeded(session, settings).save_role("viewer", "只看地图", "viewer", ["maps.read"], by=SYSTEM)
    viewer = make_user(session, settings, "viewer")
    client = TestClient(heat_city.app, headers=bearer(session, settings, viewer))
    r = client.get("/api/heat/grids", params=query)
    assert r.status_code == 200, r.text
    masked = r.json()["properties"]
    assert masked["responsible_phone"] == mask_phone(shown["responsible_phone"])
    assert masked["responsible_person"] == mask_name(shown["responsible_person"])

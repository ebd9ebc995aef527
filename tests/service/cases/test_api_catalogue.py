"""Catalogue and routing rules over HTTP, and values the database cannot store."""

from __future__ import annotations

from fastapi.testclient import TestClient

LOCAL = {
    "code": "0602",
    "family": "event",
    "major_name": "其他事件",
    "name": "焚烧垃圾(乡村)",
    "deadline_amount": 2,
    "deadline_unit": "hours",
    "department": "乡镇环保所",
}


def test_local_category_is_added_once_and_used_at_intake(client: TestClient, case_city) -> None:
    r = client.post("/api/categories", json=LOCAL)
    assert r.status_code == 201 and r.json()["local"] is True and r.json()["major_code"] == "06"
    assert client.post("/api/categories", json=LOCAL).status_code == 409
    codes = [c["code"] for c in client.get("/api/categories").json()]
    assert "0602" in codes and codes == sorted(codes)


def test_routing_rules_can_be_listed_and_removed(client: TestClient, case_city) -> None:
    rules = client.get("/api/routing-rules").json()
    assert len(rules) == 2
    assert client.delete(f"/api/routing-rules/{rules[0]['id']}").status_code == 204
    assert len(client.get("/api/routing-rules").json()) == 1
    assert client.delete(f"/api/routing-rules/{rules[0]['id']}").status_code == 404
    assert client.delete("/api/routing-rules/783835332479102931173376").status_code == 422


def test_text_the_database_cannot_store_is_422_not_500(client: TestClient, case_city) -> None:
    r = client.post("/api/categories", json=LOCAL | {"code": "0603", "name": "bad\u0000name"})
    assert r.status_code == 422 and "cannot be stored" in r.json()["detail"]
    assert "0603" not in [c["code"] for c in client.get("/api/categories").json()]


def test_route_many_equals_route_row_by_row() -> None:
    import numpy as np

    from service.cases.catalogue import Router
    from service.db.models import Category, RoutingRule

    cats = {c: Category(code=c, department=f"默认{c}") for c in ("0102", "0501", "0502", "0303")}
    rules = [
        RoutingRule(
            id=1,
            category_prefix="05",
            area_prefix="",
            department="执法",
            hotspot_owner_first=True,
            priority=0,
        ),
        RoutingRule(
            id=2,
            category_prefix="0501",
            area_prefix="410105001",
            department="街道一",
            hotspot_owner_first=False,
            priority=0,
        ),
        RoutingRule(
            id=3,
            category_prefix="",
            area_prefix="410105002",
            department="街道二",
            hotspot_owner_first=False,
            priority=5,
        ),
        RoutingRule(
            id=4,
            category_prefix="03",
            area_prefix="",
            department="住建",
            hotspot_owner_first=True,
            priority=0,
        ),
    ]
    router = Router(rules, cats)
    rng = np.random.default_rng(2)
    n = 2000
    category = rng.choice(list(cats), n).astype(object)
    grid = rng.choice(["41010500100101", "41010500200301", "41010500300101", None], n)
    owner = rng.choice(["市场办", None, "工地项目部"], n)
    department, reason = router.route_many(category, grid, owner)
    for k in range(n):
        one = router.route(category[k], grid[k], [owner[k]])
        assert (department[k], reason[k]) == (one.department, one.routed_by), k


def test_catalogue_changes_apply_to_the_very_next_report(client: TestClient, case_city) -> None:
    """Intake keeps the catalogue in memory; a change in between must be seen at once."""
    from tests.helpers.city import point_lonlat

    lon, lat = point_lonlat(150, 50)
    body = {"category_code": "0602", "lon": lon, "lat": lat}
    assert client.post("/api/cases", json=body).status_code == 422  # not in the catalogue yet
    assert client.post("/api/categories", json=LOCAL).status_code == 201
    first = client.post("/api/cases", json=body)
    assert first.status_code == 201 and first.json()["department"] == "乡镇环保所"
    rule = {"category_prefix": "0602", "department": "乡镇执法队"}
    assert client.post("/api/routing-rules", json=rule).status_code == 201
    second = client.post("/api/cases", json=body)
    assert second.json()["department"] == "乡镇执法队"
    # and a rule removed is gone for the next one
    (added,) = [
        r for r in client.get("/api/routing-rules").json() if r["category_prefix"] == "0602"
    ]
    client.delete(f"/api/routing-rules/{added['id']}")
    assert client.post("/api/cases", json=body).json()["department"] == "乡镇环保所"

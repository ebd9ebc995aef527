"""``/api/categories`` and ``/api/routing-rules``: the catalogue and who handles what."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from service.accounts.principal import Principal
from service.auth import Allow
from service.cases.render import category_json, rule_json
from service.cases.schemas import CategoryIn, CategoryPatch, RoutingRuleIn
from service.deps import CatalogueDep
from service.http.bodyguard import GuardedRoute
from service.http.params import IdPath

router = APIRouter(tags=["catalogue"], route_class=GuardedRoute)
Editor = Annotated[Principal, Allow("catalogue.edit")]


@router.get(
    "/api/categories",
    summary="The case category catalogue",
    dependencies=[Allow("cases.read", "cases.report")],
)
def list_categories(catalogue: CatalogueDep) -> list[dict[str, Any]]:
    return [category_json(c) for c in catalogue.categories()]


@router.post("/api/categories", status_code=201, summary="Add a local category")
def add_category(body: CategoryIn, catalogue: CatalogueDep, by: Editor) -> dict[str, Any]:
    return category_json(catalogue.add_category(by=by, **body.model_dump()))


@router.patch(
    "/api/categories/{code}", summary="Say whether patrols should find a category's problems"
)
def patch_category(
    code: str, body: CategoryPatch, catalogue: CatalogueDep, by: Editor
) -> dict[str, Any]:
    return category_json(catalogue.set_patrol_visible(code, body.patrol_visible, by=by))


@router.get(
    "/api/routing-rules",
    summary="Routing rules (most specific wins)",
    dependencies=[Allow("cases.read")],
)
def list_rules(catalogue: CatalogueDep) -> list[dict[str, Any]]:
    return [rule_json(r) for r in catalogue.rules()]


@router.post("/api/routing-rules", status_code=201, summary="Add a routing rule")
def add_rule(body: RoutingRuleIn, catalogue: CatalogueDep, by: Editor) -> dict[str, Any]:
    return rule_json(catalogue.add_rule(by=by, **body.model_dump()))


@router.delete("/api/routing-rules/{rule_id}", status_code=204, summary="Remove a rule")
def delete_rule(rule_id: IdPath, catalogue: CatalogueDep, by: Editor) -> Response:
    catalogue.delete_rule(rule_id, by=by)
    return Response(status_code=204)

"""``/api/users``, ``/api/roles``, ``/api/permissions``, ``/api/keys``, ``/api/audit``: accounts
and their audit trail, for administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.accounts.accounts import KeyInput, UserInput, user_json
from service.accounts.audit import AuditFilter
from service.accounts.permissions import PERMISSIONS
from service.accounts.principal import Principal
from service.accounts.schemas import KeyCreate, RoleIn, UserCreate, UserUpdate
from service.auth import Allow
from service.deps import AccountsDep, AuditDep, SettingsDep
from service.http.bodyguard import GuardedRoute
from service.http.params import IdPath
from service.http.timeparse import aware, iso

router = APIRouter(tags=["accounts"], route_class=GuardedRoute)
Admin = Annotated[Principal, Allow("users.admin")]


@router.get("/api/users", summary="Accounts of this city")
def list_users(accounts: AccountsDep, _: Admin) -> list[dict[str, Any]]:
    return [user_json(u) for u in accounts.users()]


@router.post("/api/users", status_code=201, summary="Create an account")
def create_user(body: UserCreate, accounts: AccountsDep, by: Admin) -> dict[str, Any]:
    return user_json(accounts.create_user(UserInput(**body.model_dump()), by))


@router.get("/api/users/{user_id}", summary="One account")
def get_user(user_id: IdPath, accounts: AccountsDep, _: Admin) -> dict[str, Any]:
    return user_json(accounts.user(user_id))


@router.patch("/api/users/{user_id}", summary="Change an account (roles, scope, password …)")
def update_user(
    user_id: IdPath, body: UserUpdate, accounts: AccountsDep, by: Admin
) -> dict[str, Any]:
    item = UserInput(**body.model_dump(exclude_unset=True))
    return user_json(accounts.update_user(user_id, item, by))


@router.get("/api/roles", summary="Roles and their permissions")
def list_roles(accounts: AccountsDep, _: Admin) -> list[dict[str, Any]]:
    return [
        {"key": r.key, "name_zh": r.name_zh, "name_en": r.name_en, "permissions": r.permissions}
        for r in accounts.roles()
    ]


@router.put("/api/roles/{key}", summary="Create or change a role")
def save_role(key: str, body: RoleIn, accounts: AccountsDep, by: Admin) -> dict[str, Any]:
    role = accounts.save_role(key, body.name_zh, body.name_en, body.permissions, by)
    return {
        "key": role.key,
        "name_zh": role.name_zh,
        "name_en": role.name_en,
        "permissions": role.permissions,
    }


@router.get("/api/permissions", summary="Every permission a role or key may hold")
def list_permissions(_: Admin) -> list[dict[str, str]]:
    return [{"key": k, "zh": zh, "en": en} for k, (zh, en) in PERMISSIONS.items()]


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "permissions": key.permissions,
        "scope_grids": key.scope_grids,
        "department": key.department,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
        "last_used_at": iso(key.last_used_at),
    }


@router.get("/api/keys", summary="API keys (never their secrets)")
def list_keys(accounts: AccountsDep, _: Admin) -> list[dict[str, Any]]:
    return [_key_json(k) for k in accounts.keys()]


@router.post("/api/keys", status_code=201, summary="Create an API key (its secret is shown once)")
def create_key(
    body: KeyCreate, accounts: AccountsDep, settings: SettingsDep, by: Admin
) -> dict[str, Any]:
    item = KeyInput(**body.model_dump())
    item.expires_at = aware(item.expires_at, settings.grids.timezone)
    key, secret = accounts.create_key(item, by)
    return {**_key_json(key), "key": secret}


@router.delete("/api/keys/{key_id}", summary="Revoke an API key")
def revoke_key(key_id: IdPath, accounts: AccountsDep, by: Admin) -> dict[str, Any]:
    return _key_json(accounts.revoke_key(key_id, by))


@router.get("/api/audit", summary="The audit log: who changed what, before and after")
def audit_log(
    audit: AuditDep,
    settings: SettingsDep,
    _: Annotated[Principal, Allow("audit.read")],
    entity: str | None = None,
    entity_key: str | None = None,
    actor_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> dict[str, Any]:
    tz = settings.grids.timezone
    flt = AuditFilter(entity, entity_key, actor_id, aware(since, tz), aware(until, tz))
    rows = audit.entries(flt, limit, before_id)
    return {
        "items": [
            {
                "id": r.id,
                "at": iso(r.at),
                "actor_kind": r.actor_kind,
                "actor_id": r.actor_id,
                "actor": r.actor_name,
                "action": r.action,
                "entity": r.entity,
                "entity_key": r.entity_key,
                "before": r.before,
                "after": r.after,
            }
            for r in rows
        ],
        "next_before_id": rows[-1].id if len(rows) == limit else None,
    }

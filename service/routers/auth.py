"""``/api/auth``: log in (OAuth2 password flow), refresh, log out, and who am I."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from service.accounts.principal import Principal
from service.accounts.schemas import RefreshIn
from service.auth import Anyone
from service.deps import AccountsDep
from service.http.bodyguard import GuardedRoute

router = APIRouter(prefix="/api/auth", tags=["accounts"], route_class=GuardedRoute)


@router.post(
    "/token",
    summary="Log in: an access token and a refresh token (OAuth2 password flow)",
    dependencies=[Anyone()],
)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], accounts: AccountsDep
) -> dict[str, Any]:
    user = accounts.login(form.username, form.password)
    tokens = accounts.issue_tokens(user)
    return {
        "access_token": tokens.access_token,
        "token_type": "bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
    }


@router.post(
    "/refresh",
    summary="New tokens for a refresh token (which is used up)",
    dependencies=[Anyone()],
)
def refresh(body: RefreshIn, accounts: AccountsDep) -> dict[str, Any]:
    tokens = accounts.refresh(body.refresh_token)
    return {
        "access_token": tokens.access_token,
        "token_type": "bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
    }


@router.post(
    "/logout",
    status_code=204,
    summary="Log out: the refresh token (and every token refreshed from it) is revoked",
    dependencies=[Anyone()],
)
def logout(body: RefreshIn, accounts: AccountsDep) -> None:
    accounts.revoke_refresh(body.refresh_token)


@router.get("/me", summary="Who am I: permissions and scope", dependencies=[Anyone()])
async def me(principal: Annotated[Principal, Anyone()]) -> dict[str, Any]:
    return {
        "kind": principal.kind,
        "id": principal.id,
        "name": principal.name,
        "login": principal.login,
        "roles": list(principal.roles),
        "permissions": sorted(principal.permissions),
        "grid_prefixes": None if principal.grid_prefixes is None else list(principal.grid_prefixes),
        "department": principal.department,
    }

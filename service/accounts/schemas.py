"""Request shapes of logins, accounts, roles and API keys."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RefreshIn(BaseModel):
    """A refresh token to use (or to revoke, at logout)."""

    refresh_token: str = Field(min_length=1, max_length=200)


class UserCreate(BaseModel):
    """A new account."""

    login: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.@-]+$")
    display_name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=8, max_length=200)
    phone: str | None = Field(None, max_length=40)
    unit: str | None = Field(None, max_length=200)
    department: str | None = Field(None, max_length=200)
    scope_grids: list[str] = Field(default_factory=list, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=20)


class UserUpdate(BaseModel):
    """Changes to an account (omitted fields stay as they are)."""

    display_name: str | None = Field(None, min_length=1, max_length=100)
    password: str | None = Field(None, min_length=8, max_length=200)
    phone: str | None = Field(None, max_length=40)
    unit: str | None = Field(None, max_length=200)
    department: str | None = Field(None, max_length=200)
    scope_grids: list[str] | None = Field(None, max_length=200)
    roles: list[str] | None = Field(None, min_length=1, max_length=20)
    active: bool | None = None


class RoleIn(BaseModel):
    """A role's names and permissions."""

    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    permissions: list[str] = Field(max_length=100)


class KeyCreate(BaseModel):
    """A new API key for a system client."""

    name: str = Field(min_length=1, max_length=100)
    permissions: list[str] = Field(min_length=1, max_length=100)
    scope_grids: list[str] = Field(default_factory=list, max_length=200)
    department: str | None = Field(None, max_length=200)
    expires_at: datetime | None = None

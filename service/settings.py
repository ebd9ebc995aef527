"""Settings, split per concern, read from ``CITYGRID_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseSettings):
    """Where the data lives.

    With no ``CITYGRID_DATABASE_URL`` the service starts its embedded PostGIS cluster under
    ``CITYGRID_DATA_DIR`` (default ``var/`` in the project).
    """

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    database_url: str | None = None
    data_dir: Path = PROJECT_ROOT / "var"
    pool_size: int = 5


class GridSettings(BaseSettings):
    """How grid codes look and how grids are located."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    code_width: int = Field(14, description="Unit grid code width: 14 (CJ/T 213) or 15 (DB11)")
    city: str = Field("410100", description="City key (GB/T 2260 code) carried by every row")
    boundary_tolerance_m: float = Field(15.0, description="Default locate candidate radius")
    max_upload_mb: int = Field(200, description="Largest accepted upload")
    timezone: str = Field(
        "Asia/Shanghai", description="Time zone of date-times sent without an offset"
    )

    @field_validator("code_width")
    @classmethod
    def _known_width(cls, value: int) -> int:
        if value not in (14, 15):
            raise ValueError("CITYGRID_CODE_WIDTH must be 14 (CJ/T 213) or 15 (DB11)")
        return value


class ServerSettings(BaseSettings):
    """Where the HTTP server listens."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000


class CaseSettings(BaseSettings):
    """Rules for cases: duplicate and recurrence windows, and the working day."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    duplicate_radius_m: float = Field(30.0, description="Same category within this distance")
    duplicate_window_hours: float = Field(24.0, description="… and within this time")
    recurrence_days: int = Field(30, description="Closed this recently counts as recurring")
    working_periods: str = Field(
        "09:00-12:00,13:30-17:30", description="Working periods of a working day, local time"
    )
    extra_holidays: str = Field(
        "",
        description="Comma-separated local days off (YYYY-MM-DD), e.g. next year's "
        "holidays before the calendar package knows them",
    )
    extra_workdays: str = Field("", description="Comma-separated extra working days")

"""Settings, split per concern, read from ``CITYGRID_*`` environment variables, and
:class:`AppSettings`, which combines them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.codes import CodeScheme
from gis.limits import FileLimits

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseSettings):
    """Where the data lives.

    With no ``CITYGRID_DATABASE_URL`` the service starts its embedded PostGIS cluster under
    ``CITYGRID_DATA_DIR`` (default ``var/`` in the project).
    """

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    database_url: str | None = None
    data_dir: Path = PROJECT_ROOT / "var"
    pool_size: int | None = Field(
        None,
        description="Connections per server process (default: CITYGRID_MAX_ACTIVE_REQUESTS + "
        "4, so every admitted request has one and background work has its own)",
        ge=1,
    )
    pool_timeout_s: float = Field(
        5.0, description="Longest wait for a connection before the request is answered 503", gt=0
    )


class GridSettings(BaseSettings):
    """How grid codes look and how grids are located."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    code_width: int = Field(14, description="Unit grid code width: 14 (CJ/T 213) or 15 (DB11)")
    city: str = Field("410100", description="City key (GB/T 2260 code) carried by every row")
    boundary_tolerance_m: float = Field(
        15.0,
        description="Case intake (single and bulk): other unit grids this close to a report are "
        "kept as its candidates for the dispatcher to confirm",
    )
    max_upload_mb: int = Field(200, description="Largest accepted upload")
    # What one uploaded or imported file may hold (gis.limits; defaults from FileLimits)
    max_uncompressed_mb: float = Field(
        FileLimits.max_uncompressed_mb,
        gt=0,
        description="Most data a zip (Shapefile, KMZ) or Parquet file may hold once decompressed",
    )
    max_archive_members: int = Field(
        FileLimits.max_archive_members, gt=0, description="Most entries in a zip"
    )
    max_compression_ratio: float = Field(
        FileLimits.max_compression_ratio,
        gt=0,
        description="Most a zip member of 1 MB or more may expand (uncompressed / compressed)",
    )
    max_rows: int = Field(
        FileLimits.max_rows, gt=0, description="Most rows or features per uploaded file"
    )
    timezone: str = Field(
        "Asia/Shanghai", description="Time zone of date-times sent without an offset"
    )

    @property
    def file_limits(self) -> FileLimits:
        """The limits every reader of uploaded or imported files checks (``gis.limits``)."""
        return FileLimits(
            max_uncompressed_mb=self.max_uncompressed_mb,
            max_archive_members=self.max_archive_members,
            max_compression_ratio=self.max_compression_ratio,
            max_rows=self.max_rows,
        )

    @field_validator("code_width")
    @classmethod
    def _known_width(cls, value: int) -> int:
        if value not in (14, 15):
            raise ValueError("CITYGRID_CODE_WIDTH must be 14 (CJ/T 213) or 15 (DB11)")
        return value


class ServerSettings(BaseSettings):
    """Where the HTTP server listens and how much work each process takes on at once.

    A process admits ``max_active_requests`` requests at a time; up to ``max_queued_requests``
    more wait at most ``queue_wait_s`` for a place, and the rest are answered at once with 503
    and ``Retry-After``. The thread pool (``threads``) and the database pool
    (``CITYGRID_POOL_SIZE``) are sized from the same number, so an admitted request never
    waits for a thread or a connection held by a request that is itself waiting: overload
    costs a quick 503, never a lock-up.
    """

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(2, ge=1, description="Server processes (each with its own pools)")
    max_active_requests: int = Field(16, ge=1, description="Requests a process works on at once")
    max_queued_requests: int = Field(
        64, ge=0, description="Requests that may wait for a place; more are answered 503"
    )
    queue_wait_s: float = Field(
        0.5, gt=0, description="Longest wait for a place before the request is answered 503"
    )
    threads: int | None = Field(
        None, ge=1, description="Worker threads per process (default: max_active_requests + 8)"
    )
    warm_quiet_s: float = Field(
        10.0,
        ge=0,
        description="The start-up warm-up (grid index, coverage raster) waits until no request "
        "has come for this many seconds",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-Proto and "
        "X-Forwarded-For are believed ('*': any); empty: none",
    )

    def thread_count(self) -> int:
        """Threads for sync routes and file I/O: every admitted request can have one, plus
        room for what runs beside them (static files, uploads' temporary files)."""
        return self.threads or self.max_active_requests + 8


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
    # supervision orders (督办单): where a department's overdue order escalates
    order_superiors: str = Field(
        "",
        description="Comma-separated department:superior pairs, e.g. 环卫所:市城市管理局; "
        "a department not named escalates to order_top_unit",
    )
    order_top_unit: str = Field(
        "市城市管理委员会", description="The top of the department chain (the city office)"
    )
    # Open311 GeoReport v2 intake (``/open311``)
    open311_jurisdiction: str | None = Field(
        None, description="The jurisdiction_id this server answers for (default: the city key)"
    )
    open311_contact: str = Field(
        "the city management office (城市管理局) that runs this server",
        description="Who to ask about the Open311 API (discovery's contact)",
    )


class PatrolSettings(BaseSettings):
    """Rules for GPS fixes, track cleaning and coverage (see ``gis.patrol``, ``gis.coverage``)."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_PATROL_", extra="ignore")

    max_accuracy_m: float = Field(50.0, description="Fixes reporting a worse accuracy are dropped")
    max_speed_mps: float = Field(30.0, description="Faster than this between fixes is a jump")
    gap_s: float = Field(300.0, description="A silence longer than this splits a track")
    stationary_radius_m: float = Field(10.0, description="Standing still: jitter within this")
    stationary_window_s: float = Field(180.0, description="… for at least this long")
    outside_city_m: float = Field(500.0, description="Fixes farther outside the city are refused")
    future_tolerance_s: float = Field(300.0, description="Phone clocks may run this far ahead")
    coverage_radius_m: float = Field(25.0, description="A place this close to a track was seen")
    coverage_cell_m: float = Field(2.0, description="Raster cell of the coverage computation")
    visit_merge_s: float = Field(600.0, description="Back in a grid within this: same visit")
    partitions_ahead_days: int = Field(
        7, ge=0, le=366, description="Day partitions of gps_fixes created ahead of today"
    )
    fix_retention_days: int = Field(
        400,
        ge=0,
        description="Raw fixes older than this many days are dropped (whole day partitions); "
        "tracks and coverage stay. 0 keeps every fix",
    )


DEFAULT_SECRET_KEY = "citygrid-development-secret-change-me"
DEFAULT_ADMIN_PASSWORD = "citygrid-admin"


class AuthSettings(BaseSettings):
    """Accounts, tokens and what anyone may read without logging in.

    In ``production`` the service refuses to start with the default secret or while an active
    account still has the default admin password.
    """

    model_config = SettingsConfigDict(env_prefix="CITYGRID_", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development", description="production refuses default secrets"
    )
    secret_key: str = Field(
        DEFAULT_SECRET_KEY, min_length=32, description="Signs access tokens and session cookies"
    )
    admin_password: str = Field(
        DEFAULT_ADMIN_PASSWORD,
        min_length=8,
        description="Password of the first admin account, created when a city has none",
    )
    access_token_minutes: float = Field(15, gt=0, description="Lifetime of an access token")
    refresh_token_days: float = Field(14, gt=0, description="Lifetime of a refresh token")
    session_hours: float = Field(8, gt=0, description="Lifetime of a login on the web pages")
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins in a row before the account is locked"
    )
    login_lock_minutes: float = Field(15, gt=0, description="How long a locked account waits")
    public_grids: bool = Field(
        False,
        description="Grid boundaries (lists, OGC API, exports, grid tiles, locate) without login",
    )
    public_reports: bool = Field(
        False, description="Citizens may report through Open311 without an API key"
    )
    public_reports_per_hour: int = Field(
        20, ge=1, description="Anonymous reports one address may send per hour"
    )
    public_map: bool = Field(
        False,
        description="The public problem map (/public/map): recent cases, coarsened positions",
    )

    @model_validator(mode="after")
    def _no_defaults_in_production(self) -> AuthSettings:
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ValueError(
                "CITYGRID_SECRET_KEY must be set to a secret of your own in production "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if self.environment == "production" and self.admin_password == DEFAULT_ADMIN_PASSWORD:
            raise ValueError("CITYGRID_ADMIN_PASSWORD must be set to a password of your own")
        return self


OSM_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


class MapSettings(BaseSettings):
    """The dispatcher map's base map (``CITYGRID_MAP_*``).

    ``none`` draws the overlays on a blank background and works offline; ``osm`` uses
    ``tile_url`` (any XYZ template: OpenStreetMap or an intranet tile server); ``tianditu``
    the national 天地图 vector map and labels (needs ``tianditu_key``); ``amap`` AMap tiles, which
    are in GCJ-02, so every overlay is requested shifted to GCJ-02.
    """

    model_config = SettingsConfigDict(env_prefix="CITYGRID_MAP_", extra="ignore")

    basemap: Literal["none", "osm", "tianditu", "amap"] = Field(
        "none", description="none (blank, offline) | osm | tianditu | amap"
    )
    tile_url: str = Field(OSM_TILE_URL, description="XYZ tile template for basemap=osm")
    tianditu_key: str | None = Field(None, description="天地图 browser key for basemap=tianditu")

    @model_validator(mode="after")
    def _key_for_tianditu(self) -> MapSettings:
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise ValueError("CITYGRID_MAP_BASEMAP=tianditu needs CITYGRID_MAP_TIANDITU_KEY")
        if self.basemap == "osm" and not all(k in self.tile_url for k in ("{z}", "{x}", "{y}")):
            raise ValueError("CITYGRID_MAP_TILE_URL must be an XYZ template with {z}, {x}, {y}")
        return self


class BriefSettings(BaseSettings):
    """The daily set (三个一: 工作简报, 督查通报, 问题台账) and when it is made
    (``CITYGRID_BRIEF_*``).

    With ``schedule`` on, a service process makes the set of the day before for every scope in
    ``scopes`` at ``time`` each day (local time) and, on start, the sets of the last
    ``catch_up_days`` days that are missing; two processes make one set between them (a
    database lock). Off, run ``citygrid brief --date D --scope S`` from any scheduler.
    """

    model_config = SettingsConfigDict(env_prefix="CITYGRID_BRIEF_", extra="ignore")

    schedule: bool = Field(False, description="Make the daily set in the service process")
    time: str = Field("08:00", description="Local time of day the set of the day before is made")
    scopes: str = Field(
        "", description="Comma-separated grid codes (city, district or street) to make sets for"
    )
    formats: str = Field("docx,pdf,html", description="Formats of the brief and the circular")
    catch_up_days: int = Field(
        3, ge=0, le=31, description="Missing sets of this many past days are made on start"
    )
    circular_days: int = Field(
        3, ge=1, le=30, description="Working days a circular gives the named units to fix"
    )
    circular_cases: int = Field(
        30, ge=1, le=500, description="Most cases a circular lists per kind (overdue, …)"
    )

    @field_validator("time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError("CITYGRID_BRIEF_TIME must be HH:MM (24 hours, local time)")
        return value.strip()

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: str) -> str:
        found = [f.strip() for f in value.split(",") if f.strip()]
        bad = [f for f in found if f not in ("docx", "pdf", "html")]
        if bad or not found:
            raise ValueError("CITYGRID_BRIEF_FORMATS is a comma-separated list of docx, pdf, html")
        return ",".join(found)

    def scope_list(self) -> list[str]:
        """The configured scopes, in order, without repeats."""
        return list(dict.fromkeys(s.strip() for s in self.scopes.split(",") if s.strip()))

    def format_list(self) -> list[str]:
        """The configured formats of the brief and the circular."""
        return self.formats.split(",")


class NotifySettings(BaseSettings):
    """Notifications (``CITYGRID_NOTIFY_*``): the deliverer of webhooks and its safety rules.

    The deliverer runs in each server process (``enabled``) and as ``citygrid deliver``;
    deliveries are claimed row by row, so any number of them may run at once. Both also delete
    finished deliveries older than ``retention_days`` (``service.notify.retention``). A
    webhook's host must resolve to public addresses unless it is in ``allow_hosts``.
    """

    model_config = SettingsConfigDict(env_prefix="CITYGRID_NOTIFY_", extra="ignore")

    enabled: bool = Field(
        True, description="Run the deliverer (and the overdue sweep) in the server process"
    )
    poll_interval_s: float = Field(5.0, gt=0, description="Pause between delivery rounds")
    sweep_interval_s: float = Field(
        60.0, gt=0, description="Pause between sweeps for newly overdue cases"
    )
    max_attempts: int = Field(6, ge=1, le=50, description="Attempts before a delivery fails")
    base_delay_s: float = Field(
        30.0, gt=0, description="Retry n waits base_delay_s × 2^(n-1) (capped by max_delay_s)"
    )
    max_delay_s: float = Field(3600.0, gt=0, description="Longest wait between two attempts")
    timeout_s: float = Field(
        10.0, gt=0, le=120, description="Longest wait for a receiver (connect + answer)"
    )
    batch_size: int = Field(50, ge=1, le=10000, description="Deliveries one round sends at most")
    retention_days: int = Field(
        90,
        ge=0,
        le=36500,
        description="Days a delivered or failed delivery and its attempts are kept (counted "
        "from when it finished); pending ones are never deleted; 0 keeps everything",
    )
    allow_hosts: str = Field(
        "",
        description="Comma-separated hosts, addresses or CIDRs a webhook may reach although "
        "they are private, loopback or link-local (e.g. 10.0.0.0/8,hooks.intranet)",
    )
    gateway: str = Field(
        "",
        description="SMS/WeChat gateway: 'module:factory' returning a Transport; empty: off",
    )

    def allowed(self) -> tuple[str, ...]:
        """The allow-list as entries (hosts, addresses, CIDRs)."""
        return tuple(p.strip().lower() for p in self.allow_hosts.split(",") if p.strip())


class PhotoSettings(BaseSettings):
    """Photo and video evidence (``CITYGRID_PHOTO_*``): limits, storage, the evidence check and
    retention (see ``service.photos``)."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_PHOTO_", extra="ignore")

    dir: Path | None = Field(
        None,
        description="Folder of the content-addressed files (default: photos/ under "
        "CITYGRID_DATA_DIR)",
    )
    # an S3-compatible bucket instead of the folder (set the bucket to use it)
    s3_bucket: str | None = Field(
        None, description="S3-compatible bucket of the photo files (unset: the folder)"
    )
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of a non-AWS S3 service (MinIO, OSS, COS, …); unset: AWS"
    )
    s3_region: str | None = Field(None, description="The bucket's region")
    s3_prefix: str = Field("", description="Key prefix inside the bucket, e.g. `photos/`")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="`path` for most self-hosted services (MinIO)"
    )
    s3_access_key_id: str | None = Field(
        None, description="Access key (unset: the standard AWS variables, profile or role)"
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, description="Secret key (unset: the standard AWS variables, profile or role)"
    )
    max_mb: float = Field(20.0, gt=0, description="Largest accepted photo")
    video_max_mb: float = Field(50.0, gt=0, description="Largest accepted video (MP4, MOV)")
    max_pixels: int = Field(
        60_000_000,
        ge=1_000_000,
        description="Most pixels a photo may have; more is refused as a decompression bomb",
    )
    thumbnail_px: int = Field(320, ge=64, le=2048, description="Longest side of a thumbnail")
    evidence_distance_m: float = Field(
        100.0, gt=0, description="A feedback or verification photo farther from its case is flagged"
    )
    reuse_distance: int = Field(
        6,
        ge=0,
        le=32,
        description="Photos whose perceptual hashes differ in at most this many of 64 bits "
        "are the same picture (reuse on another case is flagged; 0: identical hashes only)",
    )
    retention_days: int = Field(
        0,
        ge=0,
        description="Photos older than this are deleted by `citygrid photos sweep` (0: kept)",
    )


class PublicSettings(BaseSettings):
    """What the citizen's pages show and how they guard themselves (``CITYGRID_PUBLIC_*``;
    whether they are open at all: ``CITYGRID_PUBLIC_REPORTS`` and ``CITYGRID_PUBLIC_MAP``)."""

    model_config = SettingsConfigDict(env_prefix="CITYGRID_PUBLIC_", extra="ignore")

    precision_m: float = Field(
        100.0,
        ge=10.0,
        le=5000.0,
        description="Positions the public sees (problem map, status page) are the centres of "
        "square cells of this many metres",
    )
    map_days: int = Field(30, ge=1, le=366, description="The problem map shows this many days")
    map_limit: int = Field(2000, ge=1, le=20000, description="Most cases on the problem map")
    map_cache_s: int = Field(
        60, ge=0, le=3600, description="The problem map's data is cached this long"
    )
    reports_per_device_per_hour: int = Field(
        5, ge=1, description="Anonymous reports one device (the page's device token) per hour"
    )


@dataclass
class AppSettings:
    """Everything the app needs, built explicitly in tests and from the environment otherwise."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    grids: GridSettings = field(default_factory=GridSettings)
    cases: CaseSettings = field(default_factory=CaseSettings)
    patrol: PatrolSettings = field(default_factory=PatrolSettings)
    map: MapSettings = field(default_factory=MapSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    briefs: BriefSettings = field(default_factory=BriefSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    photos: PhotoSettings = field(default_factory=PhotoSettings)
    public: PublicSettings = field(default_factory=PublicSettings)

    def __post_init__(self) -> None:
        active = self.server.max_active_requests
        if self.pool_size() <= active:
            raise ValueError(
                f"CITYGRID_POOL_SIZE ({self.pool_size()}) must be larger than "
                f"CITYGRID_MAX_ACTIVE_REQUESTS ({active}): every admitted request needs a "
                "connection and background work needs its own"
            )
        if self.server.thread_count() < active:
            raise ValueError(
                f"CITYGRID_THREADS ({self.server.thread_count()}) must be at least "
                f"CITYGRID_MAX_ACTIVE_REQUESTS ({active})"
            )

    @property
    def scheme(self) -> CodeScheme:
        """The configured grid code scheme."""
        return CodeScheme(self.grids.code_width)

    def photo_dir(self) -> Path:
        """Where the photo files live: ``CITYGRID_PHOTO_DIR``, else photos/ in the data folder."""
        return self.photos.dir or self.database.data_dir / "photos"

    def pool_size(self) -> int:
        """Database connections per process: one per admitted request, and some for the
        background (cache warming, coverage runs)."""
        return self.database.pool_size or self.server.max_active_requests + 4

"""Shared bench helpers: the demo database (embedded by default) and a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.db import migrations  # noqa: E402
from service.db.engine import make_engine, resolve_database_url  # noqa: E402
from service.db.models import Grid  # noqa: E402
from service.demo import load_demo_grids  # noqa: E402
from service.settings import AppSettings  # noqa: E402


def demo_engine() -> tuple[Engine, AppSettings]:
    """Engine on the configured (or embedded) database, migrated, with the demo city loaded."""
    settings = AppSettings()
    engine = make_engine(resolve_database_url(settings.database))
    migrations.upgrade(engine)
    with Session(engine) as session:
        exists = session.scalar(
            select(Grid.id).where(Grid.city == settings.grids.city, Grid.level == "unit").limit(1)
        )
        if exists is None:
            load_demo_grids(session, settings)
            session.commit()
    return engine, settings


def admin_headers(engine: Engine, settings: AppSettings) -> dict[str, str]:
    """An ``Authorization`` header of the city's admin (seeded when missing), valid for a day:
    the HTTP benchmarks call the API as a logged-in, city-wide user."""
    from datetime import UTC, datetime

    from service.accounts.accounts import AccountService

    with Session(engine) as session:
        accounts = AccountService(session, settings)
        accounts.seed()
        admin = accounts.user_by_login("admin")
        assert admin is not None
        token = accounts.access_token(admin, datetime.now(UTC), 24 * 60)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(workers: int = 1, env: dict[str, str] | None = None):
    """Run ``citygrid serve`` (``workers`` processes) on a free port; yield its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def scratch_database():
    """A throw-away database on the configured (or embedded) server, migrated; dropped after."""
    import uuid

    from sqlalchemy import create_engine, make_url, text

    base = make_url(resolve_database_url(AppSettings().database))
    name = f"citygrid_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        migrations.upgrade(engine)
        yield engine, url
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_credentials(
    engine: Engine, settings: AppSettings
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Request headers of the benchmarks' callers, made on the bench database: the admin (whole
    city, as :func:`admin_headers`), a dispatcher scoped to the first street, a grid worker
    scoped to six unit grids, and an API key of a hotline system (reports and reads grids)."""
    from datetime import UTC, datetime

    from service.accounts.accounts import AccountService, KeyInput, UserInput
    from service.accounts.principal import SYSTEM

    city = settings.grids.city
    with Session(engine) as session:
        accounts = AccountService(session, settings)
        accounts.seed()
        street = session.scalar(
            select(Grid.code).where(Grid.city == city, Grid.level == "street").order_by(Grid.code)
        )
        units = list(
            session.scalars(
                select(Grid.code)
                .where(Grid.city == city, Grid.level == "unit", Grid.valid_to.is_(None))
                .order_by(Grid.code)
                .limit(6)
            )
        )
        users = {}
        for login, role, scope in (
            ("bench-dispatcher", "dispatcher", [street]),
            ("bench-worker", "grid_worker", units),
        ):
            users[login] = accounts.user_by_login(login) or accounts.create_user(
                UserInput(
                    login=login,
                    display_name=login,
                    password="bench password 1",
                    roles=[role],
                    scope_grids=scope,
                ),
                SYSTEM,
            )
        _, secret = accounts.create_key(
            KeyInput("bench hotline", ["cases.report", "grids.read", "maps.read"]), SYSTEM
        )
        issued = datetime.now(UTC)
        out = {
            f"bearer {name}": (
                ("authorization", f"Bearer {accounts.access_token(u, issued, 600)}"),
            )
            for name, u in users.items()
        }
        out["API key"] = (("x-api-key", secret),)
        session.commit()
    out["bearer admin"] = tuple(admin_headers(engine, settings).items())
    return out


def machine_line() -> str:
    """CPU model, cores and library versions, printed above every benchmark."""
    import platform

    import numpy as np
    import shapely

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}; {os.cpu_count()} cores; Python {platform.python_version()}, numpy "
        f"{np.__version__}, shapely {shapely.__version__} (GEOS {shapely.geos_version_string})"
    )

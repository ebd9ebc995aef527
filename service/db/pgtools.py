"""The PostgreSQL client programs (``pg_dump``, ``pg_restore``) and how to point them at a
database given by its SQLAlchemy URL."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import make_url


class PgToolError(RuntimeError):
    """A client program is missing or failed."""


class PgToolMissing(PgToolError):
    """A client program is not installed."""


def _by_version(path: str) -> int:
    part = Path(path).parts[4]
    return int(part) if part.isdigit() else 0


def pg_tool(name: str) -> Path:
    """The newest installed ``name`` (Debian keeps them in /usr/lib/postgresql/<major>/bin,
    as the embedded cluster finds ``initdb``; else ``pg_config --bindir``, else ``PATH``).

    The newest matters: ``pg_dump`` refuses a server newer than itself."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_by_version)
    if found:
        return Path(found[-1])
    config = shutil.which("pg_config")
    if config:
        bindir = subprocess.run([config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(bindir.stdout.strip()) / name
        if bindir.returncode == 0 and candidate.exists():
            return candidate
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise PgToolMissing(
        f"{name} not found; install the PostgreSQL client programs "
        "(Debian: apt-get install postgresql-client-15)"
    )


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for ``url`` without its password, and the environment carrying
    the password (so it never shows in the process list)."""
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    uri = u.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def run_tool(name: str, args: list[str], url: str | None = None) -> str:
    """Run ``name`` with ``args`` (against ``url`` when given); its stdout, or
    :class:`PgToolError` with its stderr."""
    env = dict(os.environ)
    cmd = [str(pg_tool(name)), *args]
    if url is not None:
        uri, env = libpq_target(url)
        cmd.insert(1, f"--dbname={uri}")
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise PgToolError(f"{name} failed: {(result.stderr or result.stdout).strip()[:2000]}")
    return result.stdout

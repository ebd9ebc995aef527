"""The embedded default database: a private PostGIS cluster under the project's data folder.

Used when ``CITYGRID_DATABASE_URL`` is not set. The cluster is initialised once with ``initdb``,
started with ``pg_ctl`` on a free local port (remembered between runs) and reused afterwards.
PostgreSQL refuses to run as root, so as root the cluster is owned and run by the ``postgres``
system user that Debian's packages create.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg


class EmbeddedDatabaseError(RuntimeError):
    """The embedded cluster could not be created or started."""


def _bin_dir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise EmbeddedDatabaseError(
        "PostgreSQL server binaries not found; install postgresql and postgis "
        "(Debian: apt-get install postgresql postgresql-15-postgis-3) or set CITYGRID_DATABASE_URL"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _postgres_can_enter(path: Path) -> bool:
    """Whether the postgres system user can traverse ``path`` (its nearest existing part)."""
    while not path.exists():
        path = path.parent
    check = ["runuser", "-u", "postgres", "--", "test", "-x", str(path)]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


def _reachable(root: Path) -> Path:
    """``root``, or — as root, when the server's user cannot reach it (a project under /root,
    say) — a folder of its own under /var/lib/citygrid, named after the project folder."""
    if os.geteuid() != 0 or _postgres_can_enter(root.parent):
        return root
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    moved = Path("/var/lib/citygrid") / digest
    moved.parent.mkdir(parents=True, exist_ok=True)
    moved.parent.chmod(0o755)
    print(
        f"citygrid: the postgres user cannot reach {root}; the embedded database lives in "
        f"{moved} instead",
        file=sys.stderr,
    )
    return moved


@dataclass
class EmbeddedCluster:
    """A PostGIS cluster living in ``root`` (``root/pgdata`` holds the data files)."""

    root: Path
    database: str = "citygrid"

    def __post_init__(self) -> None:
        self.root = _reachable(Path(self.root).resolve())

    @property
    def pgdata(self) -> Path:
        """The cluster's data directory."""
        return self.root / "pgdata"

    @property
    def _port_file(self) -> Path:
        return self.root / "pg.port"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(_bin_dir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise EmbeddedDatabaseError(
                f"{args[0]} failed: {result.stderr.strip() or result.stdout}"
            )
        return result

    def _chown_for_postgres(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError as exc:  # pragma: no cover - Debian's server packages create it
            raise EmbeddedDatabaseError("running as root needs the 'postgres' system user") from exc
        for path in (self.root, self.pgdata):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, pg.pw_uid, pg.pw_gid)

    def initialised(self) -> bool:
        """Whether ``initdb`` has run."""
        return (self.pgdata / "PG_VERSION").exists()

    def running(self) -> bool:
        """Whether the cluster's server runs."""
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        try:
            self._run("pg_ctl", "status", "-D", str(self.pgdata))
        except EmbeddedDatabaseError:
            return False
        return True

    @property
    def port(self) -> int:
        """The port the cluster listens on (remembered between runs)."""
        return int(self._port_file.read_text().strip())

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of ``database`` (default: the citygrid database)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database or self.database}"

    def initialise(self) -> None:
        """Create the cluster's folder (first time only): ``initdb`` with trust auth, UTF-8.
        Its ``postgresql.conf`` may be edited before the first :meth:`start`."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown_for_postgres()
        if not self.initialised():
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )

    def start(self) -> str:
        """Initialise (first time) and start the cluster; return the SQLAlchemy URL."""
        self.initialise()
        if not self.running():
            port = self.port if self._port_file.exists() else _free_port()
            if _port_in_use(port):
                port = _free_port()
            self._port_file.write_text(str(port))
            options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
            self._run(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                options,
            )
        self._ensure_database()
        return self.url()

    def stop(self) -> None:
        """Stop the cluster if it runs."""
        if self.running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.pgdata))

    def _ensure_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user="postgres",
                    dbname="postgres",
                    autocommit=True,
                )
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

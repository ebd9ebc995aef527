"""A real Citus cluster for tests: a coordinator and two workers as private PostgreSQL clusters.

Citus is built from the source tarball in the shared vendor folder (never copied into the
project) by the folder's own ``build-citus.sh``, which does nothing when this version is already
installed. The folder is ``CITYGRID_CITUS_VENDOR``, else ``<repo>/../shared/vendor``, else
``/work/shared/vendor``; without the tarball the Citus tests skip and say how to enable them.
Parallel pytest workers build one at a time (a file lock); each starts its own three clusters.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from service.db.embedded import EmbeddedCluster, EmbeddedDatabaseError

CITUS_VERSION = "13.2.2"
TARBALL = f"citus-{CITUS_VERSION}.tar.gz"
BUILD_SCRIPT = "build-citus.sh"
_REPO = Path(__file__).resolve().parents[2]
_LOCK = Path(tempfile.gettempdir()) / "citygrid-citus-build.lock"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

ENABLE_HINT = (
    f"Citus tests need the Citus source ({TARBALL} with {BUILD_SCRIPT}); put the shared vendor "
    "folder at ../shared/vendor beside the project or set CITYGRID_CITUS_VENDOR=<folder> "
    "(the build needs root, PostgreSQL 15 and apt access to postgresql-server-dev-15)"
)


class CitusUnavailable(RuntimeError):
    """No Citus source here: the one allowed reason to skip (the message says how to enable)."""


def vendor_dir() -> Path | None:
    """The folder holding the Citus tarball and its build script, if any."""
    candidates = []
    if os.environ.get("CITYGRID_CITUS_VENDOR"):
        candidates.append(Path(os.environ["CITYGRID_CITUS_VENDOR"]))
    candidates += [_REPO.parent / "shared" / "vendor", Path("/work/shared/vendor")]
    for folder in candidates:
        if (folder / TARBALL).is_file() and (folder / BUILD_SCRIPT).is_file():
            return folder
    return None


def _installed() -> bool:
    lib = PG_BIN.parent / "lib" / "citus.so"
    return lib.is_file() and f"Citus {CITUS_VERSION}".encode() in lib.read_bytes()


def ensure_citus_installed() -> None:
    """Build and install Citus once (the vendor script skips when it is installed already)."""
    if _installed():
        return
    folder = vendor_dir()
    if folder is None:
        raise CitusUnavailable(ENABLE_HINT)
    with open(_LOCK, "w") as lock:
        # pytest-xdist workers: one builds, the others wait and then find it installed
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed():
            return
        # the script installs packages and writes into PostgreSQL's folders: root, or sudo
        command = ["bash", str(folder / BUILD_SCRIPT)]
        if os.geteuid() != 0 and shutil.which("sudo"):
            command = ["sudo", "-n", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"building Citus with {folder / BUILD_SCRIPT} failed:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )


@dataclass
class CitusCluster:
    """A coordinator and workers, each a private cluster under ``root`` (ports chosen free)."""

    root: Path
    workers: int = 2
    database: str = "citygrid"
    # citus=False, workers=0: a plain PostGIS node set up alike (the benchmark's baseline);
    # durable: fsync and synchronous commits as in production (tests go without)
    citus: bool = True
    durable: bool = False
    nodes: list[EmbeddedCluster] = field(default_factory=list)

    @property
    def coordinator(self) -> EmbeddedCluster:
        return self.nodes[0]

    def url(self, node: int = 0) -> str:
        """SQLAlchemy URL of the citygrid database on a node (0: the coordinator)."""
        return self.nodes[node].url(self.database)

    def start(self) -> None:
        """initdb + start every node with citus preloaded; the database has postgis and citus
        on every node; the workers are added to the coordinator."""
        for i in range(self.workers + 1):
            node = EmbeddedCluster(self.root / f"node{i}", database=self.database)
            self.nodes.append(node)
            _configure(node, self.citus, self.durable)
            node.start()
        for node in self.nodes:
            with _connect(node, self.database) as conn:
                if self.citus:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        if not self.citus:
            return
        with _connect(self.coordinator, self.database) as conn:
            conn.execute(
                "SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.coordinator.port,)
            )
            for worker in self.nodes[1:]:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))

    def stop(self) -> None:
        """Stop every node (errors of one do not keep the others running)."""
        for node in reversed(self.nodes):
            try:
                node.stop()
            except EmbeddedDatabaseError:
                pass


def _configure(node: EmbeddedCluster, citus: bool, durable: bool) -> None:
    """Initialise the node and configure it (preloading citus) before its first start."""
    node.initialise()
    conf = node.pgdata / "postgresql.conf"
    text = conf.read_text()
    if "# citygrid test node" not in text:
        # small clusters: three of them run beside the test server on a 2-core machine
        lines = ["# citygrid test node", "max_connections = 200", "shared_buffers = 64MB"]
        if citus:
            lines += ["shared_preload_libraries = 'citus'", "max_prepared_transactions = 100"]
        if not durable:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
            # 37 tables × 32 shards by default: fewer shards make distributing them quick
            lines += ["citus.shard_count = 8"] if citus else []
        conf.write_text(text + "\n" + "\n".join(lines) + "\n")


def _connect(node: EmbeddedCluster, database: str) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1", port=node.port, user="postgres", dbname=database, autocommit=True
    )


@contextmanager
def citus_cluster(
    workers: int = 2, citus: bool = True, durable: bool = False
) -> Iterator[CitusCluster]:
    """A running Citus cluster in a temporary folder, stopped and removed afterwards
    (``citus=False, workers=0``: one plain PostGIS node configured alike)."""
    if citus:
        ensure_citus_installed()
    root = Path(tempfile.mkdtemp(prefix="citygrid-citus-"))
    root.chmod(0o755)  # the servers run as the postgres user when we are root
    cluster = CitusCluster(root, workers=workers, citus=citus, durable=durable)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

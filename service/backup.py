"""One-file backups of a citygrid installation, and their restore into an empty database.

The archive is a tar holding ``manifest.json`` (format, citygrid version, creation time, Alembic
revision, rows per table, the dump's sha256, the photo files), ``database.dump`` (``pg_dump
-Fc``) and ``photos/<key>`` (the folder photo store's files). The dump and the counts are read in
one exported snapshot, so they agree even while the service writes.

A restore checks the whole archive (manifest, checksum, dump listing, photo names, the revision
being one this code knows) before it touches anything, refuses a database that already holds
tables, runs ``pg_restore`` in one transaction (a failure leaves the database empty), makes the
photo files visible only after that commits, checks the counts against the manifest and then
migrates a dump of an older citygrid forward. An S3 photo store is not backed up nor restored
(back the bucket up with the bucket's own tools).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from service.db import migrations
from service.db.pgtools import PgToolError, PgToolMissing, run_tool
from service.errors import Conflict, InvalidInput
from service.photos.store import FileSystemStore, PhotoStore

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
PHOTOS = "photos/"
_PHOTO_NAME = re.compile(
    r"^photos/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.(orig|display\.jpg|thumb\.jpg)$"
)
_CHUNK = 1 << 20

# (step, done, total): the CLI draws one progress bar per step
Progress = Callable[[str, int, int], None]


def _quiet(step: str, done: int, total: int) -> None:
    return None


@dataclass
class RestoreReport:
    """What a restore found: rows per table (expected from the manifest, found after the
    restore), photo files, and the revision before and after migrating."""

    counts: dict[str, tuple[int, int]]
    photos: tuple[int, int]
    revision: str
    head: str
    photos_skipped: bool = False
    mismatched: list[str] = field(default_factory=list)


def citygrid_version() -> str:
    """The installed citygrid's version (``unknown`` from a bare checkout)."""
    try:
        return metadata.version("citygrid")
    except metadata.PackageNotFoundError:
        return "unknown"


def _head() -> str:
    head = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
    assert head is not None  # the project has migrations
    return head


def _known_revision(revision: str) -> bool:
    try:
        return (
            ScriptDirectory.from_config(migrations.alembic_config()).get_revision(revision)
            is not None
        )
    except CommandError:
        return False


def user_tables(conn: Connection) -> list[str]:
    """Tables (and partitioned parents) of the ``public`` schema that no extension owns
    (PostGIS's ``spatial_ref_sys`` is left out), by name."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
            "AND d.objid = c.oid AND d.deptype = 'e') ORDER BY c.relname"
        )
    )
    return [r[0] for r in rows]


def table_counts(conn: Connection) -> dict[str, int]:
    """Rows of every user table (exact: a backup is checked against them)."""
    return {
        name: int(conn.execute(text(f'SELECT count(*) FROM public."{name}"')).scalar_one())
        for name in user_tables(conn)
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- backup ----------------------------------------------------------------------------------


def backup(
    engine: Engine, url: str, store: PhotoStore, output: Path, progress: Progress = _quiet
) -> dict[str, Any]:
    """Write the database behind ``engine`` (reachable at ``url`` for ``pg_dump``) and the
    folder store's photo files to the archive ``output``; the manifest.

    ``output`` appears whole or not at all (written beside it, then renamed)."""
    output = output.resolve()
    with tempfile.TemporaryDirectory(prefix="citygrid-backup-", dir=output.parent) as tmp:
        dump = Path(tmp) / DUMP
        progress("database", 0, 1)
        try:
            conn = engine.connect()
        except OperationalError as exc:
            raise _unreachable(engine, exc) from exc
        with conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # the dump and the counts see the same committed data
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                tables = user_tables(conn)
                if "alembic_version" not in tables:
                    raise InvalidInput(
                        "the database holds no citygrid tables (run `citygrid migrate` first)",
                        field="database_url",
                    )
                revision = conn.execute(
                    text("SELECT version_num FROM alembic_version")
                ).scalar_one()
                counts = table_counts(conn)
                try:
                    run_tool("pg_dump", ["-Fc", f"--snapshot={snapshot}", "-f", str(dump)], url)
                except PgToolError as exc:
                    raise InvalidInput(str(exc), field="database_url") from exc
        progress("database", 1, 1)
        folder = isinstance(store, FileSystemStore)
        # only photo files (a stray file in the folder would make the archive unrestorable)
        keys = sorted(k for k in store.keys() if _PHOTO_NAME.match(PHOTOS + k)) if folder else []
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "citygrid_version": citygrid_version(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "alembic_revision": revision,
            "counts": counts,
            "dump_sha256": _sha256(dump),
            "photos": {
                "store": "folder" if folder else "s3",
                "included": folder,
                "files": len(keys),
            },
        }
        partial = Path(tmp) / "archive.tar"
        with tarfile.open(partial, "w") as tar:
            body = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(body), int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(body))
            tar.add(dump, arcname=DUMP)
            for done, key in enumerate(keys, 1):
                assert isinstance(store, FileSystemStore)
                tar.add(store.root / key, arcname=PHOTOS + key)
                progress("photos", done, len(keys))
        os.replace(partial, output)
    return manifest


# -- restore ---------------------------------------------------------------------------------


@dataclass
class _Archive:
    manifest: dict[str, Any]
    dump: Path
    photos: list[tarfile.TarInfo]
    tar: tarfile.TarFile


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, field="file")


def _open_archive(path: Path, workdir: Path) -> _Archive:
    """Read and check the archive: every refusal happens here, before anything is written."""
    if not path.is_file():
        raise _bad(f"{path}: no such backup file")
    try:
        tar = tarfile.open(path, "r:")
        members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _bad(f"{path} is not a citygrid backup (not a readable tar archive: {exc})") from exc
    names = {m.name: m for m in members}
    for needed in (MANIFEST, DUMP):
        if needed not in names or not names[needed].isfile():
            raise _bad(f"{path} is not a citygrid backup ({needed} is missing)")
    try:
        manifest = json.loads(_read_member(tar, names[MANIFEST]))
        if manifest.get("format") != FORMAT:
            raise ValueError(f"unknown format {manifest.get('format')!r}")
        revision, counts = manifest["alembic_revision"], manifest["counts"]
        if not isinstance(revision, str) or not isinstance(counts, dict):
            raise ValueError("revision or counts malformed")
    except (ValueError, KeyError, TypeError, tarfile.TarError) as exc:
        raise _bad(f"{path}: its manifest.json is unreadable ({exc})") from exc
    photos = [m for m in members if m.name.startswith(PHOTOS)]
    for m in photos:
        if not (m.isfile() and _PHOTO_NAME.match(m.name)):
            raise _bad(f"{path}: unexpected member {m.name!r} (not a photo file)")
    unknown = set(names) - {MANIFEST, DUMP} - {m.name for m in photos}
    if unknown:
        raise _bad(f"{path}: unexpected member {sorted(unknown)[0]!r}")
    if len(photos) != manifest.get("photos", {}).get("files", 0):
        raise _bad(f"{path}: {len(photos)} photo files, the manifest says {manifest['photos']}")
    dump = workdir / DUMP
    try:
        source = tar.extractfile(names[DUMP])
        assert source is not None
        with dump.open("wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _bad(f"{path}: database.dump is unreadable ({exc})") from exc
    if _sha256(dump) != manifest.get("dump_sha256"):
        raise _bad(f"{path}: database.dump is damaged (its checksum differs from the manifest)")
    try:
        run_tool("pg_restore", ["--list", str(dump)])
    except PgToolMissing as exc:
        raise InvalidInput(str(exc), field="pg_restore") from exc
    except PgToolError as exc:
        raise _bad(f"{path}: database.dump is not a pg_dump archive ({exc})") from exc
    if not _known_revision(revision):
        raise _bad(
            f"{path} was made at migration {revision!r}, unknown to this citygrid "
            f"({citygrid_version()}, head {_head()}): restore it with the citygrid that made it"
        )
    return _Archive(manifest, dump, photos, tar)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise tarfile.TarError(f"{member.name} is not a file")
    return f.read()


def _unreachable(engine: Engine, exc: Exception) -> InvalidInput:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return InvalidInput(
        f"cannot connect to the database {engine.url.database!r} on "
        f"{engine.url.host}:{engine.url.port or 5432} ({reason})",
        field="database_url",
    )


def _refuse_non_empty(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            tables = user_tables(conn)
    except OperationalError as exc:
        raise _unreachable(engine, exc) from exc
    if tables:
        shown = ", ".join(tables[:5]) + (" …" if len(tables) > 5 else "")
        raise Conflict(
            f"the target database {engine.url.database!r} is not empty ({len(tables)} tables: "
            f"{shown}); restore into an empty database (drop and create it again first)",
            field="database_url",
        )


def restore(
    archive: Path,
    engine: Engine,
    url: str,
    store: PhotoStore,
    progress: Progress = _quiet,
) -> RestoreReport:
    """Restore ``archive`` into the empty database behind ``engine`` (``url`` for
    ``pg_restore``) and its photos into ``store`` (a folder store; otherwise skipped)."""
    with tempfile.TemporaryDirectory(prefix="citygrid-restore-") as tmp:
        found = _open_archive(archive, Path(tmp))
        with found.tar:
            _refuse_non_empty(engine)
            folder = isinstance(store, FileSystemStore)
            staged: list[tuple[str, str]] = []
            try:
                if folder:  # staged first: none is visible unless the database restore commits
                    for done, member in enumerate(found.photos, 1):
                        key = member.name.removeprefix(PHOTOS)
                        staged.append((key, store.stage(key, _read_member(found.tar, member))))
                        progress("photos staged", done, len(found.photos))
                progress("database", 0, 1)
                try:
                    run_tool(
                        "pg_restore",
                        [
                            "--no-owner",
                            "--no-privileges",
                            "--single-transaction",
                            "--exit-on-error",
                            str(found.dump),
                        ],
                        url,
                    )
                except PgToolError as exc:
                    raise InvalidInput(str(exc), field="database_url") from exc
                progress("database", 1, 1)
            except BaseException:
                for _, token in staged:
                    store.discard(token)
                raise
        for key, token in staged:
            store.promote(key, token)
    present = set(store.keys()) if folder else set()
    restored_photos = sum(1 for m in found.photos if m.name.removeprefix(PHOTOS) in present)
    with engine.connect() as conn:
        counts_now = table_counts(conn)
    expected: dict[str, int] = found.manifest["counts"]
    counts = {t: (int(n), counts_now.get(t, -1)) for t, n in expected.items()}
    mismatched = [t for t, (want, got) in counts.items() if want != got]
    revision = found.manifest["alembic_revision"]
    head = _head()
    if revision != head and not mismatched:
        progress("migrations", 0, 1)
        migrations.upgrade(engine)
        progress("migrations", 1, 1)
    return RestoreReport(
        counts=counts,
        photos=(len(found.photos), restored_photos),
        revision=revision,
        head=head,
        photos_skipped=bool(found.photos) and not folder,
        mismatched=mismatched,
    )

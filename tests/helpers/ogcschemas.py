"""The published OGC API – Features Part 1 (1.0) schemas, fetched from PyPI and verified.

Of the registries this project reaches (PyPI, Debian, npm), only PyPI carries them: the wheel of
``ogctests`` (a black-box OGC API verifier) bundles the 1.0 schemas of
``schemas.opengis.net/ogcapi/features/part1/1.0/openapi/schemas/`` with each ``$ref`` rewritten
to ``urn:<name>``. Its own dependencies pin old versions of libraries this project uses, so it
is not installed: pip downloads the wheel alone, pinned by version and sha256
(``--require-hashes``), into ``build/ogc-schemas/`` (git-ignored), and the schemas are read
from the wheel. Every use re-checks the wheel's hash.

Run ``python tests/helpers/ogcschemas.py`` to fetch ahead of an offline test run.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

PACKAGE = "ogctests"
VERSION = "0.1.15"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
SHA256 = "d70dba0722300ce20c153b5de1e8a4683c0a9c826a9a6c779cec17d2b5879214"
MEMBERS = "ogctests/features/schemas/"
CACHE = Path(__file__).resolve().parents[2] / "build" / "ogc-schemas"


def _verified(path: Path) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


def wheel() -> Path:
    """The pinned wheel, downloaded once (pip checks the hash) and re-checked on every use."""
    path = CACHE / WHEEL
    if _verified(path):
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as pins:
        pins.write(f"{PACKAGE}=={VERSION} --hash=sha256:{SHA256}\n")
        pins.flush()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "-r",
                pins.name,
                "-d",
                str(CACHE),
            ],
            check=True,
            timeout=300,
        )
    if not _verified(path):
        raise RuntimeError(f"{path} is missing or does not match sha256 {SHA256}")
    return path


def schemas() -> dict[str, Any]:
    """Every schema of the bundle by name (``link``, ``featureGeoJSON`` …)."""
    out: dict[str, Any] = {}
    with zipfile.ZipFile(wheel()) as bundle:
        for name in bundle.namelist():
            if name.startswith(MEMBERS) and name.endswith(".yaml"):
                out[Path(name).stem] = yaml.safe_load(bundle.read(name))
    return out


def validator(name: str) -> OAS30Validator:
    """A validator for Part 1's schema ``name`` (OpenAPI 3.0 dialect, formats checked)."""
    found = schemas()
    registry: Registry = Registry().with_resources(
        (f"urn:{stem}", Resource.from_contents(schema, default_specification=DRAFT4))
        for stem, schema in found.items()
    )
    return OAS30Validator(found[name], registry=registry, format_checker=oas30_format_checker)


if __name__ == "__main__":
    print(f"{wheel()}: {len(schemas())} schemas, sha256 ok")

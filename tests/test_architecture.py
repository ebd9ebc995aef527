"""The shape of the code: imports run one way and in no circle, and the README's configuration
table lists every setting — so a change that breaks either fails the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

from service.settings import (
    CaseSettings,
    DatabaseSettings,
    GridSettings,
    MapSettings,
    NotifySettings,
    PatrolSettings,
    PhotoSettings,
    PublicSettings,
    ServerSettings,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "layers", "demo", "gis")


def test_import_layer_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts: service → layers → gis, and inside service
    entry points → app → routes → dependencies → domains → edge → persistence."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    edges = {
        m: sorted(set(graph.find_modules_directly_imported_by(m)) & set(modules)) for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(edges[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def test_no_module_imports_itself_through_others() -> None:
    # imports inside functions count too: they only postpone a circle
    assert _cycles(grimp.build_graph(*PACKAGES)) == []


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = []
    for cls in (
        DatabaseSettings,
        GridSettings,
        CaseSettings,
        PatrolSettings,
        MapSettings,
        ServerSettings,
        NotifySettings,
        PhotoSettings,
        PublicSettings,
    ):
        prefix = str(cls.model_config.get("env_prefix", ""))
        missing += [
            (prefix + name).upper()
            for name in cls.model_fields
            if f"`{(prefix + name).upper()}`" not in table
        ]
    assert missing == []

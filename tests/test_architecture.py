"""The import graph holds the layers of docs/architecture.md and has no cycle.

``lint-imports`` checks the contracts of pyproject.toml ([tool.importlinter]): the project package
above the apps, the apps above the storage plugins, those above core, and neither the storage
plugins nor core naming an app. The cycle check covers every module of the service, imports inside
functions included (a lazy import still ties two modules together).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "persistence_site",
    "recovery",
    "files",
    "users",
    "translation",
    "system",
    "api_keys",
    "audit",
    "storage_backends",
    "core",
)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in graph.modules)
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(edges[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    # given: a graph with a -> b -> c -> a and c -> d
    graph = grimp.ImportGraph()
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=importer, imported=imported)
    # then: the three modules of the cycle, and nothing else
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_no_import_cycle_between_modules_of_the_service() -> None:
    graph = grimp.build_graph(*PACKAGES)
    assert _cycles(graph) == []


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# Reads of sessions and tasks that must go through the collection's storage backend
# (storage_backends.registry), so that routing a collection elsewhere moves its reads too.
ROUTED_READERS = (
    "translation/selectors.py",
    "translation/services/lifecycle.py",
    "recovery/selectors.py",
    "recovery/restore.py",
    "recovery/checks.py",
)


def test_selectors_read_sessions_and_tasks_through_their_backend_not_the_orm() -> None:
    offenders = {}
    for path in ROUTED_READERS:
        text = (ROOT / path).read_text()
        found = [
            needle
            for needle in (
                "Task.objects",
                "Task._default_manager",
                "connection.cursor",
                "from django.db import connection",
            )
            if needle in text
        ]
        if path != "translation/services/lifecycle.py":  # its retention cleanup still pages sessions by ORM
            found += [n for n in ("Session.objects", "Session._default_manager") if n in text]
        if found:
            offenders[path] = found
    assert offenders == {}

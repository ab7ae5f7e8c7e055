"""ARCHITECTURE.md's rules, executable: which room may import which, and no circle between modules.

Every ``import`` of the package's modules counts, those inside functions included (a lazy import is
still a dependency); the console's verbs are found by name (``pipelines/cli.py``), not imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from zsgm.core.project import PROJECT_ROOT

# room -> the rooms (besides itself) it may import
ALLOWED = {
    "core": set(),
    "extract": {"core"},
    "generate": {"core", "extract"},
    "evaluate": {"core", "extract"},
    "pipelines": {"core", "extract", "generate", "evaluate"},
    "bench": {"core", "extract", "generate", "evaluate", "pipelines", "testing"},
    "testing": {"core", "extract"},
    "api": {"core", "extract", "generate", "evaluate", "pipelines"},
}
FOLDERS = {"core": "core", "extract": "extract", "generate": "generate", "evaluate": "evaluate",
           "pipelines": "pipelines", "bench": "bench"}


def modules(root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """``zsgm.<room>.<module>`` -> its file, for every module of the installed package."""
    out = {"zsgm": root / "zsgm" / "__init__.py", "zsgm.api": root / "zsgm" / "api.py",
           "zsgm.testing": root / "zsgm" / "testing.py"}
    for room, folder in FOLDERS.items():
        for f in sorted((root / folder).rglob("*.py")):
            parts = f.relative_to(root / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            out[".".join(("zsgm", room, *parts))] = f
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """The package modules a file imports (``from zsgm.x import y`` counts y when y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "api"


def graph(root: Path = PROJECT_ROOT) -> dict[str, set[str]]:
    mods = modules(root)
    return {m: imports(f, set(mods)) - {m} for m, f in mods.items()}


def forbidden(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in g.items():
        room = room_of(mod)
        for dep in deps:
            other = room_of(dep)
            if other != room and other != "api" and other not in ALLOWED.get(room, set()) or \
                    other == "api" and room != "api" and dep != "zsgm":
                bad.append(f"{mod} imports {dep}")
    return sorted(bad)


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_rooms_import_only_what_they_may():
    assert forbidden(graph()) == []


def test_no_circle_between_modules():
    assert cycles(graph()) == []


def test_the_checks_catch_a_forbidden_import_and_a_circle(tmp_path):
    """The same checks on a copy of the tree with one forbidden import and one circle planted."""
    import shutil

    for folder in (*FOLDERS.values(), "zsgm"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("results", "*.pyc"))
    with open(tmp_path / "generate" / "nets.py", "a") as fh:
        fh.write("\nfrom zsgm.evaluate import metrics  # generate must never import evaluate\n")
    with open(tmp_path / "core" / "errors.py", "a") as fh:
        fh.write("\ndef _late():\n    from zsgm.core import files  # lazy, but a dependency all the same\n")
    with open(tmp_path / "core" / "files.py", "a") as fh:
        fh.write("\nfrom zsgm.core.errors import ZsgmError as _E  # and back: a circle\n")
    g = graph(tmp_path)
    assert "zsgm.generate.nets imports zsgm.evaluate.metrics" in forbidden(g)
    assert any({"zsgm.core.errors", "zsgm.core.files"} <= set(c) for c in cycles(g))


@pytest.mark.parametrize("room", sorted(FOLDERS))
def test_every_room_is_a_package_of_zsgm(room):
    import importlib

    mod = importlib.import_module(f"zsgm.{room}")
    assert Path(mod.__file__).parent == PROJECT_ROOT / FOLDERS[room]

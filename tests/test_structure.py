"""The shape of the code, read with `ast`: no import cycles, app/ free of the training stack, nothing imports
tests/ (and no test imports a conftest), every module has its mirrored test module, no vague module names, no
oversized product modules.

Every import counts: module level, inside functions, under `if TYPE_CHECKING:` (where cycles used to hide).
Each checker also runs on a tiny fabricated package in tmp_path, so each can be seen to fail.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT

PRODUCT = ("app", "training")
# Dynamic imports by a constant name are imports too (`importlib.import_module("sklearn")`).
DYNAMIC = {"import_module", "__import__"}
APP_FORBIDDEN = ("training", "sklearn", "skl2onnx", "onnx")  # `onnx` exactly: onnxruntime is the serving runtime
OUTSIDE_TESTS = ("app", "training", "bench", "scripts")
VAGUE = frozenset({"util", "utils", "helper", "helpers", "misc", "common"})
MAX_LINES = 300
# Product modules allowed past MAX_LINES, each with its reason (prefer splitting: ask before adding one).
OVERSIZE_ALLOWED: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement (or constant-name dynamic import): the module it loads and where."""

    source: str
    target: str
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of `package` under `root` (packages by their __init__)."""
    found: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(root: Path, package: str) -> list[Import]:
    """Every import in `package`, resolved to the module it loads (`from pkg import mod` → `pkg.mod`)."""
    known = modules(root, package)
    found: list[Import] = []
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for target in _targets(node, here, known):
                found.append(Import(name, target, path.relative_to(root), getattr(node, "lineno", 0)))
    return sorted(set(found), key=lambda i: (str(i.path), i.line, i.target))


def _targets(node: ast.AST, here: list[str], known: dict[str, Path]) -> list[str]:
    """The modules one AST node imports (empty for any other node)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = here[: len(here) - node.level + 1] if node.level else []
        stem = ".".join([*base, *([node.module] if node.module else [])])
        # `from pkg import name`: the submodule `pkg.name` when there is one, else `pkg` itself.
        return [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if function in DYNAMIC and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def cycles(root: Path, package: str) -> list[list[Import]]:
    """One import cycle (as its chain of imports) per strongly connected group of modules inside `package`."""
    known = modules(root, package)
    edges: dict[str, dict[str, Import]] = {name: {} for name in known}
    for found in imports(root, package):
        if found.target in known and found.target != found.source:
            edges[found.source].setdefault(found.target, found)
    return [_cycle_through(group, edges) for group in _components(edges) if len(group) > 1]


def _components(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _cycle_through(group: list[str], edges: dict[str, dict[str, Import]]) -> list[Import]:
    """A shortest cycle from the group's first module back to it, staying inside the group (breadth first)."""
    start, members = group[0], set(group)
    previous: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target, found in sorted(edges[node].items()):
                if target == start:
                    chain = [found]
                    while chain[0].source != start:
                        chain.insert(0, previous[chain[0].source])
                    return chain
                if target in members and target not in previous:
                    previous[target] = found
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {group}")  # a strongly connected group always has one


def describe(chain: list[Import]) -> str:
    """`a → b (path:line) → a (path:line)`: the cycle path as a failure message shows it."""
    return chain[0].source + "".join(f" → {i.target} ({i.where()})" for i in chain)


def forbidden(root: Path, package: str, banned: tuple[str, ...]) -> list[str]:
    """Imports in `package` of a banned top-level module (`onnx` does not ban `onnxruntime`)."""
    return [f"{i.where()}: {i.target}" for i in imports(root, package) if i.target.split(".")[0] in banned]


def importers_of(root: Path, package: str, directories: tuple[str, ...]) -> list[str]:
    """Python files under `directories` that import `package` (or anything inside it)."""
    found: list[str] = []
    for directory in directories:
        if (root / directory).is_dir():
            found += [f"{i.where()}: {i.target}" for i in imports(root, directory) if i.target.split(".")[0] == package]
    return found


def conftest_importers(root: Path) -> list[str]:
    """Imports of a conftest module inside tests/ (pytest loads conftests itself; helpers belong in support.py)."""
    return [f"{i.where()}: {i.target}" for i in imports(root, "tests") if i.target.split(".")[-1] == "conftest"]


def missing_mirrors(root: Path, package: str) -> list[str]:
    """Test modules that should exist: `pkg/x/y.py` → `tests/pkg/x/test_y.py` (`__init__.py` exempt)."""
    missing: list[str] = []
    for path in sorted((root / package).rglob("*.py")):
        if path.name != "__init__.py":
            relative = path.relative_to(root)
            mirror = Path("tests") / relative.parent / f"test_{path.name}"
            if not (root / mirror).is_file():
                missing.append(f"{relative} → {mirror}")
    return missing


def vague_names(root: Path, package: str) -> list[str]:
    """Modules or sub-packages whose name says nothing about what they own (utils, helpers, misc, …)."""
    paths = [*(root / package).rglob("*.py"), *(p for p in (root / package).rglob("*") if p.is_dir())]
    return sorted(str(p.relative_to(root)) for p in paths if p.stem in VAGUE)


def oversize(root: Path, package: str, limit: int) -> dict[str, int]:
    """Modules longer than `limit` lines → their line count."""
    counts = {
        str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines())
        for p in (root / package).rglob("*.py")
    }
    return {path: count for path, count in sorted(counts.items()) if count > limit}


# ---- the repository --------------------------------------------------------------------------------------


@pytest.mark.parametrize("package", PRODUCT)
def test_no_import_cycles(package: str) -> None:
    found = cycles(ROOT, package)
    assert not found, "import cycles:\n" + "\n".join(describe(chain) for chain in found)


def test_app_imports_no_training_stack() -> None:
    found = forbidden(ROOT, "app", APP_FORBIDDEN)
    assert not found, "app/ must not import training, scikit-learn, skl2onnx or onnx:\n" + "\n".join(found)


def test_nothing_outside_tests_imports_tests() -> None:
    found = importers_of(ROOT, "tests", OUTSIDE_TESTS)
    assert not found, "imports from tests/ outside tests/:\n" + "\n".join(found)


def test_no_test_module_imports_a_conftest() -> None:
    found = conftest_importers(ROOT)
    assert not found, "shared helpers live in tests/support.py, fixtures reach tests by name:\n" + "\n".join(found)


@pytest.mark.parametrize("package", PRODUCT)
def test_every_module_has_its_mirrored_test_module(package: str) -> None:
    missing = missing_mirrors(ROOT, package)
    assert not missing, "modules without their mirrored test module:\n" + "\n".join(missing)


@pytest.mark.parametrize("package", [*PRODUCT, "bench"])
def test_no_vague_module_names(package: str) -> None:
    found = vague_names(ROOT, package)
    assert not found, f"name modules after what they own, not {sorted(VAGUE)}: {found}"


@pytest.mark.parametrize("package", PRODUCT)
def test_product_modules_stay_small(package: str) -> None:
    found = {path: lines for path, lines in oversize(ROOT, package, MAX_LINES).items() if path not in OVERSIZE_ALLOWED}
    assert not found, f"modules over {MAX_LINES} lines (split them): " + ", ".join(
        f"{p} ({n})" for p, n in found.items()
    )


def test_the_allow_list_names_only_real_oversized_modules() -> None:
    stale = [path for path in OVERSIZE_ALLOWED if path not in oversize(ROOT, path.split("/")[0], MAX_LINES)]
    assert not stale, f"OVERSIZE_ALLOWED entries that are gone or small now: {stale}"


# ---- each checker fails on a fabricated package ------------------------------------------------------------


def fabricate(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path → source) under `root`; every directory gets an __init__.py."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        for parent in path.relative_to(root).parents:
            if parent != Path("."):
                (root / parent / "__init__.py").touch()
    return root


def test_a_two_module_cycle_is_reported_with_its_path(tmp_path: Path) -> None:
    fabricate(tmp_path, {"pkg/a.py": "from pkg import b\n", "pkg/b.py": "import os\n\nimport pkg.a\n"})
    found = cycles(tmp_path, "pkg")
    assert [describe(c) for c in found] == ["pkg.a → pkg.b (pkg/a.py:1) → pkg.a (pkg/b.py:3)"]


def test_cycles_hidden_in_functions_type_checking_and_relative_imports_count(tmp_path: Path) -> None:
    fabricate(
        tmp_path,
        {
            "pkg/sub/first.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg.sub.second import X\n",
            "pkg/sub/second.py": "def f() -> None:\n    from . import third\n",
            "pkg/sub/third.py": "from ..sub import first\n",
        },
    )
    chain = cycles(tmp_path, "pkg")
    assert len(chain) == 1
    assert [i.target for i in chain[0]] == ["pkg.sub.second", "pkg.sub.third", "pkg.sub.first"]
    assert [i.line for i in chain[0]] == [3, 2, 1]


def test_a_name_imported_from_a_package_is_an_edge_to_its_init(tmp_path: Path) -> None:
    fabricate(tmp_path, {"pkg/__init__.py": "from pkg.core import run\n", "pkg/core.py": "from pkg import VERSION\n"})
    assert [describe(c) for c in cycles(tmp_path, "pkg")] == [
        "pkg → pkg.core (pkg/__init__.py:1) → pkg (pkg/core.py:1)"
    ]


def test_an_acyclic_package_passes(tmp_path: Path) -> None:
    fabricate(tmp_path, {"pkg/a.py": "import pkg.b\nimport json\n", "pkg/b.py": "from pkg import c\n", "pkg/c.py": ""})
    assert cycles(tmp_path, "pkg") == []


def test_forbidden_imports_are_found_anywhere_but_onnxruntime_is_not_onnx(tmp_path: Path) -> None:
    fabricate(
        tmp_path,
        {
            "app/ok.py": "import onnxruntime\nfrom app import ok\n",
            "app/bad.py": (
                "import importlib\n"
                "def f() -> None:\n    from sklearn.linear_model import LogisticRegression\n"
                "import onnx.helper\n"
                "importlib.import_module('training.pipeline')\n"
            ),
        },
    )
    assert forbidden(tmp_path, "app", APP_FORBIDDEN) == [
        "app/bad.py:3: sklearn.linear_model",
        "app/bad.py:4: onnx.helper",
        "app/bad.py:5: training.pipeline",
    ]


def test_imports_of_tests_outside_tests_are_found(tmp_path: Path) -> None:
    fabricate(
        tmp_path,
        {"bench/probe.py": "import sys\nfrom tests.deploy.test_x import ready\n", "app/a.py": "import testsuite\n"},
    )
    assert importers_of(tmp_path, "tests", OUTSIDE_TESTS) == ["bench/probe.py:2: tests.deploy.test_x"]


def test_imports_of_a_conftest_are_found(tmp_path: Path) -> None:
    fabricate(
        tmp_path,
        {
            "tests/conftest.py": "import pytest\n",
            "tests/app/test_a.py": "from tests.conftest import helper\nfrom tests.support import ROOT\n",
            "tests/app/test_b.py": "from ..conftest import helper\n",
        },
    )
    assert conftest_importers(tmp_path) == [
        "tests/app/test_a.py:1: tests.conftest",
        "tests/app/test_b.py:1: tests.conftest",
    ]


def test_missing_mirrors_are_listed(tmp_path: Path) -> None:
    fabricate(
        tmp_path,
        {
            "app/__main__.py": "",
            "app/x/y.py": "",
            "app/z.py": "",
            "tests/app/test___main__.py": "",
            "tests/app/test_z.py": "",
        },
    )
    assert missing_mirrors(tmp_path, "app") == ["app/x/y.py → tests/app/x/test_y.py"]


def test_vague_names_and_oversized_modules_are_found(tmp_path: Path) -> None:
    fabricate(
        tmp_path,
        {"app/utils.py": "", "app/helpers/io.py": "", "app/long.py": "x = 1\n" * 301, "app/ok.py": "x = 1\n" * 300},
    )
    assert vague_names(tmp_path, "app") == ["app/helpers", "app/utils.py"]
    assert oversize(tmp_path, "app", MAX_LINES) == {"app/long.py": 301}

"""Imports only point down the layer table (``moqwk/_layers.py``), and the core stays pure.

Every module of moqwk is parsed with ``ast`` and every import of another moqwk module counts:
at module level, inside a function, and under ``if TYPE_CHECKING:`` (a type-only import still
ties the importer to the module above it, and closes a circle for a reader and for mypy). A
failure names the importing module, the imported one and both layers. A module the table does
not place fails too, so a new module is given its layer when it is added.

``scripts/import_graph.py`` prints the same graph, package by package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import moqwk.core
from moqwk import _layers as L

REPO = Path(__file__).resolve().parent.parent

#: Upward imports allowed for now. Empty: the stages compute records and ``moqwk/_api/`` writes
#: their reports. Nothing may be added here; a new upward import is a design change to discuss.
PENDING: set[tuple[str, str]] = set()

IMPORTS = L.all_imports()
MODULES = L.module_files()


def where(imp: L.Import) -> str:
    kind = "type-only, " if imp.type_only else "function-local, " if imp.local else ""
    return (f"{imp.importer} [{L.layer_of(imp.importer)}] imports {imp.imported} "
            f"[{L.layer_of(imp.imported)}] ({kind}line {imp.line})")


# --- the whole package ------------------------------------------------------------------------

def test_every_module_has_a_layer():
    missing = L.unplaced(MODULES)
    assert not missing, (f"{', '.join(missing)}: not in the layer table; add it to TABLE in "
                         "moqwk/_layers.py (and to docs/explanation/architecture.md)")


def test_no_import_runs_up_the_layers():
    bad = [where(i) for i in L.upward(IMPORTS) if (i.importer, i.imported) not in PENDING]
    assert not bad, ("imports point down the layer table (moqwk/_layers.py); these run up:\n  "
                     + "\n  ".join(bad) + "\nmove the shared piece down, or let the caller above "
                     "both do the work")


def test_the_output_runs_no_stage():
    """Views render: the caller (moqwk/_api/, moqwk/cli/) runs the stage and hands them its
    results."""
    bad = [where(i) for i in L.not_read(IMPORTS)]
    assert not bad, "the output layer imports a stage:\n  " + "\n  ".join(bad)


def test_no_import_circle():
    edges = [(i.importer, i.imported) for i in IMPORTS if i.importer != i.imported]
    circles = L.cycles(edges)
    assert not circles, "import circles (type-only imports count):\n  " + "\n  ".join(
        " <-> ".join(c) for c in circles)
    packages = L.cycles((L.package_of(a), L.package_of(b)) for a, b in edges
                        if L.package_of(a) != L.package_of(b))
    assert not packages, f"package circles: {packages}"


def test_pending_upward_imports_still_exist():
    """A PENDING entry whose import is gone must be removed, so the list only shrinks."""
    found = {(i.importer, i.imported) for i in L.upward(IMPORTS)}
    stale = sorted(PENDING - found)
    assert not stale, f"remove from PENDING (the import is gone): {stale}"


def test_the_table_names_real_modules_and_layers():
    for prefix, layer in L.TABLE.items():
        assert layer in L.LAYERS, (prefix, layer)
        assert any(m == prefix or m.startswith(prefix + ".") for m in MODULES), \
            f"TABLE names {prefix}, which is no module of moqwk"


def test_the_tree_shows_the_layers():
    """No module sits loose at the top but the few named, and no package spans two layers."""
    loose = {m for m, p in MODULES.items()
             if m.count(".") == 1 and p.name != "__init__.py"}
    assert loose == set(L.TOP_LEVEL), (
        f"loose at the top (put it in its layer's package): {sorted(loose - set(L.TOP_LEVEL))}; "
        f"no such module: {sorted(set(L.TOP_LEVEL) - loose)}")
    by_package: dict[str, set[str]] = {}
    for m in MODULES:
        if m.count(".") >= 1 and m not in L.TOP_LEVEL:
            by_package.setdefault(".".join(m.split(".")[:2]), set()).add(L.layer_of(m))
    split = {p: sorted(layers) for p, layers in by_package.items() if len(layers) > 1}
    assert not split, f"packages across layers: {split}"


def test_the_architecture_page_shows_the_table():
    """Each layer is on the page with the packages the table gives it."""
    text = (REPO / "docs/explanation/architecture.md").read_text(encoding="utf-8")
    for layer in L.LAYERS:
        row = re.search(rf"^\| {layer} \| (.*?) \|", text, re.M)
        assert row, f"layer {layer} is not in the page"
        for prefix, at in L.TABLE.items():
            if at == layer and prefix != "moqwk":
                path = prefix.replace(".", "/")
                path = f"`{path}.py`" if (REPO / f"{path}.py").exists() else f"`{path}/`"
                assert path in row.group(1), f"the page's {layer} row lacks {path}"


# --- the checker itself -----------------------------------------------------------------------

KNOWN = {"moqwk", "moqwk.core", "moqwk.core.metrics", "moqwk.console", "moqwk.console.views",
         "moqwk.stages.search_loop", "moqwk.config", "moqwk.config.search", "moqwk.study",
         "moqwk.study.space", "moqwk.base", "moqwk.base.artifacts", "moqwk.stages"}


@pytest.mark.parametrize("source, module, imported, local, type_only", [
    ("from moqwk.stages.search_loop import run_search", "moqwk.console.views",
     "moqwk.stages.search_loop", False, False),
    ("def f():\n    from moqwk.stages.search_loop import run_search\n", "moqwk.console.views",
     "moqwk.stages.search_loop", True, False),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from moqwk.config.search import S\n",
     "moqwk.study.space", "moqwk.config.search", False, True),
    ("import typing\nif typing.TYPE_CHECKING:\n    import moqwk.config.search\n",
     "moqwk.study.space", "moqwk.config.search", False, True),
    ("from ..config import search", "moqwk.study.space", "moqwk.config.search", False, False),
    ("from ..stages import search_loop", "moqwk.console.views", "moqwk.stages.search_loop",
     False, False),
    ("from moqwk.base import artifacts", "moqwk.core.metrics", "moqwk.base.artifacts", False,
     False),
    ("from moqwk import __version__", "moqwk.base.artifacts", "moqwk", False, False),
    ("class A:\n    def m(self):\n        import moqwk.stages.search_loop\n", "moqwk.core.metrics",
     "moqwk.stages.search_loop", True, False),
])
def test_the_checker_finds_every_kind_of_import(source, module, imported, local, type_only):
    found = L.imports_of(module, source, KNOWN)
    assert [(i.imported, i.local, i.type_only) for i in found] == [(imported, local, type_only)]


def test_the_checker_resolves_relative_imports_in_a_package_init():
    found = L.imports_of("moqwk.console", "from .views import x\nfrom . import views", KNOWN,
                         is_package=True)
    assert {i.imported for i in found} == {"moqwk.console.views"}


def test_the_else_branch_of_type_checking_is_a_real_import():
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\n"
              "else:\n    import moqwk.stages.search_loop\n")
    (imp,) = L.imports_of("moqwk.core.metrics", source, KNOWN)
    assert not imp.type_only


@pytest.mark.parametrize("module, layer", [
    ("moqwk.core.metrics", "core"), ("moqwk.config.search", "config"),
    ("moqwk.stages.search_loop", "stages"),
    ("moqwk", "api"), ("moqwk._api.study", "api"), ("moqwk.cli.search", "cli"),
    ("moqwk.run.study_url", "run"), ("moqwk.nothing", None), ("numpy", None),
])
def test_the_longest_prefix_gives_the_layer(module, layer):
    assert L.layer_of(module) == layer


def test_upward_and_not_read_are_reported():
    up = L.Import("moqwk.study.space", "moqwk.config.search", 1, False, True)
    down = L.Import("moqwk.config.search", "moqwk.study.samplers", 1, False, False)
    view = L.Import("moqwk.console.views", "moqwk.stages.search_loop", 1, True, False)
    assert L.upward([up, down, view]) == [up]
    assert L.not_read([up, down, view]) == [view]


def test_cycles_finds_each_circle_once():
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "f"),
             ("g", "a")]
    assert L.cycles(edges) == [["a", "b", "c"], ["d", "e"], ["f"]]
    assert L.cycles([("a", "b"), ("b", "c")]) == []


# --- the core stays pure ----------------------------------------------------------------------
# An allow-list, not a deny-list: a module that starts importing Optuna, rich, yaml, the file
# system or the rest of moqwk fails here without anyone having thought to forbid it first.

CORE = Path(moqwk.core.__file__).parent

#: Standard-library modules the core may import: none of them touches files, processes or the
#: network. Adding one is a decision; write it here with the reason.
STDLIB = {
    "__future__", "abc", "collections", "collections.abc", "dataclasses", "enum", "functools",
    "hashlib",  # content hashes of arrays (splits)
    "itertools", "json",  # canonical JSON for hashing, not for files
    "math", "numbers", "operator", "re", "statistics", "typing",
    "types",  # MappingProxyType: read-only views of a fitted mapping's numbers
    "warnings",  # data warnings the CLI prints as one line
}
#: Third-party packages (with their submodules): arrays and frames in, arrays and frames out.
NUMERIC = {"numpy", "pandas", "scipy", "sklearn"}


def allowed(name: str) -> bool:
    top = name.split(".")[0]
    return name in STDLIB or top in NUMERIC or name == "moqwk.core" or \
        name.startswith("moqwk.core.")


def imports(source: str, *, package: str = "moqwk.core") -> set[str]:
    """Every module ``source`` imports, at any depth, relative imports made absolute, plus
    ``importlib.import_module`` / ``__import__`` calls (named ``<dynamic ...>``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            if node.module is None or node.level:
                names.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if fname in ("import_module", "__import__"):
                names.add(f"<dynamic {fname}>")
    return names


def core_files() -> list[Path]:
    return sorted(CORE.glob("*.py"))


def test_core_has_the_modules_this_test_is_about():
    names = {f.stem for f in core_files()}
    assert {"metrics", "objectives", "pareto", "scale", "selection", "splits"} <= names
    assert {m for m in MODULES if L.layer_of(m) == "core"} == \
        {"moqwk.core", *(f"moqwk.core.{f.stem}" for f in core_files() if f.stem != "__init__")}


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_module_imports_only_the_allow_list(path: Path):
    bad = sorted(n for n in imports(path.read_text(encoding="utf-8")) if not allowed(n))
    assert not bad, (f"moqwk/core/{path.name} imports {', '.join(bad)}: the core takes arrays "
                     "and frames and returns them; keep I/O, frameworks and the rest of moqwk out "
                     "(or add a pure stdlib module to STDLIB with its reason)")


@pytest.mark.parametrize("source, offender", [
    ("import optuna", "optuna"),
    ("from optuna.trial import FrozenTrial", "optuna.trial"),
    ("def f():\n    import xgboost\n", "xgboost"),
    ("import os.path", "os.path"),
    ("from pathlib import Path", "pathlib"),
    ("from moqwk.study import space", "moqwk.study"),
    ("from .. import cli", "moqwk.cli"),
    ("from ..config import load_config", "moqwk.config"),
    ("import importlib\nm = importlib.import_module('rich')", "<dynamic import_module>"),
    ("m = __import__('yaml')", "<dynamic __import__>"),
])
def test_the_allow_list_catches_what_the_old_deny_list_missed(source: str, offender: str):
    """The checker itself: each of these must be reported."""
    found = imports(source)
    assert offender in found, found
    assert not allowed(offender)


@pytest.mark.parametrize("source", [
    "import numpy as np", "from scipy.stats import norm", "from . import metrics",
    "from .objectives import metric", "from moqwk.core.pareto import loss_matrix",
    "from collections.abc import Mapping",
])
def test_the_allow_list_accepts_pure_imports(source: str):
    assert all(allowed(n) for n in imports(source)), imports(source)


def test_open_is_not_called_in_the_core():
    for f in core_files():
        tree = ast.parse(f.read_text(encoding="utf-8"))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id in ("open", "exec", "eval")]
        assert not calls, f"{f.name} calls {calls[0].func.id}"


def test_the_import_graph_script_agrees():
    """scripts/import_graph.py reads the same table and reports only the PENDING edges."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(REPO / "scripts/import_graph.py")],
                         capture_output=True, text=True, cwd=REPO)
    ups = re.findall(r"^UP: (\S+) \[\w+\] imports (\S+) ", out.stdout, re.M)
    assert set(ups) == PENDING, out.stdout[-2000:]
    assert "CIRCLE" not in out.stdout and "NOT READ" not in out.stdout
    assert out.returncode == (1 if PENDING else 0)


def test_the_architecture_page_has_the_current_picture():
    import subprocess
    import sys

    drawn = subprocess.run([sys.executable, str(REPO / "scripts/import_graph.py"), "--mermaid"],
                           capture_output=True, text=True, cwd=REPO).stdout.strip()
    text = (REPO / "docs/explanation/architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```mermaid\n(.*?)\n```", text, re.S)
    assert block and block.group(1).strip() == drawn, (
        "the picture in docs/explanation/architecture.md is stale: paste the output of "
        "scripts/import_graph.py --mermaid")

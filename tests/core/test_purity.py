"""The core stays pure: moqwk.core imports only what an allow-list names.

An allow-list, not a deny-list: a module that starts importing Optuna, rich, yaml, the file
system or the rest of moqwk fails here without anyone having thought to forbid it first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import moqwk.core

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

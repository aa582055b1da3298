"""The core stays pure: no Optuna, XGBoost, rich, file-system or CLI imports under moqwk.core."""

from __future__ import annotations

import ast
from pathlib import Path

import moqwk.core

FORBIDDEN = {"optuna", "xgboost", "rich", "yaml", "os", "pathlib", "shutil", "tempfile",
             "sqlalchemy", "psycopg", "moqwk.cli", "moqwk.cli_search", "moqwk.artifacts",
             "moqwk.search", "moqwk.study", "moqwk.runs", "moqwk.cv", "moqwk.features",
             "moqwk.corpus", "moqwk.selector"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_modules_import_nothing_from_the_edges():
    core = Path(moqwk.core.__file__).parent
    files = sorted(core.glob("*.py"))
    assert len(files) >= 5  # metrics, scale, splits, pareto, selection
    for f in files:
        for name in _imports(f):
            top = name.split(".")[0]
            bad = name in FORBIDDEN or top in FORBIDDEN or any(
                name.startswith(p + ".") for p in FORBIDDEN)
            assert not bad, f"{f.name} imports {name}: keep I/O and frameworks out of the core"


def test_open_is_not_called_in_the_core():
    core = Path(moqwk.core.__file__).parent
    for f in core.glob("*.py"):
        tree = ast.parse(f.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id == "open"]
        assert not calls, f"{f.name} opens files"

"""The stages compute and return records; the layer above them writes the reports.

``moqwk/stages/selector.py`` and ``moqwk/stages/compare.py`` import nothing from
``moqwk/reports/`` or ``moqwk/console/``, directly (at any depth of the module, function bodies
included) or through what they import; ``moqwk/_api/select_outputs.py``
and ``moqwk/_api/compare_outputs.py`` write.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import moqwk

PACKAGE = Path(moqwk.__file__).parent
STAGES = ("selector", "compare")
OUTPUT = ("moqwk.reports", "moqwk.console")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_module_imports_no_output_module(stage):
    bad = sorted(n for n in _imported(PACKAGE / "stages" / f"{stage}.py") if n.startswith(OUTPUT))
    assert bad == []


@pytest.mark.parametrize("stage", STAGES)
def test_importing_a_stage_loads_no_output_module(stage):
    code = (f"import sys, moqwk.stages.{stage}; print(sorted(m for m in sys.modules "
            f"if m.startswith({OUTPUT!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_the_writers_are_above_the_stages():
    for writer, stage in (("select_outputs", "moqwk.stages.selector"),
                          ("compare_outputs", "moqwk.stages.compare")):
        names = _imported(PACKAGE / "_api" / f"{writer}.py")
        assert stage in names and any(n.startswith("moqwk.reports") for n in names)

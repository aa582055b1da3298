"""Golden console tests: what moqwk prints, compared with stored text, as Rich tests its own
renderables.

Each renderable is built from fixed JSON under ``tests/golden/inputs/`` (never a live search)
and printed on a 100-column console without colour; the text must equal
``tests/golden/<name>.txt`` line for line (trailing spaces ignored). When a change to the output
is intended, regenerate the files deliberately and review the diff (see tests/golden/README.md)::

    MOQWK_REGEN_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden_console.py
    git diff tests/golden/
"""

from __future__ import annotations

import difflib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from moqwk.console.live import live_view
from moqwk.console.tables import trials_table
from moqwk.console.views import show_compare, show_selection

GOLDEN = Path(__file__).parent / "golden"
INPUTS = GOLDEN / "inputs"
REGEN = os.environ.get("MOQWK_REGEN_GOLDEN") == "1"
WIDTH = 100


def load(name: str):
    return json.loads((INPUTS / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich reads these; none may change a golden text."""
    for var in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM", "TTY_COMPATIBLE",
                "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES"):
        monkeypatch.delenv(var, raising=False)


def render(draw: Callable[[Console], object], width: int = WIDTH) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=False,
                      legacy_windows=False)
    draw(console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if REGEN:
        path.write_text(text, encoding="utf-8")
        pytest.skip(f"MOQWK_REGEN_GOLDEN=1: wrote {path}; review `git diff tests/golden/` "
                    "before committing it")
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with MOQWK_REGEN_GOLDEN=1 (see "
                    "tests/golden/README.md)", pytrace=False)
    want = path.read_text(encoding="utf-8")
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            f"{path.name} (stored)", f"{path.name} (now)"))
        pytest.fail(f"the console output differs from {path}:\n{diff}\nIf the change is "
                    "intended, regenerate with MOQWK_REGEN_GOLDEN=1 and review the diff.",
                    pytrace=False)


def test_trial_table():
    check("trials_table", render(lambda c: c.print(trials_table(load("trials.json"), limit=None))))


def test_live_search_view():
    check("live_view", render(lambda c: c.print(live_view(load("trials.json"),
                                                          load("progress.json"), limit=5))))


def test_selection():
    check("selection", render(lambda c: show_selection(c, load("selection.json"),
                                                       Path("runs/demo"))))


def test_selection_ignores_a_same_named_run_in_the_working_directory(tmp_path, monkeypatch):
    """After `make demo` the checkout holds runs/demo/reports/optuna_summary.html; the printed
    selection of another run called runs/demo must not mention it: whether a report was written
    is the caller's to say, never the working directory's."""
    report = tmp_path / "runs" / "demo" / "reports" / "optuna_summary.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html></html>", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    text = render(lambda c: show_selection(c, load("selection.json"), Path("runs/demo")))
    assert "report with figures" not in text
    told = render(lambda c: show_selection(c, load("selection.json"), Path("runs/demo"),
                                           html_report=Path("runs/demo/reports/x.html")))
    assert told.splitlines()[-1] == "report with figures: runs/demo/reports/x.html"


def test_compare():
    check("compare", render(lambda c: show_compare(c, load("compare.json"), Path("compare"))))


def test_compare_at_80_columns():
    """An 80-column terminal: every run name whole on its lines, every header on its own two
    lines, every "in/fresh" pair on one line (the boxed table folded names mid-word and
    wrapped its headers)."""
    check("compare_80", render(lambda c: show_compare(c, load("compare.json"), Path("compare")),
                               width=80))

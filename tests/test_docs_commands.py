"""The README's pipeline and the tutorial's demo part, run as a user runs them.

The shell commands are read from the fenced ``sh`` blocks of README.md ("The pipeline") and of
docs/tutorial.md ("Part 1: the demo corpus") and run one after another in a temporary directory,
each as its own process of this environment's ``moqwk``. Every command must exit 0.

Only these substitutions are made, and each must still apply (a test fails when the docs no
longer contain what it replaces, so the list cannot silently grow stale):

- README: ``. .venv/bin/activate`` is done by putting this environment's ``bin`` first on
  ``PATH`` (what activating does); ``essays.csv`` is the demo corpus written as CSV with the
  columns the README names, and ``new_essays.csv`` 12 essays of another demo corpus (seed 1,
  new prompts) without scores; the ``my.yaml`` that ``init`` wrote gets a two-point
  ``search.grid`` (the default grid has 24 points), ``model.nthread: 1`` (which changes no
  prediction and no hash; XGBoost on every core of a busy 2-core machine is many times slower
  than on one) and 16 instead of 64 SVD components per n-gram kind (720 essays; the default
  fitted stretch refits features on inner folds, so their size is most of the run's cost);
  ``search`` gets ``--n-trials 3`` and ``compare`` ``--fresh-repeats 1`` (3 fresh fold
  assignments took about a minute here);
  ``dashboard`` gets ``--port 0``, is read until it prints its URL, fetched once and stopped
  with Ctrl-C (SIGINT), as a user stops it.
- Tutorial: ``make demo`` is what it runs after the install, ``.venv/bin/moqwk demo``, with
  ``--n-trials 4``; ``.venv`` is a link to this environment; ``--n-trials 16`` is ``3``.

Besides the exit codes, the files the docs say a command writes must exist afterwards.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TUTORIAL = REPO / "docs" / "tutorial.md"
BIN = Path(sys.executable).parent
MOQWK = BIN / "moqwk"
TIMEOUT = 600  # per command; the slowest (select, compare) take well under a minute

if not MOQWK.exists():  # pragma: no cover - only outside a venv with moqwk installed
    pytest.skip(f"no moqwk script next to {sys.executable}", allow_module_level=True)


# --------------------------------------------------------------------------- reading the docs


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of its level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = markdown.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines))
                if re.match(rf"#{{1,{level}}} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def sh_commands(markdown: str) -> list[list[str]]:
    """Each command of the ``sh`` blocks as argv: continued lines joined, comments dropped."""
    out = []
    for block in re.findall(r"^```sh\n(.*?)^```", markdown, re.M | re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                out.append(argv)
    return out


def test_the_doc_blocks_are_found() -> None:
    """The extraction itself: a change of headings must not make the runs below run nothing."""
    readme = sh_commands(section(README.read_text(encoding="utf-8"), "## The pipeline"))
    assert [a[1] for a in readme if a[0] == "moqwk"] == [
        "init", "cv", "search", "status", "select", "grid", "select", "compare", "report",
        "dashboard", "fit", "predict"]
    tut = sh_commands(section(TUTORIAL.read_text(encoding="utf-8"),
                              "## Part 1: the demo corpus"))
    assert tut[0] == ["make", "demo"]
    assert [a[1] for a in tut if a[0] == ".venv/bin/moqwk"] == ["cv", "search", "status",
                                                                 "select"]


# --------------------------------------------------------------------------- running them


class Runner:
    """Runs argv in ``cwd`` with this environment's ``bin`` first on PATH; keeps a transcript."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env.pop("COLUMNS", None)
        self.out: dict[str, str] = {}

    def __call__(self, argv: list[str]) -> str:
        t0 = time.monotonic()
        proc = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT)
        shown = shlex.join(argv)
        assert proc.returncode == 0, (f"`{shown}` exited {proc.returncode} after "
                                      f"{time.monotonic() - t0:.0f}s\n{proc.stdout[-3000:]}\n"
                                      f"{proc.stderr[-3000:]}")
        self.out[shown] = proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    def serve_once(self, argv: list[str]) -> str:
        """Start a server command, read its URL, fetch it, stop it with SIGINT (Ctrl-C)."""
        proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_ctrl_c_as_on_a_terminal)
        try:
            seen, url, deadline = [], None, time.monotonic() + 60
            while url is None and time.monotonic() < deadline:
                line = proc.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    break
                seen.append(line)
                m = re.search(r"https?://[^\s]+", line)
                url = m.group(0) if m else None
            assert url, f"`{shlex.join(argv)}` printed no URL:\n{''.join(seen)}"
            with urllib.request.urlopen(url, timeout=30) as resp:
                assert resp.status == 200
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
            rest = proc.stdout.read()  # type: ignore[union-attr]  # (communicate would skip
            # what readline already buffered)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode in (0, 130), f"stopped with Ctrl-C, it exited {proc.returncode}"
        return "".join(seen) + rest


def _ctrl_c_as_on_a_terminal() -> None:
    """Undo an inherited SIGINT-ignore in the child. A shell starts background jobs (``nohup
    ... &``, some CI runners) with SIGINT ignored, and children inherit that; a user's terminal
    never does, and Ctrl-C is what the docs say stops the dashboard."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Substitutions:
    """The test's substitutions; :meth:`check_all_used` fails when one no longer applies."""

    def __init__(self, names: list[str]) -> None:
        self.unused = set(names)

    def use(self, name: str) -> None:
        self.unused.discard(name)

    def check_all_used(self) -> None:
        assert not self.unused, (f"substitutions that no longer apply to the docs: "
                                 f"{sorted(self.unused)}; update tests/test_docs_commands.py")


def layout_files(markdown: str) -> list[str]:
    """The paths of README's "Where the results land" tree, relative to RUN_DIR."""
    block = re.search(r"^```text\nRUN_DIR/\n(.*?)^```", markdown, re.M | re.S)
    assert block, "README has no RUN_DIR/ layout block"
    paths, parents = [], {}
    for line in block.group(1).splitlines():
        name = line.split()[0]
        depth = (len(line) - len(line.lstrip())) // 2
        parents[depth] = name
        paths.append("".join(parents[d] for d in range(1, depth)) + name)
    return paths


def test_readme_pipeline_runs_on_the_demo_corpus(tmp_path: Path) -> None:
    from moqwk.data.demo_corpus import make_demo_corpus

    readme = README.read_text(encoding="utf-8")
    commands = sh_commands(section(readme, "## The pipeline"))
    corpus = make_demo_corpus(0).rename(columns={"essay_id": "id"})
    corpus.to_csv(tmp_path / "essays.csv", index=False)
    new = make_demo_corpus(1).rename(columns={"essay_id": "id"}).drop(columns="score")
    new["prompt"] = "new-" + new["prompt"].astype(str)
    new.head(12).to_csv(tmp_path / "new_essays.csv", index=False)

    run = Runner(tmp_path)
    subs = Substitutions(["activate", "my.yaml", "search --n-trials", "compare --fresh-repeats",
                          "dashboard"])
    for argv in commands:
        if argv[:2] == [".", ".venv/bin/activate"]:
            subs.use("activate")  # Runner puts this environment's bin first on PATH
            continue
        assert argv[0] == "moqwk", f"README's pipeline runs more than moqwk: {argv}"
        cmd = argv[1]
        if cmd == "search":
            subs.use("search --n-trials")
            assert "--n-trials" not in argv
            argv = [*argv, "--n-trials", "3"]
        if cmd == "compare":
            subs.use("compare --fresh-repeats")
            assert "--fresh-repeats" not in argv
            argv = [*argv, "--fresh-repeats", "1"]
        if cmd == "dashboard":
            subs.use("dashboard")
            out = run.serve_once([*argv, "--port", "0"])
            assert "runs/nsga2/study.db; studies: moqwk" in out, out
            continue
        run(argv)
        if cmd == "init":
            subs.use("my.yaml")
            config = tmp_path / argv[argv.index("-o") + 1]
            raw = yaml.safe_load(config.read_text(encoding="utf-8"))
            raw["search"]["grid"] = {"max_depth": [3, 5]}
            raw["model"] = {**raw.get("model", {}), "nthread": 1}
            for kind in ("word", "char"):  # 16 SVD components instead of init's 64
                raw["features"][kind]["svd_components"] = 16
            config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    subs.check_all_used()

    # What the README says these commands leave behind.
    nsga2 = tmp_path / "runs" / "nsga2"
    missing = [p for p in layout_files(readme) if not (nsga2 / p).exists()]
    assert not missing, f"README's run-dir layout lists files the pipeline did not write: {missing}"
    for rel in ("runs/baseline/artifacts/cv_metrics.json", "runs/grid/run.json",
                "runs/grid/artifacts/selected_params.json", "runs/compare/compare.json",
                "runs/nsga2/model/model.json"):
        assert (tmp_path / rel).is_file(), rel
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns[:5]) == ["id", "prompt", "y_pred", "y_pred_raw",
                                        "y_pred_norm"]  # the input's own id column (id here)
    assert len(scores) == 12 and scores["y_pred"].between(1.0, 5.0).all()


def test_tutorial_demo_part_runs(tmp_path: Path) -> None:
    tutorial = TUTORIAL.read_text(encoding="utf-8")
    part1 = section(tutorial, "## Part 1: the demo corpus")
    (tmp_path / ".venv").symlink_to(BIN.parent, target_is_directory=True)
    run = Runner(tmp_path)
    subs = Substitutions(["make demo", "--n-trials 16"])
    for argv in sh_commands(part1):
        if argv == ["make", "demo"]:
            subs.use("make demo")
            argv = [".venv/bin/moqwk", "demo", "--n-trials", "4"]
        if "--n-trials" in argv and argv[argv.index("--n-trials") + 1] == "16":
            subs.use("--n-trials 16")
            argv[argv.index("--n-trials") + 1] = "3"
        out = run(argv)
        if argv[1:2] == ["cv"]:
            assert "Per-prompt QWK (worst first)" in out and "CV summary" in out, out
        if argv[1:2] == ["select"]:
            assert "Ranked Pareto front (tie tolerance" in out and "Selected trial" in out, out
    subs.check_all_used()
    named = sorted(set(re.findall(r"`(runs/(?:tut|demo)/[\w./-]+)`", part1)))
    assert "runs/tut/reports/optuna_summary.html" in named
    missing = [p for p in named if not (tmp_path / p).exists()]
    assert not missing, f"the tutorial names files its commands did not write: {missing}"

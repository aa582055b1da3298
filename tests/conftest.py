"""Shared pytest fixtures for moqwk's tests.

- ``_outside_the_checkout`` (autouse): each test's working directory is an empty tmp dir, so
  no test reads or writes cwd-relative paths such as ``runs/`` in the checkout.
- ``_isolated_cache`` (autouse, session): ``MOQWK_CACHE_DIR`` points at one per-session tmp dir,
  so tests never read or write the user's feature cache, yet share built fold features.
- ``demo_frame``: the built-in demo corpus (seed 0) as a DataFrame; do not modify it.
- ``demo_config_path``: a small, fast YAML config on the demo corpus in ``tmp_path``
  (``demo_config_yaml``: its text, session-scoped).
- ``ellipse_csv``: path of the real ELLIPSE CSV; skips when absent unless
  ``MOQWK_REQUIRE_SHARED_DATA=1`` (then it fails, so CI cannot silently skip it).
- ``write_search_config``: writes a small, fast search config (demo corpus, 5-parameter space).
- ``postgres_url``: ``MOQWK_TEST_POSTGRES_URL``; skips when unset unless
  ``MOQWK_REQUIRE_POSTGRES=1``.
- ``moqwk``: ``moqwk(*argv) -> (exit code, stdout, stderr)``, the CLI run in-process.
- ``error_lines``, ``assert_one_error_line``: what a failed command wrote to stderr, and the
  check that it is one ``Error:`` line naming what it must (see :func:`_assert_one_error_line`).
- ``assert_guardrails``: every complete trial's two constraints are its tail MAE minus the
  baseline's plus the tolerance.

- ``searched_run``: one real 8-trial demo search, shared by the select, report, dashboard and
  browser tests; ``selected_run``: a copy of it, selected and compared; ``reported_run``: a copy
  of that with its HTML report rebuilt by ``moqwk report``.

Helpers are offered as fixtures: under ``--import-mode=importlib`` a test module cannot import
this file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
ELLIPSE_DEFAULT = REPO.parent / "shared" / "data" / "ellipse" / "ELLIPSE_Final_github_test.csv"

#: The demo corpus with its declared scale, small n-gram SVDs and a short baseline: a CV run
#: takes seconds. ``model.nthread: 1`` because XGBoost on all cores of a busy 2-core machine ran
#: 10-15x slower than on one thread. Tests that need other values write their own config.
DEMO_CONFIG_YAML = """\
data:
  demo: true
  demo_seed: 0
scale: {kind: global, min: 1.0, max: 5.0, step: 0.5}
features:
  handcrafted: true
  word: {ngram_range: [1, 2], min_df: 2, svd_components: 16}
  char: {ngram_range: [2, 4], min_df: 3, svd_components: 16}
  lexical: {enabled: false}   # the three families the tests' expectations are written for; the
                              # default (lexical on, ADR 0005) is tested on its own
cv: {n_folds: 5, repeats: 1, seed: 42, min_prompt_n: 20}
model: {nthread: 1}
mapping: {method: round}   # the rounding the tests' expectations are written for; the default
                           # (stretch) is tested on its own in test_mapping_engine.py
baseline:
  params: {max_depth: 3, learning_rate: 0.1, n_estimators: 60}
"""


@pytest.fixture(autouse=True)
def _outside_the_checkout(tmp_path_factory: pytest.TempPathFactory,
                          monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own empty working directory, never in the checkout: a test must
    not see what a user's earlier command left there (``make demo`` writes ``runs/demo``), and
    a relative path a command writes by default (``compare --out compare``) lands in a tmp dir.
    Tests find the repository's files through ``REPO``, never through the working directory."""
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("moqwk-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOQWK_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="session")
def _demo_frame_cached() -> pd.DataFrame:
    from moqwk.data.demo_corpus import make_demo_corpus

    return make_demo_corpus(0)


@pytest.fixture
def demo_frame(_demo_frame_cached: pd.DataFrame) -> pd.DataFrame:
    """The demo corpus (seed 0): 720 essays, 10 prompts, columns essay_id/prompt/text/score."""
    return _demo_frame_cached.copy()


@pytest.fixture(scope="session")
def demo_config_yaml() -> str:
    """:data:`DEMO_CONFIG_YAML` (for module-scoped fixtures that write their own copy)."""
    return DEMO_CONFIG_YAML


@pytest.fixture
def demo_config_path(tmp_path: Path, demo_config_yaml: str) -> Path:
    """``tmp_path/config.yaml`` holding :data:`DEMO_CONFIG_YAML`."""
    path = tmp_path / "config.yaml"
    path.write_text(demo_config_yaml, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ellipse_csv() -> Path:
    """The ELLIPSE test-split CSV (``MOQWK_ELLIPSE_CSV`` or ``../shared/data/ellipse``)."""
    path = Path(os.environ.get("MOQWK_ELLIPSE_CSV") or ELLIPSE_DEFAULT)
    if not path.is_file():
        why = (f"ELLIPSE corpus not found at {path}; set MOQWK_ELLIPSE_CSV to the "
               "ELLIPSE_Final_github_test.csv path")
        if os.environ.get("MOQWK_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"MOQWK_REQUIRE_SHARED_DATA=1 but {why}", pytrace=False)
        pytest.skip(why)
    return path


# --------------------------------------------------------------------------- search and select

#: A small search around :data:`DEMO_CONFIG_YAML`'s corpus and features: each trial takes about
#: a second on one thread, and a population of 4 reaches NSGA-II's second generation in 8 trials.
SEARCH_SPACE = {
    "n_estimators": {"type": "int", "low": 30, "high": 120, "step": 30},
    "max_depth": {"type": "int", "low": 2, "high": 5},
    "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
    "min_child_weight": {"type": "float", "low": 1.0, "high": 16.0, "log": True},
    "subsample": {"type": "float", "low": 0.6, "high": 1.0},
}
SEARCH_BASELINE = {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 60,
                   "min_child_weight": 4.0, "subsample": 0.8}

#: For tests of two ``moqwk search`` processes on one study: trials of a few seconds each. The
#: demo's trials take a third of a second, so a budget of 8 is done in 3 s, about what a second
#: process needs to import its libraries; one worker could then run every trial and the test
#: could not show that both took part. With these one worker alone would need ~5x its start-up.
WORKERS_SPACE = {"n_estimators": {"type": "int", "low": 500, "high": 900, "step": 200}}
WORKERS_BASELINE = {"n_estimators": 500}


@pytest.fixture(scope="session")
def write_search_config(demo_config_yaml: str):
    """``write(path, *, tolerance=0.05, baseline=None, space=None, search=None, model=None)
    -> path``.

    Writes a demo-corpus config with :data:`SEARCH_SPACE` (``space`` entries added or replaced),
    :data:`SEARCH_BASELINE` (``baseline`` entries added or replaced), ``search.population_size:
    4``, ``search.seed: 3``, ``search.n_jobs: 1`` and ``search.racing: false`` (``search``
    entries added or replaced), ``tails.tolerance`` and ``model`` entries added or replaced.
    """
    import yaml

    def write(path: Path, *, tolerance: float = 0.05, baseline: dict | None = None,
              space: dict | None = None, search: dict | None = None,
              model: dict | None = None) -> Path:
        raw = yaml.safe_load(demo_config_yaml)
        raw["tails"] = {"tolerance": tolerance}
        if model:
            raw["model"] = {**(raw.get("model") or {}), **model}
        raw["baseline"] = {"params": {**SEARCH_BASELINE, **(baseline or {})}}
        # one worker and no fold racing: the tests' expectations (generations in trial order,
        # the same trials for the same seed, every trial complete) are written for them;
        # n_jobs: auto and racing are tested on their own (tests/test_racing_search.py)
        raw["search"] = {"population_size": 4, "seed": 3, "n_jobs": 1, "racing": False,
                         "space": {**SEARCH_SPACE, **(space or {})}, **(search or {})}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def write_workers_config(write_search_config):
    """:func:`write_search_config` with :data:`WORKERS_SPACE` and :data:`WORKERS_BASELINE`."""

    def write(path: Path, **kwargs) -> Path:
        return write_search_config(path, space=WORKERS_SPACE, baseline=WORKERS_BASELINE,
                                   **kwargs)

    return write


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """``MOQWK_TEST_POSTGRES_URL`` (``make test`` starts a throwaway server and sets it).

    Skips when unset unless ``MOQWK_REQUIRE_POSTGRES=1`` (then it fails, so CI cannot silently
    skip the PostgreSQL tests). Studies persist in that database for the whole session: give each
    test its own study name.
    """
    url = os.environ.get("MOQWK_TEST_POSTGRES_URL")
    if not url:
        why = ("MOQWK_TEST_POSTGRES_URL is not set; run `make test` (starts a throwaway server "
               "with scripts/with-pg) or point it at a PostgreSQL database")
        if os.environ.get("MOQWK_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"MOQWK_REQUIRE_POSTGRES=1 but {why}", pytrace=False)
        pytest.skip(why)
    return url


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def moqwk(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``moqwk(*argv) -> (rc, out, err)``: ``moqwk.cli.main`` in-process, its output captured."""
    from moqwk.cli import main

    def run(*argv: object) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return rc, out, err

    return run


# --------------------------------------------------------------------------- error lines


def _error_lines(stderr: str) -> list[str]:
    """stderr without blank lines and ``Warning:`` lines (the demo corpus has one small prompt)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Warning:")]


def _assert_one_error_line(stderr: str, *contains: str) -> str:
    """stderr holds exactly one line besides warnings: ``Error: ...`` with each of ``contains``,
    and no traceback. Returns that line."""
    lines = _error_lines(stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    for c in contains:
        assert c in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def error_lines() -> Callable[[str], list[str]]:
    """``error_lines(stderr)``: the lines of stderr that are not blank and not warnings."""
    return _error_lines


@pytest.fixture(scope="session")
def assert_one_error_line() -> Callable[..., str]:
    """``assert_one_error_line(stderr, *contains) -> line``: one ``Error:`` line, no traceback."""
    return _assert_one_error_line


# --------------------------------------------------------------------------- guardrails

DEFAULT_OBJECTIVE_NAMES = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")


def _assert_guardrails(trials: Iterable, *, baseline: Sequence[float], tolerance: float,
                       names: Sequence[str] = DEFAULT_OBJECTIVE_NAMES) -> int:
    """Each COMPLETE trial's ``low_tail_guardrail`` and ``high_tail_guardrail`` equal its tail MAE
    minus (the baseline's tail MAE + ``tolerance``). ``baseline`` is the baseline trial's values,
    ``names`` the study's metric names. Returns how many trials were checked."""
    from optuna.trial import TrialState

    low, high = names.index("low_tail_mae"), names.index("high_tail_mae")
    checked = 0
    for t in trials:
        if t.state != TrialState.COMPLETE:
            continue
        assert t.constraints["low_tail_guardrail"] == pytest.approx(
            t.values[low] - (baseline[low] + tolerance), abs=1e-12), t.number
        assert t.constraints["high_tail_guardrail"] == pytest.approx(
            t.values[high] - (baseline[high] + tolerance), abs=1e-12), t.number
        checked += 1
    return checked


@pytest.fixture(scope="session")
def assert_guardrails() -> Callable[..., int]:
    """``assert_guardrails(trials, *, baseline, tolerance, names=...) -> n``: see
    :func:`_assert_guardrails`."""
    return _assert_guardrails


# --------------------------------------------------------------------------- a selected run

#: The search of :func:`searched_run`: tolerance 0 and a middling baseline, so with NSGA-II seed
#: :data:`SELECT_SEED` some trials break a tail guardrail (the best among them) and others beat
#: the baseline within both. Population = budget and no seeded neighbours: every trial but the
#: baseline is a random draw of the first generation. Chosen by trying seeds until a search had
#: these shapes (last: under 32 histogram bins, ADR 0006, and draws in parameter-name order).
SELECT_BASELINE = {"max_depth": 3, "learning_rate": 0.3, "n_estimators": 60,
                   "min_child_weight": 4.0, "subsample": 0.8}
SELECT_SEED = 2
SELECT_N_TRIALS = 8


@pytest.fixture(scope="session")
def searched_run(tmp_path_factory: pytest.TempPathFactory, write_search_config):
    """A real demo-corpus search (8 trials, not selected), shared by the select, report,
    dashboard and browser tests; do not modify it: copy ``run_dir`` first.

    Namespace fields: ``config``, ``run_dir``, ``root``, ``records`` (optuna_trials.json),
    ``stdout`` (what ``moqwk search`` printed: stdout is a log here, not a terminal).
    """
    import contextlib
    import io
    import json
    from types import SimpleNamespace

    from moqwk.cli import main

    root = tmp_path_factory.mktemp("searched-run")
    cfg = write_search_config(
        root / "config.yaml", tolerance=0.0, baseline=SELECT_BASELINE,
        search={"population_size": SELECT_N_TRIALS, "seed_neighbours": 0, "seed": SELECT_SEED})
    run_dir = root / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir),
                     "--n-trials", str(SELECT_N_TRIALS)]) == 0
    recs = json.loads((run_dir / "artifacts/optuna_trials.json").read_text(encoding="utf-8"))
    return SimpleNamespace(root=root, config=cfg, run_dir=run_dir, records=recs,
                           stdout=out.getvalue())


@pytest.fixture(scope="session")
def selected_run(tmp_path_factory: pytest.TempPathFactory, searched_run):
    """A copy of :func:`searched_run`, selected (gate margin 0.5) and compared; do not modify it.

    ``compare`` writes ``RUN/compare/compare.json`` (fresh folds, one repeat). Namespace fields:
    ``config``, ``run_dir``, ``root``, ``compare_stdout`` (what ``moqwk compare`` printed).
    """
    import contextlib
    import io
    import shutil
    from types import SimpleNamespace

    from moqwk.cli import main

    root = tmp_path_factory.mktemp("selected-run")
    run_dir = root / "run"
    shutil.copytree(searched_run.run_dir, run_dir)
    cfg = searched_run.config
    assert main(["select", "--config", str(cfg), "--run-dir", str(run_dir),
                 "--gate-margin", "0.5"]) == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["compare", str(run_dir), "--config", str(cfg), "--out",
                     str(run_dir / "compare"), "--fresh-repeats", "1"]) == 0
    return SimpleNamespace(root=root, config=cfg, run_dir=run_dir,
                           compare_stdout=out.getvalue())


@pytest.fixture(scope="session")
def reported_run(tmp_path_factory: pytest.TempPathFactory, selected_run):
    """A copy of :func:`selected_run` whose HTML report ``moqwk report`` rebuilt after compare (so
    it has all five figures); shared by the report and browser tests. Tests read it; they may add
    files next to the page but must not change the run's own. Namespace fields: ``run_dir``,
    ``html`` (the page), ``stdout`` (what ``moqwk report`` printed).
    """
    import contextlib
    import io
    import shutil
    from types import SimpleNamespace

    from moqwk.cli import main

    run_dir = tmp_path_factory.mktemp("reported-run") / "run"
    shutil.copytree(selected_run.run_dir, run_dir)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--quiet", "report", "--run-dir", str(run_dir)]) == 0
    return SimpleNamespace(run_dir=run_dir, html=run_dir / "reports/optuna_summary.html",
                           stdout=out.getvalue())

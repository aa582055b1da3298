"""``moqwk demo``: the main job on the built-in demo corpus, end to end."""

from __future__ import annotations

from pathlib import Path

import yaml
from rich.console import Console

from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.config import Config, diff_paths, parse_config
from moqwk.errors import ConfigError
from moqwk.run.layout import CONFIG_COPY, HTML_REPORT, SUMMARY

DEMO_CONFIG = """\
# The built-in demo corpus: 720 generated essays on 10 prompts, scored 1.0-5.0 in steps of 0.5.
data:
  demo: true
  demo_seed: 0
scale:
  kind: global
  min: 1.0
  max: 5.0
  step: 0.5
features:
  handcrafted: true
  word: {ngram_range: [1, 2], min_df: 2, svd_components: 32}
  char: {ngram_range: [2, 4], min_df: 3, svd_components: 32}
cv:
  n_folds: 5
  repeats: 1
  seed: 42
  min_prompt_n: 20
tails:
  low_band: 0.25
  high_band: 0.75
  tolerance: 0.05
baseline:
  params:
    max_depth: 4
    learning_rate: 0.1
    n_estimators: 150
    min_child_weight: 4.0
    subsample: 0.8
    colsample_bytree: 0.6
search:
  n_trials: 12
  population_size: 6
  sampler: nsga2
  seed: 7
  space:             # a compact space so the demo takes a minute or two on a laptop
    max_depth: {type: int, low: 2, high: 6}
    learning_rate: {type: float, low: 0.03, high: 0.3, log: true}
    n_estimators: {type: int, low: 50, high: 300, step: 50}
    min_child_weight: {type: float, low: 1.0, high: 16.0, log: true}
    subsample: {type: float, low: 0.6, high: 1.0}
    colsample_bytree: {type: float, low: 0.4, high: 1.0}
select:
  gate_margin: 0.05
"""


def demo_config(run_dir: Path) -> Config:
    """The demo's config (its run directory keeps a resolved copy as ``config.yaml``)."""
    return parse_config(yaml.safe_load(DEMO_CONFIG), base_dir=Path(run_dir).resolve())


def run_demo(run_dir: Path, *, console: Console, n_trials: int | None = None,
             progress: Progress = NO_PROGRESS) -> int:
    """Baseline CV, a small NSGA-II search and a selection, all on the demo corpus.

    Running it again resumes the same run: a finished search runs no new trial.
    """
    from moqwk._api.select_outputs import run_selection
    from moqwk._api.shown import run_search_shown
    from moqwk.console import heading
    from moqwk.console.views import show_cv, show_selection
    from moqwk.run.cv_outputs import run_cv
    from moqwk.run.record import read_run_record, reproduce_command, run_config
    from moqwk.run.workspace import Workspace
    from moqwk.stages.search_loop import SearchOptions
    from moqwk.stages.selector import options_from

    config = demo_config(run_dir)
    recorded = run_config(run_dir)
    if recorded is not None:
        diff = diff_paths(config.study_dict(), recorded.study_dict())
        if diff:
            raise ConfigError(
                f"{run_dir / CONFIG_COPY} no longer matches the built-in demo (it differs in "
                f"{', '.join(diff[:4])}): it was edited, or {run_dir} was made by another moqwk "
                "version. The demo always runs its built-in config: move or delete "
                f"{run_dir} to run the demo afresh; to run an edited copy, copy it elsewhere "
                "and run `moqwk search --config COPY --run-dir runs/NEW`")
    ws = Workspace.open(config, run_dir, level="study")
    heading(console, f"moqwk demo: run directory {run_dir} (its config: "
                     f"{run_dir / CONFIG_COPY})")
    record = read_run_record(run_dir)
    if record is None or not record.is_study:
        heading(console, "1. baseline config, prompt-holdout CV")
        result, _engine, _paths = run_cv(ws, progress=progress)
        show_cv(console, result.metrics, title="Baseline", limit=5,
                prompts_title="Worst prompts")
    else:
        heading(console, "1. baseline CV: done before (it is the search's trial 0)")
    budget = n_trials or (record.n_trials if record and record.n_trials else
                          config.search.n_trials)
    heading(console, f"2. search: NSGA-II, {budget} trials, tail guardrails as constraints")
    run_search_shown(console, ws, SearchOptions(n_trials=budget), progress=progress)
    heading(console, "3. select: feasible front, lexicographic rule, stability gate")
    rec = read_run_record(run_dir)
    assert rec is not None
    rd = str(run_dir)
    record_sel, _sel = run_selection(ws, options_from(config.select), commands=[
        " ".join(reproduce_command(run_dir, rec)), f"moqwk select --run-dir {rd}"],
        progress=progress)
    html = ws.run_dir / HTML_REPORT
    show_selection(console, record_sel.to_dict(), ws.run_dir,
                   html_report=html if html.exists() else None)
    moqwk = _command_name()
    console.print(f"Next: {moqwk} status --run-dir {rd}; the decision is explained in "
                  f"{rd}/{SUMMARY}. To change the demo, copy {rd}/{CONFIG_COPY} elsewhere, "
                  f"edit it and run `{moqwk} search --config COPY --run-dir runs/NEW`.")
    return 0


def _command_name() -> str:
    """``moqwk`` when it is on PATH, else the path of this environment's script."""
    import shutil
    import sys

    if shutil.which("moqwk"):
        return "moqwk"
    script = Path(sys.executable).parent / "moqwk"
    return str(script) if script.exists() else "moqwk"

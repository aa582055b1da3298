"""``moqwk demo``: the main job on the built-in demo corpus, end to end."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from moqwk import artifacts
from moqwk.config import load_config

DEMO_CONFIG = """\
# The built-in demo corpus: 720 generated essays on 10 prompts, scored 1.0-5.0 in steps of 0.5.
# Edit and re-run `moqwk demo`: a changed config starts a new study only in a new --run-dir.
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


def write_demo_config(run_dir: Path) -> Path:
    path = run_dir / "config.yaml"
    if not path.exists():
        artifacts.write_text(path, DEMO_CONFIG)
    return path


def run_demo(run_dir: Path, *, console: Console, n_trials: int | None = None) -> int:
    """Baseline CV, a small NSGA-II search and a selection, all on the demo corpus."""
    from moqwk.cli_search import print_selection, search_with_display
    from moqwk.console import prompt_table, summary_table
    from moqwk.runs import Workspace, run_cv
    from moqwk.search import SearchOptions
    from moqwk.selector import options_from, run_selection

    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = write_demo_config(run_dir)
    config = load_config(cfg_path)
    console.rule(f"moqwk demo: config {cfg_path}")
    ws = Workspace.open(config, run_dir)
    console.rule("1. baseline config, prompt-holdout CV")
    result, _engine, _paths = run_cv(ws)
    console.print(prompt_table(result.metrics, limit=5, title="Worst prompts"))
    console.print(summary_table(result.metrics, title="Baseline"))
    budget = n_trials or int(config.search.get("n_trials", 12))
    console.rule(f"2. search: NSGA-II, {budget} trials, tail guardrails as constraints")
    search_with_display(ws, SearchOptions(n_trials=budget), console)
    console.rule("3. select: feasible front, lexicographic rule, stability gate")
    cfg, rd = str(cfg_path), str(run_dir)
    record, _sel = run_selection(ws, options_from(config.select), commands=[
        f"moqwk search --config {cfg} --run-dir {rd}",
        f"moqwk select --config {cfg} --run-dir {rd}"])
    print_selection(console, record, ws.run_dir)
    console.print(f"Next: moqwk status --run-dir {rd}; the decision is explained in "
                  f"{rd}/reports/optuna_summary.md")
    return 0

"""Drive moqwk from Python alone: cv, search, select, fit and predict on the built-in demo corpus,
with the config given as a dict and a small budget (a few minutes on one core); with
``--ellipse CSV``, the same calls on ELLIPSE Overall (a 4-trial search: about 10 minutes on 2
cores).

    python examples/api_demo.py [RUN_ROOT]                  # default: runs/api-demo
    python examples/api_demo.py runs/api-ellipse \\
        --ellipse ../shared/data/ellipse/ELLIPSE_Final_github_test.csv

Run it twice with the same RUN_ROOT and the search resumes (its budget is already used, so no
trial runs again); delete RUN_ROOT to start over.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

import moqwk

CONFIG = {
    "data": {"demo": True, "demo_seed": 0},
    "scale": {"kind": "global", "min": 1.0, "max": 5.0, "step": 0.5},
    "features": {"handcrafted": True,
                 "word": {"ngram_range": [1, 2], "min_df": 2, "svd_components": 16},
                 "char": {"ngram_range": [2, 4], "min_df": 3, "svd_components": 16}},
    "cv": {"n_folds": 5, "repeats": 1, "seed": 42},
    "model": {"nthread": 1},
    "tails": {"tolerance": 0.05},
    "baseline": {"params": {"max_depth": 3, "learning_rate": 0.1, "n_estimators": 60}},
    "search": {
        "n_trials": 8, "population_size": 4, "seed": 3,
        "space": {
            "n_estimators": {"type": "int", "low": 30, "high": 120, "step": 30},
            "max_depth": {"type": "int", "low": 2, "high": 5},
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
        },
    },
    "select": {"gate_margin": 0.5},  # lenient: the demo corpus is small and noisy
}


def ellipse_config(csv: Path) -> dict:
    """ELLIPSE Overall (2,571 essays, 44 prompts) with the demo's small search: the same keys,
    the corpus's columns and scale, and the default features and mapping."""
    return {
        **{k: v for k, v in CONFIG.items() if k not in ("data", "features")},
        "data": {"path": str(csv.resolve()), "id_column": "text_id_kaggle",
                 "text_column": "full_text", "prompt_column": "prompt",
                 "score_column": "Overall"},
        "cv": {"n_folds": 5, "repeats": 1, "seed": 42, "min_prompt_n": 20},
        "search": {**CONFIG["search"], "n_trials": 4},
    }


def main(root: Path, config: dict, essays: pd.DataFrame) -> int:
    n_trials = config["search"]["n_trials"]
    try:
        cv = moqwk.cv(config=config, run_dir=root / "baseline-cv")
        print("baseline CV:", {k: round(v, 3) for k, v in cv.objectives.items()})
        print("worst prompt:", cv.worst_prompt, "wrote", cv.paths["metrics"])

        search = moqwk.search(config=config, run_dir=root / "search", n_trials=n_trials)
        print(f"search: {search.n_complete}/{search.n_trials} complete, {search.n_feasible} "
              f"feasible; best feasible worst-prompt QWK "
              f"{search.best_feasible['worst_prompt_qwk']:.3f}")

        sel = moqwk.select(run_dir=root / "search")
        print(f"selected trial {sel.trial_number} (baseline: {sel.baseline_trial_number})")
        for name, value in sel.in_sample.items():
            est = sel.bbc_cv[name] if sel.bbc_cv else None
            shown = f", BBC-CV {est.estimate:.3f} [{est.lo:.3f}, {est.hi:.3f}]" if est else ""
            print(f"  {name}: in-sample {value:.3f}{shown}")

        fitted = moqwk.fit(run_dir=root / "search", overwrite=True)
        print(f"model: {fitted.path} (trial {fitted.trial_number}, {fitted.n_essays} essays)")

        scores = moqwk.predict(model=fitted.path, essays=essays)
        print(scores.to_string(index=False))
    except moqwk.MoqwkError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", type=Path, default=Path("runs/api-demo"))
    ap.add_argument("--ellipse", type=Path, help="ELLIPSE's CSV: run on it instead of the demo")
    args = ap.parse_args()
    if args.ellipse is None:
        # essays the model never saw: another seed of the demo corpus, scores dropped
        new = moqwk.demo_corpus(1).drop(columns=["score"]).head(10)
        sys.exit(main(args.root, CONFIG, new))
    frame = pd.read_csv(args.ellipse)
    # the model reads its own data columns; these essays were in training, so the scores show
    # the call, not new-essay accuracy
    new = frame[["text_id_kaggle", "prompt", "full_text"]].head(10)
    sys.exit(main(args.root, ellipse_config(args.ellipse), new))

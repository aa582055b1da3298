"""``moqwk fit``: train the selected pipeline on the whole corpus; write a model directory."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from moqwk.cli._common import add_run_dir
from moqwk.console import make_console


def run(args: argparse.Namespace) -> int:
    from moqwk._api.model import fit
    from moqwk.cli._common import progress_for

    con = make_console()
    result = fit(run_dir=Path(args.run_dir), out=args.out or None, trial=args.trial,
                 data=args.data or None, overwrite=args.overwrite,
                 progress=progress_for(args, con))
    m = result.manifest
    data = m["data"]
    con.print(f"Fitted trial {m['trial']['number']} on {data['n_essays']} essays "
              f"({data['n_prompts']} prompts) from {data['source']}")
    if data["same_as_run"] is False:
        con.print("Note: not the run's corpus (--data); model.json records both data hashes")
    est = m["cv_estimates"]["in_sample"] or {}
    # the trial's objective values, in the order the study optimised them (its records' order)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in est.items() if isinstance(v, int | float))
    if shown:
        con.print(f"CV estimate (in-sample, prompt_holdout; optimistic): {shown}")
    mapping = m["mapping"]
    con.print(f"Score mapping: {mapping['method']}"
              + (" (transductive: per-prompt batch statistics; its numbers assume batch = "
                 f"{(mapping.get('params') or {}).get('batch', 'prompt')})"
                 if mapping["transductive"] else ""))
    con.print(f"wrote {result.path}")
    con.print("Next: " + " ".join(shlex.quote(c) for c in
                                  ["moqwk", "predict", "--model", str(result.path), "--data",
                                   "essays.csv", "-o", "scores.csv"]))
    return 0


def register(add) -> None:
    p = add("fit", "train the selected trial's pipeline on the whole corpus and write a model "
                   "directory for `moqwk predict`", run)
    add_run_dir(p, help="a run directory with artifacts/selected_params.json (after select)")
    p.add_argument("--out", help="the model directory to write (default: RUN_DIR/model); "
                                 "built under a temporary name and renamed into place")
    p.add_argument("--trial", type=int, help="fit this trial of artifacts/optuna_trials.json "
                                             "instead of the selected one")
    p.add_argument("--data", help="fit on this CSV/Parquet file instead of the run's corpus "
                                  "(same columns and scale as the run's config)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model directory at --out")

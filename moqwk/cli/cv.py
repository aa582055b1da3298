"""``moqwk cv``: cross-validate one XGBoost config; write residuals, metrics, diagnostics."""

from __future__ import annotations

import argparse
from pathlib import Path

from moqwk.cli._common import add_config, add_run_dir, config_for_run, progress_for, read_params
from moqwk.console import make_console
from moqwk.core.splits import SCHEMES
from moqwk.errors import RunDirError


def run(args: argparse.Namespace) -> int:
    from moqwk.console.views import show_cv
    from moqwk.run.cv_outputs import run_cv
    from moqwk.run.record import read_run_record
    from moqwk.run.workspace import Workspace

    run_dir = Path(args.run_dir)
    record = read_run_record(run_dir)
    if record is not None and record.is_study:
        raise RunDirError(f"{run_dir} holds a {record.kind}; `moqwk cv` would replace the "
                          "residuals and metrics that `moqwk select` wrote there: use another "
                          "--run-dir")
    config = config_for_run(args, level="scoring")
    params = read_params(args.params)
    if params is not None:  # a bad features.* value is refused before anything is written
        config.features.with_params(params, path=f"--params {args.params}")
    ws = Workspace.open(config, run_dir)
    con = make_console()
    result, _engine, paths = run_cv(ws, scheme=args.scheme, params=params,
                                    mapping=args.mapping, progress=progress_for(args, con))
    show_cv(con, result.metrics, title=f"CV summary ({args.scheme})")
    con.print(scored_line(result), highlight=False, markup=False, soft_wrap=True)
    for p in paths.values():
        con.print(f"wrote {p}")
    return 0


def scored_line(result) -> str:
    """One line naming the mapping and the feature families a CV run scored with."""
    spec = result.mapping["spec"]
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.get("params", {}).items()))
    mapping = spec["method"] + (f" ({params})" if params else "")
    if result.transductive:
        mapping += ", transductive"
    feats = ", ".join(result.features["families"])
    chosen = ", ".join(f"{k}={v}" for k, v in sorted(result.features["params"].items()))
    return f"scored with mapping {mapping}; features {feats}" + (f" ({chosen})" if chosen else "")


def register(add) -> None:
    from moqwk.core.mapping import METHODS

    p = add("cv", "cross-validate one XGBoost config and write residuals and metrics", run)
    p.description = (
        "Cross-validate one pipeline: baseline.params (or --params) with the config's "
        "features: and its mapping: section (mapping.method, default stretch), not "
        "baseline.mapping, which is only the search's trial 0. --mapping METHOD scores "
        "another mapping method; mapping.* and features.* keys in --params apply too. "
        "The mapping and the feature families used are printed and recorded in "
        "cv_metrics.json.")
    add_config(p)
    add_run_dir(p)
    p.add_argument("--scheme", default="prompt_holdout", choices=SCHEMES)
    p.add_argument("--params", help="JSON file of XGBoost params (default: baseline.params); "
                                    "may hold mapping.* and features.* keys")
    p.add_argument("--mapping", choices=list(METHODS), metavar="METHOD",
                   help="score with this mapping method instead of the config's mapping.method "
                        f"(one of {', '.join(METHODS)}; round is the baseline's scoring)")

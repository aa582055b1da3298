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
    params = read_params(args.params)  # before the run directory is made: a bad file makes none
    ws = Workspace.open(config_for_run(args, level="scoring"), run_dir)
    con = make_console()
    result, _engine, paths = run_cv(ws, scheme=args.scheme, params=params,
                                    progress=progress_for(args, con))
    show_cv(con, result.metrics, title=f"CV summary ({args.scheme})")
    for p in paths.values():
        con.print(f"wrote {p}")
    return 0


def register(add) -> None:
    p = add("cv", "cross-validate one XGBoost config and write residuals and metrics", run)
    add_config(p)
    add_run_dir(p)
    p.add_argument("--scheme", default="prompt_holdout", choices=SCHEMES)
    p.add_argument("--params", help="JSON file of XGBoost params (default: the config's baseline)")

"""``moqwk cv``: cross-validate one XGBoost config; write residuals, metrics, diagnostics."""

from __future__ import annotations

import argparse
from pathlib import Path

from moqwk.cli._common import add_config, add_run_dir, progress_for, read_params
from moqwk.console import make_console
from moqwk.core.splits import SCHEMES


def run(args: argparse.Namespace) -> int:
    from moqwk._api.scoring import cv
    from moqwk.console.views import show_cv

    con = make_console()
    result = cv(config=args.config, run_dir=Path(args.run_dir), scheme=args.scheme,
                params=read_params(args.params), progress=progress_for(args, con))
    show_cv(con, result.metrics, title=f"CV summary ({args.scheme})")
    for p in result.paths.values():
        con.print(f"wrote {p}")
    return 0


def register(add) -> None:
    p = add("cv", "cross-validate one XGBoost config and write residuals and metrics", run)
    add_config(p)
    add_run_dir(p)
    p.add_argument("--scheme", default="prompt_holdout", choices=SCHEMES)
    p.add_argument("--params", help="JSON file of XGBoost params (default: the config's baseline)")

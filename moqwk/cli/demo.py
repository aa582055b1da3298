"""``moqwk demo``: the main job on the built-in demo corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from moqwk.cli._common import progress_for
from moqwk.console import make_console


def run(args: argparse.Namespace) -> int:
    from moqwk._api.demo import run_demo

    console = make_console()
    return run_demo(Path(args.run_dir), console=console, n_trials=args.n_trials,
                    progress=progress_for(args, console))


def register(add) -> None:
    p = add("demo", "run the main job on the built-in demo corpus", run)
    p.add_argument("--run-dir", default="runs/demo")
    p.add_argument("--n-trials", type=int, default=None, help="search budget of the demo")

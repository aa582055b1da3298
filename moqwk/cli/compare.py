"""``moqwk compare``: selected configs of runs side by side, re-scored on fresh folds."""

from __future__ import annotations

import argparse

from moqwk.cli._common import progress_for
from moqwk.console import make_console


def run(args: argparse.Namespace) -> int:
    from moqwk._api.scoring import compare
    from moqwk.console.views import show_compare

    console = make_console()
    result = compare(*args.run_dirs, config=args.config, out=args.out,
                     fresh_seed=args.fresh_seed, fresh_repeats=args.fresh_repeats,
                     progress=progress_for(args, console))
    show_compare(console, dict(result.record), result.out)
    return 0


def register(add) -> None:
    p = add("compare", "selected configs of runs side by side, re-scored on fresh folds", run)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="runs to compare; the "
                   "verdict asks whether the first matches or beats the second")
    p.add_argument("--config", help="the config the runs share (default: the first run's "
                                    "config.yaml; every run must agree with it on scoring)")
    p.add_argument("--out", default="compare", help="where compare.md/.json go")
    p.add_argument("--fresh-seed", type=int, help="fold seed never used by the searches "
                                                  "(default: cv.seed + 1000)")
    p.add_argument("--fresh-repeats", type=int, default=3, help="fresh fold assignments")

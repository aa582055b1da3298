"""``moqwk splits``: write a run's canonical folds to ``splits.json``."""

from __future__ import annotations

import argparse
from pathlib import Path

from moqwk.cli._common import add_config, add_run_dir, config_for_run
from moqwk.console import make_console
from moqwk.core.splits import SCHEMES


def run(args: argparse.Namespace) -> int:
    from moqwk.run.layout import SPLITS
    from moqwk.run.workspace import Workspace

    ws = Workspace.open(config_for_run(args, level="scoring"), Path(args.run_dir))
    for scheme in args.scheme or SCHEMES:
        s = ws.engine(scheme).splits
        make_console().print(f"{scheme}: {s.n_folds} folds x {s.repeats} repeat(s), "
                             f"sha256 {s.sha256[:16]}… -> {ws.run_dir / SPLITS}")
    return 0


def register(add) -> None:
    p = add("splits", "write the canonical folds to RUN_DIR/splits.json", run)
    add_config(p)
    add_run_dir(p)
    p.add_argument("--scheme", action="append", choices=SCHEMES,
                   help="scheme(s) to write (default: all)")

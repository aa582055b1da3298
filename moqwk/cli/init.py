"""``moqwk init``: a commented, runnable starter config for a corpus."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moqwk.console import make_console
from moqwk.errors import ConfigError


def run(args: argparse.Namespace) -> int:
    from moqwk.base.artifacts import write_text
    from moqwk.data.starter_config import starter_config

    out = Path(args.output) if args.output else None
    text = starter_config(data=Path(args.data), id_column=args.id_column,
                          text_column=args.text_column, prompt_column=args.prompt_column,
                          score_column=args.score_column, out=out)
    if out is None:
        sys.stdout.write(text)
    else:
        if out.exists() and not args.force:
            raise ConfigError(f"{out} exists; pass --force to overwrite it")
        write_text(out, text)
        make_console().print(f"Wrote {out}. Next: moqwk cv --config {out} "
                             "--run-dir runs/baseline")
    return 0


def register(add) -> None:
    p = add("init", "write a commented, runnable starter config for a corpus", run)
    p.add_argument("--data", required=True, help="corpus CSV or Parquet file")
    p.add_argument("--id-column", required=True)
    p.add_argument("--text-column", required=True)
    p.add_argument("--prompt-column", required=True)
    p.add_argument("--score-column", required=True)
    p.add_argument("-o", "--output", help="config file to write (default: print it)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --output")

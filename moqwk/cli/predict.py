"""``moqwk predict``: score essays with a model directory written by ``moqwk fit``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from moqwk.console import make_console
from moqwk.errors import ConfigError


def run(args: argparse.Namespace) -> int:
    from moqwk.atomic import atomic_write
    from moqwk.model.mapping import declared_batch, min_batch
    from moqwk.model.predict import load_model, read_essays

    data = Path(args.data)
    out = Path(args.output) if args.output else None
    if out is not None and out.resolve() == data.resolve():
        raise ConfigError(f"-o {out} is the --data file; write the scores to another file")
    model = load_model(Path(args.model))
    scales = {p: (lo, hi, step) for p, lo, hi, step in (args.scale or [])}
    frame = read_essays(data)
    scores = model.predict(frame, id_column=args.id_column, text_column=args.text_column,
                           prompt_column=args.prompt_column, scales=scales,
                           feature_table=args.feature_table, small_batch=args.small_batch,
                           source=str(data))
    con = make_console(stderr=True)
    mapping = model.mapping
    if mapping["transductive"]:
        con.print(f"Score mapping {mapping['method']} is transductive: each prompt's essays "
                  f"were mapped as one batch (at least {min_batch(mapping)} per prompt), so a "
                  "score depends on the essays scored with it; its CV numbers assume batch = "
                  f"{declared_batch(mapping)}")
    if out is None:
        try:
            scores.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader (e.g. `| head`) stopped reading: not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        atomic_write(out, lambda p: scores.to_csv(p, index=False))
        n = scores["prompt"].nunique()
        con.print(f"Scored {len(scores)} essays ({n} prompt{'s' if n != 1 else ''}); "
                  f"wrote {out}")
    return 0


def register(add) -> None:
    p = add("predict", "score essays with a model directory written by `moqwk fit`", run)
    p.add_argument("--model", required=True, help="the model directory (e.g. RUN_DIR/model)")
    p.add_argument("--data", required=True,
                   help="CSV or Parquet file of essays: an id, a text and a prompt column")
    p.add_argument("-o", "--output", help="write the scores here (CSV, atomically; default: "
                                          "stdout): id, prompt, y_pred, y_pred_raw, y_pred_norm")
    for role in ("id", "text", "prompt"):
        p.add_argument(f"--{role}-column",
                       help=f"the {role} column (default: the model's data.{role}_column)")
    p.add_argument("--scale", nargs=4, action="append", metavar=("PROMPT", "MIN", "MAX", "STEP"),
                   help="declare a new prompt's score scale (repeatable); needed for prompts "
                        "the model does not know when it has a scale per prompt")
    p.add_argument("--feature-table", help="with features.table: read the essays' table "
                                           "columns from this file (default: the fitted one)")
    p.add_argument("--small-batch", choices=("refuse", "fallback"), default="refuse",
                   help="a transductive score mapping with fewer essays of a prompt than it "
                        "needs (its min_batch, or its declared batch when larger): refuse "
                        "(default) or map them with its fallback method")

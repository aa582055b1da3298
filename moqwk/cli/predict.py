"""``moqwk predict``: score essays with a model directory written by ``moqwk fit``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from moqwk.console import make_console
from moqwk.errors import ConfigError


def run(args: argparse.Namespace) -> int:
    from moqwk.base.atomic import atomic_write
    from moqwk.model.mapping_record import declared_batch, min_batch
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
    scores = _as_user_columns(scores, frame, model, args)
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
        n = scores.iloc[:, 1].nunique()  # the prompt column, under the user's name
        con.print(f"Scored {len(scores)} essays ({n} prompt{'s' if n != 1 else ''}); "
                  f"wrote {out}")
    return 0


def _as_user_columns(scores, frame, model, args: argparse.Namespace):  # noqa: ANN001, ANN202
    """The scores with the input's own id and prompt column names (not ``id``/``prompt``), and
    the ``--keep-columns`` of the input after them, row for row."""
    cols = model.columns
    id_col = args.id_column or cols["id"]
    prompt_col = args.prompt_column or cols["prompt"]
    keep = [c.strip() for c in (args.keep_columns or "").split(",") if c.strip()]
    out = scores.rename(columns={"id": id_col, "prompt": prompt_col})
    if len(set(out.columns)) < len(out.columns):
        raise ConfigError(f"the id or prompt column ({id_col!r}, {prompt_col!r}) has the name of "
                          f"a score column; rename it in {args.data}")
    for c in keep:
        if c not in frame.columns:
            shown = ", ".join(map(str, frame.columns[:12]))
            raise ConfigError(f"--keep-columns: no column {c!r} in {args.data}; columns are: "
                              f"{shown}")
        if c in out.columns:
            raise ConfigError(f"--keep-columns: {c!r} is already in the output (" +
                              ", ".join(map(str, out.columns)) + "); drop it from the list")
    for c in dict.fromkeys(keep):
        out[c] = frame[c].to_numpy()
    return out


def register(add) -> None:
    p = add("predict", "score essays with a model directory written by `moqwk fit`", run)
    p.add_argument("--model", required=True, help="the model directory (e.g. RUN_DIR/model)")
    p.add_argument("--data", required=True,
                   help="CSV or Parquet file of essays: an id, a text and a prompt column")
    p.add_argument("-o", "--output", help="write the scores here (CSV, atomically; default: "
                                          "stdout): the input's id and prompt columns (their "
                                          "own names), y_pred, y_pred_raw, y_pred_norm")
    p.add_argument("--keep-columns", metavar="COL,...",
                   help="input columns to copy into the output after the scores (e.g. a "
                        "student id or a date), comma-separated")
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

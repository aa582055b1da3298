"""The ``moqwk`` command: a thin skin over the library.

The library raises :class:`moqwk.errors.MoqwkError`; ``main`` turns it into one ``Error:`` line and
the error's exit code (usage errors exit 2). ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from moqwk import __version__
from moqwk.artifacts import mask_secrets
from moqwk.errors import ConfigError, MoqwkError

EXIT_CODES_DOC = """exit codes:
  0  success
  1  unexpected error (run with --debug for the traceback)
  2  usage or config error
  3  bad data or splits
  4  storage unreachable or incompatible
  5  select: no feasible trial (see --allow-tail-regression)
  6  select: no candidate passed the stability gate
  7  run directory lacks what the command needs
  130 interrupted (finished trials are kept; re-run to resume)
"""


def _console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def _load(args: argparse.Namespace):
    from moqwk.config import load_config

    return load_config(args.config)


def _read_params(path: str | None) -> dict | None:
    if path is None:
        return None
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--params: {p} not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params: {p} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and "params" in data and isinstance(data["params"], dict):
        data = data["params"]  # accept selected_params.json as it is
    if not isinstance(data, dict):
        raise ConfigError(f"--params: {p} must hold a JSON object of XGBoost parameters")
    return data


def cmd_init(args: argparse.Namespace) -> int:
    from moqwk.artifacts import write_text
    from moqwk.init_config import starter_config

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
        _console().print(f"Wrote {out}. Next: moqwk cv --config {out} --run-dir runs/baseline")
    return 0


def cmd_splits(args: argparse.Namespace) -> int:
    from moqwk.runs import Workspace

    ws = Workspace.open(_load(args), Path(args.run_dir))
    for scheme in args.scheme:
        s = ws.engine(scheme).splits
        _console().print(f"{scheme}: {s.n_folds} folds x {s.repeats} repeat(s), "
                         f"sha256 {s.sha256[:16]}… -> {ws.run_dir / 'splits.json'}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from moqwk.console import prompt_table, summary_table
    from moqwk.runs import Workspace, run_cv

    ws = Workspace.open(_load(args), Path(args.run_dir))
    result, _engine, paths = run_cv(ws, scheme=args.scheme, params=_read_params(args.params))
    con = _console()
    con.print(prompt_table(result.metrics))
    con.print(summary_table(result.metrics, title=f"CV summary ({args.scheme})"))
    for p in paths.values():
        con.print(f"wrote {p}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from moqwk.demo import run_demo

    return run_demo(Path(args.run_dir), console=_console(), n_trials=args.n_trials)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moqwk",
        description="Constrained multi-objective hyperparameter search for XGBoost "
                    "essay scoring, CV-first and selection-disciplined.",
        epilog=EXIT_CODES_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"moqwk {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
        p.set_defaults(func=func)
        return p

    p = add("init", "write a commented, runnable starter config for a corpus", cmd_init)
    p.add_argument("--data", required=True, help="corpus CSV or Parquet file")
    p.add_argument("--id-column", required=True)
    p.add_argument("--text-column", required=True)
    p.add_argument("--prompt-column", required=True)
    p.add_argument("--score-column", required=True)
    p.add_argument("-o", "--output", help="config file to write (default: print it)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --output")

    p = add("splits", "write the canonical folds to RUN_DIR/splits.json", cmd_splits)
    p.add_argument("--config", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--scheme", action="append", choices=["prompt_holdout", "stratified_text"],
                   help="scheme(s) to write (default: both)")

    p = add("cv", "cross-validate one XGBoost config and write residuals and metrics", cmd_cv)
    p.add_argument("--config", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--scheme", default="prompt_holdout",
                   choices=["prompt_holdout", "stratified_text"])
    p.add_argument("--params", help="JSON file of XGBoost params (default: the config's baseline)")

    p = add("demo", "run the main job on the built-in demo corpus", cmd_demo)
    p.add_argument("--run-dir", default="runs/demo")
    p.add_argument("--n-trials", type=int, default=None, help="search budget of the demo")

    from moqwk import cli_search

    cli_search.register(add)
    return parser


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"Warning: {message}", file=sys.stderr)


class _NoTraceback(logging.Filter):
    """Optuna logs a failed trial with its traceback; moqwk records the reason in the trial and
    shows it in the table, so one line is enough unless ``--debug`` asks for more."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


@contextlib.contextmanager
def _optuna_quiet(debug: bool) -> Iterator[None]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own tables report each trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    handlers = [] if debug else list(logging.getLogger("optuna").handlers)
    quiet = _NoTraceback()
    for h in handlers:
        h.addFilter(quiet)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(quiet)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "splits" and not args.scheme:
        args.scheme = ["prompt_holdout", "stratified_text"]
    # Warnings print as one line each while moqwk runs; the caller's settings come back after.
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        if args.command in ("search", "select", "demo", "grid", "compare", "status"):
            with _optuna_quiet(args.debug):
                return _run(args)
        return _run(args)


def _interrupted() -> int:
    print("Interrupted: finished trials are kept; run the same command again to resume.",
          file=sys.stderr)
    return 130


def _raised_by_ctrl_c(e: BaseException) -> bool:
    """True for an error raised while a Ctrl-C was being handled.

    A Ctrl-C that lands inside Optuna's tell surfaces as an ``UnboundLocalError`` from its
    ``finally`` block; the interrupt is that error's context. It is still the user's Ctrl-C.
    """
    seen: set[int] = set()
    ctx = e.__context__
    while ctx is not None and id(ctx) not in seen:
        if isinstance(ctx, KeyboardInterrupt):
            return True
        seen.add(id(ctx))
        ctx = ctx.__context__
    return False


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except MoqwkError as e:
        if args.debug:
            traceback.print_exc()
        print(f"Error: {mask_secrets(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as e:  # noqa: BLE001 - one line, traceback on request
        if args.debug:
            traceback.print_exc()
        if _raised_by_ctrl_c(e):
            return _interrupted()
        print(f"Error: {type(e).__name__}: {mask_secrets(str(e))} (run with --debug for the "
              "traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``moqwk`` command: a thin skin over the library, one module per command.

The library raises :class:`moqwk.errors.MoqwkError`; ``main`` turns it into one ``Error:`` line and
the error's exit code (usage errors exit 2). ``--debug`` shows the traceback. Shared flags and
config loading live in :mod:`moqwk.cli._common`; what a command prints, in
:mod:`moqwk.console.views`. No library module imports this package.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence

from moqwk import __version__
from moqwk.base.artifacts import mask_secrets
from moqwk.errors import MoqwkError

EXIT_CODES_DOC = """exit codes:
  0  success
  1  unexpected error (run with --debug for the traceback)
  2  usage or config error
  3  bad data or splits
  4  storage unreachable or incompatible
  5  select: no feasible trial (see --allow-tail-regression)
  6  select: no candidate passed the stability gate
  7  run or model directory lacks what the command needs
  130 interrupted (a search's finished trials are kept; re-run to resume)
"""


QUIET_HELP = ("no progress bars or progress lines for long work (features, folds, gate, fresh "
              "folds); results are still printed")

#: The command modules, in the order ``--help`` lists them; each has ``register(add)``.
COMMAND_MODULES = ("init", "splits", "cv", "search", "select", "status", "compare", "report",
                   "dashboard", "fit", "predict", "demo")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="moqwk",
        description="Constrained multi-objective hyperparameter search for XGBoost "
                    "essay scoring, CV-first and selection-disciplined.",
        epilog=EXIT_CODES_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"moqwk {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help=QUIET_HELP)
        p.set_defaults(func=func)
        return p

    for name in COMMAND_MODULES:
        importlib.import_module(f"moqwk.cli.{name}").register(add)
    return parser


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"Warning: {message}", file=sys.stderr)


class _NoTraceback(logging.Filter):
    """Optuna logs a failed trial with its traceback; moqwk records the reason in the trial and
    shows it in the table, so one line is enough unless ``--debug`` asks for more."""

    def __init__(self) -> None:
        super().__init__()
        self._interrupted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        # The trial the user's Ctrl-C stopped: Optuna logs it as failed (twice); moqwk says
        # "Interrupted: ..." itself and the trial table shows it as interrupted.
        msg = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None and \
                issubclass(record.exc_info[0], KeyboardInterrupt):
            self._interrupted.add(msg.split(" failed", 1)[0])
            return False
        if msg.split(" failed with value", 1)[0] in self._interrupted:
            return False
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
    # Warnings print as one line each while moqwk runs; the caller's settings come back after.
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        if args.command in ("search", "select", "demo", "grid", "compare", "status", "report",
                            "dashboard"):
            with _optuna_quiet(args.debug):
                return _run(args)
        return _run(args)


#: What Ctrl-C leaves, by command; a study's finished trials are kept, other work is redone.
INTERRUPTED = {
    "search": "finished trials are kept; run the same command again to resume.",
    "grid": "finished trials are kept; run the same command again to resume.",
    "demo": "finished trials are kept; run the same command again to resume.",
    "fit": "no model was written (it is built under a temporary name and renamed into place "
           "only when complete); run the same command again to fit it.",
}
INTERRUPTED_OTHER = ("files already written are whole (each is written atomically); run the "
                     "same command again.")


def _interrupted(command: str | None = None) -> int:
    print(f"Interrupted: {INTERRUPTED.get(command or '', INTERRUPTED_OTHER)}", file=sys.stderr)
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
    """Run the command; a failure creates nothing (see :mod:`moqwk.cli._leftovers`)."""
    from moqwk.cli._leftovers import new_dirs, remove_leftovers

    created = new_dirs(args)
    code = _run_command(args)
    remove_leftovers(created, code)
    return code


def _run_command(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except MoqwkError as e:
        if args.debug:
            traceback.print_exc()
        print(f"Error: {mask_secrets(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return _interrupted(getattr(args, "command", None))
    except Exception as e:  # noqa: BLE001 - one line, traceback on request
        if args.debug:
            traceback.print_exc()
        if _raised_by_ctrl_c(e):
            return _interrupted(getattr(args, "command", None))
        print(f"Error: {type(e).__name__}: {mask_secrets(str(e))} (run with --debug for the "
              "traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

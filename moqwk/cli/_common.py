"""What every command shares: the common flags, loading the config a run uses, the console."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from moqwk.config import Config, load_config
from moqwk.config.xgb_params import check_param_names
from moqwk.config.yaml_load import load_json
from moqwk.errors import ConfigError
from moqwk.progress import Progress
from moqwk.run.record import Level, check_same_config, resolve_config, run_config


def progress_for(args: argparse.Namespace, console: Console) -> Progress:
    """Progress of long work on ``console``: bars, log lines, or nothing with ``--quiet``."""
    from moqwk.console.progress import make_progress

    return make_progress(console, quiet=bool(getattr(args, "quiet", False)))


def add_run_dir(p: argparse.ArgumentParser, *, help: str | None = None) -> None:
    p.add_argument("--run-dir", required=True, help=help or "the run directory")


def add_config(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument("--config", required=required,
                   help="YAML config (default: the run directory's config.yaml; when both exist "
                        "they must agree)" if not required else "YAML config")


def add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="Optuna storage URL (default: the run's own, "
                                     "sqlite:///RUN_DIR/study.db); PostgreSQL: "
                                     "postgresql+psycopg://USER:PW@HOST:PORT/DB")
    p.add_argument("--study-name", default="moqwk", help="study name in the storage")


def config_for_run(args: argparse.Namespace, *, level: Level, first: str | None = None,
                   **overrides: Any) -> Config:
    """The config a command on ``--run-dir`` uses.

    ``--config`` when given (it must agree with the run's own ``config.yaml`` on ``level``),
    else the run's own; ``overrides`` (``--sampler``, ``--seed``) are applied to ``search:``
    and must agree with the run too. ``first``: for a command that never starts a run, what
    does (see :func:`moqwk.run.record.resolve_config`).
    """
    run_dir = Path(args.run_dir)
    recorded = run_config(run_dir)
    if recorded is not None and any(v is not None for v in overrides.values()):
        # a flag that would change the run is named as the flag, before any --config
        flags = ", ".join(f"--{k.replace('_', '-')}" for k, v in overrides.items()
                          if v is not None)
        check_same_config(recorded.with_search(**overrides), recorded, level=level,
                          run_dir=run_dir, what=flags)
    given = load_config(args.config) if getattr(args, "config", None) else None
    if given is not None:
        # What the command sets (`grid`: sampler grid; --sampler, --seed) is part of the config
        # it runs with, as the run recorded it: a --config that leaves it unsaid (the command
        # that started the run, given again to resume it) does not differ from the run.
        given = given.with_search(**overrides)
    return resolve_config(run_dir, given, level=level, first=first).with_search(**overrides)


def read_params(path: str | None) -> dict | None:
    """``--params``: a JSON object of XGBoost parameters (or a ``selected_params.json``)."""
    if path is None:
        return None
    p = Path(path)
    try:
        data = load_json(p.read_text(encoding="utf-8"), source=f"--params: {p}")
    except FileNotFoundError:
        raise ConfigError(f"--params: {p} not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params: {p} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and "params" in data and isinstance(data["params"], dict):
        data = data["params"]  # accept selected_params.json as it is
    if not isinstance(data, dict):
        raise ConfigError(f"--params: {p} must hold a JSON object of XGBoost parameters")
    check_param_names(data, f"--params {p}", sep=": ")
    return data

"""What every command shares: the common flags, loading the config a run uses, the console."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from moqwk.base.progress import Progress
from moqwk.config import Config
from moqwk.config.xgb_params import check_param_names
from moqwk.config.yaml_load import load_json
from moqwk.errors import ConfigError
from moqwk.run.record import Level


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
    """The config a command on ``--run-dir`` uses (``--config`` or the run's own; see
    :func:`moqwk._api._common.config_for_run`, which the API's commands use too)."""
    from moqwk._api._common import config_for_run as resolve

    return resolve(Path(args.run_dir), getattr(args, "config", None) or None, level=level,
                   first=first, **overrides)


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

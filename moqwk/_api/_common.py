"""What every API function shares: a config from a path, a dict or a Config; the config a run
directory uses; progress on or off; Optuna's per-trial log lines kept quiet."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from moqwk.errors import ConfigError

if TYPE_CHECKING:
    from moqwk.base.progress import Progress
    from moqwk.config import Config
    from moqwk.run.record import Level

#: What ``config=`` accepts: a YAML file, a mapping shaped like one, or a parsed config.
ConfigLike = Union[str, "os.PathLike[str]", Mapping[str, Any], "Config"]
#: What ``progress=`` accepts: False (nothing, the default), True (bars or lines on stderr), or
#: any :class:`moqwk.base.progress.Progress`.
ProgressLike = Union[bool, "Progress"]


def as_config(config: ConfigLike) -> Config:
    """A :class:`moqwk.config.Config` from a path, a mapping or a Config.

    A mapping is validated exactly as a YAML file is (a bad field raises ConfigError naming its
    path); its relative paths (``data.path``, ``features.table.path``) are relative to the
    working directory.
    """
    from moqwk.config import Config, load_config, parse_config

    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        return parse_config(config, base_dir=Path.cwd())
    if isinstance(config, str | os.PathLike):
        return load_config(Path(config))
    raise ConfigError(f"config: expected a path to a YAML file, a mapping or a moqwk Config, "
                      f"got {type(config).__name__}")


def config_for_run(run_dir: Path, config: ConfigLike | None, *, level: Level,
                   first: str | None = None, **overrides: Any) -> Config:
    """The config a command on ``run_dir`` uses: ``config`` when given (it must agree with the
    run's own ``config.yaml`` on ``level``), else the run's own.

    ``overrides`` (sampler, seed; ``grid`` sets sampler grid) are applied to ``search:`` and
    must agree with the run too. ``first``: for a command that never starts a run
    (``select``), what does (see :func:`moqwk.run.record.resolve_config`).
    """
    from moqwk.run.record import check_same_config, resolve_config, run_config

    recorded = run_config(run_dir)
    if recorded is not None and any(v is not None for v in overrides.values()):
        # a flag that would change the run is named as the flag, before any --config
        flags = ", ".join(f"--{k.replace('_', '-')}" for k, v in overrides.items()
                          if v is not None)
        check_same_config(recorded.with_search(**overrides), recorded, level=level,
                          run_dir=run_dir, what=flags)
    given = as_config(config) if config is not None else None
    if given is not None:
        # What the command sets (`grid`: sampler grid; --sampler, --seed) is part of the config
        # it runs with, as the run recorded it: a --config that leaves it unsaid (the command
        # that started the run, given again to resume it) does not differ from the run.
        given = given.with_search(**overrides)
    return resolve_config(run_dir, given, level=level, first=first).with_search(**overrides)


def as_progress(progress: ProgressLike) -> Progress:
    """Nothing for False, the console's bars (a terminal) or lines (a log) on stderr for True."""
    from moqwk.base.progress import NO_PROGRESS

    if progress is False or progress is None:
        return NO_PROGRESS
    if progress is True:
        from moqwk.console import make_console
        from moqwk.console.progress import make_progress

        return make_progress(make_console(stderr=True))
    if not hasattr(progress, "stage"):
        raise ConfigError(f"progress: expected True, False or a moqwk.base.progress.Progress, got "
                          f"{type(progress).__name__}")
    return progress


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO line per trial and its ExperimentalWarnings off for the call (moqwk records
    each trial itself); the caller's verbosity comes back after."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(before, optuna.logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(before)

"""The exceptions moqwk raises. The CLI maps each to one ``Error:`` line and an exit code."""

from __future__ import annotations


class MoqwkError(Exception):
    """Base of every error moqwk raises on purpose; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ConfigError(MoqwkError):
    """The config file is missing, unreadable, or a field has a bad value (names the field path)."""

    exit_code = 2


class DataError(MoqwkError):
    """The corpus is unusable: missing column, bad scores, duplicate ids, empty texts, etc."""

    exit_code = 3


class SplitsError(MoqwkError):
    """A run's recorded splits disagree with its config (a run never changes its splits)."""

    exit_code = 3


class StorageError(MoqwkError):
    """The Optuna storage cannot be reached or holds a study that does not fit this run."""

    exit_code = 4


class NoFeasibleTrialError(MoqwkError):
    """Selection found no trial that keeps both tail guardrails (and no --allow-tail-regression)."""

    exit_code = 5


class StabilityGateError(MoqwkError):
    """No candidate passed the stability gate under ``stratified_text``."""

    exit_code = 6


class RunDirError(MoqwkError):
    """The run directory lacks the artifacts a command needs (for example select before search)."""

    exit_code = 7


class ModelError(MoqwkError):
    """A model directory is missing, damaged, or from a moqwk whose features differ."""

    exit_code = 7

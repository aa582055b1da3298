"""The user attributes moqwk stores on an Optuna study and its trials: one declaration each.

Every key moqwk reads or writes with ``set_user_attr`` / ``user_attrs`` / ``enqueue_trial(...,
user_attrs=)`` is a constant here (:class:`TrialAttr`, :class:`StudyAttr`); no other module
spells one (``tests/test_study_attrs.py`` scans the package for a ``"moqwk_`` literal). The keys
are what existing studies hold: renaming one would make older studies unreadable, so a key never
changes; a new attribute gets a ``moqwk_`` key. Two trial attributes (``per_prompt_qwk``,
``oof_level``) predate the prefix and keep their keys (:attr:`Attr.legacy`).

``docs/reference/artifacts.md`` ("Study and trial user attributes") holds :func:`table`; a docs
test checks it is the declarations' table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

#: The prefix of every attribute key declared after the namespace was introduced.
PREFIX: Final = "moqwk_"

Scope = Literal["trial", "study"]


@dataclass(frozen=True)
class Attr:
    """One user attribute: its storage ``key``, whether a ``trial`` or the ``study`` carries it,
    the JSON type of its value, and what it holds. ``legacy``: stored under a key from before the
    ``moqwk_`` namespace (kept so older studies read)."""

    key: str
    scope: Scope
    json_type: str
    doc: str
    legacy: bool = False


_declared: list[Attr] = []


def _attr(key: str, scope: Scope, json_type: str, doc: str, *, legacy: bool = False) -> str:
    _declared.append(Attr(key, scope, json_type, doc, legacy))
    return key


class TrialAttr:
    """Keys of the user attributes of a trial."""

    ROLE: Final = _attr(
        "moqwk_role", "trial", "string",
        "`baseline`, `seed` or `sampled` (absent: `sampled`); given when the trial is queued, "
        "a retry keeps the role of the trial it retries")
    WORKER: Final = _attr(
        "moqwk_worker", "trial", "string",
        "`host:pid` of the process running the trial (how a dead worker's trial is found)")
    SURPLUS: Final = _attr(
        "moqwk_surplus", "trial", "boolean",
        "`true` on a trial pruned before training because other workers used up the budget")
    PARAMS: Final = _attr(
        "moqwk_params", "trial", "object",
        "every param the trial scored with (the drawn ones, the fixed ones and `mapping.*`); "
        "set once all were drawn")
    FAILURE: Final = _attr(
        "moqwk_failure", "trial", "string",
        "the error of a trial that failed for a reason of its own (at most 500 characters); a "
        "failed trial without it was interrupted")
    METRICS: Final = _attr(
        "moqwk_metrics", "trial", "object",
        "`{pooled_qwk, low_tail_bias, high_tail_bias, worst_prompt, n_eligible_prompts, "
        "timings}` of a complete trial")
    MAPPING: Final = _attr(
        "moqwk_mapping", "trial", "object",
        "`{spec, transductive, fallback_share}`: the score mapping a complete trial used")
    PRUNED: Final = _attr(
        "moqwk_pruned", "trial", "object",
        "why fold racing stopped the trial: `{folds_run, folds_total, rung, rungs, reason, "
        "bound, dominated_by, timings}`")
    RETRY_OF: Final = _attr(
        "moqwk_retry_of", "trial", "integer",
        "number of the interrupted trial this one retries")
    PER_PROMPT_QWK: Final = _attr(
        "per_prompt_qwk", "trial", "object",
        "`{prompt: QWK}` of a complete trial", legacy=True)
    OOF_LEVEL: Final = _attr(
        "oof_level", "trial", "array",
        "the out-of-fold predicted levels of a complete trial, one list per repeat (the "
        "tie-tolerance bootstrap and the report read them)", legacy=True)


class StudyAttr:
    """Keys of the user attributes of the study."""

    GUARDRAILS: Final = _attr(
        "moqwk_guardrails", "study", "object",
        "`{baseline_trial, low_tail_mae, high_tail_mae, tolerance, low_tail_limit, "
        "high_tail_limit}`, set when the baseline trial finishes")
    TARGET: Final = _attr(
        "moqwk_target", "study", "integer",
        "the trial budget of the latest search on the study")
    CONFIG_HASH: Final = _attr(
        "moqwk_config_hash", "study", "string",
        "the study hash of the config the study was made with (a resume checks it)")
    DATA_HASH: Final = _attr(
        "moqwk_data_hash", "study", "string",
        "sha256 of the corpus the study was made with (a resume checks it)")


#: Every declared attribute, trial ones first, in declaration order.
ALL: Final[tuple[Attr, ...]] = tuple(_declared)
#: Key -> its declaration.
BY_KEY: Final = {a.key: a for a in ALL}


def table() -> str:
    """The Markdown table of :data:`ALL` that ``docs/reference/artifacts.md`` holds."""
    rows = ["| key | on | JSON type | holds |", "|---|---|---|---|"]
    rows += [f"| `{a.key}` | {a.scope} | {a.json_type} | {a.doc} |" for a in ALL]
    return "\n".join(rows) + "\n"

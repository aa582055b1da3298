"""What the Python API returns: one frozen dataclass per command, documented field by field.

Every mapping in a result is read-only (a :class:`types.MappingProxyType`); the paths are the
artifacts the command wrote, so a result and the run directory on disk always tell the same
story. These names are re-exported as ``moqwk.CVResult``, ``moqwk.SearchResult`` and so on; they
are not :class:`moqwk.engine.cv.CVResult` or :class:`moqwk.model.fit.FitResult`, which are the
internal records the API reads from.

This module imports nothing heavy: no Optuna, no XGBoost, no console.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moqwk.core.metrics import CVMetrics


def frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only view of ``d`` (an empty one for None)."""
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True, kw_only=True)
class CVResult:
    """``moqwk.cv``: one config cross-validated, its artifacts written into ``run_dir``.

    Attributes:
        run_dir: the run directory.
        scheme: the fold scheme (``prompt_holdout`` or ``stratified_text``).
        objectives: the config's four objectives, name -> value (``worst_prompt_qwk`` or the
            configured worst-prompt estimator, ``mean_qwk``, ``low_tail_mae``, ``high_tail_mae``).
        per_prompt_qwk: prompt -> its QWK over the out-of-fold predictions.
        worst_prompt: the prompt with the lowest QWK among the eligible ones.
        pooled_qwk: QWK of all essays pooled (None when the scale is per prompt).
        params: the XGBoost and ``mapping.*`` params that were scored.
        metrics: every number of the run (:class:`moqwk.core.metrics.CVMetrics`).
        paths: ``oof`` (residuals CSV), ``metrics`` (cv_metrics.json), ``report`` (the
            diagnostics in Markdown).
        mapping: the score mapping used: ``spec`` (method and params), ``transductive``,
            ``batch`` (the deployment batch a transductive mapping's numbers assume, else
            None), ``fallback_share`` and each fold's fitted state.
        features: the feature families used: ``families`` (names), ``config``, ``params``
            (the ``features.*`` keys that were drawn or given).
    """

    run_dir: Path
    scheme: str
    objectives: Mapping[str, float]
    per_prompt_qwk: Mapping[str, float]
    worst_prompt: str | None
    pooled_qwk: float | None
    params: Mapping[str, Any]
    metrics: CVMetrics
    paths: Mapping[str, Path]
    mapping: Mapping[str, Any]
    features: Mapping[str, Any]

    @property
    def transductive(self) -> bool:
        """Whether the mapping uses the statistics of a batch of held-out essays."""
        return bool(self.mapping.get("transductive"))

    @property
    def batch(self) -> int | str | None:
        """The deployment batch a transductive mapping's numbers assume (None otherwise)."""
        return self.mapping.get("batch")


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """``moqwk.search``: the study after this call, read from its storage.

    Attributes:
        run_dir: the run directory.
        kind: ``search`` or ``grid``.
        sampler: the sampler's name (``nsga2``, ``random``, ``grid``...).
        seed: the sampler's seed.
        study_name: the study's name in its storage.
        storage: the storage URL with any password masked (None: the run's own study.db).
        n_trials: the study's budget (its target count of trials).
        n_complete: trials that finished.
        n_failed: trials that failed for a reason of their own (they use the budget).
        n_feasible: complete trials that keep both tail guardrails.
        finished: whether the budget is used (complete + failed >= n_trials).
        best_feasible: objective -> the best value among feasible trials (None: no such trial).
        guardrails: the tail limits the baseline set (``low_tail_limit``, ``high_tail_limit``...).
        paths: ``trials`` (optuna_trials.json), ``study`` (optuna_study.json), ``progress``.
    """

    run_dir: Path
    kind: str
    sampler: str
    seed: int
    study_name: str
    storage: str | None
    n_trials: int
    n_complete: int
    n_failed: int
    n_feasible: int
    finished: bool
    best_feasible: Mapping[str, float | None]
    guardrails: Mapping[str, Any]
    paths: Mapping[str, Path]


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """A BBC-CV estimate of the selected trial on new folds, for one objective.

    Attributes:
        in_sample: the search's own number for the trial (what selection maximised).
        estimate: the selection-bias-corrected point estimate.
        lo: lower end of its interval.
        hi: upper end of its interval.
        optimism: ``in_sample - estimate``.
    """

    in_sample: float
    estimate: float
    lo: float
    hi: float
    optimism: float


@dataclass(frozen=True, kw_only=True)
class HoldoutEstimate:
    """The selected trial on ``cv.holdout``'s essays, for one objective (scored once, after the
    choice; nothing in the search or the selection saw them).

    Attributes:
        value: the objective on the holdout.
        se: its bootstrap standard error (within-prompt essay resamples).
        size_corrected: ``value`` less the size shift: what the development numbers lose when
            read on samples of the holdout's size (a small holdout reads the worst prompt low).
        size_shift: that shift.
    """

    value: float
    se: float
    size_corrected: float
    size_shift: float


@dataclass(frozen=True, kw_only=True)
class Holdout:
    """The holdout ``select`` scored its choice on (``holdout`` in ``selected_params.json``).

    Attributes:
        unit: ``essays`` (unseen essays of the same prompts) or ``prompts`` (unseen prompts).
        share: the share of the corpus reserved (``cv.holdout``).
        n_essays: its essays.
        n_prompts: the prompts they come from.
        assumes: what the numbers assume, in words.
        objectives: objective -> :class:`HoldoutEstimate`.
    """

    unit: str
    share: float
    n_essays: int
    n_prompts: int
    assumes: str
    objectives: Mapping[str, HoldoutEstimate]


@dataclass(frozen=True, kw_only=True)
class SelectResult:
    """``moqwk.select``: the selected trial (it passed the stability gate).

    Attributes:
        run_dir: the run directory.
        trial_number: the selected trial's number in the study.
        params: its XGBoost and ``mapping.*`` params (what ``moqwk.fit`` trains).
        in_sample: objective -> its value on the search's own folds (optimistic).
        bbc_cv: objective -> :class:`Estimate` on new folds (BBC-CV), or None when select ran
            without it (``select.bbc_n_boot: 0``, or fewer than two trials with predictions).
        holdout: the choice scored on essays nothing else saw (:class:`Holdout`), or None
            without ``cv.holdout``.
        baseline_trial_number: the baseline trial's number (0 for a search).
        tie_tolerance: the worst-prompt QWK tie band the rule used.
        rule: the selection rule's name.
        feasible: whether the trial keeps both tail guardrails.
        finished: whether the study had used its budget when select ran.
        record: everything ``selected_params.json`` holds, as written.
        paths: ``selected`` (selected_params.json), ``front`` (pareto_front.json), ``summary``
            (optuna_summary.md), ``baseline_oof``, and ``report`` (the HTML page) when built.
    """

    run_dir: Path
    trial_number: int
    params: Mapping[str, Any]
    in_sample: Mapping[str, float]
    bbc_cv: Mapping[str, Estimate] | None
    holdout: Holdout | None
    baseline_trial_number: int
    tie_tolerance: float
    rule: str
    feasible: bool
    finished: bool
    record: Mapping[str, Any]
    paths: Mapping[str, Path]


@dataclass(frozen=True, kw_only=True)
class CompareRun:
    """One run of a comparison.

    Attributes:
        run_dir: the run directory.
        trial_number: its selected trial.
        sampler: the sampler its search used.
        in_sample: objective -> the selected trial's number on its search's own folds.
        fresh: objective -> the same config re-scored on fresh folds.
    """

    run_dir: Path
    trial_number: int
    sampler: str
    in_sample: Mapping[str, float | None]
    fresh: Mapping[str, float | None]


@dataclass(frozen=True, kw_only=True)
class CompareResult:
    """``moqwk.compare``: selected configs re-scored on fresh folds.

    Attributes:
        out: the directory compare.json and compare.md went to.
        runs: one :class:`CompareRun` per run, in the order given.
        verdict_met: with two or more runs, whether the first matches or beats the second on
            fresh folds (QWK within noise or better, tails not worse); None with one run.
        fresh_seed: the seed of the fresh fold assignments.
        record: everything compare.json holds.
        paths: ``json`` and ``markdown``.
    """

    out: Path
    runs: tuple[CompareRun, ...]
    verdict_met: bool | None
    fresh_seed: int
    record: Mapping[str, Any]
    paths: Mapping[str, Path]


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """``moqwk.fit``: the model directory written (load it with ``moqwk.load_model``).

    Attributes:
        path: the model directory.
        trial_number: the trial that was fitted.
        n_essays: essays it was trained on.
        n_prompts: prompts among them.
        mapping: the score mapping's method (``round``, ``stretch``...).
        transductive: whether the mapping scores each prompt's essays as one batch.
        in_sample: objective -> the trial's CV numbers on the search's folds (optimistic).
        manifest: everything ``model.json`` holds.
    """

    path: Path
    trial_number: int | None
    n_essays: int
    n_prompts: int
    mapping: str
    transductive: bool
    in_sample: Mapping[str, float]
    manifest: Mapping[str, Any]

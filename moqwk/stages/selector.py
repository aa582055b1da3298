"""``moqwk select``: the feasible Pareto front, the selection rule, the stability gate.

The steps are plain functions (load the trials, compute the front, rank it, estimate the tie
tolerance, run the gate, build the record) so a notebook can do what the CLI does. The logic
on numbers lives in :mod:`moqwk.core.selection` and :mod:`moqwk.core.pareto`; this module feeds
it and returns records. Writing them (artifacts, the markdown and HTML reports) is
:mod:`moqwk._api.select_outputs`, a layer above: nothing here imports :mod:`moqwk.reports` or
:mod:`moqwk.console`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moqwk.base import artifacts
from moqwk.base.fields import fields_of, override
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.config import SelectConfig
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet, gate_metrics, metric
from moqwk.core.pareto import feasible_mask, loss_matrix, pareto_front_mask
from moqwk.core.selection import (
    RULES,
    gate_verdict,
    success_criterion,
    tail_tradeoff,
)
from moqwk.errors import (
    ConfigError,
    DataError,
    NoFeasibleTrialError,
    RunDirError,
)
from moqwk.run.artifact_records import SelectionRecord
from moqwk.run.layout import SPLITS, STUDY_DB
from moqwk.run.workspace import Workspace
from moqwk.study.attrs import StudyAttr, TrialAttr
from moqwk.study.records import CONSTRAINTS, objective_names, records


@dataclass(frozen=True)
class SelectOptions(SelectConfig):
    """The ``select:`` section (its fields and defaults are :class:`SelectConfig`'s) with what
    one ``moqwk select`` call adds: the tail-regression waiver and where the study lives."""

    allow_tail_regression: bool = False
    reason: str | None = None
    storage: str | None = None
    study_name: str = "moqwk"


@dataclass(frozen=True)
class RunTrials:
    """A finished search as records: every trial, the baseline and the guardrails."""

    trials: list[dict]
    baseline: dict
    guardrails: dict
    study_name: str
    storage: str
    objectives: ObjectiveSet = DEFAULT_OBJECTIVES
    data_hash: str | None = None
    config_hash: str | None = None
    oof_levels: dict[int, list[list[int]]] = field(default_factory=dict)
    target: int | None = None  # the study's budget (grid: its points + the baseline)
    kind: str = "search"
    resume: str | None = None  # the command that resumes the study

    @property
    def n_counted(self) -> int:
        """Trials that used the budget: complete, failed for a reason of their own, or stopped
        by fold racing (``pruned``; never in the front, the selection or BBC-CV, which take
        complete trials only)."""
        return sum(r["state"] in ("complete", "fail", "pruned") for r in self.trials)


def load_trials(run_dir: Path, *, storage: str | None = None,
                study_name: str = "moqwk") -> RunTrials:
    """Read the finished trials from the study's storage (the run's ``study.db`` by default)."""
    from moqwk.run.layout import default_storage_url
    from moqwk.study.storage import load_study, open_storage

    url = storage or default_storage_url(run_dir)
    if storage is None and not (Path(run_dir) / STUDY_DB).exists():
        raise RunDirError(f"{run_dir} has no {STUDY_DB}; run `moqwk search` first or pass "
                          "--storage")
    study = load_study(open_storage(url), study_name=study_name)
    if study is None:
        raise RunDirError(f"no study {study_name!r} in {artifacts.mask_url(url)}; "
                          "check --study-name")
    recs = records(study)
    guard = study.user_attrs.get(StudyAttr.GUARDRAILS)
    base = [r for r in recs if r["role"] == "baseline" and r["state"] == "complete"]
    if not guard or not base:
        raise RunDirError("the study has no finished baseline trial yet; let the search run "
                          "its first trial")
    oof = {t.number: t.user_attrs[TrialAttr.OOF_LEVEL] for t in study.get_trials(deepcopy=False)
           if TrialAttr.OOF_LEVEL in t.user_attrs}
    from moqwk.run.record import read_run_record, reproduce_command

    record = read_run_record(run_dir)
    target = study.user_attrs.get(StudyAttr.TARGET)
    kind, resume = "search", None
    if record is not None and record.is_study:
        target = record.n_trials or target
        kind = record.kind
        resume = " ".join(reproduce_command(run_dir, record))
    return RunTrials(recs, base[0], guard, study_name, artifacts.mask_url(url) or "",
                     ObjectiveSet.from_names(objective_names(study)),
                     study.user_attrs.get(StudyAttr.DATA_HASH),
                     study.user_attrs.get(StudyAttr.CONFIG_HASH), oof,
                     target=int(target) if target else None, kind=kind, resume=resume)


def candidate_pool(trials: Sequence[dict], *, allow_tail_regression: bool) -> list[dict]:
    """Complete trials; without the flag only those that keep both tail guardrails."""
    done = [r for r in trials if r["state"] == "complete" and r["values"]]
    if allow_tail_regression:
        return done
    cons = np.array([[r["constraints"].get(c, math.nan) for c in CONSTRAINTS] for r in done],
                    dtype=float).reshape(len(done), len(CONSTRAINTS))
    return [r for r, ok in zip(done, feasible_mask(cons), strict=True) if ok]


def pareto_front(pool: Sequence[dict], objectives: ObjectiveSet = DEFAULT_OBJECTIVES
                 ) -> list[dict]:
    """The non-dominated trials of the pool over the objectives, by trial number."""
    if not pool:
        return []
    values = np.array([[r["values"][o] for o in objectives.names] for r in pool], dtype=float)
    mask = pareto_front_mask(loss_matrix(values, objectives.directions))
    return sorted((r for r, m in zip(pool, mask, strict=True) if m), key=lambda r: r["number"])


def front_frame(front: Sequence[dict], objectives: ObjectiveSet = DEFAULT_OBJECTIVES
                ) -> pd.DataFrame:
    return pd.DataFrame([{"trial_number": r["number"],
                          **{o: r["values"][o] for o in objectives.names}} for r in front])


def estimate_tie_tolerance(ws: Workspace, ranked: pd.DataFrame,
                           oof_levels: Mapping[int, list[list[int]]], *,
                           n_boot: int, seed: int, method: str = "paired_median",
                           objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> tuple[float, dict]:
    """The tie band: the noise of a primary-objective difference between distinct configs.

    :func:`moqwk.core.noise.tie_band` on the front's out-of-fold levels, ordered best-first by
    the primary objective: ``paired_median`` (the median paired bootstrap SE between the top
    trial and the next five trials whose predictions differ from it, floored at the top trial's
    own SE so that near-duplicates cannot collapse it) or ``independent``
    (sqrt 2 x the top trial's own SE). A duplicate of the top trial never narrows the band.
    With fewer than two trials there is nothing to tie.
    """
    from moqwk.core.noise import tie_band

    p = metric(objectives.primary)
    by_primary = ranked.assign(_loss=[p.loss(v) for v in ranked[objectives.primary]]
                               ).sort_values(["_loss", "trial_number"])
    if len(by_primary) < 2:
        return 0.0, {"method": "single candidate: nothing to tie", "value": 0.0}
    numbers = [int(n) for n in by_primary["trial_number"] if int(n) in oof_levels]
    band = tie_band(ws.pool([oof_levels[n] for n in numbers]),
                    order=np.arange(len(numbers)), n_boot=n_boot, seed=seed, method=method,
                    objectives=objectives)
    d = band.to_dict()
    d["top"] = numbers[band.top]
    d["pairs"] = [numbers[i] for i in band.pairs]
    d["trials"] = [d["top"], *d["pairs"]]
    return band.value, d


@dataclass
class GateRun:
    """The stability gate for one candidate: its ``stratified_text`` metrics and the verdict."""

    trial_number: int
    metrics: dict
    verdict: dict


@dataclass
class Selection:
    chosen: dict | None
    ranked: pd.DataFrame
    front: list[dict]
    tie_tolerance: float
    tie_method: dict
    gate_baseline: dict
    gates: list[GateRun] = field(default_factory=list)
    tradeoff: list[dict] | None = None
    success: dict | None = None
    selection_bias: dict | None = None


def selection_bias(ws: Workspace, run: RunTrials, opts: SelectOptions, *,
                   tie_tolerance: float, chosen: dict) -> dict | None:
    """A selection-bias-corrected estimate of what the chosen config scores on new folds.

    BBC-CV (:func:`moqwk.core.bbc.bbc`): the out-of-fold predictions of every complete trial
    are pooled; in each bootstrap replicate the whole selection (guardrails against the
    baseline, feasible Pareto front, ``select.rule`` with this tie band, as the rule's
    :meth:`~moqwk.core.selection.Rule.selector` replays it) is replayed on the in-bag essays and
    its choice scored on the out-of-bag ones. No model is retrained. The stability gate needs
    new models, so it is not replayed. None when fewer than two trials have predictions.
    """
    from moqwk.core.bbc import bbc

    if opts.bbc_n_boot == 0:
        return None
    numbers = [r["number"] for r in run.trials
               if r["state"] == "complete" and r["number"] in run.oof_levels]
    if len(numbers) < 2 or run.baseline["number"] not in numbers:
        return None
    obj = run.objectives
    pooled = ws.pool([run.oof_levels[n] for n in numbers])
    tolerance = run.guardrails["tolerance"] if not opts.allow_tail_regression else 1e9
    selector = RULES[opts.rule].selector(tie_tolerance=tie_tolerance, trial_numbers=numbers,
                                         objectives=obj)
    result = bbc(pooled, selector=selector, baseline=numbers.index(run.baseline["number"]),
                 tolerance=tolerance, scheme=opts.bbc_scheme, n_boot=opts.bbc_n_boot,
                 seed=ws.config.cv.seed, objectives=obj)
    record = result.to_dict()
    pick = result.corrected if opts.bbc_corrected else result.estimates
    record["chosen_counts"] = {numbers[int(i)]: c for i, c in record["chosen_counts"].items()}
    record["reported"] = "corrected" if opts.bbc_corrected else "estimates"
    record["trials"] = numbers  # the pooled configs: complete trials only (never pruned ones)
    record["summary"] = {
        k: {"in_sample": chosen["values"][k], "estimate": e.point, "lo": e.lo, "hi": e.hi,
            "optimism": chosen["values"][k] - e.point}
        for k, e in pick.items()}
    return record


def holdout_estimate(ws: Workspace, run: RunTrials, opts: SelectOptions, *, chosen: dict,
                     dev_result: Any, selection_bias: dict | None,
                     progress: Progress = NO_PROGRESS) -> dict | None:
    """The chosen config scored on ``cv.holdout``'s essays, once, after the choice.

    Each holdout essay is scored by the chosen trial's model of the prompt-holdout fold that
    held its prompt out (trained on the other prompts' development essays, with that fold's
    fitted mapping; :func:`moqwk.run.holdout.score_holdout`). The objectives
    (:func:`moqwk.core.holdout.holdout_objectives`) come with within-prompt bootstrap SEs and
    the chosen config's *size shift* (:func:`moqwk.core.holdout.size_shift`: how far its
    development numbers move when read on samples the holdout's size), so that
    ``size_corrected`` sits on the same footing as the in-sample and BBC-CV numbers. Nothing
    here feeds back into the choice. None without a holdout.
    """
    from moqwk.core.holdout import holdout_objectives, size_shift
    from moqwk.core.worst_prompt import estimator
    from moqwk.run.holdout import score_holdout
    from moqwk.run.splits_file import ensure_splits
    from moqwk.run.workspace import pool_of

    h = ws.holdout
    if h is None:
        return None
    cfg = ws.config
    dev = ws.corpus
    dev_splits = ensure_splits(ws.run_dir, dev, cfg, "prompt_holdout")
    result = score_holdout(cfg, h, dev_splits, dict(chosen["params"]), progress=progress)
    n_all = len(h.corpus)
    hc = h.essays
    y = result.oof["y_pred"].to_numpy(float).reshape(-1, n_all)[:, h.mask]
    dev_sizes = dict(zip(dev.prompt_names,
                         np.bincount(dev.prompt_codes, minlength=len(dev.prompt_names)),
                         strict=True))
    hold_sizes = np.bincount(hc.prompt_codes, minlength=len(hc.prompt_names))
    # the prompts CV counts count here: a holdout essay's prompt by its development size; a
    # whole held-out prompt (unit prompts) by its own size, the same cv.min_prompt_n
    eligible = np.array([(dev_sizes.get(p, 0) if h.unit == "essays" else hold_sizes[i])
                         >= cfg.cv.min_prompt_n for i, p in enumerate(hc.prompt_names)])
    est = estimator(run.objectives.worst_prompt)
    pooled = pool_of(hc, cfg, hc.essay_scale.level(y), eligible=eligible)
    values, se = holdout_objectives(pooled, n_boot=opts.n_boot, seed=cfg.cv.seed,
                                    worst_prompt=est, objectives=run.objectives)
    n_dev = len(dev)
    dev_levels = dev.essay_scale.level(dev_result.oof["y_pred"].to_numpy(float)
                                       .reshape(-1, n_dev))
    per_prompt = np.array([int(hold_sizes[hc.prompt_names.index(p)])
                           if p in hc.prompt_names else 0 for p in dev.prompt_names])
    shift = size_shift(ws.pool(dev_levels), unit=h.unit, per_prompt=per_prompt,
                       n_prompts=int(eligible.sum()), n_draws=max(20, opts.n_boot),
                       seed=cfg.cv.seed, worst_prompt=est, objectives=run.objectives)
    names = run.objectives.names
    sb = selection_bias or {}
    bbc_pick = sb.get(sb.get("reported", "corrected")) or {}

    def by_name(a: np.ndarray) -> dict[str, float]:
        return {n: float(v) for n, v in zip(names, a, strict=True)}

    corrected = values - shift
    summary = {}
    for i, n in enumerate(names):
        summary[n] = {"in_sample": chosen["values"][n],
                      "bbc": (bbc_pick.get(n) or {}).get("point"),
                      "holdout": float(values[i]), "holdout_se": float(se[i]),
                      "holdout_size_corrected": float(corrected[i]),
                      "optimism": float(chosen["values"][n] - corrected[i])}
    body = h.to_dict()
    return {
        "unit": h.unit, "share": h.share, "seed": h.seed, "sha256": body["sha256"],
        "n_essays": body["n_essays"], "n_prompts": body["n_prompts"],
        "n_eligible_prompts": int(eligible.sum()),
        "n_development_essays": body["n_development_essays"],
        "trial_number": chosen["number"],
        "measured_on": ("essays no search, CV, tie band, gate or BBC-CV saw, scored once after "
                        "the choice: each by the chosen trial's model of the prompt_holdout "
                        "fold that held its prompt out (trained on the other prompts' "
                        "development essays), with that fold's fitted mapping"),
        "assumes": ("unseen essays of the same prompts" if h.unit == "essays"
                    else "unseen prompts, whole"),
        "values": by_name(values), "se": by_name(se),
        "se_method": f"SD over {opts.n_boot} within-prompt essay resamples of the holdout",
        "size_shift": by_name(shift),
        "size_shift_method": (
            "the chosen config's development out-of-fold numbers read on samples of the "
            "holdout's size (" + ("each prompt's holdout count of essays" if h.unit == "essays"
                                  else "its number of eligible prompts") +
            f", {max(20, opts.n_boot)} draws without replacement), minus the full-size values"),
        "size_corrected": by_name(corrected),
        "summary": summary,
        "mapping": {"batch": result.mapping.get("batch"),
                    "fallback_share": result.mapping.get("fallback_share")},
    }


def _gate_metrics(m: Any) -> dict:
    return {name: metric(name).value(m) for name in gate_metrics()}


def gate_check(ws: Workspace, candidate: Mapping[str, Any], baseline: Mapping[str, Any], *,
               candidate_result: Any, baseline_result: Any, opts: SelectOptions) -> dict:
    """One candidate's gate verdict (a dict, as ``selected_params.json`` records it).

    The worst-prompt margin is ``select.gate_worst_margin`` when given, else derived from the
    noise: ``gate_worst_se_k`` x the paired bootstrap SE of the worst-prompt difference between
    the candidate and the baseline on the gate's own folds
    (:func:`moqwk.core.noise.gate_noise`). A candidate whose run mapped more than
    ``gate_max_fallback_share`` of its essays with its mapping's fallback fails: its gate
    numbers are mostly not those of the mapping that was chosen.
    """
    from moqwk.core.noise import gate_noise
    from moqwk.core.worst_prompt import estimator

    noise = None
    margin = opts.gate_worst_margin
    if margin is None:
        es = ws.corpus.essay_scale
        n = len(ws.corpus)
        levels = [es.level(r.oof["y_pred"].to_numpy(float).reshape(-1, n))
                  for r in (baseline_result, candidate_result)]
        noise = gate_noise(ws.pool(levels), candidate=1, baseline=0, k=opts.gate_worst_se_k,
                           n_boot=opts.n_boot, seed=ws.config.cv.seed,
                           worst_prompt=estimator("min"))  # the gate checks the plain min
        margin = noise.margin
    verdict = gate_verdict(candidate=candidate, baseline=baseline, margin=opts.gate_margin,
                           metrics=gate_metrics(), margins={"worst_prompt_qwk": margin}
                           ).to_dict()
    share = float(candidate_result.mapping.get("fallback_share") or 0.0)
    leans = share > opts.gate_max_fallback_share
    return {**verdict, "passed": bool(verdict["passed"] and not leans),
            "worst_prompt_margin": margin,
            "worst_prompt_noise": noise.to_dict() if noise is not None else
            {"method": "given", "margin": margin},
            "fallback": {"share": share, "limit": opts.gate_max_fallback_share,
                         "leans_on_fallback": leans,
                         "batch": candidate_result.mapping.get("batch")}}


def check_run_matches(ws: Workspace, run: RunTrials) -> None:
    """The study was made from this data and this config (what ``select`` re-scores with)."""
    if run.data_hash is not None and run.data_hash != ws.corpus.data_hash:
        raise DataError(f"study {run.study_name!r} was run on other data (data hash "
                        f"{run.data_hash[:12]}…, now {ws.corpus.data_hash[:12]}…); select with "
                        "the corpus the search used")
    if run.config_hash is not None and run.config_hash != ws.config.study_hash():
        raise ConfigError(f"study {run.study_name!r} was run with another config (hash "
                          f"{run.config_hash[:12]}…, now {ws.config.study_hash()[:12]}…); "
                          "select with the run directory's own config (drop --config)")
    if run.objectives != ws.config.objectives:
        raise ConfigError(f"study {run.study_name!r} optimised {list(run.objectives.names)}, "
                          f"the config {list(ws.config.objectives.names)}; select with the "
                          "run directory's own config (drop --config)")


def select(ws: Workspace, run: RunTrials, opts: SelectOptions, *,
           progress: Progress = NO_PROGRESS) -> Selection:
    """Pool, front, rank, gate: the whole decision (no files written).

    ``progress`` sees the gate's fold features, then the gate itself (the baseline and each
    candidate tried, counted in folds trained).
    """
    check_run_matches(ws, run)
    obj = run.objectives
    if opts.allow_tail_regression and not opts.reason:
        raise ConfigError("--allow-tail-regression needs --reason TEXT: the trade-off is recorded")
    pool = candidate_pool(run.trials, allow_tail_regression=opts.allow_tail_regression)
    if not pool:
        n = sum(r["state"] == "complete" for r in run.trials)
        raise NoFeasibleTrialError(
            f"no feasible trial: all {n} complete trials break a tail guardrail (low <= "
            f"{run.guardrails['low_tail_limit']:.3f}, high <= "
            f"{run.guardrails['high_tail_limit']:.3f}"
            "); run more trials, raise tails.tolerance, or pass --allow-tail-regression --reason")
    front = pareto_front(pool, obj)
    by_number = {r["number"]: r for r in run.trials}
    frame = front_frame(front, obj)
    if opts.tie_tolerance is None:
        tol, how = estimate_tie_tolerance(ws, frame, run.oof_levels, n_boot=opts.n_boot,
                                          seed=ws.config.cv.seed, method=opts.tie_method,
                                          objectives=obj)
    else:
        tol = float(opts.tie_tolerance)
        how = {"method": "given", "value": tol}
    ranked = RULES[opts.rule].rank(frame, tie_tolerance=tol, objectives=obj)

    engine = ws.engine("stratified_text", progress=progress)
    engine.prepare()
    tried = [int(n) for n in ranked["trial_number"].iloc[:opts.max_gate_candidates]]
    label = f"stability gate (stratified_text): baseline + up to {len(tried)} candidate(s)"
    with progress.stage(label, total=(1 + len(tried)) * engine.n_fits, unit="folds") as st:
        base_res = engine.run(run.baseline["params"], on_fold=st.advance)
        base_m = _gate_metrics(base_res.metrics)
        sel = Selection(None, ranked, front, tol, how, base_m)
        for n in tried:
            rec = by_number[n]
            res = engine.run(rec["params"], on_fold=st.advance)
            cand = _gate_metrics(res.metrics)
            gate = gate_check(ws, cand, base_m, candidate_result=res, baseline_result=base_res,
                              opts=opts)
            sel.gates.append(GateRun(n, cand, gate))
            if gate["passed"]:
                sel.chosen = rec
                break
    if sel.chosen is not None:
        base_vals = run.baseline["values"]
        sel.success = {**success_criterion(candidate=sel.chosen["values"], baseline=base_vals,
                                           objectives=obj),
                       # the record says it, not only the printed sentence: these are the
                       # numbers the selection maximised, so they flatter the winner
                       "measured_on": "in-sample: the search's own prompt_holdout folds"}
        sel.selection_bias = selection_bias(ws, run, opts, tie_tolerance=tol, chosen=sel.chosen)
        if not all(v <= 0 for v in sel.chosen["constraints"].values()):
            sel.tradeoff = tail_tradeoff(candidate=sel.chosen["values"], baseline=base_vals,
                                         tolerance=run.guardrails["tolerance"], objectives=obj)
    return sel


def options_from(config_select: SelectConfig, **flags: Any) -> SelectOptions:
    """The config's ``select:`` section, overridden by any flag that was given (each checked as
    the field it overrides: ``--gate-margin: must be >= 0, got -1``)."""
    if flags.get("reason") and not flags.get("allow_tail_regression"):
        raise ConfigError("--reason goes with --allow-tail-regression; add the flag or drop "
                          "the reason")
    chosen = override(config_select, "select", tie_tolerance=flags.get("tie_tolerance"),
                      gate_margin=flags.get("gate_margin"),
                      max_gate_candidates=flags.get("max_gate_candidates"))
    return SelectOptions(**{name: getattr(chosen, name) for name, _ in fields_of(SelectConfig)},
                         allow_tail_regression=bool(flags.get("allow_tail_regression")),
                         reason=flags.get("reason"),
                         storage=flags.get("storage"),
                         study_name=flags.get("study_name") or "moqwk")


def selection_record(ws: Workspace, run: RunTrials, sel: Selection, opts: SelectOptions, *,
                     reproduced: dict | None, commands: list[str],
                     mapping: dict | None = None,
                     baseline_reproduced: dict | None = None,
                     holdout: dict | None = None) -> SelectionRecord:
    """Everything ``selected_params.json`` holds (:class:`SelectionRecord`): the choice, its
    score mapping (with each fold's fitted numbers, from the prompt-holdout re-run), the rule,
    the gate, the hashes."""
    chosen = sel.chosen
    splits = artifacts.read_json(ws.run_dir / SPLITS)
    return SelectionRecord(
        trial_number=chosen["number"] if chosen else None,
        params=chosen["params"] if chosen else None,
        mapping=mapping,
        transductive=bool(mapping and mapping.get("transductive")),
        # the deployment batch every number of a transductive choice assumes (None: not one)
        batch=(mapping or {}).get("batch"),
        values=chosen["values"] if chosen else None,
        constraints=chosen["constraints"] if chosen else None,
        feasible=chosen["feasible"] if chosen else None,
        objectives=run.objectives.to_dict(),
        rule={"name": opts.rule, "order": RULES[opts.rule].describe(run.objectives),
              "pool": "feasible Pareto front over the objectives"},
        tie_tolerance=sel.tie_tolerance,
        tie_tolerance_method=sel.tie_method,
        allow_tail_regression=opts.allow_tail_regression,
        tail_regression_reason=opts.reason if opts.allow_tail_regression else None,
        tail_tradeoff=sel.tradeoff,
        candidates=sel.ranked.to_dict(orient="records"),
        stability_gate={
            "scheme": "stratified_text",
            "margin": opts.gate_margin,
            "worst_prompt_margin": ("auto" if opts.gate_worst_margin is None
                                    else opts.gate_worst_margin),
            "worst_prompt_se_k": opts.gate_worst_se_k,
            "max_fallback_share": opts.gate_max_fallback_share,
            "metrics": list(gate_metrics()),
            "max_candidates": opts.max_gate_candidates,
            "baseline": sel.gate_baseline,
            "results": [{"trial_number": g.trial_number, "metrics": g.metrics, **g.verdict}
                        for g in sel.gates],
        },
        baseline={"trial_number": run.baseline["number"], "params": run.baseline["params"],
                  "values": run.baseline["values"],
                  "reproduced_on_prompt_holdout": baseline_reproduced},
        guardrails=run.guardrails,
        success_criterion=sel.success,
        selection_bias=sel.selection_bias,
        holdout=holdout,
        reproduced_on_prompt_holdout=reproduced,
        study={"name": run.study_name, "storage": run.storage, "kind": run.kind,
               "n_trials": len(run.trials),
               "n_complete": sum(r["state"] == "complete" for r in run.trials),
               "n_counted": run.n_counted, "target": run.target,
               "finished": run.target is None or run.n_counted >= run.target,
               "resume": run.resume},
        hashes={"config": ws.config.study_hash(), "data": ws.corpus.data_hash,
                "splits": {k: v["sha256"] for k, v in splits["schemes"].items()},
                **({"holdout": splits["holdout"]["sha256"]} if "holdout" in splits
                   else {})},
        versions=artifacts.versions(),
        reproduce=commands,
    )

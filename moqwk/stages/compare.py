"""``moqwk compare``: selected configs of several runs side by side, re-scored on fresh folds.

A search evaluates many more configs than a grid, so its best in-sample numbers are optimistic.
Every selected config is therefore re-scored on prompt-holdout fold assignments whose seed the
searches never used, and the verdict rests on those fresh numbers.

This module computes and returns the record; :mod:`moqwk._api.compare_outputs`, a layer above,
writes ``compare.json`` and ``compare.md``: nothing here imports :mod:`moqwk.reports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moqwk.base import artifacts
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.config import Config
from moqwk.core.objectives import METRICS, ObjectiveSet
from moqwk.core.selection import success_criterion
from moqwk.core.splits import partition_key
from moqwk.errors import ConfigError, DataError, RunDirError
from moqwk.run.artifact_records import read_progress, read_selection, read_trials
from moqwk.run.layout import SELECTED, STUDY_JSON, TRIALS_JSON
from moqwk.run.record import check_same_config, run_config, unfinished_sentence
from moqwk.run.splits_file import make_splits, partition_keys
from moqwk.run.workspace import Workspace


@dataclass(frozen=True)
class RunSummary:
    """What compare needs from one run directory (read from its artifacts only)."""

    run_dir: str
    trial_number: int
    params: dict
    in_sample: dict
    gate_passed: bool
    allow_tail_regression: bool
    sampler: str
    n_trials: int
    wall_s: float | None
    data_hash: str
    objectives: ObjectiveSet
    unfinished: str | None = None  # why the run's choice is among fewer trials than planned
    mapping: str = "round"
    transductive: bool = False


def read_run(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    sel = read_selection(run_dir)
    trials = read_trials(run_dir)
    study = artifacts.read_json(run_dir / STUDY_JSON)
    progress = read_progress(run_dir)
    assert sel.trial_number is not None and sel.params is not None and sel.values is not None
    chosen = next((t for t in trials if t.number == sel.trial_number), None)
    if chosen is None:
        raise RunDirError(f"{run_dir / SELECTED} names trial {sel.trial_number}, which "
                          f"{run_dir / TRIALS_JSON} does not hold; re-run `moqwk select "
                          f"--run-dir {run_dir}`")
    extra = chosen.metrics or {}
    in_sample = {**sel.values, **{k: extra.get(k) for k in METRICS
                                  if k not in sel.values and k in extra}}
    return RunSummary(
        run_dir=str(run_dir), trial_number=sel.trial_number, params=sel.params,
        in_sample=in_sample, gate_passed=sel.gate_passed,
        allow_tail_regression=bool(sel.allow_tail_regression),
        sampler=study["sampler"]["name"],
        n_trials=sum(t.state in ("complete", "fail") for t in trials),
        wall_s=sum(t.duration_s or 0.0 for t in trials) or progress.elapsed_s,
        data_hash=sel.hashes["data"],
        objectives=sel.objective_set,
        unfinished=unfinished_sentence({"study": sel.study}),
        mapping=((sel.mapping or {}).get("spec") or {}).get("method", "round"),
        transductive=bool(sel.transductive),
    )


def check_fresh_seed(config: Config, seed: int) -> None:
    if seed == config.cv.seed:
        raise ConfigError(f"--fresh-seed {seed} is the seed the searches used (cv.seed); pick "
                          "another so the folds are fresh")


@dataclass(frozen=True)
class FreshScores:
    """Each config's fresh metrics, and its fresh out-of-fold levels (configs, repeats, essays)
    for paired comparisons."""

    metrics: list[dict]
    levels: np.ndarray


def fresh_scores(ws: Workspace, params: Sequence[dict], *, seed: int, repeats: int,
                 forbidden: frozenset[str] = frozenset(),
                 progress: Progress = NO_PROGRESS) -> FreshScores:
    """Each config re-scored on the same fresh prompt-holdout fold assignments.

    The fresh repeats differ from each other and from every partition in ``forbidden`` (the
    searches' own folds, without fold labels): with few prompts another seed often gives the
    same assignment (on the 10-prompt demo corpus, about 1 seed in 7 gives cv.seed's), and
    re-scoring on it would report in-sample numbers as fresh. Such a repeat is redrawn.
    ``progress`` sees the fresh folds' features, then the re-scoring (every config on every
    fresh repeat, counted in folds trained).
    """
    check_fresh_seed(ws.config, seed)
    engine = ws.engine("prompt_holdout", seed=seed, repeats=repeats, progress=progress,
                       forbidden=forbidden)
    engine.prepare()
    out = []
    levels = []
    es = ws.corpus.essay_scale
    n = len(ws.corpus)
    label = (f"fresh folds (seed {seed}): {len(params)} config(s) x {repeats} repeat(s)")
    with progress.stage(label, total=len(params) * engine.n_fits, unit="folds") as st:
        for p in params:
            res = engine.run(p, on_fold=st.advance)
            out.append({name: spec.value(res.metrics) for name, spec in METRICS.items()})
            pred = res.oof["y_pred"].to_numpy(float).reshape(-1, n)
            levels.append(np.stack([es.level(row) for row in pred]))
    return FreshScores(out, np.stack(levels) if levels else np.empty((0, repeats, n)))


def paired_fresh(ws: Workspace, fresh: FreshScores, *, seed: int, n_boot: int = 500) -> dict:
    """First config minus second on the fresh folds, per objective, with its paired bootstrap
    SE (essays resampled within prompts, both configs on the same resample)."""
    from moqwk.core.noise import paired_differences

    diffs = paired_differences(ws.pool(fresh.levels[:2]), first=0, second=1, n_boot=n_boot,
                               seed=seed, objectives=ws.config.objectives)
    return {d.metric: d.to_dict() for d in diffs}


#: The joint rule of the verdict: the mean over the counted objectives of each one's loss in
#: units of its paired SE (worse > 0, better < 0) may be at most this. One objective a tie
#: inside 1 SE is noise; four objectives each 0.9 SE worse (mean 0.9) are a consistent loss.
JOINT_LOSS_LIMIT = 0.5


def standardised_loss(check: dict) -> float | None:
    """An objective's loss in SEs: (first - second) / SE, signed so that worse is positive;
    0 when there is no difference; None without an SE."""
    d, se = check.get("delta"), check.get("se")
    if d is None or se is None or not np.isfinite(se):
        return None
    loss = -d if check.get("direction") == "maximize" else d
    if loss == 0:
        return 0.0
    return float(loss / se) if se > 0 else float(np.sign(loss) * np.inf)


def joint_check(checks: dict, names: Sequence[str], *,
                limit: float = JOINT_LOSS_LIMIT) -> dict:
    """Are the small losses consistent? The mean standardised loss over ``names`` must be at
    most ``limit``, so that several ties that all lean the same way are not "met"."""
    z = {n: standardised_loss(checks[n]) for n in names}
    known = [v for v in z.values() if v is not None]
    mean = float(np.mean(known)) if known else None
    return {"rule": f"mean over the objectives of (loss / paired SE) <= {limit:g}, worse "
                    "counted positive",
            "standardised_losses": z, "mean_standardised_loss": mean, "limit": limit,
            "all_worse": bool(known) and all(v > 0 for v in known),
            "ok": mean is None or mean <= limit}


def verdict(first: RunSummary, second: RunSummary, a: dict, b: dict,
            paired: dict | None = None) -> dict:
    """Does the first run match or improve both QWKs against the second, tails not worse?

    On fresh folds, with their noise: a difference within its paired bootstrap SE is a tie
    (``paired``: per objective ``{difference, se, tie}``), and a tie is not worse. Ties alone
    do not make it "met": the joint rule (:func:`joint_check`) also asks that the losses in SE
    units average at most :data:`JOINT_LOSS_LIMIT` over the objectives counted (both QWKs, and
    the tails unless a tail regression was allowed). Without ``paired`` the comparison is
    strict.
    """
    obj = first.objectives
    crit = success_criterion(candidate=a, baseline=b, objectives=obj)
    checks = {}
    for name, c in crit["checks"].items():
        p = (paired or {}).get(name) or {}
        se = p.get("se")
        tie = bool(p.get("tie")) if p else False
        outcome = ("tie" if tie else "better" if c["ok"] and c["delta"] not in (None, 0)
                   else "same" if c["ok"] else "worse")
        checks[name] = {**c, "se": se, "tie": tie, "outcome": outcome,
                        "strictly_ok": c["ok"], "ok": c["ok"] or tie}
    tails_ok = all(checks[m]["ok"] for m in obj.tails)
    qwk_ok = all(checks[m]["ok"] for m in (obj.primary, obj.secondary))
    counted = [obj.primary, obj.secondary] + ([] if first.allow_tail_regression
                                               else list(obj.tails))
    joint = joint_check(checks, counted) if paired else None
    met = (qwk_ok and (tails_ok or first.allow_tail_regression)
           and (joint is None or joint["ok"]))
    return {"first": first.run_dir, "second": second.run_dir, "on": "fresh folds",
            "ties": "a difference within its paired bootstrap SE (essays resampled within "
                    "prompts on the fresh out-of-fold predictions) counts as a tie, not worse"
                    if paired else "none: strict comparison",
            "qwk_matched_or_improved": qwk_ok, "tails_not_worse": tails_ok,
            "tail_regression_allowed": first.allow_tail_regression,
            "joint": joint, "met": met, "checks": checks}


def compare_config(run_dirs: Sequence[Path], given: Config | None) -> Config:
    """The config to re-score with: ``given`` or the first run's; every run must agree on
    scoring (data columns, scale, features, folds, tails, model, objectives)."""
    configs = [(Path(d), run_config(Path(d))) for d in run_dirs]
    config = given or next((c for _, c in configs if c is not None), None)
    if config is None:
        raise ConfigError("none of the runs has a config.yaml (made before moqwk recorded "
                          "one); pass --config")
    for d, c in configs:
        if c is not None:
            check_same_config(config, c, level="scoring", run_dir=d,
                              what="--config" if given else f"the config of {run_dirs[0]}")
    return config


def compare_runs(config: Config, run_dirs: Sequence[Path], out_dir: Path, *, seed: int,
                 repeats: int, progress: Progress = NO_PROGRESS) -> dict:
    """The compare record (what ``compare.json`` holds): every run's selected config in-sample
    and re-scored on fresh folds, and, with two runs or more, the verdict of the first against
    the second. ``out_dir`` is the workspace of the fresh folds (their splits and cache); the
    record is not written here (:func:`moqwk._api.compare_outputs.run_compare` does)."""
    runs = [read_run(Path(d)) for d in run_dirs]
    if len({r.data_hash for r in runs}) > 1:
        raise DataError("the runs were made on different data (data hashes differ); compare "
                        "runs of one corpus")
    if len({r.objectives for r in runs}) > 1:
        raise ConfigError("the runs optimised different objectives; compare runs that share "
                          "objectives.worst_prompt")
    check_fresh_seed(config, seed)  # before anything is written to out_dir
    ws = Workspace.open(config, out_dir)
    if ws.corpus.data_hash != runs[0].data_hash:
        raise DataError(f"the runs were made on other data than {config.source or 'the config'} "
                        "names (data hashes differ); point data.path at the runs' corpus")
    searched = make_splits(ws.corpus, config, "prompt_holdout")  # the config's own folds too
    forbidden = frozenset().union(
        *(partition_keys(Path(d)) for d in run_dirs),
        {partition_key(searched.assignment(r), ids=ws.corpus.ids)
         for r in range(searched.repeats)})
    scored = fresh_scores(ws, [r.params for r in runs], seed=seed, repeats=repeats,
                          forbidden=forbidden, progress=progress)
    fresh = scored.metrics
    obj = runs[0].objectives
    record: dict[str, Any] = {
        "fresh_folds": {"scheme": "prompt_holdout", "seed": seed, "repeats": repeats},
        "objectives": obj.to_dict(),
        "runs": [{"run_dir": r.run_dir, "sampler": r.sampler, "trial_number": r.trial_number,
                  "params": r.params, "in_sample": r.in_sample, "fresh": f,
                  "optimism": {k: (r.in_sample[k] - f[k]) if r.in_sample.get(k) is not None
                               and f.get(k) is not None else None
                               for k in (obj.primary, obj.secondary)},
                  "gate_passed": r.gate_passed, "n_trials": r.n_trials, "trial_time_s": r.wall_s,
                  "allow_tail_regression": r.allow_tail_regression,
                  "unfinished": r.unfinished, "mapping": r.mapping,
                  "transductive": r.transductive}
                 for r, f in zip(runs, fresh, strict=True)],
    }
    if len(runs) >= 2:
        paired = paired_fresh(ws, scored, seed=seed)
        record["verdict"] = verdict(runs[0], runs[1], fresh[0], fresh[1], paired)
    return record

"""``moqwk compare``: selected configs of several runs side by side, re-scored on fresh folds.

A search evaluates many more configs than a grid, so its best in-sample numbers are optimistic.
Every selected config is therefore re-scored on prompt-holdout fold assignments whose seed the
searches never used, and the verdict rests on those fresh numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moqwk import artifacts
from moqwk.config import Config
from moqwk.core.selection import success_criterion
from moqwk.errors import ConfigError, RunDirError
from moqwk.reports import fmt
from moqwk.runs import Workspace

METRICS = ("worst_prompt_qwk", "mean_qwk", "pooled_qwk", "low_tail_mae", "high_tail_mae",
           "low_tail_bias", "high_tail_bias")


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


def read_run(run_dir: Path) -> RunSummary:
    sel_path = run_dir / "artifacts" / "selected_params.json"
    if not sel_path.exists():
        raise RunDirError(f"{run_dir} has no {sel_path.relative_to(run_dir)}; run `moqwk select` "
                          "on it first")
    sel = artifacts.read_json(sel_path)
    trials = artifacts.read_json(run_dir / "artifacts" / "optuna_trials.json")
    study = artifacts.read_json(run_dir / "artifacts" / "optuna_study.json")
    progress = artifacts.read_json(run_dir / "progress.json")
    chosen = next(t for t in trials if t["number"] == sel["trial_number"])
    extra = chosen.get("metrics") or {}
    in_sample = {**sel["values"], "pooled_qwk": extra.get("pooled_qwk"),
                 "low_tail_bias": extra.get("low_tail_bias"),
                 "high_tail_bias": extra.get("high_tail_bias")}
    gate = sel["stability_gate"]["results"]
    return RunSummary(
        run_dir=str(run_dir), trial_number=sel["trial_number"], params=sel["params"],
        in_sample=in_sample, gate_passed=bool(gate and gate[-1]["passed"]),
        allow_tail_regression=bool(sel["allow_tail_regression"]),
        sampler=study["sampler"]["name"],
        n_trials=sum(t["state"] in ("complete", "fail") for t in trials),
        wall_s=sum(t["duration_s"] or 0.0 for t in trials) or progress.get("elapsed_s"),
        data_hash=sel["hashes"]["data"],
    )


def fresh_scores(config: Config, out_dir: Path, params: Sequence[dict], *, seed: int,
                 repeats: int) -> list[dict]:
    """Each config re-scored on the same fresh prompt-holdout fold assignments."""
    if seed == config.cv.seed:
        raise ConfigError(f"--fresh-seed {seed} is the seed the searches used (cv.seed); pick "
                          "another so the folds are fresh")
    ws = Workspace.open(config, out_dir)
    engine = ws.engine("prompt_holdout", seed=seed, repeats=repeats)
    out = []
    for p in params:
        m = engine.run(p).metrics
        out.append({k: getattr(m, k) for k in METRICS})
    return out


def verdict(first: RunSummary, second: RunSummary, a: dict, b: dict) -> dict:
    """Does the first run match or improve both QWKs against the second, tails not worse?"""
    crit = success_criterion(candidate=a, baseline=b)
    tails_ok = all(crit["checks"][m]["ok"] for m in ("low_tail_mae", "high_tail_mae"))
    qwk_ok = all(crit["checks"][m]["ok"] for m in ("mean_qwk", "worst_prompt_qwk"))
    met = qwk_ok and (tails_ok or first.allow_tail_regression)
    return {"first": first.run_dir, "second": second.run_dir, "on": "fresh folds",
            "qwk_matched_or_improved": qwk_ok, "tails_not_worse": tails_ok,
            "tail_regression_allowed": first.allow_tail_regression,
            "met": met, "checks": crit["checks"]}


def compare_runs(config: Config, run_dirs: Sequence[Path], out_dir: Path, *, seed: int,
                 repeats: int) -> dict:
    runs = [read_run(Path(d)) for d in run_dirs]
    hashes = {r.data_hash for r in runs}
    if len(hashes) > 1:
        raise RunDirError("the runs were made on different data (data hashes differ); compare "
                          "runs of one corpus")
    fresh = fresh_scores(config, out_dir, [r.params for r in runs], seed=seed, repeats=repeats)
    record: dict[str, Any] = {
        "fresh_folds": {"scheme": "prompt_holdout", "seed": seed, "repeats": repeats},
        "runs": [{"run_dir": r.run_dir, "sampler": r.sampler, "trial_number": r.trial_number,
                  "params": r.params, "in_sample": r.in_sample, "fresh": f,
                  "optimism": {k: (r.in_sample[k] - f[k]) if r.in_sample.get(k) is not None
                               and f.get(k) is not None else None
                               for k in ("worst_prompt_qwk", "mean_qwk")},
                  "gate_passed": r.gate_passed, "n_trials": r.n_trials, "trial_time_s": r.wall_s,
                  "allow_tail_regression": r.allow_tail_regression}
                 for r, f in zip(runs, fresh, strict=True)],
    }
    if len(runs) >= 2:
        record["verdict"] = verdict(runs[0], runs[1], fresh[0], fresh[1])
    artifacts.write_json(out_dir / "compare.json", record)
    artifacts.write_text(out_dir / "compare.md", compare_markdown(record))
    return record


def compare_markdown(record: dict) -> str:
    ff = record["fresh_folds"]
    lines = ["# moqwk compare", "",
             f"Fresh folds: {ff['scheme']}, seed {ff['seed']}, {ff['repeats']} repeat(s), never "
             "used by the searches. In-sample numbers are the searches' own (optimistic).", "",
             "| run | sampler | trial | trials | worst QWK in-sample | worst QWK fresh "
             "| mean QWK in-sample | mean QWK fresh | pooled QWK fresh | low MAE fresh "
             "| high MAE fresh | low bias fresh | high bias fresh | gate | trial time |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["runs"]:
        i, f = r["in_sample"], r["fresh"]
        t = r["trial_time_s"]
        lines.append(
            f"| {r['run_dir']} | {r['sampler']} | {r['trial_number']} | {r['n_trials']} "
            f"| {fmt(i['worst_prompt_qwk'])} | {fmt(f['worst_prompt_qwk'])} | {fmt(i['mean_qwk'])} "
            f"| {fmt(f['mean_qwk'])} | {fmt(f['pooled_qwk'])} | {fmt(f['low_tail_mae'])} "
            f"| {fmt(f['high_tail_mae'])} | {fmt(f['low_tail_bias'])} | {fmt(f['high_tail_bias'])} "
            f"| {'pass' if r['gate_passed'] else 'fail'} | {fmt(t, 0) + ' s' if t else 'n/a'} |")
    v = record.get("verdict")
    if v:
        lines += ["", "## Verdict (on fresh folds)", "",
                  f"`{v['first']}` against `{v['second']}`: **{'met' if v['met'] else 'not met'}**"
                  f" (QWKs matched or improved: {v['qwk_matched_or_improved']}; tails not worse: "
                  f"{v['tails_not_worse']}; tail regression allowed: "
                  f"{v['tail_regression_allowed']}).", "",
                  "| metric | first | second | difference | ok |", "|---|---|---|---|---|"]
        for m, c in v["checks"].items():
            lines.append(f"| {m} | {fmt(c['candidate'])} | {fmt(c['baseline'])} "
                         f"| {fmt(c['delta'])} | {'yes' if c['ok'] else 'no'} |")
    lines += ["", "```json", json.dumps(record["fresh_folds"]), "```", ""]
    return "\n".join(lines)

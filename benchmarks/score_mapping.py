"""Does searching the score mapping give a pipeline that holds up on fresh folds? (issue 10)

The pre-registered rule is in docs/research/score-mapping.md (committed before these runs).
Arms, per target (ELLIPSE Overall, Vocabulary, Cohesion):

- ``baseline``: the baseline XGBoost params with each mapping method (``round`` is the untuned
  reference, arm 0; the others are arm 1). Deterministic: once per target.
- ``all``: a NSGA-II search (``--budget`` trials, per search seed) whose space is the default
  XGBoost space plus ``mapping.method`` over every method, selected by ``moqwk select``'s rule
  (arm 2).
- ``inductive``: the same search with ``mapping.method`` restricted to the inductive methods
  (``round``, ``stretch``, ``thresholds``) (arm 3; Overall only unless ``--inductive-targets``).

Every arm's chosen config is re-scored on fresh prompt-holdout folds (``--fresh-seed``,
``--fresh-repeats``) that no search used, with its mapping fitted per fold as in CV.

Two phases, so the searches (the long part) can run before the selector's final form:
``--phase search`` runs the studies; ``--phase score`` selects, re-scores and writes the table;
``--phase all`` does both. Every unit keeps its result in ``--work``, so a re-run resumes.

    python benchmarks/score_mapping.py --work /tmp/sm --nthread 1 --phase all
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk._api.select_outputs import run_selection  # noqa: E402
from moqwk.base import artifacts  # noqa: E402
from moqwk.config import DEFAULT_SPACE, parse_config  # noqa: E402
from moqwk.core.mapping import METHODS  # noqa: E402
from moqwk.core.objectives import DEFAULT_OBJECTIVES, METRICS  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402
from moqwk.stages.search_loop import SearchOptions, run_search  # noqa: E402
from moqwk.stages.selector import SelectOptions  # noqa: E402

TARGETS = ("Overall", "Vocabulary", "Cohesion")
ARMS = {"all": sorted(METHODS), "inductive": ["round", "stretch", "thresholds"]}
NAMES = DEFAULT_OBJECTIVES.names


def _config(base: Path, *, target: str, seed: int, methods: list[str] | None, nthread: int):
    raw = yaml.safe_load(base.read_text())
    raw["data"]["score_column"] = target
    raw.setdefault("model", {})["nthread"] = nthread
    raw.setdefault("search", {})["seed"] = seed
    # The rules and runs predate stretch as the default mapping: trials outside the searched
    # method keep round, as they did (and the studies' hashes stay those of the runs).
    raw["mapping"] = {"method": "round"}
    if methods is not None:
        raw["search"]["space"] = {**DEFAULT_SPACE, "mapping.method": {
            "type": "categorical", "choices": methods}}
    return parse_config(raw, base_dir=base.resolve().parent, source=base.resolve())


def _metrics(m) -> dict:
    return {name: spec.value(m) for name, spec in METRICS.items()}


def _fresh(ws: Workspace, params: dict, args: argparse.Namespace) -> dict:
    engine = ws.engine("prompt_holdout", seed=args.fresh_seed, repeats=args.fresh_repeats)
    res = engine.run(params)
    return {**_metrics(res.metrics), "fallback_share": res.mapping["fallback_share"]}


def baseline_unit(base: Path, target: str, work: Path, args: argparse.Namespace) -> dict:
    """Arms 0 and 1: the baseline params with each method, in-sample and fresh."""
    config = _config(base, target=target, seed=0, methods=None, nthread=args.nthread)
    ws = Workspace.open(config, work / f"baseline-{target}")
    engine = ws.engine("prompt_holdout")
    rows = []
    for method in sorted(METHODS):
        params = {**config.baseline_params, "mapping.method": method}
        t0 = time.perf_counter()
        res = engine.run(params)
        in_sample = _metrics(res.metrics)
        f = _fresh(ws, params, args)
        rows.append({"arm": "baseline", "target": target, "method": method,
                     "transductive": res.transductive, "in_sample": in_sample, "fresh": f,
                     "timings": res.timings, "wall_s": time.perf_counter() - t0})
        print(f"baseline {target:<10} {method:<18} fresh mean {f['mean_qwk']:.3f} "
              f"worst {f['worst_prompt_qwk']:.3f}", flush=True)
    return {"rows": rows}


def search_unit(base: Path, arm: str, target: str, seed: int, work: Path,
                args: argparse.Namespace, *, score: bool) -> dict:
    config = _config(base, target=target, seed=seed, methods=ARMS[arm], nthread=args.nthread)
    run_dir = work / f"{arm}-{target}-{seed}"
    ws = Workspace.open(config, run_dir, level="study")
    t0 = time.perf_counter()
    run_search(ws, SearchOptions(n_trials=args.budget))
    out: dict = {"arm": arm, "target": target, "seed": seed, "search_wall_s":
                 time.perf_counter() - t0}
    trials = artifacts.read_json(run_dir / "artifacts" / "optuna_trials.json")
    done = [t for t in trials if t["state"] == "complete"]
    out["n_complete"] = len(done)
    out["trial_s"] = sum(t["duration_s"] or 0.0 for t in done)
    out["methods_tried"] = {m: sum(t["params"].get("mapping.method") == m for t in done)
                            for m in ARMS[arm]}
    if not score:
        return out
    record, _ = run_selection(ws, SelectOptions(), commands=[])
    if record.params is None:  # run_selection raises instead when the gate chose nothing
        raise RuntimeError(f"{run_dir}: the selection record has no params")
    params = record.params
    out.update(selected_trial=record.trial_number, params=params,
               method=params.get("mapping.method"), transductive=record.transductive,
               in_sample=record.values, tie_tolerance=record.tie_tolerance,
               fresh=_fresh(ws, params, args))
    print(f"{arm:>9} {target:<10} seed {seed}: trial {out['selected_trial']} "
          f"({out['method']}) fresh mean {out['fresh']['mean_qwk']:.3f} "
          f"worst {out['fresh']['worst_prompt_qwk']:.3f}", flush=True)
    return out


def _unit(work: Path, name: str, make, *, key: dict) -> dict:
    """A unit's result from ``work`` when it was made with the same ``key``, else made now."""
    path = work / "rows" / f"{name}.json"
    if path.exists():
        row = artifacts.read_json(path)
        if row.get("key") == key:
            return row
    row = {"key": key, **make()}
    artifacts.write_json(path, row)
    return row


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it: results carry no machine paths."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def evaluate(baseline: list[dict], searches: list[dict]) -> dict:
    """The pre-registered rule (docs/research/score-mapping.md), applied to the rows."""
    by = {(r["target"], r["method"]): r for r in baseline}
    out: dict = {"targets": {}}
    for target in sorted({r["target"] for r in baseline}):
        ref = by[target, "round"]["fresh"]
        sel = [s for s in searches if s["arm"] == "all" and s["target"] == target
               and "fresh" in s]
        if not sel:
            continue
        diff = {k: _mean([s["fresh"][k] for s in sel]) - ref[k] for k in NAMES}
        met = (diff["mean_qwk"] >= 0.04 and diff["worst_prompt_qwk"] >= 0.05
               and diff["low_tail_mae"] <= 0 and diff["high_tail_mae"] <= 0)
        out["targets"][target] = {"selected_minus_round": diff, "n_seeds": len(sel),
                                  "target_met": met}
    methods = sorted({r["method"] for r in baseline})
    avg = {m: {k: _mean([by[t, m]["fresh"][k] for t in out["targets"] or
                         {r["target"] for r in baseline} if (t, m) in by]) for k in NAMES}
           for m in methods}
    inductive = [m for m in methods if not METHODS[m].transductive]
    transductive = [m for m in methods if METHODS[m].transductive]
    best_i = max(inductive, key=lambda m: avg[m]["mean_qwk"])
    best_t = max(transductive, key=lambda m: avg[m]["mean_qwk"])
    t_wins = (avg[best_t]["mean_qwk"] - avg[best_i]["mean_qwk"] >= 0.02
              and avg[best_t]["low_tail_mae"] <= avg[best_i]["low_tail_mae"]
              and avg[best_t]["high_tail_mae"] <= avg[best_i]["high_tail_mae"])
    # "The default stays round if no method beats round on fresh mean and worst-prompt QWK
    # averaged over the targets with neither tail worse."
    r = avg["round"]
    beat_round = [m for m in methods if m != "round"
                  and avg[m]["mean_qwk"] > r["mean_qwk"]
                  and avg[m]["worst_prompt_qwk"] > r["worst_prompt_qwk"]
                  and avg[m]["low_tail_mae"] <= r["low_tail_mae"]
                  and avg[m]["high_tail_mae"] <= r["high_tail_mae"]]
    out["method_means"] = avg
    out["best_inductive"], out["best_transductive"] = best_i, best_t
    out["beat_round"] = beat_round
    out["default"] = (best_t if t_wins else best_i) if beat_round else "round"
    out["transductive_default"] = t_wins and bool(beat_round)
    return out


def markdown(baseline: list[dict], searches: list[dict], ev: dict,
             args: argparse.Namespace) -> str:
    def row(cells: list) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    f3 = "{:.3f}".format
    lines = [f"Fresh folds: prompt_holdout seed {args.fresh_seed}, {args.fresh_repeats} "
             "repeats; mean / worst per-prompt QWK (prompts >= 20 essays), tail MAE normalised.",
             "", "Arms 0 and 1: the baseline XGBoost params with each mapping.", "",
             row(["target", "method", "fresh mean QWK", "fresh worst QWK", "fresh low MAE",
                  "fresh high MAE", "in-sample mean QWK", "in-sample worst QWK"]),
             "|---|---|---|---|---|---|---|---|"]
    for r in baseline:
        f, i = r["fresh"], r["in_sample"]
        lines.append(row([r["target"], r["method"] + (" (transductive)" if r["transductive"]
                                                      else ""),
                          f3(f["mean_qwk"]), f3(f["worst_prompt_qwk"]), f3(f["low_tail_mae"]),
                          f3(f["high_tail_mae"]), f3(i["mean_qwk"]), f3(i["worst_prompt_qwk"])]))
    lines += ["", f"Arms 2 (all methods) and 3 (inductive only): {args.budget}-trial NSGA-II "
              "searches over the default XGBoost space and `mapping.method`, selected by "
              "`moqwk select`'s rule.", "",
              row(["arm", "target", "seed", "selected", "method", "fresh mean QWK",
                   "fresh worst QWK", "fresh low MAE", "fresh high MAE", "in-sample mean QWK",
                   "in-sample worst QWK", "trial time (s)"]),
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in searches:
        if "fresh" not in s:
            continue
        f, i = s["fresh"], s["in_sample"]
        lines.append(row([s["arm"], s["target"], s["seed"], s["selected_trial"], s["method"],
                          f3(f["mean_qwk"]), f3(f["worst_prompt_qwk"]), f3(f["low_tail_mae"]),
                          f3(f["high_tail_mae"]), f3(i["mean_qwk"]), f3(i["worst_prompt_qwk"]),
                          f"{s['trial_s']:.0f}"]))
    lines += ["", "The pre-registered target (arm 2's selected pipeline minus arm 0, mean over "
              "seeds: >= +0.040 mean QWK, >= +0.050 worst-prompt QWK, neither tail MAE worse):",
              "", row(["target", "seeds", "mean QWK", "worst QWK", "low MAE", "high MAE",
                       "met"]), "|---|---|---|---|---|---|---|"]
    for t, e in ev["targets"].items():
        d = e["selected_minus_round"]
        lines.append(row([t, e["n_seeds"], f"{d['mean_qwk']:+.3f}",
                          f"{d['worst_prompt_qwk']:+.3f}", f"{d['low_tail_mae']:+.3f}",
                          f"{d['high_tail_mae']:+.3f}", "yes" if e["target_met"] else "NO"]))
    lines += ["", f"Default method by the rule: `{ev['default']}` (best inductive "
              f"`{ev['best_inductive']}`, best transductive `{ev['best_transductive']}`, fresh "
              "mean QWK averaged over the targets on the baseline params: "
              + ", ".join(f"{m} {v['mean_qwk']:.3f}" for m, v in ev["method_means"].items())
              + "); methods that beat `round` on fresh mean and worst-prompt QWK with "
              "neither tail worse: " + (", ".join(f"`{m}`" for m in ev["beat_round"]) or "none")
              + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "examples" / "ellipse.yaml"))
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    ap.add_argument("--inductive-targets", nargs="*", default=["Overall"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--units", nargs="+", metavar="ARM-TARGET-SEED",
                    help="run (or read) just these searches, e.g. all-Overall-7 "
                         "inductive-Overall-8, instead of every arm x target x seed")
    ap.add_argument("--budget", type=int, default=25)
    ap.add_argument("--fresh-seed", type=int, default=9191)
    ap.add_argument("--fresh-repeats", type=int, default=2)
    ap.add_argument("--phase", choices=["search", "score", "all"], default="all")
    ap.add_argument("--work", help="keep the runs here (default: a temp dir)")
    ap.add_argument("--nthread", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "score_mapping.json"))
    args = ap.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per unit is ours to print
    base = Path(args.config)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moqwk-sm-"))
    os.environ.setdefault("MOQWK_CACHE_DIR", str(work / "cache"))
    fresh_key = {"fresh_seed": args.fresh_seed, "fresh_repeats": args.fresh_repeats}
    score = args.phase in ("score", "all")
    baseline: list[dict] = []
    searches: list[dict] = []
    plan = [("all", t, s) for s in args.seeds for t in args.targets]
    plan += [("inductive", t, s) for s in args.seeds for t in args.inductive_targets]
    if args.units:
        plan = [(a, t, int(s)) for a, t, s in (u.split("-") for u in args.units)]
    if score:
        for target in args.targets:
            baseline += _unit(work, f"baseline-{target}",
                              lambda t=target: baseline_unit(base, t, work, args),
                              key={"unit": "baseline", "target": target, **fresh_key})["rows"]
    for arm, target, seed in plan:
        key = {"unit": "search", "budget": args.budget, **(fresh_key if score else {}),
               "scored": score}
        searches.append(_unit(work, f"{arm}-{target}-{seed}",
                              lambda a=arm, t=target, s=seed: search_unit(
                                  base, a, t, s, work, args, score=score), key=key))
    if not score:
        print(f"searches done in {work}; run --phase score to select and re-score")
        return 0
    ev = evaluate(baseline, searches)
    artifacts.write_json(Path(args.out), {
        "config": _shown(base), "budget": args.budget,
        "seeds": sorted({s for _, _, s in plan}), "units": [f"{a}-{t}-{s}" for a, t, s in plan],
        "fresh": fresh_key, "baseline": baseline, "searches": searches, "evaluation": ev,
        "versions": artifacts.versions(), "cpu_count": os.cpu_count()})
    md = markdown(baseline, searches, ev, args)
    artifacts.write_text(Path(args.out).with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A smaller whole-pipeline space with a larger budget: does it become the default? (issue 19)

The rules were registered in docs/research/whole-pipeline-small-design.md before this script
existed. It follows benchmarks/whole_pipeline.py and reuses its corpora, fresh folds and unit
store. Arms, all under today's defaults (the default features, 32 bins, fold racing, n_jobs
auto):

- ``round`` (B0): ``baseline.params`` with ``round``, fresh folds; deterministic.
- ``fixed`` (B1): ``baseline.params``, ``stretch``, the default features plus ``readability``
  and ``connectives``; fresh folds; deterministic.
- ``today`` (B2): a 50-trial NSGA-II search in today's default space, selected by
  ``moqwk select``'s rule, re-scored fresh.
- ``small`` (B3): the same in today's space plus ``mapping.method`` {round, stretch,
  thresholds}, ``features.word.svd_components`` {32, 64, 128}, ``features.connectives.enabled``
  and ``features.lexical.enabled``.

Every unit keeps its row, with the commit it ran on, under ``--rows`` (by default in the
repository, ``benchmarks/results/whole_pipeline_small/rows``, to be committed), so a re-run
resumes and the units can run across sessions and machines. The rules (:func:`evaluate`)
are pure functions of the rows. Not part of the test suite::

    python benchmarks/whole_pipeline_small.py --work runs/wps                 # everything
    python benchmarks/whole_pipeline_small.py --work runs/wps --dry-run       # what is left
    python benchmarks/whole_pipeline_small.py --work runs/wps --units small-overall-7
    python benchmarks/whole_pipeline_small.py --work /tmp/wps-smoke --corpora scaled \\
        --seeds 7 --budget 4 --out /tmp/wps-smoke/out.json                    # a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import whole_pipeline as wp  # noqa: E402
from benchmarks.search_cost import git_commit  # noqa: E402
from moqwk._api.select_outputs import run_selection  # noqa: E402
from moqwk.base import artifacts  # noqa: E402
from moqwk.config import DEFAULT_SPACE  # noqa: E402
from moqwk.data.scaled_corpus import ellipse_path  # noqa: E402
from moqwk.errors import StabilityGateError  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402
from moqwk.stages.search_loop import SearchOptions, run_search  # noqa: E402
from moqwk.stages.selector import options_from  # noqa: E402

CORPORA = wp.CORPORA
NAMES = wp.NAMES
SEARCH_ARMS = ("today", "small")
FIXED_ARMS = ("round", "fixed")
#: Where finished units' rows are kept (``--rows``): committed, as the units run across sessions.
ROWS = REPO / "benchmarks" / "results" / "whole_pipeline_small" / "rows"
TODAY_MAPPING = "stretch"
#: B1's features: the default ones plus the two new families that are not default.
FIXED_FEATURES = {"readability": {"enabled": True}, "connectives": {"enabled": True}}

#: B3's extra dimensions (the design, "Arms").
SMALL_DIMS: dict[str, dict[str, Any]] = {
    "mapping.method": {"type": "categorical", "choices": ["round", "stretch", "thresholds"]},
    # 64 (the corpora's own value) added by the amendment of 2026-12-04, before any B3 trial:
    # the baseline is trial 0 and must lie in the space.
    "features.word.svd_components": {"type": "categorical", "choices": [32, 64, 128]},
    "features.connectives.enabled": {"type": "categorical", "choices": [False, True]},
    "features.lexical.enabled": {"type": "categorical", "choices": [True, False]},
}


def small_space() -> dict[str, dict[str, Any]]:
    return {**DEFAULT_SPACE, **SMALL_DIMS}


def make_config(corpus: str, work: Path, args: argparse.Namespace, **kw: Any):
    """The corpus's config under today's defaults: nothing about features, bins, racing or
    jobs is pinned; only the mapping (today's default, written out) and the search budget."""
    return wp.make_config(corpus, work, args, pinned=False, **kw)


def fresh(corpus: str, work: Path, params: dict, args: argparse.Namespace, *,
          features: dict | None = None) -> dict:
    """``params`` re-scored on the fresh folds, which no search used."""
    return wp.fresh(corpus, work, params, args, features=features, pinned=False)


# --------------------------------------------------------------------------- units


def fixed_unit(arm: str, corpus: str, work: Path, args: argparse.Namespace) -> dict:
    """B0 (``round``) or B1 (``fixed``): the baseline params, no search, fresh folds."""
    features = FIXED_FEATURES if arm == "fixed" else None
    config = make_config(corpus, work, args, features=features)
    method = "round" if arm == "round" else TODAY_MAPPING
    params = {**config.baseline_params, "mapping.method": method}
    t0 = time.perf_counter()
    f = fresh(corpus, work, params, args, features=features)
    out = {"arm": arm, "corpus": corpus, "method": method, "features": features or {},
           "fresh": f, "wall_s": time.perf_counter() - t0, "commit": git_commit()}
    print(f"{arm:>5} {corpus:<9}         fresh mean {f['mean_qwk']:.3f} "
          f"worst {f['worst_prompt_qwk']:.3f}", flush=True)
    return out


def search_unit(arm: str, corpus: str, seed: int, work: Path,
                args: argparse.Namespace) -> dict:
    """B2/B3: search, select by the config's ``select`` rule, re-score the selection fresh."""
    space = small_space() if arm == "small" else None
    config = make_config(corpus, work, args, seed=seed, space=space)
    run_dir = work / f"{arm}-{corpus}-{seed}"
    ws = Workspace.open(config, run_dir, level="study")
    t0 = time.perf_counter()
    run_search(ws, SearchOptions(n_trials=args.budget))
    out: dict = {"arm": arm, "corpus": corpus, "seed": seed, "commit": git_commit(),
                 "search_wall_s": time.perf_counter() - t0}
    trials = artifacts.read_json(run_dir / "artifacts" / "optuna_trials.json")
    done = [t for t in trials if t["state"] == "complete"]
    out["n_complete"] = len(done)
    out["n_pruned"] = sum(t["state"] == "pruned" for t in trials)
    out["trial_s"] = sum(t["duration_s"] or 0.0 for t in trials)
    out["drawn"] = {name: sorted({str(t["params"].get(name)) for t in done})
                    for name in SMALL_DIMS if space}
    try:
        record, _ = run_selection(ws, options_from(config.select), commands=[])
        number = record.trial_number
        params, cv = dict(record.params or {}), dict(record.values or {})
        transductive = record.transductive
        out["selection_failed"] = False
    except StabilityGateError:
        # Amendment of 2026-12-08: nothing passed the gate, so the unit keeps the baseline.
        failed = artifacts.read_json(run_dir / "artifacts" / "selection_failed.json")
        number, params, cv = kept_baseline(trials)
        transductive = False
        out["selection_failed"] = True
        out["gate"] = gate_verdicts(failed["stability_gate"])
    f = fresh(corpus, work, params, args)
    out.update(selected_trial=number, params=params,
               method=params.get("mapping.method", TODAY_MAPPING),
               features={k: v for k, v in params.items() if k.startswith("features.")},
               transductive=transductive, cv=cv, fresh=f,
               optimism={k: cv[k] - f[k] for k in NAMES if k in cv})
    print(f"{arm:>5} {corpus:<9} seed {seed}: trial {out['selected_trial']} ({out['method']}) "
          f"fresh mean {f['mean_qwk']:.3f} worst {f['worst_prompt_qwk']:.3f}", flush=True)
    return out


def kept_baseline(trials: list[dict]) -> tuple[int, dict, dict]:
    """The pipeline a unit keeps when its selection fails: the baseline, trial 0."""
    base = [t for t in trials if t["number"] == 0 and t["state"] == "complete"]
    if not base:
        raise RuntimeError("the selection failed and the baseline (trial 0) did not complete")
    return 0, dict(base[0]["params"]), dict(base[0]["values"])


def gate_verdicts(gate: dict) -> list[dict]:
    """Per candidate tried: its trial, whether it passed, and the metrics that regressed."""
    return [{"trial": r.get("trial_number"), "passed": bool(r.get("passed")),
             "regressed": [c["metric"] for c in r.get("checks", []) if c.get("regressed")],
             "fallback_share": (r.get("fallback") or {}).get("share")}
            for r in gate.get("results", [])]


# --------------------------------------------------------------------------- the rules (pure)


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def _sd(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else float("nan")


def arm_summary(rows: list[dict]) -> dict:
    """Mean over the seeds of each fresh objective, the seed-to-seed SD of the two QWKs, and
    how many units' selections failed (and so kept the baseline)."""
    return {"n": len(rows), "fresh": {k: _mean([r["fresh"][k] for r in rows]) for k in NAMES},
            "selection_failed": sum(bool(r.get("selection_failed")) for r in rows),
            "sd": {k: _sd([r["fresh"][k] for r in rows])
                   for k in ("mean_qwk", "worst_prompt_qwk")}}


def evaluate(fixed: list[dict], searches: list[dict], *, n_seeds: int = 3) -> dict:
    """The registered rules (docs/research/whole-pipeline-small-design.md) applied to the rows.
    The default-space decision is made only when B0, B2 and B3 are complete (``n_seeds`` each)
    on every corpus; before that ``decision.decided`` is false and says what is missing."""
    ref = {r["corpus"]: r["fresh"] for r in fixed if r["arm"] == "round"}
    out: dict = {"arms": {}, "targets": {}, "small_minus_today": {}}
    for corpus in CORPORA:
        per: dict = {}
        for r in fixed:
            if r["corpus"] == corpus:
                per[r["arm"]] = {"n": 1, "fresh": r["fresh"]}
        for arm in SEARCH_ARMS:
            rows = [s for s in searches if s["arm"] == arm and s["corpus"] == corpus]
            if rows:
                per[arm] = arm_summary(rows)
        if not per:
            continue
        out["arms"][corpus] = per
        out["targets"][corpus] = {arm: wp.targets(corpus, s["fresh"], ref.get(corpus))
                                  for arm, s in per.items() if arm != "round"}
        if "today" in per and "small" in per:
            out["small_minus_today"][corpus] = {
                k: per["small"]["fresh"][k] - per["today"]["fresh"][k] for k in NAMES}
    out["decision"] = decide(out, n_seeds)
    return out


def decide(ev: dict, n_seeds: int) -> dict:
    """Whether B3's space becomes the default: all three of the design's conditions."""
    missing = [f"{arm}-{c}" for c in CORPORA for arm in ("round", *SEARCH_ARMS)
               if ev["arms"].get(c, {}).get(arm, {}).get("n", 0) < (1 if arm == "round"
                                                                    else n_seeds)]
    if missing:
        return {"decided": False, "missing": missing}
    diff = ev["small_minus_today"]
    mean_gain = _mean([diff[c]["mean_qwk"] for c in CORPORA])
    worst = {c: diff[c]["worst_prompt_qwk"] for c in CORPORA}
    held = {c: all(t["met"] for name, t in ev["targets"][c]["small"].items()
                   if name in ("T2", "T3")) for c in CORPORA}
    conditions = {"mean_gain_at_least_0.005": mean_gain >= 0.005,
                  "no_worst_prompt_drop_over_0.02": min(worst.values()) >= -0.02,
                  "T2_and_T3_hold": all(held.values())}
    return {"decided": True, "mean_gain": mean_gain, "worst_prompt_diff": worst,
            "conditions": conditions, "default_space": "small" if all(conditions.values())
            else "today", "failed": [k for k, v in conditions.items() if not v]}


# --------------------------------------------------------------------------- report


def markdown(fixed: list[dict], searches: list[dict], ev: dict, args: argparse.Namespace) -> str:
    f3 = "{:.3f}".format

    def row(cells: list) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    def cells(m: dict) -> list[str]:
        return [f3(m["mean_qwk"]), f3(m["worst_prompt_qwk"]), f3(m["low_tail_mae"]),
                f3(m["high_tail_mae"])]

    head = ["fresh mean QWK", "fresh worst QWK", "fresh low MAE", "fresh high MAE"]
    lines = [f"Fresh folds: prompt_holdout seed {args.fresh_seed}, {args.fresh_repeats} repeats "
             f"(scaled: {wp.SCALED_FRESH_FOLDS} folds). Budget {args.budget} trials.", ""]
    if fixed:
        lines += ["B0 (`round`) and B1 (`fixed`: stretch, all three new families), no search.",
                  "", row(["arm", "corpus", *head]), "|---|---|---|---|---|---|"]
        lines += [row([r["arm"], r["corpus"], *cells(r["fresh"])]) for r in fixed]
        lines.append("")
    if searches:
        lines += ["B2 (`today`'s space) and B3 (`small` space), selected by `moqwk select`.", "",
                  row(["arm", "corpus", "seed", "trial", "method", "features", *head,
                       "optimism mean", "pruned"]),
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in searches:
            feats = ", ".join(f"{k.removeprefix('features.')}={v}"
                              for k, v in sorted(s["features"].items())) or "-"
            trial = (f"{s['selected_trial']} (gate failed)" if s.get("selection_failed")
                     else s["selected_trial"])
            lines.append(row([s["arm"], s["corpus"], s["seed"], trial,
                              s["method"], feats, *cells(s["fresh"]),
                              f"{s['optimism'].get('mean_qwk', float('nan')):+.3f}",
                              s["n_pruned"]]))
        lines.append("")
    for corpus, per in ev["arms"].items():
        for arm, s in per.items():
            if arm in SEARCH_ARMS:
                lines.append(f"- {arm} on {corpus}: {s['n']} seeds, mean "
                             f"{s['fresh']['mean_qwk']:.3f} (SD {s['sd']['mean_qwk']:.3f}), worst "
                             f"{s['fresh']['worst_prompt_qwk']:.3f} "
                             f"(SD {s['sd']['worst_prompt_qwk']:.3f}); "
                             f"{s['selection_failed']} selection(s) failed the gate and kept "
                             "the baseline")
    for corpus, by_arm in ev["targets"].items():
        for arm, t in by_arm.items():
            for name, v in t.items():
                margins = ", ".join(f"{k} {x:+.3f}" for k, x in v.items() if k != "met")
                lines.append(f"- {name}, {arm} on {corpus}: {'met' if v['met'] else 'NOT met'} "
                             f"({margins})")
    for corpus, d in ev["small_minus_today"].items():
        lines.append(f"- small minus today on {corpus}: mean {d['mean_qwk']:+.3f}, worst "
                     f"{d['worst_prompt_qwk']:+.3f}")
    dec = ev["decision"]
    if dec["decided"]:
        lines.append(f"- **decision**: the default space is `{dec['default_space']}` (mean gain "
                     f"{dec['mean_gain']:+.3f}; failed: {', '.join(dec['failed']) or 'none'})")
    else:
        lines.append(f"- decision not made yet; missing: {', '.join(dec['missing'])}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def plan(args: argparse.Namespace) -> list[tuple[str, str, int | None]]:
    if args.units:
        units = []
        for u in args.units:
            arm, corpus, *seed = u.split("-")
            units.append((arm, corpus, int(seed[0]) if seed else None))
        return units
    fixed = [(a, c, None) for c in args.corpora for a in FIXED_ARMS]
    return fixed + [(a, c, s) for s in args.seeds for c in args.corpora for a in SEARCH_ARMS]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ellipse", type=Path, default=ellipse_path())
    ap.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA))
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--units", nargs="+", metavar="ARM-CORPUS[-SEED]",
                    help="just these units, e.g. round-scaled or small-overall-7")
    ap.add_argument("--budget", type=int, default=50)
    ap.add_argument("--fresh-seed", type=int, default=9191)
    ap.add_argument("--fresh-repeats", type=int, default=2)
    ap.add_argument("--work", help="keep the runs here (default: a temp dir)")
    ap.add_argument("--rows", type=Path,
                    help="keep each finished unit's row here (default: in the repository, "
                         f"{ROWS.relative_to(REPO)}, at the registered settings, so a unit "
                         "committed in one session is not run again in the next; else "
                         "WORK/rows)")
    ap.add_argument("--dry-run", action="store_true", help="list the units and which are done")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"
                                         / "whole_pipeline_small.json"))
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moqwk-wps-"))
    key = {"budget": args.budget, "fresh_seed": args.fresh_seed,
           "fresh_repeats": args.fresh_repeats}
    registered = key == {"budget": 50, "fresh_seed": 9191, "fresh_repeats": 2}
    args.rows = args.rows or (ROWS if registered else work / "rows")
    units = plan(args)
    for arm, corpus, seed in units:
        if arm not in FIXED_ARMS + SEARCH_ARMS or corpus not in CORPORA or (
                (seed is None) != (arm in FIXED_ARMS)):
            ap.error(f"unknown unit {arm}-{corpus}{'' if seed is None else f'-{seed}'}")

    def name(arm: str, corpus: str, seed: int | None) -> str:
        return f"{arm}-{corpus}" + ("" if seed is None else f"-{seed}")

    if args.dry_run:
        for u in units:
            path = args.rows / f"{name(*u)}.json"
            done = path.exists() and artifacts.read_json(path).get("key", {}).get("budget") \
                == args.budget
            print(f"{name(*u):<22} {'done' if done else 'to run'}")
        return 0
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("MOQWK_CACHE_DIR", str(work / "cache"))
    fixed: list[dict] = []
    searches: list[dict] = []
    for arm, corpus, seed in units:
        if seed is None:
            fixed.append(wp._unit(work, name(arm, corpus, seed),
                                  lambda a=arm, c=corpus: fixed_unit(a, c, work, args),
                                  key={"unit": arm, **key}, rows=args.rows))
        else:
            searches.append(wp._unit(work, name(arm, corpus, seed),
                                     lambda a=arm, c=corpus, s=seed:
                                     search_unit(a, c, s, work, args),
                                     key={"unit": "search", **key}, rows=args.rows))
    ev = evaluate(fixed, searches, n_seeds=len(args.seeds))
    artifacts.write_json(Path(args.out), {
        "units": [name(*u) for u in units], "settings": key, "small_space": small_space(),
        "fixed": fixed, "searches": searches, "evaluation": ev,
        "versions": artifacts.versions(), "usable_cores": len(os.sched_getaffinity(0))})
    md = markdown(fixed, searches, ev, args)
    artifacts.write_text(Path(args.out).with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

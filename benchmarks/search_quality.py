"""Benchmark: NSGA-II, TPE, random search and the fixed grid at equal budgets on ELLIPSE.

For each sampler and seed: a search at the trial cap, a selection by the same rule (feasible
front, lexicographic rule, stability gate), and the selected config re-scored on fresh
prompt-holdout folds (a seed no search used). Reports the mean and spread over seeds of fresh
worst-prompt QWK, fresh mean QWK, fresh tail MAEs, the share of feasible trials, and the
hypervolume of each feasible front against one reference point for all. The grid and the
baseline (no search: the reference every search must beat) are deterministic, so they run once.
Not part of the test suite::

    python benchmarks/search_quality.py --budget 25 --seeds 7 8 9 10 [--work DIR] [--out FILE]

This is the evidence for the search defaults: NSGA-II must not lose to random search at the cap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk._api.select_outputs import run_selection  # noqa: E402
from moqwk.base import artifacts  # noqa: E402
from moqwk.config import Config, load_config, parse_config  # noqa: E402
from moqwk.core.objectives import DEFAULT_OBJECTIVES  # noqa: E402
from moqwk.core.pareto import hypervolume, loss_matrix  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402
from moqwk.stages.search_loop import SearchOptions, run_search  # noqa: E402
from moqwk.stages.selector import SelectOptions, candidate_pool, pareto_front  # noqa: E402

OBJECTIVES = DEFAULT_OBJECTIVES.names

#: One reference point for every front (loss space: -QWK, -QWK, MAE, MAE), worse than any
#: sane model.
REFERENCE = np.array([0.0, 0.0, 0.5, 0.5])


def _config(base: Path, sampler: str, seed: int, nthread: int) -> Config:
    raw = yaml.safe_load(base.read_text())
    if nthread:  # XGBoost threads per model; results do not depend on it
        raw.setdefault("model", {})["nthread"] = nthread
    raw.setdefault("search", {})
    raw["mapping"] = {"method": "round"}  # as recorded, before stretch was the default
    if sampler == "grid":  # the grid as `moqwk grid` runs it: the config's grid, no seed
        raw["search"]["sampler"] = "grid"
    else:
        raw["search"]["seed"] = seed
        raw["search"]["sampler"] = sampler
    return parse_config(raw, base_dir=base.resolve().parent, source=base.resolve())


def run_one(base: Path, sampler: str, seed: int, budget: int, work: Path, fresh_seed: int,
            fresh_repeats: int, nthread: int = 0) -> dict:
    # "baseline" is the reference without a search: a one-trial study holds only the baseline.
    if sampler == "baseline":
        search_sampler, budget = "random", 1
    else:
        search_sampler = sampler
    config = _config(base, search_sampler, seed, nthread)
    run_dir = work / f"{sampler}-{seed}"
    ws = Workspace.open(config, run_dir)
    t0 = time.perf_counter()
    run_search(ws, SearchOptions(n_trials=budget))
    wall = time.perf_counter() - t0
    trials = artifacts.read_json(run_dir / "artifacts" / "optuna_trials.json")
    complete = [t for t in trials if t["state"] == "complete"]
    front = pareto_front(candidate_pool(trials, allow_tail_regression=False))
    hv = 0.0
    if front:
        vals = np.array([[t["values"][o] for o in OBJECTIVES] for t in front])
        hv = hypervolume(loss_matrix(vals, DEFAULT_OBJECTIVES.directions), REFERENCE)
    record, _ = run_selection(ws, SelectOptions(max_gate_candidates=3), commands=[])
    if record.params is None:  # run_selection raises instead when the gate chose nothing
        raise RuntimeError(f"{run_dir}: the selection record has no params")
    fresh_engine = ws.engine("prompt_holdout", seed=fresh_seed, repeats=fresh_repeats)
    m = fresh_engine.run(record.params).metrics
    return {
        "sampler": sampler, "seed": seed, "budget": budget, "wall_s": wall,
        "trial_s": sum(t["duration_s"] or 0.0 for t in complete),
        "n_complete": len(complete), "feasible_share": sum(t["feasible"] for t in complete)
        / max(1, len(complete)), "hypervolume": hv, "front_size": len(front),
        "selected_trial": record.trial_number, "in_sample": record.values,
        "fresh": DEFAULT_OBJECTIVES.values(m),
        "fresh_seed": fresh_seed, "fresh_repeats": fresh_repeats,
    }


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        rs = [r for r in rows if r["sampler"] == sampler]

        def stat(values: list[float]) -> dict:
            return {"mean": statistics.fmean(values),
                    "sd": statistics.stdev(values) if len(values) > 1 else 0.0}

        out.append({
            "sampler": sampler, "runs": len(rs),
            **{f"fresh_{k}": stat([r["fresh"][k] for r in rs]) for k in OBJECTIVES},
            "hypervolume": stat([r["hypervolume"] for r in rs]),
            "feasible_share": stat([r["feasible_share"] for r in rs]),
            "trial_s": stat([r["trial_s"] for r in rs]),
        })
    return out


def paired(rows: list[dict], a: str = "nsga2", b: str = "random") -> dict:
    """Per seed, ``a`` minus ``b`` (runs on the same seed), and the decision rule fixed in
    docs/research/optuna-pilot-ellipse.md before the runs: ``a`` loses if its seed-averaged
    fresh worst-prompt QWK and fresh mean QWK are both below ``b``'s, or if its hypervolume is
    below ``b``'s on every seed."""
    by = {(r["sampler"], r["seed"]): r for r in rows}
    seeds = sorted(s for (name, s) in by if name == a and (b, s) in by)
    diffs = {s: {"fresh_worst_prompt_qwk": by[a, s]["fresh"]["worst_prompt_qwk"]
                 - by[b, s]["fresh"]["worst_prompt_qwk"],
                 "fresh_mean_qwk": by[a, s]["fresh"]["mean_qwk"] - by[b, s]["fresh"]["mean_qwk"],
                 "hypervolume": by[a, s]["hypervolume"] - by[b, s]["hypervolume"]}
             for s in seeds}
    if not seeds:
        return {"a": a, "b": b, "seeds": [], "per_seed": {}, "a_loses": None}
    mean = {k: statistics.fmean(d[k] for d in diffs.values()) for k in next(iter(diffs.values()))}
    loses = ((mean["fresh_worst_prompt_qwk"] < 0 and mean["fresh_mean_qwk"] < 0)
             or all(d["hypervolume"] < 0 for d in diffs.values()))
    return {"a": a, "b": b, "seeds": seeds, "per_seed": {str(s): d for s, d in diffs.items()},
            "mean_difference": mean, "a_loses": loses}


def markdown(summary: list[dict], pair: dict, budget: int) -> str:
    """The summary table and the paired comparison as Markdown, for the research note."""
    def ms(s: dict, k: str, d: int = 3) -> str:
        return f"{s[k]['mean']:.{d}f} ± {s[k]['sd']:.{d}f}" if s["runs"] > 1 \
            else f"{s[k]['mean']:.{d}f}"
    lines = ["| sampler | runs | fresh worst-prompt QWK | fresh mean QWK | fresh low-tail MAE | "
             "fresh high-tail MAE | hypervolume | feasible trials | trial time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['sampler']} | {s['runs']} | {ms(s, 'fresh_worst_prompt_qwk')} | "
                     f"{ms(s, 'fresh_mean_qwk')} | {ms(s, 'fresh_low_tail_mae')} | "
                     f"{ms(s, 'fresh_high_tail_mae')} | {ms(s, 'hypervolume', 4)} | "
                     f"{s['feasible_share']['mean']:.0%} | {s['trial_s']['mean']:.0f} |")
    lines += ["", f"Budget {budget} trials per search; mean ± sd over seeds. "
              f"{pair['a']} minus {pair['b']}, per seed:", "",
              "| seed | fresh worst-prompt QWK | fresh mean QWK | hypervolume |",
              "|---|---|---|---|"]
    for seed, d in pair["per_seed"].items():
        lines.append(f"| {seed} | {d['fresh_worst_prompt_qwk']:+.3f} | {d['fresh_mean_qwk']:+.3f} "
                     f"| {d['hypervolume']:+.4f} |")
    if pair["seeds"]:
        m = pair["mean_difference"]
        lines += [f"| mean | {m['fresh_worst_prompt_qwk']:+.3f} | {m['fresh_mean_qwk']:+.3f} | "
                  f"{m['hypervolume']:+.4f} |", "",
                  f"Decision rule: {pair['a']} "
                  f"{'LOSES to' if pair['a_loses'] else 'does not lose to'} {pair['b']}."]
    return "\n".join(lines) + "\n"


#: Each finished run keeps its benchmark row, so a re-run with ``--work`` skips it.
ROW_FILE = "search_quality_row.json"


def _cached_row(work: Path, sampler: str, seed: int, args: argparse.Namespace) -> dict | None:
    path = work / f"{sampler}-{seed}" / ROW_FILE
    if not path.exists():
        return None
    row = artifacts.read_json(path)
    budget = 1 if sampler == "baseline" else args.budget
    same = (row.get("budget") == budget and row.get("fresh_seed") == args.fresh_seed
            and row.get("fresh_repeats") == args.fresh_repeats)
    return row if same else None


def _write(out: Path, base: Path, args: argparse.Namespace, rows: list[dict],
           load_start: tuple[float, float, float], *, partial: bool) -> None:
    artifacts.write_json(out, {
        "partial": partial, "config": str(base), "budget": args.budget, "seeds": args.seeds,
        "fresh": {"seed": args.fresh_seed, "repeats": args.fresh_repeats},
        "reference_point": REFERENCE.tolist(), "rows": rows, "summary": summarise(rows),
        "nsga2_vs_random": paired(rows),
        "versions": artifacts.versions(), "cpu_count": os.cpu_count(),
        "loadavg_start": load_start, "loadavg_end": os.getloadavg()})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "examples" / "ellipse.yaml"))
    ap.add_argument("--budget", type=int, default=25,
                    help="trials per search; the default grid is 24 points + the baseline")
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9, 10])
    ap.add_argument("--samplers", nargs="+",
                    default=["nsga2", "tpe", "random", "grid", "baseline"],
                    help="'grid' and 'baseline' (no search) are deterministic and run once")
    ap.add_argument("--fresh-seed", type=int, default=4242)
    ap.add_argument("--fresh-repeats", type=int, default=2)
    ap.add_argument("--work", help="keep the runs here (default: a temp dir)")
    ap.add_argument("--nthread", type=int, default=0,
                    help="XGBoost threads per model, e.g. 1 for two benchmark processes on two "
                         "cores; predictions are identical for any thread count")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "search_quality.json"))
    args = ap.parse_args()
    base = Path(args.config)
    load_config(base)  # fail early on a bad config
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moqwk-sq-"))
    os.environ.setdefault("MOQWK_CACHE_DIR", str(work / "cache"))
    load_start = os.getloadavg()
    rows = []
    # Seed-major order, so that a run cut short still compares every sampler on the same seeds.
    plan = [(sampler, seed) for seed in args.seeds for sampler in args.samplers
            if sampler not in ("grid", "baseline") or seed == args.seeds[0]]
    for sampler, seed in plan:
        row = _cached_row(work, sampler, seed, args)
        if row is None:
            row = run_one(base, sampler, seed, args.budget, work, args.fresh_seed,
                          args.fresh_repeats, args.nthread)
            artifacts.write_json(work / f"{sampler}-{seed}" / ROW_FILE, row)
        rows.append(row)
        _write(Path(args.out), base, args, rows, load_start, partial=True)
        print(f"{sampler:>6} seed {seed}: fresh worst {row['fresh']['worst_prompt_qwk']:.3f} "
              f"mean {row['fresh']['mean_qwk']:.3f} hv {row['hypervolume']:.4f} "
              f"feasible {row['feasible_share']:.0%} ({row['n_complete']} trials, "
              f"{row['trial_s']:.0f} s of trials)", flush=True)
    summary = summarise(rows)
    _write(Path(args.out), base, args, rows, load_start, partial=False)
    md = markdown(summary, paired(rows), args.budget)
    artifacts.write_text(Path(args.out).with_suffix(".md"), md)
    print()
    print(md)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

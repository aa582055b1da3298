"""Would a statistical racing bound stop trials that the worst-case one lets run? (issue 18)

The rules are in docs/research/racing-bound-design.md (committed before this ran). Each run
directory given is a finished search in which every trial ran all its folds (racing off, or on
with worst-case bounds that stopped nothing). Its trials are replayed in number order through
``moqwk.engine.racing.replay`` (a check at each rung against the feasible trials numbered
before, as one worker does), with the run's own rungs and margins, under ``worst_case`` and
under ``statistical`` with each ``--z``. Nothing is trained: the replay reads the trials'
stored out-of-fold predictions. Per study and variant it reports the share of fold fits saved,
the stops on the final feasible front, whether the selected trial is stopped, and the wrong
stops (a stopped trial that, finished, is neither dominated by the trial its verdict names nor
infeasible).

    python benchmarks/racing_replay.py RUN_DIR [RUN_DIR ...] \\
        --out benchmarks/results/racing_replay.json
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk.base import artifacts  # noqa: E402
from moqwk.config import load_config  # noqa: E402
from moqwk.core.pareto import feasible_mask, loss_matrix, pareto_front_mask  # noqa: E402
from moqwk.engine import racing  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402
from moqwk.stages.selector import load_trials  # noqa: E402

#: The 2-worker throughput ratio measured in issue 18 (trials per minute, 2 jobs against 1).
CORES_RATIO = 1.60


class Stop(NamedTuple):
    """A replayed trial that was stopped: its number, the rung and the verdict."""

    number: int
    rung: int
    verdict: racing.Verdict


def stops_of(res: list[racing.Replayed]) -> list[Stop]:
    """The stopped trials of a replay (a rung is set), each with its verdict."""
    out = []
    for o in res:
        if o.rung is None:
            continue
        if o.verdict is None:
            raise ValueError(f"trial {o.number}: stopped at rung {o.rung} without a verdict")
        out.append(Stop(o.number, o.rung, o.verdict))
    return out


def replay_run(run_dir: Path, zs: list[float]) -> dict[str, Any]:
    config = load_config(run_dir / "config.yaml")
    ws = Workspace.open(config, run_dir, level="study")
    run = load_trials(run_dir)
    eng = ws.engine("prompt_holdout")
    folds = [(rep, val) for rep, _fold, _train, val in eng.splits.iter_folds()]
    names = run.objectives.names
    base = racing.plan(config.with_search(racing=True), eng.n_fits, names)
    assert base is not None, f"{run_dir}: no rung"
    done = [r for r in run.trials if r["state"] == "complete"]
    by_number = {r["number"]: r for r in done}
    cons = np.array([[r["constraints"][c] for c in sorted(r["constraints"])] for r in done])
    feas = np.flatnonzero(feasible_mask(cons))
    loss = loss_matrix(np.array([[r["values"][n] for n in names] for r in done]),
                       list(run.objectives.directions))
    row_of = {r["number"]: i for i, r in enumerate(done)}
    front = {done[i]["number"] for i, on in zip(feas, pareto_front_mask(loss[feas]),
                                                strict=True) if on}
    selected_path = run_dir / "artifacts" / "selected_params.json"
    selected = (artifacts.read_json(selected_path)["trial_number"]
                if selected_path.exists() else None)
    raced = [r for r in done if r.get("role") != "baseline"]
    total_fits = len(raced) * eng.n_fits
    variants = [("worst_case", None)] + [("statistical", z) for z in zs]
    out: dict[str, Any] = {"run_dir": run_dir.name, "n_trials": len(done),
                           "n_fits": eng.n_fits, "rungs": list(base.rungs),
                           "margins": dict(zip(names, base.margins, strict=True)),
                           "front": sorted(front), "selected": selected, "variants": {}}
    for bound, z in variants:
        p = replace(base, bound=bound, z=z if z is not None else base.z)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = racing.replay(run.trials, run.oof_levels, corpus=ws.corpus, config=config,
                                fold_rows=folds, p=p, guardrails=run.guardrails)
        stops = stops_of(res)
        wrong = []
        for o in stops:
            t = by_number[o.number]
            if o.verdict.dominated_by is None:
                if t["feasible"]:
                    wrong.append(o.number)
                continue
            f, mine = loss[row_of[o.verdict.dominated_by]], loss[row_of[o.number]]
            if not ((f <= mine).all() and (f < mine).any()):
                wrong.append(o.number)
        saved = sum(eng.n_fits - o.rung for o in stops)
        key = bound if z is None else f"statistical z={z:g}"
        out["variants"][key] = {
            "bound": bound, "z": z, "stops": len(stops),
            "by_rung": {str(k): sum(o.rung == k for o in stops) for k in base.rungs},
            "infeasible_stops": sum(o.verdict.dominated_by is None for o in stops),
            "fits_saved": saved, "fits_total": total_fits,
            "fits_saved_share": saved / total_fits if total_fits else 0.0,
            "front_stops": sorted(o.number for o in stops if o.number in front),
            "selection_stopped": selected is not None and any(o.number == selected
                                                              for o in stops),
            "wrong_stops": sorted(wrong),
        }
    return out


def evaluate(runs: list[dict[str, Any]], zs: list[float]) -> dict[str, Any]:
    """The registered rules over all replayed studies."""
    ev: dict[str, Any] = {"variants": {}}
    for key in runs[0]["variants"]:
        vs = [r["variants"][key] for r in runs]
        stops = sum(v["stops"] for v in vs)
        wrong = sum(len(v["wrong_stops"]) for v in vs)
        saved = sum(v["fits_saved"] for v in vs) / max(1, sum(v["fits_total"] for v in vs))
        safe = (not any(v["front_stops"] for v in vs)
                and not any(v["selection_stopped"] for v in vs)
                and wrong <= 0.05 * stops)
        ev["variants"][key] = {"stops": stops, "wrong_stops": wrong,
                               "front_stops": sum(len(v["front_stops"]) for v in vs),
                               "selection_stops": sum(v["selection_stopped"] for v in vs),
                               "fits_saved_share": saved, "safe": safe,
                               "predicted_wall_ratio": CORES_RATIO / (1.0 - saved)}
    safe_z = [z for z in sorted(zs)
              if ev["variants"][f"statistical z={z:g}"]["safe"]]
    ev["candidate_z"] = safe_z[0] if safe_z else None
    return ev


def markdown(runs: list[dict[str, Any]], ev: dict[str, Any]) -> str:
    lines = ["| study | trials | variant | stops (by rung) | infeasible | fits saved | "
             "front stops | selection stopped | wrong stops |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        name = Path(r["run_dir"]).name
        for key, v in r["variants"].items():
            rungs = ", ".join(f"{k}: {n}" for k, n in v["by_rung"].items())
            lines.append(f"| {name} | {r['n_trials']} | {key} | {v['stops']} ({rungs}) | "
                         f"{v['infeasible_stops']} | {v['fits_saved_share']:.1%} | "
                         f"{len(v['front_stops'])} | {'yes' if v['selection_stopped'] else 'no'}"
                         f" | {len(v['wrong_stops'])} |")
    lines += ["", "| variant | stops | wrong | front stops | selection stops | fits saved | "
              "predicted wall ratio (2 cores) | safe |", "|---|---|---|---|---|---|---|---|"]
    for key, v in ev["variants"].items():
        lines.append(f"| {key} | {v['stops']} | {v['wrong_stops']} | {v['front_stops']} | "
                     f"{v['selection_stops']} | {v['fits_saved_share']:.1%} | "
                     f"{v['predicted_wall_ratio']:.2f}x | {'yes' if v['safe'] else 'no'} |")
    lines += ["", f"Candidate z (the smallest safe one): {ev['candidate_z']}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--z", type=float, nargs="+", default=[1.64, 2.0, 2.58])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results"
                    / "racing_replay.json")
    args = ap.parse_args()
    runs = []
    for run_dir in args.runs:
        runs.append(replay_run(run_dir, args.z))
        for key, v in runs[-1]["variants"].items():
            print(f"{run_dir.name:<18} {key:<18} stops {v['stops']:>2}  saved "
                  f"{v['fits_saved_share']:6.1%}  front {len(v['front_stops'])}  selection "
                  f"{'STOPPED' if v['selection_stopped'] else 'kept'}  wrong "
                  f"{len(v['wrong_stops'])}", flush=True)
    ev = evaluate(runs, args.z)
    artifacts.write_json(args.out, {"runs": runs, "evaluation": ev})
    artifacts.write_text(args.out.with_suffix(".md"), markdown(runs, ev))
    print(markdown(runs, ev))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

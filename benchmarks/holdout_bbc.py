"""BBC-CV against held-out essays (issue 20): rules in docs/research/holdout-bbc.md.

Per seed s: a short NSGA-II search on ELLIPSE Overall (``examples/ellipse.yaml`` with
``cv.holdout: 0.2``, ``cv.holdout_seed: s``, ``search.seed: s``) and ``moqwk select``; then the
selected trial's in-sample, BBC-CV and holdout numbers are read from ``selected_params.json``.
A run directory that already has a selection is read, not re-run.

    MOQWK_CACHE_DIR=runs/.cache nice -n 10 python benchmarks/holdout_bbc.py --work runs/hbbc
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk.base import artifacts  # noqa: E402
from moqwk.cli import main  # noqa: E402

SEEDS = (1, 2, 3)
#: A compact space and rounding (no inner cross-fit): about 5 models a trial, so three
#: 12-trial searches fit the CPU budget on a loaded 2-core machine (see the note's amendment).
SPACE = {"max_depth": {"type": "int", "low": 2, "high": 5},
         "learning_rate": {"type": "float", "low": 0.03, "high": 0.3, "log": True},
         "n_estimators": {"type": "int", "low": 100, "high": 300, "step": 100},
         "min_child_weight": {"type": "float", "low": 1.0, "high": 16.0, "log": True},
         "subsample": {"type": "float", "low": 0.6, "high": 1.0}}
METRICS = ("worst_prompt_qwk", "mean_qwk")


def config_for(seed: int, work: Path, *, share: float, n_trials: int) -> Path:
    raw = yaml.safe_load((REPO / "examples" / "ellipse.yaml").read_text(encoding="utf-8"))
    default = REPO / "examples" / raw["data"]["path"].split(":-")[-1].rstrip("}")
    raw["data"]["path"] = str(Path(os.environ.get("MOQWK_ELLIPSE_CSV") or default).resolve())
    raw["cv"].update(holdout=share, holdout_unit="essays", holdout_seed=seed)
    raw["model"] = {"nthread": 1}
    raw["mapping"] = {"method": "round"}
    raw["search"].update(n_trials=n_trials, population_size=6, seed=seed, n_jobs=1,
                         racing=False, space=SPACE)
    path = work / f"config-s{seed}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def run_seed(seed: int, work: Path, *, share: float, n_trials: int) -> dict:
    run_dir = work / f"s{seed}"
    selected = run_dir / "artifacts" / "selected_params.json"
    t0 = time.perf_counter()
    if not selected.exists():
        cfg = config_for(seed, work, share=share, n_trials=n_trials)
        code = main(["search", "--config", str(cfg), "--run-dir", str(run_dir), "--quiet"])
        if code != 0:
            return {"seed": seed, "status": f"search exit {code}"}
        code = main(["select", "--run-dir", str(run_dir), "--quiet"])
        if code != 0 or not selected.exists():
            return {"seed": seed, "status": f"no selection (select exit {code})"}
        artifacts.write_json(run_dir / "benchmark_seconds.json",
                             {"search_and_select_s": round(time.perf_counter() - t0, 1)})
    timing = run_dir / "benchmark_seconds.json"
    seconds = artifacts.read_json(timing)["search_and_select_s"] if timing.exists() else None
    rec = artifacts.read_json(selected)
    h = rec["holdout"]
    bbc = rec["selection_bias"]["corrected"]
    row: dict = {"seed": seed, "status": "ok", "trial": rec["trial_number"],
                 "seconds": seconds,
                 "n_holdout_essays": h["n_essays"], "n_eligible_prompts": h["n_eligible_prompts"]}
    for m in METRICS:
        ins, b = rec["values"][m], bbc[m]["point"]
        hc, hv, se = h["size_corrected"][m], h["values"][m], h["se"][m]
        row[m] = {"in_sample": ins, "bbc": b, "bbc_lo": bbc[m]["lo"], "bbc_hi": bbc[m]["hi"],
                  "holdout": hv, "holdout_se": se, "size_shift": h["size_shift"][m],
                  "holdout_size_corrected": hc, "holdout_optimism": ins - hc,
                  "bbc_optimism": ins - b, "gap": b - hc, "in_sample_gap": ins - hc,
                  "bbc_interval_covers": bbc[m]["lo"] <= hc <= bbc[m]["hi"]}
    return row


def baseline_control(seed: int, work: Path) -> dict | None:
    """Post hoc, not registered: the *baseline* (never selected) on the same holdout. Its
    in-sample minus size-corrected holdout should be near 0 if the size correction is right
    and the holdout scoring has no bias of its own; the selected trial's gap minus this is the
    selection's share."""
    from moqwk.config import load_config
    from moqwk.run.workspace import Workspace
    from moqwk.stages.selector import holdout_estimate, load_trials, options_from

    run_dir = work / f"s{seed}"
    if not (run_dir / "artifacts" / "selected_params.json").exists():
        return None
    cfg = load_config(run_dir / "config.yaml")
    ws = Workspace.open(cfg, run_dir)
    run = load_trials(run_dir)
    dev = ws.engine("prompt_holdout").run(run.baseline["params"])
    h = holdout_estimate(ws, run, options_from(cfg.select), chosen=run.baseline,
                         dev_result=dev, selection_bias=None)
    assert h is not None
    return {"seed": seed, "trial": run.baseline["number"],
            **{m: {"in_sample": h["summary"][m]["in_sample"],
                   "holdout_size_corrected": h["summary"][m]["holdout_size_corrected"],
                   "holdout_se": h["summary"][m]["holdout_se"],
                   "in_sample_gap": h["summary"][m]["optimism"]} for m in METRICS}}


def summarise(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["status"] == "ok"]
    out: dict = {}
    for m in METRICS:
        if not ok:
            out[m] = None
            continue
        n = len(ok)
        gaps = [r[m]["gap"] for r in ok]
        se = math.sqrt(sum(r[m]["holdout_se"] ** 2 for r in ok)) / n
        mean_gap = sum(gaps) / n
        out[m] = {
            "n_runs": n, "mean_gap": mean_gap, "se": se,
            "verdict": "tracks" if abs(mean_gap) <= 2 * se else "misses",
            "mean_holdout_optimism": sum(r[m]["holdout_optimism"] for r in ok) / n,
            "mean_bbc_optimism": sum(r[m]["bbc_optimism"] for r in ok) / n,
            "mean_abs_gap": sum(abs(g) for g in gaps) / n,
            "mean_abs_in_sample_gap": sum(abs(r[m]["in_sample_gap"]) for r in ok) / n,
            "covered": sum(r[m]["bbc_interval_covers"] for r in ok),
        }
    return out


def markdown(rows: list[dict], summary: dict) -> str:
    lines = ["# BBC-CV against held-out essays", "",
             "Rules: docs/research/holdout-bbc.md. Size-corrected holdout = holdout minus the "
             "chosen config's size shift.", ""]
    for m in METRICS:
        lines += [f"## {m}", "", "| seed | trial | in-sample | BBC-CV | holdout (SE) | "
                  "size shift | holdout, size-corrected | BBC - holdout |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            if r["status"] != "ok":
                lines.append(f"| {r['seed']} | {r['status']} | | | | | | |")
                continue
            v = r[m]
            lines.append(f"| {r['seed']} | {r['trial']} | {v['in_sample']:.3f} | {v['bbc']:.3f} "
                         f"| {v['holdout']:.3f} ({v['holdout_se']:.3f}) | {v['size_shift']:+.3f} "
                         f"| {v['holdout_size_corrected']:.3f} | {v['gap']:+.3f} |")
        s = summary[m]
        if s:
            lines += ["", f"Mean gap {s['mean_gap']:+.3f} (SE {s['se']:.3f}): **{s['verdict']}**. "
                      f"Mean optimism: holdout {s['mean_holdout_optimism']:+.3f}, BBC-CV "
                      f"{s['mean_bbc_optimism']:+.3f}. Interval covered {s['covered']} of "
                      f"{s['n_runs']}.", ""]
    return "\n".join(lines) + "\n"


def control_markdown(control: list[dict]) -> str:
    if not control:
        return ""
    lines = ["## Post hoc control: the baseline on the same holdout (not registered)", "",
             "| seed | metric | in-sample | holdout, size-corrected (SE) | in-sample - holdout |",
             "|---:|---|---:|---:|---:|"]
    for c in control:
        for m in METRICS:
            v = c[m]
            lines.append(f"| {c['seed']} | {m} | {v['in_sample']:.3f} | "
                         f"{v['holdout_size_corrected']:.3f} ({v['holdout_se']:.3f}) | "
                         f"{v['in_sample_gap']:+.3f} |")
    return "\n".join(lines) + "\n"


def main_(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/holdout_bbc"))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--share", type=float, default=0.2)
    ap.add_argument("--n-trials", type=int, default=12)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "holdout_bbc")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in args.seeds:
        rows.append(run_seed(s, args.work, share=args.share, n_trials=args.n_trials))
        print(json.dumps(rows[-1]), flush=True)
    summary = summarise(rows)
    control = [c for s in args.seeds if (c := baseline_control(s, args.work)) is not None]
    result = {"rules": "docs/research/holdout-bbc.md", "share": args.share,
              "n_trials": args.n_trials, "runs": rows, "summary": summary,
              "baseline_control": control,
              "versions": artifacts.versions()}
    artifacts.write_json(args.out.with_suffix(".json"), result)
    text = markdown(rows, summary) + control_markdown(control)
    artifacts.write_text(args.out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())

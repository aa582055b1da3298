"""Inner cross-fit: refit features per inner fold, or reuse the outer fold's? (issue 18, item 3)

The rules are in docs/research/inner-cross-fit.md (committed before this ran). On ELLIPSE
(examples/ellipse.yaml, model.nthread 1, prompt-holdout 5 folds, fold seed 42):

- cost: one baseline ``stretch`` trial from an empty cache (a fresh cache directory per mode)
  and the next trial on the same engine (a search's second trial: features cached, raw
  predictions not), wall and CPU seconds, under ``mapping.inner_features: refit`` and ``reuse``;
- agreement: the baseline and configurations drawn from the default space with a fixed seed,
  each under both modes (``stretch``, then ``thresholds`` on the cached raw predictions): mean
  and worst per-prompt QWK, their paired bootstrap SE, and the lexicographic selection with the
  tie band under each mode.

    MOQWK_ELLIPSE_CSV=../shared/data/ellipse/ELLIPSE_Final_github_test.csv \\
        nice -n 10 python benchmarks/inner_cross_fit.py
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk.base import artifacts  # noqa: E402
from moqwk.config import DEFAULT_SPACE, parse_config  # noqa: E402
from moqwk.core.noise import paired_differences, tie_band  # noqa: E402
from moqwk.core.selection import rank_lexicographic  # noqa: E402
from moqwk.engine.cv import CVEngine, CVResult  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402

MODES = ("refit", "reuse")
METRICS = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")


def draw_configs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` XGBoost configurations from the default space: ints uniformly on their step grid,
    floats uniformly (log-uniformly where the space says log)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        params: dict[str, Any] = {}
        for name, spec in DEFAULT_SPACE.items():
            lo, hi = spec["low"], spec["high"]
            if spec["type"] == "int":
                step = int(spec.get("step", 1))
                params[name] = int(lo + step * rng.integers(0, (hi - lo) // step + 1))
            elif spec.get("log"):
                params[name] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            else:
                params[name] = float(rng.uniform(lo, hi))
        out.append(params)
    return out


def config_for(base: Path, mode: str, nthread: int) -> Any:
    raw = yaml.safe_load(base.read_text())
    raw.setdefault("model", {})["nthread"] = nthread
    raw.setdefault("mapping", {})["inner_features"] = mode
    return parse_config(raw, base_dir=base.resolve().parent)


def timed(fn: Any) -> tuple[Any, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def levels(ws: Workspace, res: CVResult) -> np.ndarray:
    n = len(ws.corpus)
    pred = res.oof["y_pred"].to_numpy(float).reshape(-1, n)
    return np.stack([ws.corpus.essay_scale.level(row) for row in pred])


def selection(ws: Workspace, lv: list[np.ndarray], metrics: list[dict[str, float]]) -> dict:
    """Rank the configurations as ``moqwk select`` ranks a front: the tie band from their own
    out-of-fold levels, then ``rank_lexicographic``."""
    df = pd.DataFrame([{"trial_number": i, **{m: row[m] for m in METRICS}}
                       for i, row in enumerate(metrics)])
    order = np.argsort(-df["worst_prompt_qwk"].to_numpy(), kind="stable")
    band = tie_band(ws.pool([lv[i] for i in order]), order=np.arange(len(order)), n_boot=200,
                    seed=0)
    ranked = rank_lexicographic(df, tie_tolerance=band.value)
    return {"tie_band": band.value, "order": [int(t) for t in ranked["trial_number"]],
            "in_tie_band": [int(t) for t in ranked.loc[ranked["in_tie_band"], "trial_number"]]}


def kendall_tau(a: list[int], b: list[int]) -> float:
    from scipy.stats import kendalltau

    pos_b = {t: i for i, t in enumerate(b)}
    return float(kendalltau(list(range(len(a))), [pos_b[t] for t in a]).statistic)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "examples" / "ellipse.yaml")
    ap.add_argument("--n-drawn", type=int, default=6, help="configurations besides the baseline")
    ap.add_argument("--seed", type=int, default=18, help="seed of the drawn configurations")
    ap.add_argument("--nthread", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results"
                    / "inner_cross_fit.json")
    ap.add_argument("--budget-s", type=float, default=1500.0,
                    help="stop adding configurations once this much wall time has passed")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="moqwk-icf-"))
    try:
        return run(args, work)
    finally:  # the fresh caches and the run directory are scratch
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    t_start = time.perf_counter()
    warnings.simplefilter("ignore", UserWarning)
    cfg = {m: config_for(args.config, m, args.nthread) for m in MODES}
    ws = Workspace.open(cfg["refit"], work / "run")
    splits = ws.engine().splits
    base = dict(cfg["refit"].baseline_params)
    configs = [base, *draw_configs(args.n_drawn, args.seed)]

    def params(i: int, method: str = "stretch") -> dict[str, Any]:
        return {**configs[i], "mapping.method": method}

    # --- cost: a cold trial (fresh cache per mode), then the next trial on the same engine
    engines: dict[str, CVEngine] = {}
    cost: dict[str, dict[str, float]] = {}
    results: dict[str, dict[int, CVResult]] = {m: {} for m in MODES}
    for m in MODES:
        e = CVEngine(cfg[m], ws.corpus, splits, cache_dir=work / f"cache-{m}",
                     nthread=args.nthread)
        e.build_workers = 1
        res, wall, cpu = timed(lambda e=e: e.run(params(0)))
        results[m][0] = res
        res2, wall2, cpu2 = timed(lambda e=e: e.run(params(1)))
        results[m][1] = res2
        st = e.store.stats
        cost[m] = {"cold_wall_s": wall, "cold_cpu_s": cpu, "warm_wall_s": wall2,
                   "warm_cpu_s": cpu2, "feature_blocks_built": int(st["blocks_built"]),
                   "feature_build_s": float(st["build_seconds"]),
                   "inner_train_s_cold": res.timings["inner_train_s"],
                   "train_s_cold": res.timings["train_s"]}
        engines[m] = e
        print(f"{m}: cold {wall:.1f}s wall / {cpu:.1f}s CPU, warm {wall2:.1f}s / {cpu2:.1f}s, "
              f"{st['blocks_built']} feature blocks built", flush=True)
    ratios = {k: cost["reuse"][k] / cost["refit"][k]
              for k in ("cold_wall_s", "cold_cpu_s", "warm_wall_s", "warm_cpu_s")}

    # --- agreement: both modes on the refit engine's store and prediction cache (the outer
    # models are shared: their key does not depend on the inner cross-fit)
    shared = CVEngine(cfg["reuse"], ws.corpus, splits, store=engines["refit"].store,
                      predictions=engines["refit"].predictions, nthread=args.nthread)
    shared.build_workers = 1
    run_on = {"refit": engines["refit"], "reuse": shared}
    done = [0, 1]
    cut: list[int] = []
    for i in range(2, len(configs)):
        if time.perf_counter() - t_start > args.budget_s:
            cut.append(i)
            continue
        for m in MODES:
            results[m][i] = run_on[m].run(params(i))
        done.append(i)
        print(f"config {i} done at {time.perf_counter() - t_start:.0f}s", flush=True)

    out: dict[str, Any] = {
        "corpus": {"n_essays": len(ws.corpus), "n_prompts": len(ws.corpus.prompt_names)},
        "nthread": args.nthread, "seed": args.seed, "configs": configs, "cut": cut,
        "cost": cost, "ratios_reuse_over_refit": ratios, "methods": {},
        "versions": artifacts.versions(),
    }
    for method in ("stretch", "thresholds"):
        per_mode: dict[str, Any] = {}
        lv: dict[str, list[np.ndarray]] = {m: [] for m in MODES}
        metrics: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
        diffs_of: list[dict[str, float]] = []  # reuse - refit, per row
        within_of: list[dict[str, bool]] = []
        rows: list[dict[str, object]] = []
        for i in done:
            # the first two configurations' reuse predictions are in the reuse engine's cache
            eng = {m: engines[m] if i in (0, 1) else run_on[m] for m in MODES}
            res = {m: (results[m][i] if method == "stretch" else eng[m].run(params(i, method)))
                   for m in MODES}
            for m in MODES:
                lv[m].append(levels(ws, res[m]))
            diffs = paired_differences(ws.pool([lv["reuse"][-1], lv["refit"][-1]]), first=0,
                                       second=1, n_boot=500, seed=0)
            d = {x.metric: x for x in diffs}
            slopes = {m: [f["numbers"].get("slope") for f in res[m].mapping["folds"]]
                      for m in MODES}
            for m in MODES:
                metrics[m].append({k: float(getattr(res[m].metrics, k)) for k in METRICS})
            diffs_of.append({k: d[k].difference for k in METRICS})
            within_of.append({k: bool(abs(d[k].difference) <= d[k].se)
                              for k in ("mean_qwk", "worst_prompt_qwk")})
            rows.append({"config": i,
                         **{f"{m}_{k}": metrics[m][-1][k] for m in MODES for k in METRICS},
                         "diff": diffs_of[-1], "se": {k: d[k].se for k in METRICS},
                         "within_1se": within_of[-1], "fold_slopes": slopes})
        for m in MODES:
            per_mode[m] = selection(ws, lv[m], metrics[m])
            per_mode[m]["order"] = [done[t] for t in per_mode[m]["order"]]
            per_mode[m]["in_tie_band"] = [done[t] for t in per_mode[m]["in_tie_band"]]
        same_top = per_mode["refit"]["order"][0] == per_mode["reuse"]["order"][0]
        out["methods"][method] = {
            "rows": rows, "selection": per_mode, "same_top": same_top,
            "kendall_tau": kendall_tau(per_mode["refit"]["order"], per_mode["reuse"]["order"]),
            "all_within_1se": all(all(w.values()) for w in within_of),
            "mean_diff_mean_qwk": float(np.mean([x["mean_qwk"] for x in diffs_of])),
            "mean_diff_worst_qwk": float(np.mean([x["worst_prompt_qwk"] for x in diffs_of])),
        }
        print(f"{method}: same top {same_top}, all within 1 SE "
              f"{out['methods'][method]['all_within_1se']}, mean diff mean QWK "
              f"{out['methods'][method]['mean_diff_mean_qwk']:+.4f}", flush=True)
    out["wall_s_total"] = time.perf_counter() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(args.out, out)
    print(f"wrote {args.out} after {out['wall_s_total']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

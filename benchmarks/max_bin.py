"""XGBoost's ``max_bin``: does a coarser histogram change what a trial scores? (issue 18)

The rules are in docs/research/max-bin-design.md (committed before this ran). For each corpus
(ELLIPSE Overall, ELLIPSE Cohesion, the per-prompt-scale corpus), fold seed and XGBoost
configuration (the baseline and configurations drawn from the default space), one CV per
``max_bin`` (256, XGBoost's default, then the candidates) with the default ``stretch`` mapping,
on one engine per corpus so the features are built once: mean and worst per-prompt QWK and
the tail MAEs, each candidate's paired difference to 256 with its bootstrap SE, and the
seconds spent training (outer and inner models).

    MOQWK_ELLIPSE_CSV=../shared/data/ellipse/ELLIPSE_Final_github_test.csv \\
        python benchmarks/max_bin.py --corpora overall cohesion --out OUT.json
    python benchmarks/max_bin.py --corpora scaled --out OUT2.json
    python benchmarks/max_bin.py --merge OUT.json OUT2.json --out benchmarks/results/max_bin.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.inner_cross_fit import draw_configs, levels  # noqa: E402
from benchmarks.whole_pipeline import CORPORA, _raw  # noqa: E402
from moqwk.base import artifacts  # noqa: E402
from moqwk.config import parse_config  # noqa: E402
from moqwk.core.noise import paired_differences  # noqa: E402
from moqwk.data.scaled_corpus import ellipse_path  # noqa: E402
from moqwk.engine.cv import CVEngine  # noqa: E402
from moqwk.run.splits_file import make_splits  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402

REFERENCE = 256
CANDIDATES = (64, 32)
METRICS = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")


def corpus_config(corpus: str, work: Path, ellipse: Path, nthread: int) -> Any:
    raw, base = _raw(corpus, work, ellipse)
    raw.setdefault("model", {})["nthread"] = nthread
    raw["mapping"] = {"method": "stretch"}
    return parse_config(raw, base_dir=base, source=base / "config.yaml")


def run_corpus(corpus: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    cfg = corpus_config(corpus, work, args.ellipse, args.nthread)
    ws = Workspace.open(cfg, work / f"run-{corpus}")
    configs = [dict(cfg.baseline_params), *draw_configs(args.n_drawn, args.config_seed)]
    rows = []
    for fold_seed in args.fold_seeds:
        splits = make_splits(ws.corpus, cfg, "prompt_holdout", seed=fold_seed)
        engine = CVEngine(cfg, ws.corpus, splits, nthread=args.nthread)
        for i, params in enumerate(configs):
            res, lv = {}, {}
            for b in (REFERENCE, *CANDIDATES):
                r = engine.run({**params, "max_bin": b})
                res[b], lv[b] = r, levels(ws, r)
            row: dict[str, Any] = {
                "corpus": corpus, "fold_seed": fold_seed, "config": i, "params": params,
                "metrics": {b: {k: float(getattr(res[b].metrics, k)) for k in METRICS}
                            for b in res},
                "train_s": {b: float(res[b].timings["train_s"] + res[b].timings["inner_train_s"])
                            for b in res},
                "diff": {}, "se": {}}
            for b in CANDIDATES:
                d = {x.metric: x.to_dict() for x in paired_differences(
                    ws.pool([lv[b], lv[REFERENCE]]), first=0, second=1, n_boot=500, seed=0)}
                row["diff"][b] = {k: d[k]["difference"] for k in METRICS}
                row["se"][b] = {k: d[k]["se"] for k in METRICS}
            rows.append(row)
            print(f"{corpus} seed {fold_seed} config {i}: train s "
                  + ", ".join(f"{b}: {row['train_s'][b]:.0f}" for b in res)
                  + "; mean QWK diff " + ", ".join(
                      f"{b}: {row['diff'][b]['mean_qwk']:+.3f} ({row['se'][b]['mean_qwk']:.3f})"
                      for b in CANDIDATES), flush=True)
    return rows


def apply_rules(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The registered rules of docs/research/max-bin-design.md, per candidate."""
    out: dict[str, Any] = {}
    for b in CANDIDATES:
        key = b if b in rows[0]["diff"] else str(b)
        ratio = statistics.median(r["train_s"][key] / r["train_s"][_ref(r)] for r in rows)
        mean = {k: statistics.fmean(r["diff"][key][k] for r in rows) for k in METRICS}
        beyond = sum(r["diff"][key]["mean_qwk"] < -2 * r["se"][key]["mean_qwk"] for r in rows)
        saving = ratio <= 0.6
        agreement = (mean["mean_qwk"] >= -0.003 and mean["worst_prompt_qwk"] >= -0.01
                     and beyond <= len(rows) / 6 and mean["low_tail_mae"] <= 0.005
                     and mean["high_tail_mae"] <= 0.005)
        out[str(b)] = {"median_train_ratio": ratio, "mean_diff": mean,
                       "cells_beyond_2se_mean_qwk": int(beyond), "cells": len(rows),
                       "saving": saving, "agreement": agreement, "passes": saving and agreement}
    passing = [b for b in sorted(CANDIDATES) if out[str(b)]["passes"]]
    out["default"] = passing[0] if passing else REFERENCE
    return out


def _ref(row: dict[str, Any]) -> Any:
    return REFERENCE if REFERENCE in row["train_s"] else str(REFERENCE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA))
    ap.add_argument("--fold-seeds", nargs="+", type=int, default=[42, 43])
    ap.add_argument("--n-drawn", type=int, default=2, help="configurations besides the baseline")
    ap.add_argument("--config-seed", type=int, default=20)
    ap.add_argument("--nthread", type=int, default=1)
    ap.add_argument("--ellipse", type=Path, default=None)
    ap.add_argument("--merge", nargs="+", type=Path, default=None,
                    help="combine earlier outputs (their rows) and apply the rules")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "max_bin.json")
    args = ap.parse_args(argv)
    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        rows = [r for p in parts for r in p["rows"]]
        out = {**parts[0], "rows": rows, "rules": apply_rules(rows),
               "wall_s_total": [p["wall_s_total"] for p in parts]}
        artifacts.write_json(args.out, out)
        print(json.dumps(out["rules"], indent=1))
        return 0
    args.ellipse = args.ellipse or ellipse_path()
    warnings.simplefilter("ignore", UserWarning)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="moqwk-maxbin-") as tmp:
        rows = [r for c in args.corpora for r in run_corpus(c, args, Path(tmp))]
    out = {"reference": REFERENCE, "candidates": list(CANDIDATES), "fold_seeds": args.fold_seeds,
           "n_drawn": args.n_drawn, "config_seed": args.config_seed, "nthread": args.nthread,
           "rows": rows, "rules": apply_rules(rows), "versions": artifacts.versions(),
           "wall_s_total": time.perf_counter() - t0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(args.out, out)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

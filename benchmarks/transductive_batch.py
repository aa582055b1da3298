"""How prompt_standardize's CV numbers vary with the declared deployment batch (issue 20).

The rules are in docs/research/transductive-batch.md (committed before the run). One model per
fold (the baseline params, raw predictions cached); the mapping is re-applied with
``mapping.params.batch`` in prompt, 30, 15, 10 (5 batch orders each) and 1 (every essay below
min_batch: the fallback, i.e. round).

    MOQWK_CACHE_DIR=/tmp/tb python benchmarks/transductive_batch.py --nthread 1 \
        --out benchmarks/results/transductive_batch.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import moqwk.engine.cv as cv_module  # noqa: E402
from moqwk.base import artifacts  # noqa: E402
from moqwk.config import parse_config  # noqa: E402
from moqwk.core.batching import batch_seed  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402

BATCHES: tuple[int | str, ...] = ("prompt", 30, 15, 10)
ORDERS = 5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "examples" / "ellipse.yaml"))
    ap.add_argument("--nthread", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/transductive_batch.json"))
    args = ap.parse_args()
    base = Path(args.config)
    raw = yaml.safe_load(base.read_text())
    raw.setdefault("model", {})["nthread"] = args.nthread
    config = parse_config(raw, base_dir=base.resolve().parent, source=base.resolve())
    ws = Workspace.open(config, Path(tempfile.mkdtemp(prefix="tb-")))
    engine = ws.engine("prompt_holdout")
    params = {**config.baseline_params, "mapping.method": "prompt_standardize"}
    rows = []

    def score(batch, order: int | None) -> dict:
        # the order seed shifts every fold's batch seed; the engine itself is unchanged
        cv_module.batch_seed = (lambda s, r, f: batch_seed(s, r, f) + (order or 0))  # type: ignore[assignment]
        res = engine.run({**params, "mapping.batch": batch})
        m = res.metrics
        return {"mean_qwk": m.mean_qwk, "worst_prompt_qwk": m.worst_prompt_qwk,
                "fallback_share": res.mapping["fallback_share"]}

    for batch in BATCHES:
        runs = [score(batch, o) for o in (range(ORDERS) if batch != "prompt" else [None])]
        row: dict[str, object] = {"batch": batch, "orders": len(runs), "runs": runs}
        for k in ("mean_qwk", "worst_prompt_qwk", "fallback_share"):
            vals = [r[k] for r in runs]
            row[k] = statistics.fmean(vals)
            row[f"{k}_range"] = [min(vals), max(vals)]
        rows.append(row)
        print(f"batch {batch!s:>6}: mean {row['mean_qwk']:.3f} worst "
              f"{row['worst_prompt_qwk']:.3f} fallback {row['fallback_share']:.1%}", flush=True)
    res = engine.run({**config.baseline_params, "mapping.method": "round"})
    rows.append({"batch": 1, "orders": 1, "note": "below min_batch: every essay takes the "
                 "fallback (none), which is round", "mean_qwk": res.metrics.mean_qwk,
                 "worst_prompt_qwk": res.metrics.worst_prompt_qwk, "fallback_share": 1.0})
    print(f"batch      1: mean {rows[-1]['mean_qwk']:.3f} worst "
          f"{rows[-1]['worst_prompt_qwk']:.3f} (round)", flush=True)
    artifacts.write_json(Path(args.out), {"config": str(base), "target": raw["data"][
        "score_column"], "params": params, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Inner-fold feature builds in parallel: how much sooner does a label-based mapping's
cross-fit have its features, and are they the same bits? (issue 18)

A label-based mapping (a fitted ``stretch``, ``thresholds``) trains its inner models on
features refitted on each inner training set: ``mapping.inner_folds`` (3) builds per outer
fold, 15 per 5-fold CV. They build on demand, as a trial reaches each outer fold. This script
builds every outer fold's inner folds of ELLIPSE Overall twice, each time with a cold cache of
its own, in one process and one after another: once one at a time (the reference, what moqwk
did before) and once on the trial's share of the cores (``CVEngine.inner_build_workers``: the
usable cores when one trial runs, as in ``cv``, ``compare`` and a one-job search). It reports
the wall time of each, their ratio, and whether the feature matrices are identical. The order
of the two alternates over ``--repeats``. Not part of the test suite::

    MOQWK_ELLIPSE_CSV=../shared/data/ellipse/ELLIPSE_Final_github_test.csv \\
        python benchmarks/inner_fold_build.py [--repeats 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.whole_pipeline import _raw  # noqa: E402
from moqwk.base import artifacts  # noqa: E402
from moqwk.config import parse_config  # noqa: E402
from moqwk.data.scaled_corpus import ellipse_path  # noqa: E402
from moqwk.engine.cv import usable_cores  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402


class Row(TypedDict):
    """One timed build: the repeat, the threads, its seconds and what it built."""

    repeat: int
    workers: int
    seconds: float
    features_sha256: str
    inner_folds: int


def build_all(work: Path, ellipse: Path, workers: int) -> tuple[float, str, int]:
    """Every outer fold's inner folds built cold with ``workers`` threads: the seconds, a hash
    of all the feature bits, and the number of inner folds."""
    raw, base = _raw("overall", work, ellipse)
    raw["mapping"] = {"method": "stretch"}
    config = parse_config(raw, base_dir=base, source=base / "config.yaml")
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    os.environ["MOQWK_CACHE_DIR"] = str(cache)
    ws = Workspace.open(config, Path(tempfile.mkdtemp(prefix="run-", dir=work)))
    eng = ws.engine("prompt_holdout")
    eng.build_workers = workers
    folds = eng.prepare()  # the outer folds: built first, not timed
    digest = hashlib.sha256()
    t0 = time.perf_counter()
    inner = [eng._inner_folds(f) for f in folds]
    seconds = time.perf_counter() - t0
    v = eng._variant(eng.config.features)
    for f in folds:
        for itr, iva in eng.inner_splits(f):
            ff = v.store.fold(itr, iva)
            digest.update(ff.X_train.tobytes())
            digest.update(ff.X_val.tobytes())
    return seconds, digest.hexdigest(), sum(len(i) for i in inner)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ellipse", type=Path, default=ellipse_path())
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path,
                    default=REPO / "benchmarks" / "results" / "inner_fold_build.json")
    args = ap.parse_args()
    cores = usable_cores()
    work = Path(tempfile.mkdtemp(prefix="moqwk-inner-build-"))
    load_before = os.getloadavg()
    rows: list[Row] = []
    for r in range(args.repeats):
        order = [1, cores] if r % 2 == 0 else [cores, 1]
        for workers in order:
            seconds, digest, n = build_all(work, args.ellipse, workers)
            rows.append({"repeat": r, "workers": workers, "seconds": seconds,
                         "features_sha256": digest, "inner_folds": n})
            print(f"repeat {r}: {workers} worker(s): {n} inner folds in {seconds:.1f} s",
                  flush=True)
    serial = [x["seconds"] for x in rows if x["workers"] == 1]
    parallel = [x["seconds"] for x in rows if x["workers"] == cores]
    ratios = [s / p for s, p in zip(serial, parallel, strict=True)]
    out = {"rows": rows, "usable_cores": cores,
           "speedup_median": statistics.median(ratios) if ratios else None,
           "same_bits": len({x["features_sha256"] for x in rows}) == 1,
           "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
           "versions": artifacts.versions()}
    artifacts.write_json(args.out, out)
    print(f"one at a time / {cores} workers: {out['speedup_median']:.2f}x (median of "
          f"{len(ratios)}); same bits: {out['same_bits']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: two pieces of pure code whose speed the test suite used to assert in seconds.

Wall-clock limits in tests fail on a loaded machine and pass on a fast one whatever the code does,
so each is measured here as a ratio against a reference timed in the same run, alternating with
it, median of the repetitions:

1. ``make_demo_corpus(seed)`` (720 essays generated from a seed) against reading the very same
   corpus back from a CSV file with ``pandas.read_csv``: is generating the demo corpus about as
   cheap as shipping it as a file? Goal: generation / read_csv <= 600, the 10x headroom of the
   removed test (2 s allowed for about 0.2 s of work) applied to the ratio of about 60 measured
   when it moved here.
2. ``moqwk.core.pareto.hypervolume`` on 200 points of a concave 4-objective front against
   Optuna's WFG implementation (``optuna._hypervolume.compute_hypervolume``, private, used here
   only as a yardstick; it also checks the value). Goal: moqwk / Optuna <= 10, within an order
   of magnitude of a library implementation (the ratio was about 1.7 when the removed test's
   5 s limit moved here).

A missed goal is reported (``MISSED``) but does not fail the script, so ``make bench`` goes on;
a hypervolume that disagrees with Optuna's fails it (exit 1).

Needs no data. Not part of the test suite::

    python benchmarks/core_speed.py [--reps 7] [--out benchmarks/results/core_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402

from moqwk.core.pareto import hypervolume  # noqa: E402
from moqwk.data.demo_corpus import make_demo_corpus  # noqa: E402

GOALS = {"demo_corpus_over_read_csv": 600.0, "hypervolume_over_optuna_wfg": 10.0}


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def paired(subject: Callable[[], object], reference: Callable[[], object], reps: int
           ) -> dict[str, float | list[float]]:
    """Alternate subject and reference ``reps`` times (after one warm-up of each)."""
    subject()
    reference()
    s, r = [], []
    for _ in range(reps):
        s.append(timed(subject))
        r.append(timed(reference))
    ratios = [a / b for a, b in zip(s, r, strict=True)]
    return {"subject_s": s, "reference_s": r, "median_ratio": statistics.median(ratios)}


def concave_front(n: int, m: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, m))
    return 1.0 - x / np.linalg.norm(x, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/core_speed.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    results: dict[str, dict] = {}

    with tempfile.TemporaryDirectory(prefix="moqwk-bench-") as tmp:
        csv = Path(tmp) / "demo.csv"
        frame = make_demo_corpus(5)
        frame.to_csv(csv, index=False)
        back = pd.read_csv(csv, dtype={"essay_id": str, "prompt": str})
        assert len(back) == len(frame)
        results["demo_corpus_over_read_csv"] = paired(
            lambda: make_demo_corpus(5), lambda: pd.read_csv(csv), args.reps)

    points, ref = concave_front(200, 4, 0), np.ones(4)
    from optuna._hypervolume import compute_hypervolume  # private: a yardstick only

    ours, theirs = hypervolume(points, ref), compute_hypervolume(points, ref)
    if not np.isclose(ours, theirs, rtol=1e-9, atol=1e-12):
        print(f"hypervolume disagrees with Optuna's: {ours} against {theirs}", file=sys.stderr)
        return 1
    results["hypervolume_over_optuna_wfg"] = paired(
        lambda: hypervolume(points, ref), lambda: compute_hypervolume(points, ref), args.reps)
    results["hypervolume_over_optuna_wfg"]["value"] = ours

    for name, r in results.items():
        ok = r["median_ratio"] <= GOALS[name]
        r["goal_met"] = ok
        print(f"{name:30s} median ratio {r['median_ratio']:7.2f} (goal <= {GOALS[name]:g}); "
              f"subject median {statistics.median(r['subject_s']) * 1e3:8.1f} ms, reference "
              f"{statistics.median(r['reference_s']) * 1e3:8.1f} ms {'' if ok else ' MISSED'}")

    out = Path(args.out) if Path(args.out).is_absolute() else REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "results": results, "goals": GOALS, "reps": args.reps,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "pandas": pd.__version__, "optuna": optuna.__version__},
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "load_average_before_after": [load_before, os.getloadavg()[0]],
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

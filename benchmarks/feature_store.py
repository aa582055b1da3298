"""Benchmark: naive per-fold vectorizer fits against the FeatureStore (cold and warm cache).

On the ELLIPSE corpus, 10 folds (5 grouped by prompt + 5 KFold) are built three ways:

(a) naive: per fold, ``TfidfVectorizer`` word 1-2 and char_wb 2-4 fitted on the training texts
    and applied to the validation texts, then ``TruncatedSVD`` per family (what a script would do);
(b) ``FeatureStore`` from an empty cache: count once, fit per fold (n-grams only, the same work
    as (a), and the full default config with handcrafted features on top);
(c) warm cache: a fresh ``FeatureStore`` reading the folds from disk, and the in-process memo.

It also checks that (a) and (b) agree on the n-gram SVD features. Not part of the test suite::

    python benchmarks/feature_store.py [--csv PATH] [--out benchmarks/results/feature_store.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import sklearn
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk.features import FeatureConfig, FeatureStore  # noqa: E402

DEFAULT_CSV = "../shared/data/ellipse/ELLIPSE_Final_github_test.csv"


def prompt_folds(prompts: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Whole prompts per fold: largest prompt first into the currently smallest fold."""
    sizes = pd.Series(prompts).value_counts()
    order = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    load = [0] * k
    members: list[list[str]] = [[] for _ in range(k)]
    for prompt, n in order:
        f = int(np.argmin(load))
        load[f] += n
        members[f].append(prompt)
    folds = []
    for held in members:
        val = np.flatnonzero(np.isin(prompts, held))
        folds.append((np.setdiff1d(np.arange(len(prompts)), val), val))
    return folds


def naive_fold(texts: list[str], train, val, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """What a per-fold script does: fit both vectorizers and SVDs on the training texts."""
    tr_texts, va_texts = [texts[i] for i in train], [texts[i] for i in val]
    parts_tr, parts_va = [], []
    for analyzer, ncfg in (("word", cfg.word), ("char_wb", cfg.char)):
        vec = TfidfVectorizer(
            analyzer=analyzer, ngram_range=ncfg.ngram_range, min_df=ncfg.min_df,
            max_df=ncfg.max_df, sublinear_tf=ncfg.sublinear_tf,
        )  # fmt: skip
        svd = TruncatedSVD(ncfg.svd_components, algorithm="randomized", random_state=cfg.seed)
        parts_tr.append(svd.fit_transform(vec.fit_transform(tr_texts)))
        parts_va.append(svd.transform(vec.transform(va_texts)))
    return np.hstack(parts_tr), np.hstack(parts_va)


def timed_store(ids, texts, cfg, cache: Path, folds) -> tuple[float, list[float], FeatureStore]:
    store = FeatureStore(ids, texts, cfg, cache)
    per_fold = []
    for train, val in folds:
        t0 = time.perf_counter()
        store.fold(train, val)
        per_fold.append(time.perf_counter() - t0)
    return sum(per_fold), per_fold, store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=os.environ.get("MOQWK_ELLIPSE_CSV", DEFAULT_CSV),
                        help="ELLIPSE CSV (relative paths are from the repo root)")  # fmt: skip
    parser.add_argument("--out", default="benchmarks/results/feature_store.json")
    parser.add_argument("--folds", type=int, default=5, help="folds of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="first N essays only (smoke)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for both methods (0 = library default); 1 keeps "
                             "timings stable on a shared machine")  # fmt: skip
    args = parser.parse_args(argv)
    if args.threads > 0:
        threadpool_limits(args.threads)

    csv = Path(args.csv) if Path(args.csv).is_absolute() else REPO / args.csv
    df = pd.read_csv(csv, usecols=["text_id_kaggle", "full_text", "prompt"])
    df["text_id_kaggle"] = df["text_id_kaggle"].astype(str)
    # id order = row order, so the naive fits see rows in the order the store fits them
    df = df.sort_values("text_id_kaggle").iloc[: args.limit].reset_index(drop=True)
    ids, texts = df["text_id_kaggle"].to_numpy(), df["full_text"].tolist()
    prompts = df["prompt"].to_numpy()
    kf = KFold(args.folds, shuffle=True, random_state=args.seed)
    folds = prompt_folds(prompts, args.folds) + [(np.sort(a), np.sort(b)) for a, b in kf.split(ids)]
    cfg = FeatureConfig(seed=args.seed)
    ngram_only = FeatureConfig(handcrafted=False, word=cfg.word, char=cfg.char, seed=args.seed)
    load_before = os.getloadavg()
    print(f"{len(ids)} essays, {len(set(prompts))} prompts, {len(folds)} folds; "
          f"load average {load_before[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip

    naive_per_fold, naive_out = [], []
    for train, val in folds:
        t0 = time.perf_counter()
        naive_out.append(naive_fold(texts, train, val, cfg))
        naive_per_fold.append(time.perf_counter() - t0)
        print(f"  naive fold {len(naive_per_fold)}: {naive_per_fold[-1]:.1f}s", flush=True)
    naive = sum(naive_per_fold)

    with tempfile.TemporaryDirectory(prefix="moqwk-bench-") as tmp:
        cold_ng, cold_ng_folds, st_ng = timed_store(ids, texts, ngram_only, Path(tmp) / "ng", folds)
        print(f"  store cold (n-grams only): {cold_ng:.1f}s", flush=True)
        cold, cold_folds, store = timed_store(ids, texts, cfg, Path(tmp) / "full", folds)
        print(f"  store cold (full config): {cold:.1f}s", flush=True)
        warm_disk, _, fresh = timed_store(ids, texts, cfg, Path(tmp) / "full", folds)
        t0 = time.perf_counter()
        for train, val in folds:
            store.fold(train, val)
        warm_memo = time.perf_counter() - t0
        max_diff = 0.0
        for (train, val), (ref_tr, ref_va) in zip(folds, naive_out, strict=True):
            ff = st_ng.fold(train, val)
            max_diff = max(max_diff, float(np.abs(ff.X_train - ref_tr).max()),
                           float(np.abs(ff.X_val - ref_va).max()))  # fmt: skip
        stats = {"ngram_only_cold": st_ng.stats, "full_cold": store.stats, "warm_disk": fresh.stats}

    rows = [
        ("(a) naive per-fold TfidfVectorizer+SVD", naive),
        ("(b) FeatureStore cold, n-grams only", cold_ng),
        ("(b') FeatureStore cold, full default config", cold),
        ("(c) FeatureStore warm, fresh store (disk)", warm_disk),
        ("(c') FeatureStore warm, same store (memo)", warm_memo),
    ]
    print(f"\n{'method':46s} {'seconds':>9s} {'naive / this':>13s}")
    for name, sec in rows:
        print(f"{name:46s} {sec:9.2f} {naive / sec:12.1f}x")
    print(f"max |store - naive| over n-gram SVD features: {max_diff:.2e}")
    print(f"store corpus counting (once): {store.stats['corpus_seconds']:.1f}s")

    result = {
        "n_essays": len(ids), "n_prompts": len(set(prompts)), "n_folds": len(folds),
        "config": cfg.to_dict(), "seconds": dict(rows), "ratios_naive_over": {
            name: naive / sec for name, sec in rows},
        "per_fold_seconds": {"naive": naive_per_fold, "store_cold_ngram_only": cold_ng_folds,
                             "store_cold_full": cold_folds},
        "max_abs_diff_store_vs_naive": max_diff, "store_stats": stats,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "scikit-learn": sklearn.__version__},
        "cpu_count": os.cpu_count(), "platform": platform.platform(), "threads": args.threads,
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
    }  # fmt: skip
    out = Path(args.out) if Path(args.out).is_absolute() else REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

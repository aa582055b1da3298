"""How far can the numbers moqwk prints be trusted? (issue 11)

The evidence for three decisions, under rules fixed before the measurements
(docs/research/honest-numbers-design.md):

- **R1** BBC-CV: which resampling of essays grouped by prompt (``essays``, ``prompts``,
  ``prompts+essays``), published or size-corrected, comes closest to what the selected config
  scores on fresh prompt-holdout folds; the interval's coverage; the in-sample number's error.
- **R2** the tie band: today's estimator (the paired SE of the top two) against
  ``paired_median`` and ``independent``, with the noise a refold puts on the same differences
  as the yardstick; what each gives when the top two are a duplicate or near-identical pair.
- **R3** worst-prompt estimators (``min``, ``cvar10``, ``eb_min``): Spearman correlation over a
  study's trials between the in-sample value and the fresh worst-prompt QWK.

Studies are named ``<target>-s<seed>`` (``overall-s7``: ELLIPSE Overall, search seed 7); the
registered six are Overall seeds 7-10 and Cohesion seeds 7 and 8. Two phases, each resumable:

``--phase data`` (the expensive part: about 25-60 min per study on one core): per study, a
``--budget``-trial NSGA-II search (``examples/ellipse.yaml``, ``model.nthread`` from
``--nthread``) in ``WORK/runs/<study>``, then every complete trial re-scored by ``CVEngine`` on
``--fresh-repeats`` prompt-holdout fold assignments of ``--fresh-seed``, drawn distinct from
each other and from the search partition as ``compare`` draws them. Writes
``WORK/data/<study>.npz``: every trial's in-sample and fresh out-of-fold levels and what the
selector needs. A study whose ``.npz`` exists is skipped.

``--phase analyse`` (about a minute per study): from each ``WORK/data/<study>.npz`` that exists,
the measurements (``WORK/analysis/<study>.json``, reused while the ``.npz`` and the bootstrap
sizes are unchanged), then the tables and the rules applied, into ``--out`` (``.json`` and
``.md``). Registered studies without data are listed as missing, never silently dropped.
No model is trained in this phase.

    MOQWK_CACHE_DIR=runs/.cache python benchmarks/honest_numbers.py --work runs/honest \\
        --nthread 1 --phase all
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk.base import artifacts  # noqa: E402

STUDIES = ("overall-s7", "overall-s8", "overall-s9", "overall-s10", "cohesion-s7",
           "cohesion-s8")
N_BOOT_BAND = 200  # the tie band's bootstrap, as select draws it (seed 42 = cv.seed)
N_BOOT_BBC = 500  # BBC-CV replicates, seed 0
ESTIMATORS = ("min", "cvar10", "eb_min")
SCHEMES = ("essays", "prompts", "prompts+essays")
BAND_FOR_BBC = "paired_median"


# ---------------------------------------------------------------------------------------------
# data phase


def _study(name: str) -> tuple[str, int]:
    target, _, seed = name.rpartition("-s")
    if not target or not seed.isdigit():
        raise SystemExit(f"study names are <target>-s<seed> (overall-s7), got {name!r}")
    return target.capitalize(), int(seed)


def _config(base: Path, name: str, args: argparse.Namespace):
    import yaml

    from moqwk.config import parse_config

    target, seed = _study(name)
    raw = yaml.safe_load(base.read_text())
    raw["data"]["score_column"] = target
    raw.setdefault("model", {})["nthread"] = args.nthread
    raw.setdefault("search", {}).update(seed=seed, n_trials=args.budget, sampler="nsga2")
    raw["mapping"] = {"method": "round"}  # as measured, before stretch was the default
    return parse_config(raw, base_dir=base.resolve().parent, source=base.resolve())


def make_data(name: str, work: Path, args: argparse.Namespace) -> Path:
    """One study: the search, then every trial re-scored on fresh folds (the scratch
    ``make_data.py`` of the note, on the current API)."""
    import optuna

    from moqwk.core.objectives import DEFAULT_OBJECTIVES
    from moqwk.core.splits import partition_key
    from moqwk.run.layout import default_storage_url
    from moqwk.run.workspace import Workspace
    from moqwk.stages.search_loop import SearchOptions, run_search
    from moqwk.study.records import CONSTRAINTS

    out = work / "data" / f"{name}.npz"
    if out.exists():
        print(f"{name}: {out} exists, skipped", flush=True)
        return out
    cfg = _config(Path(args.config), name, args)
    run_dir = work / "runs" / name
    ws = Workspace.open(cfg, run_dir)
    t0 = time.perf_counter()
    run_search(ws, SearchOptions(n_trials=args.budget))
    print(f"{name}: search done {time.perf_counter() - t0:.0f}s", flush=True)
    study = optuna.load_study(study_name="moqwk", storage=default_storage_url(run_dir))
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.state == optuna.trial.TrialState.COMPLETE and "oof_level" in t.user_attrs]
    pl = ws.pool([t.user_attrs["oof_level"] for t in trials])
    params = [t.user_attrs.get("moqwk_params", t.params) for t in trials]
    roles = [t.user_attrs.get("moqwk_role", "sampled") for t in trials]
    c = ws.corpus
    es = c.essay_scale
    search = ws.engine("prompt_holdout").splits
    search_assign = np.stack([search.assignment(r) for r in range(search.repeats)])
    forbidden = frozenset(partition_key(a, ids=np.asarray(c.ids)) for a in search_assign)
    fws = Workspace.open(cfg, work / "runs" / f"{name}-fresh")
    eng = fws.engine("prompt_holdout", seed=args.fresh_seed, repeats=args.fresh_repeats,
                     forbidden=forbidden)
    fresh = np.zeros((len(trials), args.fresh_repeats, len(c)), dtype=np.int8)
    fresh_vals = np.zeros((len(trials), 4))
    for i, p in enumerate(params):
        t1 = time.perf_counter()
        r = eng.run(p)
        pred = r.oof["y_pred"].to_numpy(float).reshape(-1, len(c))
        fresh[i] = np.array([es.level(row) for row in pred])
        fresh_vals[i] = list(DEFAULT_OBJECTIVES.values(r.metrics).values())
        print(f"{name}: fresh {i + 1}/{len(trials)} {time.perf_counter() - t1:.0f}s",
              flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, oof=pl.preds.astype(np.int8), fresh=fresh,
        values=np.array([t.values for t in trials]), fresh_values=fresh_vals,
        constraints=np.array([[t.constraints.get(k, np.nan) for k in CONSTRAINTS]
                              for t in trials]),
        numbers=np.array([t.number for t in trials]), base_idx=roles.index("baseline"),
        params=json.dumps(params), roles=json.dumps(roles),
        guard=json.dumps(study.user_attrs["moqwk_guardrails"]),
        prompt_codes=pl.prompt_codes, true_level=pl.true_level,
        levels_by_prompt=pl.n_levels, low=pl.low_tail, high=pl.high_tail,
        min_prompt_n=cfg.cv.min_prompt_n, tolerance=cfg.tails.tolerance,
        search_assign=search_assign,
        fresh_assign=np.stack([eng.splits.assignment(r) for r in range(eng.splits.repeats)]),
        fresh_seed=args.fresh_seed, prompt_names=np.array(c.prompt_names))
    print(f"{name}: wrote {out} {time.perf_counter() - t0:.0f}s", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# analyse phase: one study


def _load(path: Path):
    from moqwk.core.pooled import pool

    d = np.load(path)
    sizes = np.bincount(d["prompt_codes"], minlength=len(d["levels_by_prompt"]))
    kw = dict(prompt_codes=d["prompt_codes"], true_level=d["true_level"],
              n_levels_by_prompt=d["levels_by_prompt"], eligible=sizes >= int(d["min_prompt_n"]),
              low_tail=d["low"], high_tail=d["high"])
    return (d, pool(preds=d["oof"].astype(np.int64), **kw),
            pool(preds=d["fresh"].astype(np.int64), **kw), kw)


def _objectives(pl, est: str = "min") -> np.ndarray:
    """(C, 4): worst-prompt (by ``est``), mean QWK, low and high tail MAE on the full data."""
    from moqwk.core.bbc import objective_matrix
    from moqwk.core.worst_prompt import estimator

    return objective_matrix(pl, np.ones((1, pl.n_essays)), pl.eligible.astype(float),
                            worst_prompt=estimator(est))[0]


def analyse_study(name: str, path: Path) -> dict:
    """The measurements of one study (the scratch ``analyse.py`` of the note)."""
    from scipy.stats import spearmanr

    from moqwk.core.bbc import bbc, guardrail_constraints, lexicographic_selector
    from moqwk.core.noise import bootstrap_objectives, tie_band
    from moqwk.core.pareto import feasible_mask, loss_matrix, pareto_front_mask
    from moqwk.core.pooled import RESAMPLING, pool, prompt_stats, resample
    from moqwk.core.selection import bootstrap_worst_qwk_diff_se
    from moqwk.core.splits import partition_key
    from moqwk.core.worst_prompt import REGISTRY

    t0 = time.perf_counter()
    d, ins, fresh, kw = _load(path)
    out: dict = {"study": name}
    numbers = d["numbers"]
    base = int(d["base_idx"])
    tol = float(d["tolerance"])
    # --- the fresh partitions really are fresh (compared without fold labels)
    skey = partition_key(d["search_assign"][0])
    fkeys = [partition_key(a) for a in d["fresh_assign"]]
    out["fresh_partitions_distinct"] = bool(skey not in fkeys and len(set(fkeys)) == len(fkeys))
    # --- sanity: the moment-based objectives reproduce the stored trial values
    obj = _objectives(ins)
    out["max_abs_diff_vs_stored_values"] = float(np.nanmax(np.abs(obj - d["values"])))
    cons = guardrail_constraints(obj, baseline=base, tolerance=tol)
    out["max_abs_diff_vs_stored_constraints"] = float(np.nanmax(np.abs(cons - d["constraints"])))
    fobj = _objectives(fresh)
    out["fresh_max_abs_diff_vs_engine"] = float(np.nanmax(np.abs(fobj - d["fresh_values"])))
    # --- duplicates and near-identical pairs
    T = ins.n_configs
    flat = ins.preds.reshape(T, -1)
    ndiff = (flat[:, None, :] != flat[None, :, :]).sum(axis=2)
    iu = np.triu_indices(T, 1)
    dup_pairs = [(int(i), int(j)) for i, j in zip(*iu, strict=True) if ndiff[i, j] == 0]
    distinct_pairs = [(int(i), int(j)) for i, j in zip(*iu, strict=True) if ndiff[i, j] > 0]
    near = min(distinct_pairs, key=lambda p: ndiff[p])
    reps = bootstrap_objectives(ins, n_boot=N_BOOT_BAND, seed=42)[:, :, 0]

    def pse(i: int, j: int) -> float:
        x = reps[:, i] - reps[:, j]
        return float(np.std(x[~np.isnan(x)], ddof=1))

    all_pair_se = np.array([pse(i, j) for i, j in distinct_pairs])
    out["pairs"] = {
        "n_trials": T, "duplicates": [[int(numbers[i]), int(numbers[j])] for i, j in dup_pairs],
        "duplicate_se": [pse(i, j) for i, j in dup_pairs],
        "near_identical": {"trials": [int(numbers[near[0]]), int(numbers[near[1]])],
                           "essays_differing": int(ndiff[near]), "se": pse(*near)},
        "distinct_se_median": float(np.median(all_pair_se)),
        "distinct_se_q10_q90": [float(np.quantile(all_pair_se, 0.1)),
                                float(np.quantile(all_pair_se, 0.9))],
        "single_se_median": float(np.median([np.std(reps[:, i], ddof=1) for i in range(T)])),
        "essays_differing_median": float(np.median([ndiff[p] for p in distinct_pairs])),
    }
    out["pairs"]["spearman_se_vs_ndiff"] = float(spearmanr(
        all_pair_se, [ndiff[p] for p in distinct_pairs]).statistic)
    # --- tie band: today's (SE of the top two of the front) against the new estimators
    feas = np.flatnonzero(feasible_mask(cons))
    order = feas[np.lexsort((numbers[feas], -obj[feas, 0]))]
    front = feas[pareto_front_mask(loss_matrix(obj[feas], ["max", "max", "min", "min"]))]
    forder = front[np.lexsort((numbers[front], -obj[front, 0]))]
    a, b = forder[:2]
    today = bootstrap_worst_qwk_diff_se(
        prompt_codes=kw["prompt_codes"], true_level=kw["true_level"], pred_a=ins.preds[a],
        pred_b=ins.preds[b], n_levels_by_prompt=kw["n_levels_by_prompt"],
        eligible=kw["eligible"], n_boot=N_BOOT_BAND, seed=42)
    pm = tie_band(ins, order=order, k=5, n_boot=N_BOOT_BAND, seed=42)
    ind = tie_band(ins, order=order, k=5, n_boot=N_BOOT_BAND, seed=42, method="independent")
    # the yardstick: the SD over the 5 fold assignments (search + fresh) of the same differences
    both = np.concatenate([ins.preds, fresh.preds], axis=1)  # (T, 1 + fresh repeats, N)
    per_assign = np.stack([_objectives(pool(preds=both[:, r:r + 1], **kw))[:, 0]
                           for r in range(both.shape[1])], axis=1)
    top = pm.top
    refold = [float(np.std(per_assign[top] - per_assign[j], ddof=1)) for j in pm.pairs]
    all_refold = [float(np.std(per_assign[i] - per_assign[j], ddof=1))
                  for i, j in distinct_pairs]
    out["tie_band"] = {
        "today": {"value": today, "trials": [int(numbers[a]), int(numbers[b])],
                  "essays_differing": int(ndiff[a, b])},
        "paired_median": pm.value, "pair_ses": list(pm.pair_ses),
        "pairs": [int(numbers[j]) for j in pm.pairs], "top": int(numbers[top]),
        "independent": ind.value, "single_se": pm.single_se,
        "refold_sd_pairs": refold, "refold_sd_median": float(np.median(refold)),
        "refold_sd_all_distinct_median": float(np.median(all_refold)),
        "single_refold_sd_median": float(np.median(np.std(per_assign, axis=1, ddof=1))),
    }
    # --- scenarios: the top two are a duplicate / a near-identical pair (rest by worst-prompt)
    scen = {}
    for label, pair in (("duplicate", dup_pairs[0] if dup_pairs else None),
                        ("near_identical", near), ("actual_top_two", (int(a), int(b)))):
        if pair is None:
            continue
        i, j = pair
        rest = [int(x) for x in np.argsort(-np.nan_to_num(obj[:, 0], nan=-9), kind="stable")
                if int(x) not in (i, j)]
        tb = tie_band(ins, order=np.array([i, j, *rest]), k=5, n_boot=N_BOOT_BAND, seed=42)
        scen[label] = {"trials": [int(numbers[i]), int(numbers[j])],
                       "essays_differing": int(ndiff[i, j]), "today": pse(i, j),
                       "paired_median": tb.value, "pair_ses": list(tb.pair_ses),
                       "independent": float(np.sqrt(2) * tb.single_se)}
    out["tie_band_scenarios"] = scen
    # --- the selection replayed under each band, and BBC-CV per resampling scheme
    out["selection"] = {}
    out["bbc"] = {}
    for band_name, band in (("today", today), ("paired_median", pm.value),
                            ("independent", ind.value)):
        sel = lexicographic_selector(tie_tolerance=band, trial_numbers=numbers)
        c = sel(obj, cons)
        out["selection"][band_name] = {
            "band": band, "trial": int(numbers[c]), "in_sample": obj[c].tolist(),
            "fresh": fobj[c].tolist(),
            "fresh_single_assignments_worst": per_assign[c, 1:].tolist()}
        for scheme in RESAMPLING:
            r = bbc(ins, selector=sel, baseline=base, tolerance=tol, scheme=scheme,
                    n_boot=N_BOOT_BBC, seed=0)
            out["bbc"][f"{band_name}/{scheme}"] = {
                "raw": {k: v.to_dict() for k, v in r.estimates.items()},
                "corrected": {k: v.to_dict() for k, v in r.corrected.items()},
                "n_used": r.n_used,
                "distinct_choices": int((r.chosen_counts > 0).sum()),
                "top_choice_share": float(r.chosen_counts.max() / max(1, r.n_used))}
    # --- estimators: rank correlation of in-sample with fresh values over the trials
    out["estimators"] = {}
    fresh_min = fobj[:, 0]
    for ename in REGISTRY:
        ins_e = _objectives(ins, ename)[:, 0]
        fr_e = _objectives(fresh, ename)[:, 0]
        ok = ~np.isnan(ins_e)
        out["estimators"][ename] = {
            "spearman_vs_fresh_min": float(spearmanr(ins_e[ok], fresh_min[ok]).statistic),
            "spearman_vs_fresh_same": float(spearmanr(ins_e[ok], fr_e[ok]).statistic),
            "in_sample_spread_sd": float(np.std(ins_e[ok])),
            "mean_abs_in_minus_fresh_same": float(np.mean(np.abs(ins_e - fr_e)[ok]))}
    out["estimators"]["mean_qwk"] = {
        "spearman_vs_fresh_min": float(spearmanr(obj[:, 1], fresh_min).statistic),
        "spearman_vs_fresh_same": float(spearmanr(obj[:, 1], fobj[:, 1]).statistic)}
    # --- Lin's analytic per-prompt variance against the within-prompt bootstrap (baseline)
    one = pool(preds=ins.preds[base:base + 1], **kw)
    st = prompt_stats(one, np.ones(ins.n_essays))
    w, _, _ = resample(kw["prompt_codes"], ins.n_prompts, 1000, np.random.default_rng(1),
                       scheme="essays")
    bvar = np.nanvar(prompt_stats(one, w).qwk[:, 0, :], axis=0, ddof=1)
    ratio = st.var[0, 0] / bvar
    el = kw["eligible"]
    out["lin_vs_bootstrap_var_ratio"] = {
        "median": float(np.nanmedian(ratio[el])), "q10": float(np.nanquantile(ratio[el], 0.1)),
        "q90": float(np.nanquantile(ratio[el], 0.9))}
    out["seconds"] = time.perf_counter() - t0
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def analysed(name: str, work: Path) -> dict | None:
    """The study's measurements, from ``WORK/analysis`` while its key holds, else made now."""
    data = work / "data" / f"{name}.npz"
    if not data.exists():
        return None
    key = {"npz_sha256": _sha256(data), "n_boot_band": N_BOOT_BAND, "n_boot_bbc": N_BOOT_BBC}
    path = work / "analysis" / f"{name}.json"
    if path.exists():
        row = artifacts.read_json(path)
        if row.get("key") == key:
            return row
    row = {"key": key, **analyse_study(name, data)}
    artifacts.write_json(path, row)
    print(f"{name}: analysed in {row['seconds']:.0f}s", flush=True)
    return row


# ---------------------------------------------------------------------------------------------
# analyse phase: the tables and the rules (the scratch ``summarise.py`` of the note)


def _f(x: float | None, n: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{n}f}"


def bbc_rows(rs: list[dict], band: str = BAND_FOR_BBC) -> dict[str, dict]:
    """Per estimate (in-sample, each scheme raw/corrected): error against the fresh value of
    the selected config, mean over studies, coverage and width of the interval."""
    acc: dict[str, list] = {}
    for r in rs:
        sel = r["selection"][band]
        fr_w, fr_m = sel["fresh"][0], sel["fresh"][1]
        acc.setdefault("in-sample", []).append(
            {"mean_err": sel["in_sample"][1] - fr_m, "worst_err": sel["in_sample"][0] - fr_w})
        for scheme in SCHEMES:
            v = r["bbc"][f"{band}/{scheme}"]
            for var in ("raw", "corrected"):
                m, w = v[var]["mean_qwk"], v[var]["worst_prompt_qwk"]
                acc.setdefault(f"{scheme} {var}", []).append({
                    "mean_err": m["point"] - fr_m, "worst_err": w["point"] - fr_w,
                    "mean_covers": m["lo"] <= fr_m <= m["hi"],
                    "worst_covers": w["lo"] <= fr_w <= w["hi"],
                    "mean_width": m["hi"] - m["lo"], "worst_width": w["hi"] - w["lo"]})
    out = {}
    for k, v in acc.items():
        row: dict[str, float] = {"n": len(v)}
        for o in ("mean", "worst"):
            e = np.array([x[f"{o}_err"] for x in v])
            row[f"{o}_mae"] = float(np.mean(np.abs(e)))
            row[f"{o}_signed"] = float(np.mean(e))
            row[f"{o}_max_abs"] = float(np.max(np.abs(e)))
            if f"{o}_covers" in v[0]:
                row[f"{o}_coverage"] = int(sum(x[f"{o}_covers"] for x in v))
                row[f"{o}_width"] = float(np.mean([x[f"{o}_width"] for x in v]))
        out[k] = row
    return out


def rules(rs: list[dict], n_registered: int) -> dict:
    """R1, R2, R3 as docs/research/honest-numbers-design.md fixed them before the runs."""
    # R2: paired_median if >= the refold SD of the same pairs in >= 5 of the 6 registered
    meets = [r["study"] for r in rs
             if r["tie_band"]["paired_median"] >= r["tie_band"]["refold_sd_median"]]
    need = n_registered - 1
    r2 = {"paired_median_ge_refold_sd": meets, "n_studies": len(rs), "needed": need,
          "decision": "paired_median" if len(meets) >= need else "independent"}
    # R1: lowest mean-QWK MAE; every one within 0.005 of it is a candidate, lowest worst MAE wins
    rows = bbc_rows(rs)
    bbc_only = {k: v for k, v in rows.items() if k != "in-sample"}
    best = min(v["mean_mae"] for v in bbc_only.values())
    cands = sorted(k for k, v in bbc_only.items() if v["mean_mae"] <= best + 0.005)
    pick = min(cands, key=lambda k: bbc_only[k]["worst_mae"])
    n = len(rs)
    r1 = {"best_mean_mae": best, "candidates_within_0.005": cands, "decision": pick,
          "targets": {"mean_mae_lt_0.02": bbc_only[pick]["mean_mae"] < 0.02,
                      "coverage_ge_80pct": bbc_only[pick]["mean_coverage"] >= 0.8 * n,
                      "mean_mae": bbc_only[pick]["mean_mae"],
                      "mean_coverage": f"{bbc_only[pick]['mean_coverage']}/{n}"},
          "in_sample": rows["in-sample"]}
    # R3: highest mean Spearman vs fresh min; min stays unless another is ahead by > 0.05
    prim = {e: float(np.mean([r["estimators"][e]["spearman_vs_fresh_min"] for r in rs]))
            for e in ESTIMATORS}
    sec = {e: float(np.mean([r["estimators"][e]["spearman_vs_fresh_same"] for r in rs]))
           for e in ESTIMATORS}
    top = max(prim, key=lambda e: prim[e])
    r3 = {"primary_mean_spearman": prim, "secondary_mean_spearman": sec, "highest": top,
          "decision": top if prim[top] - prim["min"] > 0.05 else "min"}
    return {"R1": r1, "R2": r2, "R3": r3, "bbc_table": rows}


def markdown(rs: list[dict], missing: list[str], ru: dict, args: argparse.Namespace) -> str:
    f = _f
    L = [f"Studies analysed: {', '.join(r['study'] for r in rs)} ({len(rs)} of "
         f"{len(rs) + len(missing)} registered)"
         + (f"; no data for {', '.join(missing)}." if missing else "."),
         f"Fresh folds: prompt_holdout seed {args.fresh_seed}, {args.fresh_repeats} "
         f"assignments. Tie band bootstrap {N_BOOT_BAND} (seed 42); BBC {N_BOOT_BBC} replicates "
         "(seed 0), 95% percentile interval.", "", "## Sanity", ""]
    for r in rs:
        L.append(f"- {r['study']}: fresh partitions distinct {r['fresh_partitions_distinct']}; "
                 f"max |moments - stored| values {r['max_abs_diff_vs_stored_values']:.1e}, "
                 f"constraints {r['max_abs_diff_vs_stored_constraints']:.1e}, fresh "
                 f"{r['fresh_max_abs_diff_vs_engine']:.1e}")
    L += ["", "## R2 tie band", "",
          "| study | today (pair, essays differing) | paired_median | independent | refold SD "
          "(same pairs) | refold SD (all distinct) | duplicates | near-identical pair SE "
          "(essays) | distinct pair SE median [q10, q90] |", "|---" * 9 + "|"]
    for r in rs:
        t, p = r["tie_band"], r["pairs"]
        L.append(f"| {r['study']} | {f(t['today']['value'])} ({t['today']['trials']}, "
                 f"{t['today']['essays_differing']}) | {f(t['paired_median'])} "
                 f"| {f(t['independent'])} | {f(t['refold_sd_median'])} "
                 f"| {f(t['refold_sd_all_distinct_median'])} | {len(p['duplicates'])} "
                 f"| {f(p['near_identical']['se'])} ({p['near_identical']['essays_differing']}) "
                 f"| {f(p['distinct_se_median'])} [{f(p['distinct_se_q10_q90'][0])}, "
                 f"{f(p['distinct_se_q10_q90'][1])}] |")
    r2 = ru["R2"]
    L += ["", f"paired_median >= refold SD in {len(r2['paired_median_ge_refold_sd'])} of "
          f"{r2['n_studies']} studies (rule: at least {r2['needed']}); decision: "
          f"`{r2['decision']}`", "",
          "| study | spearman(pair SE, essays differing) | single SE median | single refold SD "
          "median |", "|---|---|---|---|"]
    for r in rs:
        L.append(f"| {r['study']} | {f(r['pairs']['spearman_se_vs_ndiff'])} "
                 f"| {f(r['pairs']['single_se_median'])} "
                 f"| {f(r['tie_band']['single_refold_sd_median'])} |")
    L += ["", "### Tie band scenarios: today's against the new, when the top two are ...", "",
          "| study | scenario | trials | essays differing | today | paired_median | independent |",
          "|---|---|---|---|---|---|---|"]
    for r in rs:
        for k in ("duplicate", "near_identical", "actual_top_two"):
            if k not in r["tie_band_scenarios"]:
                continue
            v = r["tie_band_scenarios"][k]
            L.append(f"| {r['study']} | {k} | {v['trials']} | {v['essays_differing']} "
                     f"| {f(v['today'])} | {f(v['paired_median'])} | {f(v['independent'])} |")
    L += ["", f"## R1 BBC against fresh (selected config, band {BAND_FOR_BBC})", "",
          "| estimate | mean QWK: MAE | mean signed | coverage | width | worst QWK: MAE "
          "| mean signed | coverage | width |", "|---|---|---|---|---|---|---|---|---|"]
    for k, v in ru["bbc_table"].items():
        cov = {o: f"{v[o + '_coverage']}/{v['n']}" if o + "_coverage" in v else "-"
               for o in ("mean", "worst")}
        wid = {o: f(v[o + "_width"]) if o + "_width" in v else "-" for o in ("mean", "worst")}
        L.append(f"| {k} | {f(v['mean_mae'])} | {f(v['mean_signed'])} | {cov['mean']} "
                 f"| {wid['mean']} | {f(v['worst_mae'])} | {f(v['worst_signed'])} "
                 f"| {cov['worst']} | {wid['worst']} |")
    r1 = ru["R1"]
    L += ["", f"Lowest mean-QWK MAE {f(r1['best_mean_mae'])}; within 0.005 of it: "
          f"{', '.join(r1['candidates_within_0.005'])}; the lowest worst-prompt MAE among them: "
          f"`{r1['decision']}`. Issue targets: mean-QWK MAE < 0.02 "
          f"{'met' if r1['targets']['mean_mae_lt_0.02'] else 'MISSED'} "
          f"({f(r1['targets']['mean_mae'])}); coverage >= 80% "
          f"{'met' if r1['targets']['coverage_ge_80pct'] else 'MISSED'} "
          f"({r1['targets']['mean_coverage']}).", "",
          f"### Per study (band {BAND_FOR_BBC}; worst-prompt / mean QWK)", "",
          "| study | trial | band | in-sample | fresh | fresh worst, each assignment | scheme "
          "| raw | corrected | choices | top share |", "|---" * 11 + "|"]
    for r in rs:
        sel = r["selection"][BAND_FOR_BBC]
        for i, scheme in enumerate(SCHEMES):
            v = r["bbc"][f"{BAND_FOR_BBC}/{scheme}"]

            def est(e: dict) -> str:
                w, m = e["worst_prompt_qwk"], e["mean_qwk"]
                return (f"{f(w['point'])} [{f(w['lo'])}, {f(w['hi'])}] / {f(m['point'])} "
                        f"[{f(m['lo'])}, {f(m['hi'])}]")

            head = ([r["study"], str(sel["trial"]), f(sel["band"]),
                     f"{f(sel['in_sample'][0])} / {f(sel['in_sample'][1])}",
                     f"{f(sel['fresh'][0])} / {f(sel['fresh'][1])}",
                     ", ".join(f(x) for x in sel["fresh_single_assignments_worst"])]
                    if i == 0 else [""] * 6)
            L.append("| " + " | ".join([*head, scheme, est(v["raw"]), est(v["corrected"]),
                                        str(v["distinct_choices"]),
                                        f(v["top_choice_share"], 2)]) + " |")
    cols = (*ESTIMATORS, "mean_qwk")
    L += ["", "## R3 estimators: Spearman of in-sample against fresh, over a study's trials", "",
          "| study | " + " | ".join(f"{e} vs fresh min | {e} vs own fresh" for e in cols) + " |",
          "|---|" + "---|" * (2 * len(cols))]
    for r in rs:
        cells = []
        for e in cols:
            x = r["estimators"][e]
            cells += [f(x["spearman_vs_fresh_min"], 2), f(x["spearman_vs_fresh_same"], 2)]
        L.append(f"| {r['study']} | " + " | ".join(cells) + " |")
    L.append("| mean | " + " | ".join(
        f"{f(np.mean([r['estimators'][e]['spearman_vs_fresh_min'] for r in rs]), 2)} | "
        f"{f(np.mean([r['estimators'][e]['spearman_vs_fresh_same'] for r in rs]), 2)}"
        for e in cols) + " |")
    r3 = ru["R3"]
    L += ["", f"Highest mean primary correlation: `{r3['highest']}` "
          f"({f(r3['primary_mean_spearman'][r3['highest']], 2)}, `min` "
          f"{f(r3['primary_mean_spearman']['min'], 2)}); decision: `{r3['decision']}`.", "",
          "| study | mean abs(in-sample - own fresh): " + " | ".join(ESTIMATORS) + " |",
          "|---|" + "---|" * len(ESTIMATORS)]
    for r in rs:
        L.append(f"| {r['study']} | " + " | ".join(
            f(r["estimators"][e]["mean_abs_in_minus_fresh_same"]) for e in ESTIMATORS) + " |")
    L += ["", "## Lin's per-prompt variance against the within-prompt bootstrap (baseline config)",
          "", "| study | median ratio | q10 | q90 |", "|---|---|---|---|"]
    for r in rs:
        x = r["lin_vs_bootstrap_var_ratio"]
        L.append(f"| {r['study']} | {f(x['median'], 2)} | {f(x['q10'], 2)} | {f(x['q90'], 2)} |")
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", help="keeps data/<study>.npz, analysis/<study>.json and the "
                    "runs, so a re-run resumes (default: a temp dir)")
    ap.add_argument("--phase", choices=["data", "analyse", "all"], default="all")
    ap.add_argument("--studies", nargs="+", default=list(STUDIES),
                    help="<target>-s<seed> names; all of them are the registered set the rules "
                    "count against")
    ap.add_argument("--config", default=str(REPO / "examples" / "ellipse.yaml"),
                    help="base config (the ELLIPSE path comes from $MOQWK_ELLIPSE_CSV or "
                    "../shared/data/ellipse)")
    ap.add_argument("--budget", type=int, default=25)
    ap.add_argument("--fresh-seed", type=int, default=2001)
    ap.add_argument("--fresh-repeats", type=int, default=4)
    ap.add_argument("--nthread", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "honest_numbers.json"))
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moqwk-hn-"))
    os.environ.setdefault("MOQWK_CACHE_DIR", str(work / "cache"))
    if args.phase in ("data", "all"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for name in args.studies:
            make_data(name, work, args)
    if args.phase == "data":
        return 0
    rs, missing = [], []
    for name in args.studies:
        row = analysed(name, work)
        (missing.append(name) if row is None else rs.append(row))
    if not rs:
        print(f"no study has data in {work / 'data'}; run --phase data first", file=sys.stderr)
        return 1
    ru = rules(rs, len(args.studies))
    fresh = {}
    for r in rs:
        d = np.load(work / "data" / f"{r['study']}.npz")
        fresh[r["study"]] = {"seed": int(d["fresh_seed"]), "repeats": int(d["fresh"].shape[1])}
    if {(v["seed"], v["repeats"]) for v in fresh.values()} != {(args.fresh_seed,
                                                                args.fresh_repeats)}:
        print(f"warning: the data's fresh folds {fresh} differ from --fresh-seed/--repeats",
              file=sys.stderr)
    out = Path(args.out)
    artifacts.write_json(out, {
        "studies_registered": args.studies, "studies_analysed": [r["study"] for r in rs],
        "studies_missing": missing, "budget": args.budget, "fresh": fresh,
        "n_boot_band": N_BOOT_BAND, "n_boot_bbc": N_BOOT_BBC, "band_for_bbc": BAND_FOR_BBC,
        "rules": {k: ru[k] for k in ("R1", "R2", "R3")}, "bbc_table": ru["bbc_table"],
        "studies": {r["study"]: r for r in rs},
        "versions": artifacts.versions(), "cpu_count": os.cpu_count(),
        "loadavg": os.getloadavg()})
    md = markdown(rs, missing, ru, args)
    artifacts.write_text(out.with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does searching the whole pipeline hold up on unseen prompts and on per-prompt scales? (issue 19)

The pre-registered rules are in docs/research/whole-pipeline-design.md (committed before any run).
Corpora: ELLIPSE Overall (``overall``), ELLIPSE Cohesion (``cohesion``) and the per-prompt-scale
corpus built from ELLIPSE by :mod:`moqwk.data.scaled_corpus` (``scaled``, leave one prompt out).
Arms:

- ``baseline`` (A0): the baseline params with each mapping method, CV and fresh; deterministic.
- ``families`` (A1): the baseline params and default mapping, plus each new feature family,
  then all of them; fresh only; deterministic.
- ``today`` (A2): a NSGA-II search in today's default space (XGBoost params only), selected by
  ``moqwk select``'s rule, re-scored on fresh folds.
- ``new`` (A3): the same in the candidate new default space (XGBoost, ``mapping.method`` over
  the inductive and label-free methods, ``features.*``).

Fresh folds: prompt_holdout, ``--fresh-seed``, ``--fresh-repeats``; on ``scaled`` 4 folds of 2
prompts (its leave-one-prompt-out partition is the only one there is). Every unit keeps its
result in ``--work``, so a re-run resumes; ``--units``/``--seeds``/``--corpora`` cut it down.
``--no-features`` drops the ``features.*`` dimensions (for a moqwk without the family registry).

    python benchmarks/whole_pipeline.py --work /tmp/wp --nthread 1
    python benchmarks/whole_pipeline.py --work /tmp/wp-smoke --units new-scaled-7 --budget 4 \\
        --out /tmp/wp-smoke/whole_pipeline.json                     # a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moqwk._api.select_outputs import run_selection  # noqa: E402
from moqwk.base import artifacts  # noqa: E402
from moqwk.config import DEFAULT_SPACE, parse_config  # noqa: E402
from moqwk.core.mapping import METHODS  # noqa: E402
from moqwk.core.objectives import DEFAULT_OBJECTIVES, METRICS  # noqa: E402
from moqwk.data.scaled_corpus import (  # noqa: E402
    ELLIPSE_SPECS,
    ellipse_path,
    ellipse_scaled_frame,
    write_scaled_corpus,
)
from moqwk.errors import ConfigError  # noqa: E402
from moqwk.run.workspace import Workspace  # noqa: E402
from moqwk.stages.search_loop import SearchOptions, run_search  # noqa: E402
from moqwk.stages.selector import SelectOptions  # noqa: E402

CORPORA = ("overall", "cohesion", "scaled")
ARMS = ("today", "new")
NAMES = DEFAULT_OBJECTIVES.names
MAPPINGS = ("round", "stretch", "thresholds", "prompt_center", "prompt_standardize")
NEW_FAMILIES = ("readability", "connectives", "lexical")
TODAY_MAPPING = "stretch"
SCALED_FRESH_FOLDS = 4

#: The candidate new default space (design, arm A3): today's space plus the mapping and features.
MAPPING_DIMS: dict[str, dict[str, Any]] = {
    "mapping.method": {"type": "categorical", "choices": list(MAPPINGS)},
}
FEATURE_DIMS: dict[str, dict[str, Any]] = {
    "features.word.svd_components": {"type": "categorical", "choices": [32, 64, 128]},
    "features.char.enabled": {"type": "categorical", "choices": [True, False]},
    **{f"features.{f}.enabled": {"type": "categorical", "choices": [False, True]}
       for f in NEW_FAMILIES},
}


def new_space(features: bool) -> dict[str, dict[str, Any]]:
    """The A3 space; ``features.*`` dimensions only of registered families (the results record
    which), none with ``features=False``."""
    from moqwk.features.registry import FAMILIES

    dims = {k: v for k, v in FEATURE_DIMS.items() if k.split(".")[1] in FAMILIES}
    return {**DEFAULT_SPACE, **MAPPING_DIMS, **(dims if features else {})}


# --------------------------------------------------------------------------- configs


def _raw(corpus: str, work: Path, ellipse: Path) -> tuple[dict, Path]:
    """The corpus's config mapping and the directory its relative paths start from."""
    if corpus == "scaled":
        out = work / "scaled-corpus"
        if not (out / "config.yaml").exists():
            write_scaled_corpus(out, ellipse_scaled_frame(ellipse), ELLIPSE_SPECS)
        return yaml.safe_load((out / "config.yaml").read_text()), out
    raw = yaml.safe_load((REPO / "examples" / "ellipse.yaml").read_text())
    raw["data"]["path"] = str(ellipse)
    raw["data"]["score_column"] = corpus.capitalize()
    return raw, REPO / "examples"


def make_config(corpus: str, work: Path, args: argparse.Namespace, *, seed: int = 0,
                space: dict | None = None, features: dict | None = None,
                n_folds: int | None = None, pinned: bool = True):
    """The corpus's config for an arm. ``pinned`` (this benchmark): ``args.nthread`` threads
    per model and the lexical family off, as registered; without it (the small follow-up,
    ``whole_pipeline_small.py``) today's defaults of both."""
    raw, base = _raw(corpus, work, args.ellipse)
    if pinned:
        raw.setdefault("model", {})["nthread"] = args.nthread
    raw["mapping"] = {"method": TODAY_MAPPING}  # written out: today's default, as a user has it
    search = raw.setdefault("search", {})
    search.update(seed=seed, n_trials=args.budget, population_size=10)
    if space is not None:
        search["space"] = space
    # The base features as registered: the lexical family off. The default changed after the
    # first six searches (ADR 0005); the arms must not change with it mid-benchmark.
    pins = {"lexical": {"enabled": False}} if pinned else {}
    merged = {**pins, **(raw.get("features") or {})}
    for name, value in (features or {}).items():
        merged[name] = {**(merged.get(name) or {}), **value}
    raw["features"] = merged
    if n_folds is not None:
        raw["cv"]["n_folds"] = n_folds
    return parse_config(raw, base_dir=base, source=base / "config.yaml")


def _metrics(m) -> dict:
    return {name: spec.value(m) for name, spec in METRICS.items()}


def fresh(corpus: str, work: Path, params: dict, args: argparse.Namespace, *,
          features: dict | None = None, pinned: bool = True) -> dict:
    """``params`` re-scored on the fresh folds (no search used them)."""
    n_folds = SCALED_FRESH_FOLDS if corpus == "scaled" else None
    config = make_config(corpus, work, args, features=features, n_folds=n_folds, pinned=pinned)
    tag = "-".join(f"{k}" for k in sorted(features or {})) or "default"
    ws = Workspace.open(config, work / "fresh" / f"{corpus}-{tag}")
    engine = ws.engine("prompt_holdout", seed=args.fresh_seed, repeats=args.fresh_repeats)
    res = engine.run(params)
    return {**_metrics(res.metrics), "worst_prompt": res.metrics.worst_prompt,
            "fallback_share": res.mapping.get("fallback_share")}


# --------------------------------------------------------------------------- units


def baseline_unit(corpus: str, work: Path, args: argparse.Namespace) -> dict:
    """A0: the baseline params with each mapping, in CV and on fresh folds."""
    config = make_config(corpus, work, args)
    ws = Workspace.open(config, work / f"baseline-{corpus}")
    engine = ws.engine("prompt_holdout")
    rows = []
    for method in MAPPINGS:
        params = {**config.baseline_params, "mapping.method": method}
        t0 = time.perf_counter()
        res = engine.run(params)
        cv = _metrics(res.metrics)
        f = fresh(corpus, work, params, args)
        rows.append({"arm": "baseline", "corpus": corpus, "method": method,
                     "transductive": res.transductive, "cv": cv, "fresh": f,
                     "wall_s": time.perf_counter() - t0})
        print(f"baseline {corpus:<9} {method:<18} fresh mean {f['mean_qwk']:.3f} "
              f"worst {f['worst_prompt_qwk']:.3f}", flush=True)
    return {"rows": rows}


def families_unit(corpus: str, work: Path, args: argparse.Namespace) -> dict:
    """A1: the default features plus each new family, then all; fresh folds only."""
    variants: dict[str, dict] = {"default": {}}
    variants.update({f: {f: {"enabled": True}} for f in NEW_FAMILIES})
    variants["all"] = {f: {"enabled": True} for f in NEW_FAMILIES}
    rows: list[dict[str, object]] = []
    for name, features in variants.items():
        try:
            config = make_config(corpus, work, args, features=features)
        except ConfigError as exc:  # a moqwk without the family registry refuses features.<new>
            rows.append({"arm": "families", "corpus": corpus, "variant": name,
                         "unavailable": str(exc)})
            print(f"families {corpus:<9} {name:<12} unavailable: {exc}", flush=True)
            continue
        params = {**config.baseline_params, "mapping.method": TODAY_MAPPING}
        f = fresh(corpus, work, params, args, features=features)
        rows.append({"arm": "families", "corpus": corpus, "variant": name, "fresh": f})
        print(f"families {corpus:<9} {name:<12} fresh mean {f['mean_qwk']:.3f} "
              f"worst {f['worst_prompt_qwk']:.3f}", flush=True)
    return {"rows": rows}


def search_unit(arm: str, corpus: str, seed: int, work: Path,
                args: argparse.Namespace) -> dict:
    """A2/A3: search, select with ``moqwk select``'s rule, re-score the selection fresh."""
    space = None if arm == "today" else new_space(not args.no_features)
    config = make_config(corpus, work, args, seed=seed, space=space)
    run_dir = work / f"{arm}-{corpus}-{seed}"
    ws = Workspace.open(config, run_dir, level="study")
    t0 = time.perf_counter()
    run_search(ws, SearchOptions(n_trials=args.budget))
    out: dict = {"arm": arm, "corpus": corpus, "seed": seed,
                 "search_wall_s": time.perf_counter() - t0}
    trials = artifacts.read_json(run_dir / "artifacts" / "optuna_trials.json")
    done = [t for t in trials if t["state"] == "complete"]
    out["n_complete"] = len(done)
    out["trial_s"] = sum(t["duration_s"] or 0.0 for t in done)
    out["drawn"] = {name: sorted({str(t["params"].get(name)) for t in done})
                    for name in (space or {}) if name not in DEFAULT_SPACE}
    record, _ = run_selection(ws, SelectOptions(), commands=[])
    if record.params is None:  # run_selection raises instead when the gate chose nothing
        raise RuntimeError(f"{run_dir}: the selection record has no params")
    params = record.params
    out.update(selected_trial=record.trial_number, params=params,
               method=params.get("mapping.method", TODAY_MAPPING),
               transductive=record.transductive, cv=record.values,
               fresh=fresh(corpus, work, params, args))
    print(f"{arm:>5} {corpus:<9} seed {seed}: trial {out['selected_trial']} ({out['method']}) "
          f"fresh mean {out['fresh']['mean_qwk']:.3f} worst "
          f"{out['fresh']['worst_prompt_qwk']:.3f}", flush=True)
    return out


def _unit(work: Path, name: str, make, *, key: dict, rows: Path | None = None) -> dict:
    """A unit's result from ``rows`` (default ``work/rows``) when it was made with the same
    ``key``, else made now and kept there."""
    path = (rows or work / "rows") / f"{name}.json"
    if path.exists():
        row = artifacts.read_json(path)
        if row.get("key") == key:
            return row
    row = {"key": key, **make()}
    artifacts.write_json(path, row)
    return row


# --------------------------------------------------------------------------- the rules


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def _avg(rows: list[dict], key: str = "fresh") -> dict:
    return {k: _mean([r[key][k] for r in rows]) for k in NAMES}


def targets(corpus: str, m: dict, ref: dict | None) -> dict:
    """T1 (Overall), T2 (scaled) and T3 (every corpus) for one arm's mean fresh objectives
    ``m``, against B0's ``ref``, each with its margins."""
    out: dict = {}
    if corpus == "overall":
        out["T1"] = {"mean_margin": m["mean_qwk"] - 0.62,
                     "worst_margin": m["worst_prompt_qwk"] - 0.38,
                     "met": m["mean_qwk"] >= 0.62 and m["worst_prompt_qwk"] >= 0.38}
    if ref is not None:
        if corpus == "scaled":
            out["T2"] = {"worst_margin": m["worst_prompt_qwk"] - ref["worst_prompt_qwk"],
                         "met": m["worst_prompt_qwk"] >= ref["worst_prompt_qwk"]}
        out["T3"] = {"low_margin": m["low_tail_mae"] - ref["low_tail_mae"],
                     "high_margin": m["high_tail_mae"] - ref["high_tail_mae"],
                     "met": m["low_tail_mae"] <= ref["low_tail_mae"]
                     and m["high_tail_mae"] <= ref["high_tail_mae"]}
    return out


def evaluate(baseline: list[dict], families: list[dict], searches: list[dict]) -> dict:
    """The pre-registered rules (docs/research/whole-pipeline-design.md), applied to the rows."""
    out: dict = {"targets": {}, "new_minus_today": {}}
    ref = {(r["corpus"], r["method"]): r["fresh"] for r in baseline}
    for corpus in sorted({s["corpus"] for s in searches}):
        arms = {a: [s for s in searches if s["arm"] == a and s["corpus"] == corpus]
                for a in ARMS}
        if arms["today"] and arms["new"]:
            t, n = _avg(arms["today"]), _avg(arms["new"])
            out["new_minus_today"][corpus] = {k: n[k] - t[k] for k in NAMES}
        if not arms["new"]:
            continue
        new = _avg(arms["new"])
        tgt: dict = {"n_seeds": len(arms["new"]), "new": new,
                     **targets(corpus, new, ref.get((corpus, "round")))}
        out["targets"][corpus] = tgt
    out["default_mapping"] = default_mapping(baseline)
    out["families"] = family_rule(families, searches)
    return out


def default_mapping(baseline: list[dict]) -> dict:
    """The design's rule for the mapping used without a search."""
    corpora = sorted({r["corpus"] for r in baseline})
    by = {(r["corpus"], r["method"]): r["fresh"] for r in baseline}
    if "scaled" not in corpora or not all((c, "round") in by for c in corpora):
        return {"decided": False, "why": "needs A0 on every corpus, including scaled"}
    ok = []
    for m in MAPPINGS:
        if not all((c, m) in by for c in corpora):
            continue
        holds = by["scaled", m]["worst_prompt_qwk"] >= by["scaled", "round"]["worst_prompt_qwk"]
        tails = all(by[c, m][t] <= by[c, "round"][t] for c in corpora
                    for t in ("low_tail_mae", "high_tail_mae"))
        if m == "round" or (holds and tails):
            ok.append(m)
    means = {m: _mean([by[c, m]["mean_qwk"] for c in corpora]) for m in ok}
    best = max(means, key=lambda m: means[m])
    inductive = [m for m in ok if not METHODS[m].transductive]
    best_i = max(inductive, key=lambda m: means[m])
    chosen = best_i if means[best] - means[best_i] <= 0.005 else best
    return {"decided": True, "candidates": ok, "mean_qwk": means, "default": chosen}


def family_rule(families: list[dict], searches: list[dict]) -> dict:
    """Which new families join the default features, stay searched, or leave the space."""
    rows = [r for r in families if "fresh" in r]
    corpora = sorted({r["corpus"] for r in rows})
    by = {(r["corpus"], r["variant"]): r["fresh"] for r in rows}
    new = [s for s in searches if s["arm"] == "new"]
    out: dict = {}
    for fam in NEW_FAMILIES:
        have = [c for c in corpora if (c, fam) in by and (c, "default") in by]
        picked = sum(bool(s["params"].get(f"features.{fam}.enabled")) for s in new)
        if not have:
            out[fam] = {"decided": False, "selected_in": picked}
            continue
        d = {k: _mean([by[c, fam][k] - by[c, "default"][k] for c in have]) for k in NAMES}
        worst_drop = min(by[c, fam]["worst_prompt_qwk"] - by[c, "default"]["worst_prompt_qwk"]
                         for c in have)
        joins = (len(have) == len(CORPORA) and d["mean_qwk"] >= 0.005 and worst_drop >= -0.01
                 and d["low_tail_mae"] <= 0 and d["high_tail_mae"] <= 0)
        verdict = "default" if joins else ("searched" if picked >= 3 else "opt-in only")
        out[fam] = {"decided": len(have) == len(CORPORA), "minus_default": d,
                    "worst_drop": worst_drop, "selected_in": picked, "verdict": verdict}
    return out


# --------------------------------------------------------------------------- report


def markdown(baseline: list[dict], families: list[dict], searches: list[dict], ev: dict,
             args: argparse.Namespace) -> str:
    f3 = "{:.3f}".format

    def row(cells: list) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    head = ["fresh mean QWK", "fresh worst QWK", "fresh low MAE", "fresh high MAE"]

    def cells(m: dict) -> list[str]:
        return [f3(m["mean_qwk"]), f3(m["worst_prompt_qwk"]), f3(m["low_tail_mae"]),
                f3(m["high_tail_mae"])]

    lines = [f"Fresh folds: prompt_holdout seed {args.fresh_seed}, {args.fresh_repeats} repeats "
             f"(scaled: {SCALED_FRESH_FOLDS} folds). Budget {args.budget} trials; features.* "
             f"dimensions {'dropped (--no-features)' if args.no_features else 'searched'}.", ""]
    if baseline:
        lines += ["A0: baseline params, each mapping.", "",
                  row(["corpus", "method", *head, "CV mean QWK", "CV worst QWK"]),
                  "|---|---|---|---|---|---|---|---|"]
        for r in baseline:
            lines.append(row([r["corpus"], r["method"], *cells(r["fresh"]),
                              f3(r["cv"]["mean_qwk"]), f3(r["cv"]["worst_prompt_qwk"])]))
        lines.append("")
    if families:
        lines += ["A1: baseline params, default mapping, plus a family.", "",
                  row(["corpus", "variant", *head]), "|---|---|---|---|---|---|"]
        for r in families:
            lines.append(row([r["corpus"], r["variant"], *(cells(r["fresh"]) if "fresh" in r
                                                          else ["unavailable"] * 4)]))
        lines.append("")
    if searches:
        lines += ["A2 (today's space) and A3 (new space): selected by `moqwk select`.", "",
                  row(["arm", "corpus", "seed", "trial", "method", *head, "CV mean QWK",
                       "CV worst QWK"]), "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in searches:
            cv = s["cv"]
            lines.append(row([s["arm"], s["corpus"], s["seed"], s["selected_trial"],
                              s["method"], *cells(s["fresh"]),
                              f3(cv.get("mean_qwk", float("nan"))),
                              f3(cv.get("worst_prompt_qwk", float("nan")))]))
        lines.append("")
    for corpus, t in ev["targets"].items():
        for name in ("T1", "T2", "T3"):
            if name in t:
                margins = ", ".join(f"{k} {v:+.3f}" for k, v in t[name].items() if k != "met")
                lines.append(f"- {name} on {corpus}: {'met' if t[name]['met'] else 'NOT met'} "
                             f"({margins})")
    dm = ev["default_mapping"]
    if dm.get("decided"):
        lines.append(f"- default mapping by the rule: `{dm['default']}` (candidates "
                     + ", ".join(f"{m} {dm['mean_qwk'][m]:.3f}" for m in dm["candidates"]) + ")")
    for fam, v in ev["families"].items():
        lines.append(f"- family `{fam}`: {v.get('verdict', 'not decided')} "
                     f"(selected in {v['selected_in']} of the new-space units)")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ellipse", type=Path, default=ellipse_path())
    ap.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA))
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--units", nargs="+", metavar="ARM-CORPUS-SEED",
                    help="run (or read) just these searches, e.g. new-scaled-7, and skip the "
                         "deterministic arms unless --with-fixed")
    ap.add_argument("--with-fixed", action="store_true", help="with --units: also run A0, A1")
    ap.add_argument("--fixed-only", action="store_true",
                    help="run (or read) only A0 and A1 for --corpora, no search")
    ap.add_argument("--budget", type=int, default=25)
    ap.add_argument("--fresh-seed", type=int, default=9191)
    ap.add_argument("--fresh-repeats", type=int, default=2)
    ap.add_argument("--no-features", action="store_true",
                    help="leave the features.* dimensions out of the new space")
    ap.add_argument("--work", help="keep the runs here (default: a temp dir)")
    ap.add_argument("--nthread", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "whole_pipeline.json"))
    args = ap.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moqwk-wp-"))
    os.environ.setdefault("MOQWK_CACHE_DIR", str(work / "cache"))
    key = {"budget": args.budget, "fresh_seed": args.fresh_seed,
           "fresh_repeats": args.fresh_repeats, "no_features": args.no_features}
    plan = [(a, c, s) for s in args.seeds for c in args.corpora for a in ARMS]
    fixed = not args.units or args.with_fixed
    if args.units:
        plan = [(a, c, int(s)) for a, c, s in (u.split("-") for u in args.units)]
    elif args.fixed_only:
        plan = []
    corpora = sorted({c for _, c, _ in plan}
                     | (set(args.corpora) if not args.units or args.with_fixed else set()))
    if args.fixed_only:
        corpora = list(args.corpora)
    baseline: list[dict] = []
    families: list[dict] = []
    if fixed:
        for corpus in corpora:
            baseline += _unit(work, f"baseline-{corpus}",
                              lambda c=corpus: baseline_unit(c, work, args),
                              key={"unit": "baseline", **key})["rows"]
            families += _unit(work, f"families-{corpus}",
                              lambda c=corpus: families_unit(c, work, args),
                              key={"unit": "families", **key})["rows"]
    searches = [_unit(work, f"{a}-{c}-{s}",
                      lambda a=a, c=c, s=s: search_unit(a, c, s, work, args),
                      key={"unit": "search", **key}) for a, c, s in plan]
    ev = evaluate(baseline, families, searches)
    artifacts.write_json(Path(args.out), {
        "units": [f"{a}-{c}-{s}" for a, c, s in plan], "settings": key,
        "new_space": new_space(not args.no_features), "baseline": baseline,
        "families": families, "searches": searches, "evaluation": ev,
        "versions": artifacts.versions(), "cpu_count": os.cpu_count()})
    md = markdown(baseline, families, searches, ev, args)
    artifacts.write_text(Path(args.out).with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

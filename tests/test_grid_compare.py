"""``moqwk grid``, ``select`` on a grid run, ``search --baseline-from`` and ``moqwk compare``.

One chain on the demo corpus, as a user runs it: a 2x2 grid (whose baseline is not a grid
point), ``select --run-dir`` alone on it, a 3-trial search whose baseline is the grid's choice,
``select`` on that, then ``compare search grid`` on fresh folds. Everything compare reports is
checked against numbers obtained another way: its fresh folds against both runs' splits.json,
its fresh metrics against ``moqwk cv`` with the fresh seed, its verdict and table against the
numbers in compare.json.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from moqwk.cli import main

pytestmark = pytest.mark.slow

GRID = {"max_depth": [2, 4], "learning_rate": [0.1, 0.2]}  # the baseline has max_depth 3
CV_SEED = 42  # the demo config's cv.seed
FRESH_SEED = CV_SEED + 1000  # compare's default


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def run_quiet(*argv: object) -> tuple[int, str]:
    """main() with stdout captured as a log would get it (not a terminal)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue()


def files(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != "study.db"}


def partitions(splits_json: Path, key: str = "prompt_holdout") -> set[frozenset]:
    """Each recorded repeat's folds as a set of frozensets of essay ids."""
    rec = read_json(splits_json)["schemes"][key]
    return {frozenset(frozenset(fold) for fold in rep) for rep in rec["repeats"]}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, write_search_config) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("grid-compare")
    # No row or column subsampling: XGBoost's seed (cv.seed) then changes nothing, so compare's
    # fresh numbers can be checked with a `moqwk cv` whose cv.seed is the fresh seed.
    # 256 bins (the default before ADR 0006): under them the search's selection differs from
    # the grid's, so compare has a difference whose SE it must estimate (under 32 it came out 0)
    cfg = write_search_config(root / "config.yaml", search={"grid": GRID},
                              baseline={"subsample": 1.0, "colsample_bytree": 1.0},
                              model={"max_bin": 256})
    grid, search, out = root / "grid", root / "search", root / "compare"
    assert main(["grid", "--config", str(cfg), "--run-dir", str(grid)]) == 0
    assert main(["select", "--run-dir", str(grid), "--gate-margin", "0.5"]) == 0
    assert main(["search", "--config", str(cfg), "--run-dir", str(search), "--n-trials", "3",
                 "--baseline-from", str(grid)]) == 0
    assert main(["select", "--run-dir", str(search), "--gate-margin", "0.5",
                 "--tie-tolerance", "0"]) == 0
    rc, printed = run_quiet("compare", search, grid, "--out", out, "--fresh-repeats", "1")
    assert rc == 0
    return SimpleNamespace(root=root, config=cfg, grid=grid, search=search, out=out,
                           printed=printed, compare=read_json(out / "compare.json"))


# --------------------------------------------------------------------------- grid


def test_grid_runs_every_point_and_the_baseline_once(chain):
    from moqwk.config import load_config

    trials = read_json(chain.grid / "artifacts/optuna_trials.json")
    baseline = load_config(chain.config).baseline_trial_params  # with its mapping: round
    assert [t["state"] for t in trials] == ["complete"] * 5
    assert [t["role"] for t in trials] == ["baseline"] + ["sampled"] * 4
    assert trials[0]["params"] == baseline
    points = [(t["params"]["max_depth"], t["params"]["learning_rate"]) for t in trials[1:]]
    assert sorted(points) == sorted(itertools.product(*GRID.values()))  # each point once
    for t in trials[1:]:  # everything off the grid stays at the baseline's value
        assert {k: v for k, v in t["params"].items() if k not in GRID} == \
            {k: v for k, v in baseline.items() if k not in GRID}
    record = read_json(chain.grid / "run.json")
    assert (record["kind"], record["sampler"], record["n_trials"]) == ("grid", "grid", 5)


def test_grid_run_again_changes_nothing(chain, tmp_path):
    """The run's own "Reproduce" command on a finished grid: no new trial, same files."""
    copy = tmp_path / "grid"
    shutil.copytree(chain.grid, copy)
    before = files(copy)
    study_before = read_json(copy / "artifacts/optuna_study.json")
    rc, _ = run_quiet("grid", "--run-dir", copy)
    assert rc == 0
    after = files(copy)
    assert read_json(copy / "artifacts/optuna_trials.json") == \
        read_json(chain.grid / "artifacts/optuna_trials.json")
    rewritten = {"progress.json", "artifacts/optuna_study.json"}
    assert {k: v for k, v in after.items() if k not in rewritten} == \
        {k: v for k, v in before.items() if k not in rewritten}
    study_after = read_json(copy / "artifacts/optuna_study.json")
    assert study_after.pop("storage").endswith(f"{copy}/study.db")  # the copy's own study.db
    study_before.pop("storage")
    assert study_after == study_before


def test_select_works_on_a_grid_run_from_its_run_dir_alone(chain):
    sel = read_json(chain.grid / "artifacts/selected_params.json")
    trials = {t["number"]: t for t in read_json(chain.grid / "artifacts/optuna_trials.json")}
    assert sel["trial_number"] in trials and trials[sel["trial_number"]]["feasible"]
    assert sel["params"] == trials[sel["trial_number"]]["params"]
    assert sel["baseline"]["trial_number"] == 0
    assert any(c.startswith(f"moqwk grid --run-dir {chain.grid}") for c in sel["reproduce"])
    summary = (chain.grid / "reports/optuna_summary.md").read_text(encoding="utf-8")
    assert f"moqwk grid --run-dir {chain.grid}" in summary


# --------------------------------------------------------------------------- --baseline-from


def test_baseline_from_makes_the_grids_choice_trial_zero(chain):
    chosen = read_json(chain.grid / "artifacts/selected_params.json")["params"]
    trials = read_json(chain.search / "artifacts/optuna_trials.json")
    assert trials[0]["role"] == "baseline" and trials[0]["params"] == chosen
    record = read_json(chain.search / "run.json")
    assert record["baseline_params"] == chosen
    assert "selected_params.json" in record["baseline_source"]
    study = read_json(chain.search / "artifacts/optuna_study.json")
    assert study["baseline"]["params"] == chosen
    # the guardrails are measured against that baseline: trial 0's tails plus the tolerance
    g = study["guardrails"]
    assert g["baseline_trial"] == 0
    assert g["low_tail_limit"] == pytest.approx(trials[0]["values"]["low_tail_mae"]
                                                + g["tolerance"])


def test_baseline_from_keeps_the_chosen_pipelines_mapping_and_features(chain, tmp_path):
    """Trial 0 is the whole pipeline that was chosen, not its XGBoost params with this config's
    baseline mapping and features: the same numbers as ``moqwk cv --params`` of it."""
    sel = read_json(chain.grid / "artifacts/selected_params.json")
    pipeline = {k: v for k, v in sel["params"].items() if not k.startswith("mapping.")}
    pipeline.update({"mapping.method": "thresholds", "features.word.svd_components": 16})
    picked = tmp_path / "picked.json"
    picked.write_text(json.dumps({**sel, "params": pipeline}), encoding="utf-8")
    run = tmp_path / "search"
    assert main(["search", "--config", str(chain.config), "--run-dir", str(run),
                 "--n-trials", "1", "--baseline-from", str(picked)]) == 0
    (trial0,) = read_json(run / "artifacts/optuna_trials.json")
    assert trial0["role"] == "baseline"
    assert trial0["params"]["mapping.method"] == "thresholds"
    assert trial0["params"]["features.word.svd_components"] == 16
    params = tmp_path / "params.json"
    params.write_text(json.dumps(pipeline), encoding="utf-8")
    assert main(["cv", "--config", str(chain.config), "--run-dir", str(tmp_path / "cv"),
                 "--params", str(params)]) == 0
    m = read_json(tmp_path / "cv/artifacts/cv_metrics.json")
    for name in ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae"):
        assert trial0["values"][name] == pytest.approx(m[name], abs=1e-12), name


def test_baseline_from_a_run_without_a_selection_exits_7(chain, tmp_path, moqwk,
                                                         assert_one_error_line):
    rc, _out, err = moqwk("search", "--config", chain.config, "--run-dir", tmp_path / "s",
                          "--baseline-from", tmp_path / "nothing-here")
    assert rc == 7
    assert_one_error_line(err, "--baseline-from", "moqwk select")
    assert not (tmp_path / "s" / "study.db").exists()


# --------------------------------------------------------------------------- compare


def test_compare_rescored_on_folds_no_search_used(chain):
    c = chain.compare
    assert c["fresh_folds"] == {"scheme": "prompt_holdout", "seed": FRESH_SEED, "repeats": 1}
    fresh = partitions(chain.out / "splits.json", f"prompt_holdout@seed={FRESH_SEED},repeats=1")
    for run in (chain.grid, chain.search):
        assert not fresh & partitions(run / "splits.json"), run.name


def test_compare_fresh_numbers_are_a_cv_run_with_the_fresh_seed(chain, tmp_path):
    """``moqwk cv`` with cv.seed = the fresh seed and the grid's choice gives the same metrics."""
    raw = yaml.safe_load(chain.config.read_text())
    raw["cv"]["seed"] = FRESH_SEED
    cfg = tmp_path / "fresh.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["cv", "--config", str(cfg), "--run-dir", str(tmp_path / "cv"),
                 "--params", str(chain.grid / "artifacts/selected_params.json")]) == 0
    m = read_json(tmp_path / "cv/artifacts/cv_metrics.json")
    (grid_row,) = [r for r in chain.compare["runs"] if r["run_dir"] == str(chain.grid)]
    for name in ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae", "pooled_qwk"):
        assert grid_row["fresh"][name] == pytest.approx(m[name], abs=1e-12), name
    # and the in-sample numbers are the grid's own selection, not the fresh ones
    sel = read_json(chain.grid / "artifacts/selected_params.json")
    assert grid_row["in_sample"]["worst_prompt_qwk"] == sel["values"]["worst_prompt_qwk"]
    assert grid_row["trial_number"] == sel["trial_number"]


def test_compare_verdict_recomputed_from_its_numbers(chain):
    c = chain.compare
    first, second = c["runs"]
    assert (first["run_dir"], second["run_dir"]) == (str(chain.search), str(chain.grid))
    a, b = first["fresh"], second["fresh"]
    v = c["verdict"]
    maximise = {"worst_prompt_qwk": True, "mean_qwk": True, "low_tail_mae": False,
                "high_tail_mae": False}
    ok = {}
    for name, check in v["checks"].items():  # a tie (within the paired SE) is not worse
        d = a[name] - b[name]
        assert check["delta"] == pytest.approx(d, abs=1e-12), name
        assert check["se"] >= 0
        assert check["tie"] == (abs(d) <= check["se"]), name
        not_worse = d >= 0 if maximise[name] else d <= 0
        assert check["strictly_ok"] == not_worse, name
        ok[name] = not_worse or check["tie"]
        assert check["ok"] == ok[name], name
    qwks = ok["worst_prompt_qwk"] and ok["mean_qwk"]
    tails = ok["low_tail_mae"] and ok["high_tail_mae"]
    assert (v["first"], v["second"]) == (str(chain.search), str(chain.grid))
    assert v["qwk_matched_or_improved"] == qwks and v["tails_not_worse"] == tails
    # the joint rule: losses in SE units (worse positive) average at most 0.5
    z = []
    for name, check in v["checks"].items():
        loss = -check["delta"] if maximise[name] else check["delta"]
        z.append(0.0 if loss == 0 else loss / check["se"])
    assert v["joint"]["mean_standardised_loss"] == pytest.approx(float(np.mean(z)))
    assert v["joint"]["ok"] == (np.mean(z) <= 0.5)
    assert v["met"] == (qwks and tails and v["joint"]["ok"])
    # the SEs are real: a worst-prompt QWK difference on the 10-prompt demo is not known exactly
    assert v["checks"]["worst_prompt_qwk"]["se"] > 0
    for r in c["runs"]:
        for name in ("worst_prompt_qwk", "mean_qwk"):
            assert r["optimism"][name] == pytest.approx(r["in_sample"][name] - r["fresh"][name])


def test_compare_table_and_verdict_line_show_those_numbers(chain):
    lines = chain.printed.splitlines()
    for r in chain.compare["runs"]:
        row = next(ln for ln in lines if ln.startswith(f"{r['run_dir']} "))
        cells = [c.strip() for c in re.split(r"\s{2,}", row.strip())]
        i, f = r["in_sample"], r["fresh"]
        assert cells == [r["run_dir"], f"{r['sampler']} #{r['trial_number']}",
                         f"{i['worst_prompt_qwk']:.3f}/{f['worst_prompt_qwk']:.3f}",
                         f"{i['mean_qwk']:.3f}/{f['mean_qwk']:.3f}",
                         f"{f['low_tail_mae']:.3f}/{f['high_tail_mae']:.3f}",
                         "pass" if r["gate_passed"] else "fail"]
    assert [r["sampler"] for r in chain.compare["runs"]] == ["nsga2", "grid"]
    met = "MET" if chain.compare["verdict"]["met"] else "NOT met"
    verdict = next(ln for ln in lines if ln.startswith("Verdict on fresh folds:"))
    assert verdict.startswith(f"Verdict on fresh folds: {chain.search} vs {chain.grid}: {met}")
    ties = [c for c in chain.compare["verdict"]["checks"].values() if c["tie"]]
    assert ("within noise (a tie) on" in verdict) == bool(ties)
    md = (chain.out / "compare.md").read_text(encoding="utf-8")
    assert f"**{'met' if chain.compare['verdict']['met'] else 'not met'}**" in md


def test_compare_refuses_the_searches_own_seed(chain, tmp_path, moqwk, assert_one_error_line):
    rc, _out, err = moqwk("compare", chain.search, chain.grid, "--out", tmp_path / "c",
                          "--fresh-seed", CV_SEED)
    assert rc == 2
    assert_one_error_line(err, f"--fresh-seed {CV_SEED}", "cv.seed")
    assert not (tmp_path / "c").exists()


def test_compare_redraws_a_fresh_repeat_that_would_be_the_searches_folds(chain, tmp_path,
                                                                         moqwk):
    """The demo corpus has 10 prompts: some other seeds give cv.seed's very prompt_holdout
    folds. Such "fresh" folds would report in-sample numbers as fresh, so compare redraws that
    repeat: its fresh folds differ from every run's recorded folds."""
    from moqwk.core.splits import prompt_holdout
    from moqwk.data.demo_corpus import make_demo_corpus

    df = make_demo_corpus(0)
    codes = df["prompt"].astype("category").cat.codes.to_numpy()
    searched = partitions(chain.grid / "splits.json")
    ids = np.asarray(df["essay_id"])

    def same_folds(seed: int) -> bool:
        a = prompt_holdout(ids, codes, n_folds=5, repeats=1, seed=seed).assignment(0)
        return frozenset(frozenset(ids[a == k].tolist()) for k in range(5)) in searched

    seed = next(s for s in range(100) if s != CV_SEED and same_folds(s))
    rc, _out, err = moqwk("compare", chain.search, chain.grid, "--out", tmp_path / "c",
                          "--fresh-seed", seed, "--fresh-repeats", 2)
    assert rc == 0, err
    fresh = partitions(tmp_path / "c" / "splits.json", f"prompt_holdout@seed={seed},repeats=2")
    assert len(fresh) == 2  # two distinct repeats
    for run in (chain.search, chain.grid):
        assert not fresh & partitions(run / "splits.json"), run.name


# --------------------------------------------------------------------------- --config that differs


def other_config(chain, tmp_path: Path) -> Path:
    raw = yaml.safe_load(chain.config.read_text())
    raw["cv"]["min_prompt_n"] = 15
    path = tmp_path / "min15.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_select_with_a_config_that_differs_is_refused_and_writes_nothing(
        chain, tmp_path, moqwk, assert_one_error_line):
    run = tmp_path / "grid"
    shutil.copytree(chain.grid, run)
    before = files(run)
    rc, _out, err = moqwk("select", "--run-dir", run, "--config", other_config(chain, tmp_path))
    assert rc == 2
    assert_one_error_line(err, "--config differs", "cv.min_prompt_n", "drop --config")
    assert files(run) == before


def test_compare_with_a_config_that_differs_is_refused_and_writes_nothing(
        chain, tmp_path, moqwk, assert_one_error_line):
    rc, _out, err = moqwk("compare", chain.search, chain.grid, "--out", tmp_path / "c",
                          "--config", other_config(chain, tmp_path))
    assert rc == 2
    assert_one_error_line(err, "--config differs", "cv.min_prompt_n")
    assert not (tmp_path / "c").exists()


def test_grid_with_a_bad_search_field_exits_2(tmp_path, moqwk, assert_one_error_line):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("data: {demo: true}\nsearch: {grid: {max_depth: 3}}\n")
    rc, out, err = moqwk("grid", "--config", cfg, "--run-dir", tmp_path / "run")
    assert rc == 2 and out == ""
    assert_one_error_line(err, "search.grid.max_depth")
    assert not (tmp_path / "run").exists()

"""``cv.holdout``: essays reserved before any fold, unseen by search and selection, scored once.

On the demo corpus (720 essays, 10 prompts): the draw (share per prompt, stratified, seeded),
its record in ``splits.json`` (disjoint from every fold), the folds that score it (the
development folds' training essays, nothing else), the label-change test (holdout labels
change the holdout's numbers and nothing else), select's ``holdout`` block, config errors and
that a config without the field behaves as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from moqwk.config import load_config, parse_config
from moqwk.core.splits import holdout_scoring, holdout_split, prompt_holdout, score_strata

SPACE = {"n_estimators": {"type": "int", "low": 30, "high": 90, "step": 30},
         "max_depth": {"type": "int", "low": 2, "high": 4}}


def write_config(path: Path, demo_config_yaml: str, *, cv: dict | None = None,
                 data: dict | None = None, search: dict | None = None) -> Path:
    raw = yaml.safe_load(demo_config_yaml)
    raw["cv"].update(cv or {})
    if data is not None:
        raw["data"] = data
    raw["search"] = {"population_size": 4, "seed": 3, "n_jobs": 1, "racing": False,
                     "n_trials": 4, "space": SPACE, **(search or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the draw (pure)


def demo_arrays(demo_frame):
    prompts = demo_frame["prompt"].to_numpy()
    codes = np.unique(prompts, return_inverse=True)[1]
    y_norm = (demo_frame["score"].to_numpy(float) - 1.0) / 4.0
    return codes, score_strata(y_norm)


def test_essay_holdout_takes_the_share_of_every_prompt_stratified_and_seeded(demo_frame):
    codes, strata = demo_arrays(demo_frame)
    mask = holdout_split(codes, strata, share=0.2, unit="essays", seed=5, n_folds=5)
    for p in np.unique(codes):
        n = int((codes == p).sum())
        assert mask[codes == p].sum() == int(np.floor(0.2 * n + 0.5))
        assert (~mask[codes == p]).any()  # every prompt stays in the folds
    # stratified: each stratum's share of the holdout is within one essay a prompt of its
    # share of the corpus
    for s in np.unique(strata):
        want = 0.2 * (strata == s).sum()
        assert abs(mask[strata == s].sum() - want) <= len(np.unique(codes))
    again = holdout_split(codes, strata, share=0.2, unit="essays", seed=5, n_folds=5)
    other = holdout_split(codes, strata, share=0.2, unit="essays", seed=6, n_folds=5)
    assert (again == mask).all()
    assert (other != mask).any()


def test_prompt_holdout_reserves_whole_prompts_and_leaves_enough_for_the_folds(demo_frame):
    codes, strata = demo_arrays(demo_frame)
    mask = holdout_split(codes, strata, share=0.2, unit="prompts", seed=5, n_folds=5)
    held = np.unique(codes[mask])
    assert len(held) == 2
    assert set(np.unique(codes[~mask])).isdisjoint(held)
    with pytest.raises(ValueError, match="fewer than the 6 folds"):
        holdout_split(codes, strata, share=0.5, unit="prompts", seed=5, n_folds=6)


@pytest.mark.parametrize("unit", ["essays", "prompts"])
def test_holdout_is_scored_by_models_that_never_train_on_it(demo_frame, unit):
    codes, strata = demo_arrays(demo_frame)
    ids = demo_frame["essay_id"].to_numpy().astype(str)
    mask = holdout_split(codes, strata, share=0.2, unit=unit, seed=1, n_folds=5)
    dev = prompt_holdout(ids[~mask], codes[~mask], n_folds=5, repeats=2, seed=42)
    folds = holdout_scoring(dev, ids, codes, mask, seed=1)
    dev_folds = {(r, k): (set(dev.ids[i] for i in tr), set(dev.ids[i] for i in va))
                 for r, k, tr, va in dev.iter_folds()}
    scored = {r: set() for r in range(2)}
    for r, k, tr, va in folds.iter_folds():
        train_ids, val_ids = set(ids[tr]), set(ids[va])
        assert train_ids == dev_folds[r, k][0]  # exactly the development fold's training
        assert mask[va].all() and not mask[tr].any()
        # the scored prompts are not among the prompts the model trained on
        assert set(codes[va]).isdisjoint(codes[tr])
        if unit == "essays":  # the fold that held the prompt out scores its holdout essays
            assert set(codes[va]) <= {codes[list(ids).index(i)] for i in dev_folds[r, k][1]}
        scored[r] |= val_ids
    for r in range(2):
        assert scored[r] == set(ids[mask])  # every holdout essay scored once per repeat


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(("cv", "field", "words"), [
    ({"holdout": 0.7}, "cv.holdout", "<= 0.5"),
    ({"holdout": 0}, "cv.holdout", "> 0"),
    ({"holdout": "a fifth"}, "cv.holdout", "expected a number"),
    ({"holdout": 0.2, "holdout_unit": "texts"}, "cv.holdout_unit", "essays, prompts"),
    ({"holdout_unit": "prompts"}, "cv.holdout_unit", "without cv.holdout"),
    ({"holdout_seed": 3}, "cv.holdout_seed", "without cv.holdout"),
    ({"holdout": 0.5, "holdout_unit": "prompts", "n_folds": 6}, "cv.holdout", "fewer than"),
])
def test_a_bad_holdout_is_one_error_line_naming_the_field(tmp_path, demo_config_yaml, moqwk,
                                                          assert_one_error_line, cv, field,
                                                          words):
    cfg = write_config(tmp_path / "c.yaml", demo_config_yaml, cv=cv)
    code, _, err = moqwk("cv", "--config", cfg, "--run-dir", tmp_path / "run")
    assert code == 2
    assert_one_error_line(err, field, words)
    assert not (tmp_path / "run").exists()  # nothing left behind


def test_without_the_field_the_config_hashes_as_before(tmp_path, demo_config_yaml):
    before = load_config(write_config(tmp_path / "a.yaml", demo_config_yaml))
    raw = yaml.safe_load(demo_config_yaml)
    raw["cv"]["holdout"] = None
    same = parse_config(raw, base_dir=tmp_path)
    assert before.cv.holdout is None
    assert same.scoring_hash() == parse_config(yaml.safe_load(demo_config_yaml),
                                               base_dir=tmp_path).scoring_hash()
    raw["cv"]["holdout"] = 0.2
    assert parse_config(raw, base_dir=tmp_path).scoring_hash() != same.scoring_hash()


# --------------------------------------------------------------------------- splits.json


def test_splits_json_records_the_holdout_disjoint_from_every_fold(tmp_path, demo_config_yaml,
                                                                   moqwk):
    cfg = write_config(tmp_path / "c.yaml", demo_config_yaml, cv={"holdout": 0.2})
    for name in ("a", "b"):
        code, _, err = moqwk("cv", "--config", cfg, "--run-dir", tmp_path / name, "--quiet")
        assert code == 0, err
    rec = read_json(tmp_path / "a" / "splits.json")
    held = set(rec["holdout"]["ids"])
    assert rec["holdout"]["n_essays"] == len(held) == 145
    assert rec["holdout"]["unit"] == "essays" and rec["holdout"]["seed"] == 42
    folds = rec["schemes"]["prompt_holdout"]["repeats"]
    in_folds = {i for rep in folds for fold in rep for i in fold}
    assert held.isdisjoint(in_folds)
    assert len(held) + len(in_folds) == 720
    # the CV's residuals are of development essays only
    oof = (tmp_path / "a" / "artifacts" / "residuals_cv_val_oof.csv").read_text().splitlines()
    assert len(oof) - 1 == 720 - 145
    assert read_json(tmp_path / "b" / "splits.json") == rec  # deterministic


def test_holdout_off_records_no_holdout(tmp_path, demo_config_yaml, moqwk):
    cfg = write_config(tmp_path / "c.yaml", demo_config_yaml)
    code, _, err = moqwk("cv", "--config", cfg, "--run-dir", tmp_path / "run", "--quiet")
    assert code == 0, err
    rec = read_json(tmp_path / "run" / "splits.json")
    assert "holdout" not in rec
    oof = (tmp_path / "run" / "artifacts" / "residuals_cv_val_oof.csv").read_text().splitlines()
    assert len(oof) - 1 == 720


def test_a_run_never_changes_its_holdout(tmp_path, demo_config_yaml, moqwk,
                                         assert_one_error_line):
    cfg = write_config(tmp_path / "c.yaml", demo_config_yaml, cv={"holdout": 0.2})
    assert moqwk("cv", "--config", cfg, "--run-dir", tmp_path / "run", "--quiet")[0] == 0
    rec = read_json(tmp_path / "run" / "splits.json")
    rec["holdout"]["sha256"] = "0" * 64
    (tmp_path / "run" / "splits.json").write_text(json.dumps(rec), encoding="utf-8")
    code, _, err = moqwk("cv", "--run-dir", tmp_path / "run", "--quiet")
    assert code != 0
    assert_one_error_line(err, "holdout", "never changes")


# --------------------------------------------------------------------------- search and select


def search_and_select(ws, cache: Path, monkeypatch) -> tuple[list[dict], dict]:
    from moqwk._api.select_outputs import run_selection
    from moqwk.stages.search_loop import SearchOptions, run_search
    from moqwk.stages.selector import options_from

    monkeypatch.setenv("MOQWK_CACHE_DIR", str(cache))  # nothing shared through the cache
    run_search(ws, SearchOptions(n_trials=4, n_jobs=1))
    opts = options_from(ws.config.select, gate_margin=0.5)
    record = run_selection(ws, opts, commands=[])[0].to_dict()
    trials = read_json(ws.run_dir / "artifacts" / "optuna_trials.json")
    return trials, record


def workspace_with(config, corpus, mask, run_dir: Path):
    """The workspace ``Workspace.open`` makes, with the holdout's essays given (so a corpus
    whose holdout labels differ keeps the same holdout: the draw is stratified by score)."""
    from moqwk.run.holdout import Holdout, record_holdout
    from moqwk.run.record import record_config
    from moqwk.run.workspace import Workspace

    h = Holdout(corpus, mask, config.cv.holdout_unit, float(config.cv.holdout),
                config.cv.holdout_draw_seed)
    run_dir.mkdir(parents=True)
    record_config(run_dir, config)
    record_holdout(run_dir, h)
    return Workspace(config, h.development, run_dir, h)


@pytest.mark.slow
def test_holdout_labels_reach_nothing_but_the_holdout_numbers(tmp_path, demo_config_yaml,
                                                              demo_frame, monkeypatch):
    from moqwk.data.corpus import load_corpus
    from moqwk.run.holdout import draw_holdout

    data = {"path": str(tmp_path / "essays.csv"), "id_column": "essay_id",
            "text_column": "text", "prompt_column": "prompt", "score_column": "score"}
    demo_frame.to_csv(tmp_path / "essays.csv", index=False)
    cfg = load_config(write_config(tmp_path / "c.yaml", demo_config_yaml,
                                   cv={"holdout": 0.2}, data=data))
    corpus = load_corpus(cfg)
    h = draw_holdout(corpus, cfg)
    assert h is not None
    changed = demo_frame.copy()
    held = changed["essay_id"].astype(str).isin(set(corpus.ids[h.mask].astype(str)))
    changed.loc[held, "score"] = 6.0 - changed.loc[held, "score"]  # mirrored on 1..5
    changed.to_csv(tmp_path / "changed.csv", index=False)
    cfg_b = load_config(write_config(tmp_path / "d.yaml", demo_config_yaml,
                                     cv={"holdout": 0.2},
                                     data={**data, "path": str(tmp_path / "changed.csv")}))
    corpus_b = load_corpus(cfg_b)
    assert (corpus_b.scores[h.mask] != corpus.scores[h.mask]).any()
    assert (corpus_b.scores[~h.mask] == corpus.scores[~h.mask]).all()

    trials_a, rec_a = search_and_select(workspace_with(cfg, corpus, h.mask, tmp_path / "a"),
                                        tmp_path / "cache-a", monkeypatch)
    trials_b, rec_b = search_and_select(workspace_with(cfg_b, corpus_b, h.mask, tmp_path / "b"),
                                        tmp_path / "cache-b", monkeypatch)

    def values(trials):
        return [(t["number"], t["params"], t["values"], t["constraints"]) for t in trials]

    assert values(trials_a) == values(trials_b)  # every trial value
    for key in ("trial_number", "params", "values", "candidates", "tie_tolerance",
                "selection_bias", "stability_gate"):
        assert rec_a[key] == rec_b[key], key  # the choice and every number it rests on
    assert rec_a["holdout"]["values"] != rec_b["holdout"]["values"]  # only this moves
    assert rec_a["holdout"]["size_shift"] == rec_b["holdout"]["size_shift"]


@pytest.mark.slow
def test_select_writes_the_holdout_block_once_beside_in_sample_and_bbc(
        tmp_path, demo_config_yaml, moqwk):
    cfg = write_config(tmp_path / "c.yaml", demo_config_yaml, cv={"holdout": 0.2})
    run = tmp_path / "run"
    code, _, err = moqwk("search", "--config", cfg, "--run-dir", run, "--quiet")
    assert code == 0, err
    code, out, err = moqwk("select", "--run-dir", run, "--gate-margin", "0.5")
    assert code == 0, err
    rec = read_json(run / "artifacts" / "selected_params.json")
    h = rec["holdout"]
    assert h["unit"] == "essays" and h["share"] == 0.2 and h["n_essays"] == 145
    assert h["n_prompts"] == 10 and h["trial_number"] == rec["trial_number"]
    assert h["sha256"] == read_json(run / "splits.json")["holdout"]["sha256"]
    assert rec["hashes"]["holdout"] == h["sha256"]
    names = ("worst_prompt_qwk", "mean_qwk", "low_tail_mae", "high_tail_mae")
    for n in names:
        s = h["summary"][n]
        assert s["in_sample"] == rec["values"][n]
        assert s["bbc"] == rec["selection_bias"]["corrected"][n]["point"]
        assert s["holdout"] == h["values"][n] and h["se"][n] > 0
        assert s["holdout_size_corrected"] == pytest.approx(h["values"][n]
                                                            - h["size_shift"][n])
    assert 0 <= h["values"]["mean_qwk"] <= 1
    assert "On the holdout (145 unseen essays of the same prompts" in out
    # the API hands the same block back typed
    import moqwk as api

    result = api.select(run_dir=run, gate_margin=0.5)
    assert result.trial_number == rec["trial_number"] and result.holdout is not None
    assert (result.holdout.unit, result.holdout.n_essays) == ("essays", 145)
    assert set(result.holdout.objectives) == set(names)
    for n, est in result.holdout.objectives.items():
        assert (est.value, est.se, est.size_corrected) == (
            h["values"][n], h["se"][n], h["size_corrected"][n])
    md = (run / "reports" / "optuna_summary.md").read_text(encoding="utf-8")
    assert "### In-sample, BBC-CV and holdout" in md and "| holdout, size-corrected |" in md
    html = (run / "reports" / "optuna_summary.html").read_text(encoding="utf-8")
    assert "On the holdout (145 unseen essays" in html
    assert "The square, below, is the choice scored once on the holdout" in html
    # the fitted model's manifest keeps them beside its other estimates
    code, _, err = moqwk("fit", "--run-dir", run, "--quiet")
    assert code == 0, err
    est = read_json(run / "model" / "model.json")["cv_estimates"]
    assert est["holdout"]["summary"] == h["summary"] and est["holdout"]["unit"] == "essays"
    # selecting again does not re-choose: the same record
    code, _, err = moqwk("select", "--run-dir", run, "--gate-margin", "0.5", "--quiet")
    assert code == 0, err
    again = read_json(run / "artifacts" / "selected_params.json")
    assert {k: v for k, v in again.items() if k != "versions"} == \
        {k: v for k, v in rec.items() if k != "versions"}


# --------------------------------------------------------------------------- other pipelines


def test_a_transductive_mapping_scores_the_holdout_in_its_declared_batch(tmp_path,
                                                                        demo_config_yaml):
    from moqwk.core.batching import batch_seed
    from moqwk.run.holdout import score_holdout
    from moqwk.run.splits_file import ensure_splits
    from moqwk.run.workspace import Workspace

    raw = yaml.safe_load(demo_config_yaml)
    raw["cv"]["holdout"] = 0.2
    raw["mapping"] = {"method": "prompt_center", "params": {"batch": 10, "min_batch": 5}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    cfg = load_config(path)
    ws = Workspace.open(cfg, tmp_path / "run")
    assert ws.holdout is not None
    dev = ensure_splits(ws.run_dir, ws.corpus, cfg, "prompt_holdout")
    result = score_holdout(cfg, ws.holdout, dev, dict(cfg.baseline_params))  # mapping:
    assert result.mapping["transductive"] and result.mapping["batch"] == 10
    rows = result.oof[result.oof["fold"] >= 0]
    assert set(rows["id"].astype(str)) == set(ws.holdout.essays.ids.astype(str))
    assert rows["y_pred"].notna().all()
    # every fold's mapping saw only its scored (holdout) essays, in the seeded batches CV uses
    assert sum(f["held_out_essays"] for f in result.mapping["folds"]) == len(rows)
    assert [f["batch_seed"] for f in result.mapping["folds"]] == \
        [batch_seed(42, f["repeat"], f["fold"]) for f in result.mapping["folds"]]


@pytest.mark.slow
def test_a_prompt_holdout_is_scored_and_reported_per_whole_prompt(tmp_path, demo_config_yaml,
                                                                  moqwk):
    cfg = write_config(tmp_path / "c.yaml", demo_config_yaml,
                       cv={"holdout": 0.2, "holdout_unit": "prompts", "holdout_seed": 9},
                       search={"n_trials": 3})
    run = tmp_path / "run"
    assert moqwk("search", "--config", cfg, "--run-dir", run, "--quiet")[0] == 0
    code, out, err = moqwk("select", "--run-dir", run, "--gate-margin", "0.5", "--quiet")
    assert code == 0, err
    split = read_json(run / "splits.json")["holdout"]
    h = read_json(run / "artifacts" / "selected_params.json")["holdout"]
    assert split["unit"] == h["unit"] == "prompts" and split["seed"] == 9
    assert h["n_prompts"] == len(split["prompts"]) == 2
    assert h["n_eligible_prompts"] == 2  # each whole prompt has >= 20 essays
    assert h["assumes"] == "unseen prompts, whole"
    folds = read_json(run / "splits.json")["schemes"]["prompt_holdout"]["repeats"][0]
    assert len(folds) == 5 and set(split["ids"]).isdisjoint({i for f in folds for i in f})
    for n in ("worst_prompt_qwk", "mean_qwk"):
        assert np.isfinite(h["values"][n]) and np.isfinite(h["size_shift"][n])

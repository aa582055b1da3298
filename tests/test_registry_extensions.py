"""The registries are complete: a new objective and a new selection rule are one entry each.

Each extension is written here, in this file only, and registered at runtime with one call
(``monkeypatch.setitem`` on the registry, as an entry in ``moqwk/core/objectives.py`` or
``moqwk/core/selection.py`` would be): a median-prompt QWK objective (``prompt_metric``, roles
``secondary``) and a "mean first, then worst-prompt" selection rule (a ``Rule`` whose rank is
written below). Nothing else in moqwk is edited, and both flow through everything that reads
the registries: CV metrics, the config, a short demo-corpus search, selection, BBC-CV and the
compare table. BBC-CV replays *the registered rule*: on every bootstrap it picks what the rule
itself picks on the in-bag data, and on a constructed case where the lexicographic rule
chooses otherwise its estimate differs.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moqwk.core.bbc import bbc, lexicographic_selector, objective_matrix
from moqwk.core.metrics import qwk_by_group
from moqwk.core.objectives import (
    DEFAULT_OBJECTIVES,
    METRICS,
    ObjectiveSet,
    candidates,
    metric,
    prompt_metric,
)
from moqwk.core.pareto import feasible_mask, loss_matrix, pareto_front_mask
from moqwk.core.pooled import pool
from moqwk.core.selection import RULES, Rule

# --------------------------------------------------------------------------- the two extensions


def weighted_median(qwk: np.ndarray, *, weights: np.ndarray | None = None,
                    sampling_var: np.ndarray | None = None) -> np.ndarray:
    """The lower weighted median over the last axis (prompt p counted ``weights[p]`` times);
    NaN prompts and zero weights left out; NaN where nothing counts."""
    q = np.asarray(qwk, dtype=float)
    w = np.ones(q.shape) if weights is None else np.broadcast_to(
        np.asarray(weights, dtype=float), q.shape)
    w = np.where(np.isnan(q), 0.0, w)
    key = np.where(w > 0, q, np.inf)
    order = np.argsort(key, axis=-1, kind="stable")
    qs = np.take_along_axis(key, order, axis=-1)
    cum = np.cumsum(np.take_along_axis(w, order, axis=-1), axis=-1)
    total = cum[..., -1:]
    idx = np.argmax(cum >= total / 2, axis=-1)[..., None]
    out = np.take_along_axis(qs, idx, axis=-1)[..., 0]
    return np.where(total[..., 0] > 0, out, np.nan)


MEDIAN = prompt_metric(
    name="median_prompt_qwk", summary=weighted_median, direction="maximize",
    label="median per-prompt QWK", short="median QWK", roles={"secondary"},
    description="the (lower) median of the per-prompt QWKs of prompts with at least "
                "min_prompt_n essays")

def median_set() -> ObjectiveSet:
    """The default objectives with the median as the secondary one (once registered)."""
    return ObjectiveSet(secondary="median_prompt_qwk")


def rank_mean_first(df: pd.DataFrame, *, tie_tolerance: float,
                    objectives: ObjectiveSet = DEFAULT_OBJECTIVES) -> pd.DataFrame:
    """Best secondary objective first (no tie band), then the primary, then the tails' sum,
    then trial number."""
    work = df.reset_index(drop=True)

    def loss(name: str) -> np.ndarray:
        v = work[name].to_numpy(dtype=float)
        return np.nan_to_num(np.array([metric(name).loss(x) for x in v]), nan=np.inf)

    positions = np.lexsort((work["trial_number"].to_numpy(dtype=float),
                            loss(objectives.tails[0]) + loss(objectives.tails[1]),
                            loss(objectives.primary), loss(objectives.secondary)))
    out = work.iloc[positions].copy()
    out["rank"] = np.arange(1, len(out) + 1, dtype=np.int64)
    out["in_tie_band"] = out["rank"] == 1
    return out.reset_index(drop=True)


MEAN_FIRST = Rule(name="mean_first", rank=rank_mean_first,
                  describe=lambda o: [f"best {o.secondary}", f"then best {o.primary}",
                                      f"then lower {o.tails[0]} + {o.tails[1]}, then lower "
                                      "trial number"])


@pytest.fixture
def extended(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one registration each extension needs."""
    monkeypatch.setitem(METRICS, MEDIAN.name, MEDIAN)
    monkeypatch.setitem(RULES, MEAN_FIRST.name, MEAN_FIRST)


@pytest.fixture(scope="module")
def extended_module() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(METRICS, MEDIAN.name, MEDIAN)
        mp.setitem(RULES, MEAN_FIRST.name, MEAN_FIRST)
        yield


# --------------------------------------------------------------------------- arrays


def _pooled(seed: int = 0, configs: int = 6, n: int = 480, n_prompts: int = 8):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n_prompts, n)
    a = np.clip(np.rint(rng.normal(4, 1.6, n)), 0, 8).astype(int)
    noise = rng.uniform(0.6, 1.6, (configs, 1, 1))
    preds = np.clip(np.rint(a[None, None, :] + rng.normal(0, 1, (configs, 1, n)) * noise), 0, 8)
    return pool(prompt_codes=codes, true_level=a, preds=preds.astype(int),
                n_levels_by_prompt=np.full(n_prompts, 9), eligible=np.ones(n_prompts, bool),
                low_tail=a <= 2, high_tail=a >= 6)


def test_weighted_median_is_the_median_and_counts_weights():
    x = np.array([0.5, 0.1, 0.3, 0.9, 0.7])
    assert float(weighted_median(x)) == 0.5
    assert float(weighted_median(x, weights=np.array([0, 1, 1, 0, 0]))) == 0.1  # lower median
    assert float(weighted_median(x, weights=np.array([0, 0, 1, 3, 0]))) == 0.9
    assert np.isnan(weighted_median(x, weights=np.zeros(5)))


def test_the_median_objective_is_offered_only_once_registered(extended):
    assert "median_prompt_qwk" in candidates("secondary")
    assert median_set().names == ("worst_prompt_qwk", "median_prompt_qwk", "low_tail_mae",
                                "high_tail_mae")
    assert median_set().directions == ["maximize", "maximize", "minimize", "minimize"]
    assert median_set().to_dict()["labels"]["median_prompt_qwk"] == "median per-prompt QWK"


def test_median_flows_through_cv_metrics(extended, demo_frame):
    """On a CV run: the registered value is the median of the eligible prompts' QWKs."""
    from moqwk.core.metrics import compute_metrics

    rng = np.random.default_rng(0)
    codes, names = pd.factorize(demo_frame["prompt"])
    y = demo_frame["score"].to_numpy(float)
    pred = np.clip(np.round((y + rng.normal(0, 0.6, len(y))) * 2) / 2, 1, 5)
    m = compute_metrics(prompt_codes=codes, prompt_names=list(names),
                        repeat=np.zeros(len(y), int), y_true=y, y_pred=pred,
                        lo=np.full(len(y), 1.0), hi=np.full(len(y), 5.0),
                        step=np.full(len(y), 0.5), min_prompt_n=20, low_band=0.25,
                        high_band=0.75, global_scale=True)
    q = sorted(r.qwk for r in m.per_prompt if r.eligible)
    assert MEDIAN.value(m) == pytest.approx(q[(len(q) - 1) // 2])
    assert median_set().values(m)["median_prompt_qwk"] == MEDIAN.value(m)
    assert median_set().values(m)["worst_prompt_qwk"] == m.worst_prompt_qwk


def test_median_flows_through_the_resampled_objectives_and_bbc(extended):
    """objective_matrix (what BBC-CV, the tie band and compare's SEs use) has the median as
    its second column, and BBC-CV reports it by name."""
    pl = _pooled()
    obj = objective_matrix(pl, np.ones((1, pl.n_essays)), pl.eligible.astype(float),
                           objectives=median_set())[0]
    default = objective_matrix(pl, np.ones((1, pl.n_essays)), pl.eligible.astype(float))[0]
    for c in range(pl.n_configs):
        q = qwk_by_group(pl.prompt_codes, pl.true_level, pl.preds[c, 0], pl.n_levels)
        assert obj[c, 1] == pytest.approx(np.sort(q)[(len(q) - 1) // 2])
    np.testing.assert_array_equal(obj[:, [0, 2, 3]], default[:, [0, 2, 3]])
    r = bbc(pl, selector=RULES["lexicographic"].selector(tie_tolerance=0.02,
                                                         objectives=median_set()),
            baseline=0, tolerance=1.0, n_boot=40, seed=0, objectives=median_set())
    assert list(r.estimates) == list(median_set().names)
    assert np.isfinite(r.corrected["median_prompt_qwk"].point)
    # the lexicographic rule breaks its ties by the median now: its replay sees that column
    frame = pd.DataFrame(obj, columns=list(median_set().names)).assign(
        trial_number=range(pl.n_configs))
    ranked = RULES["lexicographic"].rank(frame, tie_tolerance=1.0, objectives=median_set())
    front = pareto_front_mask(loss_matrix(obj, median_set().directions))
    best_median = max(range(pl.n_configs), key=lambda i: (front[i], obj[i, 1]))
    assert int(ranked["trial_number"].iloc[0]) == best_median
    cons = np.full((pl.n_configs, 2), -1.0)
    assert RULES["lexicographic"].selector(tie_tolerance=1.0, objectives=median_set())(
        obj, cons) == best_median


def test_the_holdout_scores_the_registered_objective(extended):
    """select's holdout numbers are the study's own objectives: the median column is the
    median of the per-prompt QWKs, not the mean under the median's name."""
    from moqwk.core.holdout import holdout_objectives, size_shift

    pl = _pooled()
    values, se = holdout_objectives(pl, n_boot=20, seed=0, objectives=median_set())
    q = qwk_by_group(pl.prompt_codes, pl.true_level, pl.preds[0, 0], pl.n_levels)
    assert values[1] == pytest.approx(np.sort(q)[(len(q) - 1) // 2])
    assert values[1] != pytest.approx(float(np.mean(q)))
    assert se.shape == values.shape and np.isfinite(se[1])
    shift = size_shift(pl, unit="prompts", per_prompt=np.zeros(pl.n_prompts, int),
                       n_prompts=max(1, pl.n_prompts - 1), n_draws=5, seed=0,
                       objectives=median_set())
    assert shift.shape == values.shape


def _rule_on_in_bag(obj: np.ndarray, cons: np.ndarray, objectives: ObjectiveSet) -> int | None:
    """The registered rule called directly on in-bag data: feasible, front, its rank."""
    feas = np.flatnonzero(feasible_mask(cons))
    if not len(feas):
        return None
    front = feas[pareto_front_mask(loss_matrix(obj[feas], objectives.directions))]
    frame = pd.DataFrame(obj[front], columns=list(objectives.names)).assign(trial_number=front)
    return int(rank_mean_first(frame, tie_tolerance=0.0, objectives=objectives)
               ["trial_number"].iloc[0])


def test_bbc_replays_the_registered_rule_on_every_bootstrap(extended):
    pl = _pooled(1, configs=8)
    replay = RULES["mean_first"].selector(tie_tolerance=0.03)
    seen: list[tuple[int | None, int | None]] = []

    def spy(obj, cons):
        got = replay(obj, cons)
        seen.append((got, _rule_on_in_bag(obj, cons, DEFAULT_OBJECTIVES)))
        return got

    r = bbc(pl, selector=spy, baseline=0, tolerance=0.02, n_boot=60, seed=2)
    assert len(seen) == 60 and all(a == b for a, b in seen)
    assert len({a for a, _ in seen}) > 1  # the in-bag choice varies, and still agrees
    np.testing.assert_array_equal(r.chosen, [a for a, _ in seen if a is not None])


def _two_kinds_of_config() -> object:
    """Config 0 is even (QWK about 0.8 on every prompt); config 1 is near-perfect on three
    prompts and poor on the fourth: the lexicographic rule picks 0 (better worst prompt), a
    mean-first rule picks 1 (better mean)."""
    rng = np.random.default_rng(7)
    n_prompts, per = 4, 250
    codes = np.repeat(np.arange(n_prompts), per)
    a = rng.integers(0, 9, len(codes))
    even = np.clip(a + rng.integers(-2, 3, len(codes)), 0, 8)
    sharp = np.where(codes == 3, np.clip(a + rng.integers(-4, 5, len(codes)), 0, 8),
                     np.clip(a + rng.integers(-1, 2, len(codes)) * (rng.random(len(codes)) < .3),
                             0, 8))
    return pool(prompt_codes=codes, true_level=a, preds=np.stack([even, sharp])[:, None, :],
                n_levels_by_prompt=np.full(n_prompts, 9), eligible=np.ones(n_prompts, bool),
                low_tail=a <= 2, high_tail=a >= 6)


def test_bbc_estimate_is_the_rule_s_own_where_the_rules_disagree(extended):
    pl = _two_kinds_of_config()
    full = objective_matrix(pl, np.ones((1, pl.n_essays)), pl.eligible.astype(float))[0]
    assert full[0, 0] > full[1, 0] + 0.1 and full[1, 1] > full[0, 1] + 0.02
    kw = {"baseline": 0, "tolerance": 1.0, "n_boot": 80, "seed": 0, "scheme": "essays"}
    lexi = bbc(pl, selector=lexicographic_selector(tie_tolerance=0.02), **kw)
    mean_first = bbc(pl, selector=RULES["mean_first"].selector(tie_tolerance=0.02), **kw)
    assert set(lexi.chosen) == {0} and set(mean_first.chosen) == {1}
    assert (mean_first.estimates["worst_prompt_qwk"].point
            < lexi.estimates["worst_prompt_qwk"].point - 0.1)
    assert mean_first.estimates["mean_qwk"].point > lexi.estimates["mean_qwk"].point


# --------------------------------------------------------------------------- a demo search


@pytest.fixture(scope="module")
def median_run(extended_module, tmp_path_factory: pytest.TempPathFactory, write_search_config):
    """A short demo search whose secondary objective is the median, selected with each rule
    and compared: no moqwk file knows the median or the rule by name."""
    import yaml

    from moqwk.cli import main

    root = tmp_path_factory.mktemp("median-run")
    cfg = write_search_config(root / "config.yaml", tolerance=0.5,
                              search={"population_size": 4, "seed_neighbours": 0})
    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    raw["objectives"] = {"secondary": "median_prompt_qwk"}
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    run_dir = root / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir),
                     "--n-trials", "4"]) == 0
        assert main(["select", "--run-dir", str(run_dir), "--gate-margin", "0.5"]) == 0
        lexi = json.loads((run_dir / "artifacts/selected_params.json").read_text())
        raw["select"] = {"rule": "mean_first"}
        cfg2 = root / "mean_first.yaml"
        cfg2.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        assert main(["select", "--config", str(cfg2), "--run-dir", str(run_dir),
                     "--gate-margin", "0.5"]) == 0
        mean_first = json.loads((run_dir / "artifacts/selected_params.json").read_text())
        assert main(["compare", str(run_dir), str(run_dir), "--out", str(root / "compare"),
                     "--fresh-repeats", "1"]) == 0
    return {"root": root, "run_dir": run_dir, "lexicographic": lexi, "mean_first": mean_first,
            "compare": json.loads((root / "compare/compare.json").read_text()),
            "compare_md": (root / "compare/compare.md").read_text()}


@pytest.mark.slow
def test_the_search_optimises_the_median(median_run):
    trials = json.loads((median_run["run_dir"] / "artifacts/optuna_trials.json").read_text())
    done = [t for t in trials if t["state"] == "complete"]
    assert len(done) == 4
    assert all(set(t["values"]) == set(median_set().names) for t in done)  # JSON keys sorted
    assert len({t["values"]["median_prompt_qwk"] for t in done}) > 1


@pytest.mark.slow
def test_selection_ranks_and_bbc_replays_with_the_median_and_the_rule(median_run):
    for name in ("lexicographic", "mean_first"):
        rec = median_run[name]
        assert rec["objectives"]["secondary"] == "median_prompt_qwk"
        assert rec["rule"]["name"] == name
        assert all("median_prompt_qwk" in c for c in rec["candidates"])
        sb = rec["selection_bias"]
        assert set(sb["estimates"]) == set(median_set().names)
        assert sb["summary"]["median_prompt_qwk"]["in_sample"] == \
            rec["values"]["median_prompt_qwk"]
    first = median_run["mean_first"]["candidates"][0]
    best = max(c["median_prompt_qwk"] for c in median_run["mean_first"]["candidates"])
    assert first["median_prompt_qwk"] == best
    assert median_run["mean_first"]["rule"]["order"][0] == "best median_prompt_qwk"


@pytest.mark.slow
def test_bbc_in_select_is_the_configured_rule_s_replay(median_run):
    """selected_params.json's BBC-CV estimate is the mean-first rule's replay, by hand."""
    from moqwk.config import load_config
    from moqwk.run.workspace import Workspace
    from moqwk.stages.selector import load_trials

    run_dir = median_run["run_dir"]
    rec = median_run["mean_first"]
    run = load_trials(run_dir)
    numbers = [r["number"] for r in run.trials if r["state"] == "complete"]
    ws = Workspace.open(load_config(run_dir / "config.yaml"), run_dir)
    pooled = ws.pool([np.asarray(run.oof_levels[n]) for n in numbers])
    kw = {"baseline": numbers.index(0), "tolerance": run.guardrails["tolerance"],
          "n_boot": 500, "seed": 42, "objectives": median_set()}
    again = bbc(pooled, selector=RULES["mean_first"].selector(
        tie_tolerance=rec["tie_tolerance"], trial_numbers=numbers, objectives=median_set()), **kw)
    assert rec["selection_bias"]["corrected"]["median_prompt_qwk"]["point"] == pytest.approx(
        again.corrected["median_prompt_qwk"].point)
    counts = {str(numbers[i]): int(c) for i, c in enumerate(again.chosen_counts) if c}
    assert {str(k): v for k, v in rec["selection_bias"]["chosen_counts"].items()} == counts


@pytest.mark.slow
def test_compare_scores_and_tabulates_the_median(median_run):
    cmp = median_run["compare"]
    assert cmp["objectives"]["secondary"] == "median_prompt_qwk"
    for r in cmp["runs"]:
        assert np.isfinite(r["fresh"]["median_prompt_qwk"])
        assert "median_prompt_qwk" in r["optimism"]
    assert cmp["verdict"]["checks"]["median_prompt_qwk"]["se"] == 0.0  # a run against itself
    assert "median per-prompt QWK in-sample" in median_run["compare_md"]
    assert "| median per-prompt QWK |" in median_run["compare_md"]


def test_an_unregistered_secondary_is_refused_with_the_choices(tmp_path: Path,
                                                                demo_config_yaml: str,
                                                                monkeypatch: pytest.MonkeyPatch):
    import yaml

    from moqwk.config import parse_config
    from moqwk.errors import ConfigError

    monkeypatch.delitem(METRICS, MEDIAN.name, raising=False)  # the module fixture may be live
    raw = yaml.safe_load(demo_config_yaml)
    raw["objectives"] = {"secondary": "median_prompt_qwk"}
    with pytest.raises(ConfigError, match=r"objectives\.secondary: must be one of mean_qwk"):
        parse_config(raw, base_dir=tmp_path)


def test_the_worst_prompt_choice_is_checked_against_the_registry(tmp_path: Path,
                                                                 demo_config_yaml: str):
    import yaml

    from moqwk.config import parse_config
    from moqwk.errors import ConfigError

    raw = yaml.safe_load(demo_config_yaml)
    raw["objectives"] = {"worst_prompt": "cvar25"}
    with pytest.raises(ConfigError, match=r"^objectives\.worst_prompt: must be one of min, "
                                          r"cvar10, eb_min, got 'cvar25'; did you mean cvar10\?$"):
        parse_config(raw, base_dir=tmp_path)
    raw["objectives"] = {"worst_prompt": "eb_min"}
    cfg = parse_config(raw, base_dir=tmp_path)
    assert cfg.objectives.primary == "eb_worst_prompt_qwk"
    assert cfg.raw["objectives"] == {"worst_prompt": "eb_min", "secondary": "mean_qwk"}
    # a config written before `secondary` existed (no such key) has the same study hash
    from moqwk.config.load import _hash_of

    before = cfg.study_dict()
    del before["objectives"]["secondary"]
    assert _hash_of(before) == cfg.study_hash()

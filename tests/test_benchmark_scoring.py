"""The benchmarks' select-then-re-score step runs against today's API.

``benchmarks/search_cost.py`` selects a finished search with ``run_selection`` and re-scores
the choice on fresh folds. When ``run_selection`` began to return a typed ``SelectionRecord``,
five benchmark scripts still indexed it as a dict, and a registered run lost a 20-minute
search at that step. Here the step runs on the demo corpus's shared search.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_search_cost_selects_and_rescores_a_finished_search(searched_run, tmp_path,
                                                            monkeypatch):
    search_cost = _load("search_cost")
    monkeypatch.setenv("MOQWK_CACHE_DIR", str(tmp_path / "cache"))  # score() sets it; undone
    run_dir = tmp_path / "run"
    shutil.copytree(searched_run.run_dir, run_dir)
    out = search_cost.score(searched_run.config, run_dir, tmp_path / "cache", fresh_seed=4242,
                            fresh_repeats=1)
    numbers = {r["number"]: r for r in searched_run.records}
    assert out["selected_trial"] in numbers
    assert numbers[out["selected_trial"]]["state"] == "complete"
    assert out["n_complete"] + out["n_pruned"] + out["n_failed"] == len(searched_run.records)
    assert set(out["fresh"]) == set(out["in_sample"])
    assert all(0.0 <= out["fresh"][k] <= 1.0 for k in ("worst_prompt_qwk", "mean_qwk"))
    assert out["fresh"] != out["in_sample"]  # other folds, other numbers
    assert out["tie_tolerance"] is not None and out["tie_tolerance"] >= 0


def test_the_small_whole_pipeline_benchmark_plans_its_registered_units():
    wps = _load("whole_pipeline_small")
    args = type("Args", (), {"units": None, "corpora": list(wps.CORPORA),
                             "seeds": [7, 8, 9]})()
    units = wps.plan(args)
    assert len(units) == 6 + 18
    assert sum(arm == "small" for arm, _, _ in units) == 9


@pytest.mark.parametrize("name", ["score_mapping", "search_quality", "whole_pipeline",
                                  "search_cost", "whole_pipeline_small"])
def test_no_benchmark_indexes_the_selection_record_as_a_dict(name):
    text = (REPO / "benchmarks" / f"{name}.py").read_text(encoding="utf-8")
    assert "record[\"" not in text

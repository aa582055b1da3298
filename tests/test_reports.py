"""The Markdown reports (moqwk.reports.markdown): pure text from hand-made records."""

from __future__ import annotations

import numpy as np
import pytest

from moqwk.core.metrics import compute_metrics
from moqwk.core.objectives import DEFAULT_OBJECTIVES, ObjectiveSet
from moqwk.reports.markdown import (
    compare_markdown,
    objectives_of,
    optuna_summary,
    residual_diagnostics,
)

NAMES = DEFAULT_OBJECTIVES.names


def trial(number: int, values: tuple | None, *, state: str = "complete", role: str = "sampled",
          feasible: bool = True) -> dict:
    return {"number": number, "state": state, "role": role, "feasible": feasible,
            "values": None if values is None else dict(zip(NAMES, values, strict=True))}


TRIALS = [
    trial(0, (0.55, 0.70, 0.10, 0.12), role="baseline"),
    trial(1, None, state="fail", feasible=False),
    trial(2, (0.60, 0.68, 0.11, 0.13)),
    trial(3, (0.60, 0.71, 0.14, 0.11), feasible=False),  # ties trial 2 on worst, better mean
    trial(4, (0.40, 0.75, 0.09, 0.10)),
]


def summary_record(objectives: ObjectiveSet = DEFAULT_OBJECTIVES, **changes) -> dict:
    base = {"trial_number": 0, "params": {"max_depth": 3},
            "values": dict(zip(NAMES, (0.55, 0.70, 0.10, 0.12), strict=True))}
    record = {
        "objectives": objectives.to_dict(),
        "study": {"name": "moqwk", "storage": "sqlite:///runs/a/study.db", "n_trials": 5,
                  "n_complete": 4},
        "trial_number": 2, "feasible": True,
        "values": dict(zip(NAMES, (0.60, 0.68, 0.11, 0.13), strict=True)),
        "success_criterion": {"met": False},
        "tail_tradeoff": None, "tail_regression_reason": None,
        "baseline": base,
        "guardrails": {"tolerance": 0.05, "low_tail_limit": 0.15, "high_tail_limit": 0.17},
        "rule": {"order": ["highest worst-prompt QWK", "then highest mean QWK"]},
        "tie_tolerance": 0.0123, "tie_tolerance_method": {"method": "given"},
        "candidates": [{"rank": 1, "trial_number": 2, "in_tie_band": True,
                        **dict(zip(NAMES, (0.60, 0.68, 0.11, 0.13), strict=True))}],
        "stability_gate": {"scheme": "stratified_text", "margin": 0.02,
                           "metrics": ["mean_qwk", "pooled_qwk"],
                           "baseline": {"mean_qwk": 0.69, "pooled_qwk": None},
                           "results": [{"trial_number": 2, "passed": True,
                                        "metrics": {"mean_qwk": 0.68, "pooled_qwk": 0.7}}]},
        "reproduce": ["moqwk search --run-dir runs/a  # resumes the study",
                      "moqwk select --run-dir runs/a"],
    }
    record.update(changes)
    return record


def section(text: str, title: str) -> list[str]:
    """The lines of one ``## title`` section."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"## {title}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return lines[start + 1:end]


def table_rows(lines: list[str]) -> list[list[str]]:
    body = [ln for ln in lines if ln.startswith("|") and not ln.startswith("|---")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in body[1:]]


# --------------------------------------------------------------------------- optuna_summary


def test_all_trials_best_first_by_primary_then_secondary_failures_last():
    text = optuna_summary(TRIALS, summary_record())
    rows = table_rows(section(text, "All trials"))
    assert [r[0] for r in rows] == ["3", "2", "0", "4", "1"]
    assert rows[0] == ["3", "complete", "sampled", "0.600", "0.710", "0.140", "0.110", "no"]
    assert rows[-1] == ["1", "fail", "sampled", "n/a", "n/a", "n/a", "n/a", "no"]


def test_all_trials_order_follows_the_primary_objectives_direction():
    """With a minimised primary objective, lowest comes first."""
    obj = ObjectiveSet(primary="low_tail_mae", secondary="mean_qwk",
                       tails=("worst_prompt_qwk", "high_tail_mae"))
    text = optuna_summary(TRIALS, summary_record(obj))
    order = [r[0] for r in table_rows(section(text, "All trials"))]
    assert order == ["4", "0", "2", "3", "1"]  # low MAE 0.09, 0.10, 0.11, 0.14, then the failure
    assert "## All trials (low-tail MAE, then mean per-prompt QWK)" in text


def test_decision_baseline_and_selected_rows():
    text = optuna_summary(TRIALS, summary_record())
    decision = "\n".join(section(text, "Decision"))
    assert ("Selected trial 2. In-sample (the search's own folds, optimistic), the success "
            "criterion against the baseline (trial 0) is NOT met") in decision
    assert "The selected trial is feasible." in decision
    assert "| | worst-prompt QWK | mean per-prompt QWK | low-tail MAE | high-tail MAE |" in decision
    assert "| baseline (trial 0) | 0.550 | 0.700 | 0.100 | 0.120 |" in decision
    assert "| selected (trial 2) | 0.600 | 0.680 | 0.110 | 0.130 |" in decision
    assert "Study `moqwk` in `sqlite:///runs/a/study.db`: 4 complete of 5 trials." in text


def test_a_study_of_one_trial_is_not_one_trials():
    record = summary_record(study={"name": "moqwk", "storage": "sqlite:///s.db", "n_trials": 1,
                                   "n_complete": 1})
    text = optuna_summary(TRIALS[:1], record)
    assert "1 complete of 1 trial." in text and "1 trials" not in text


def test_a_single_candidate_front_says_why_its_tie_tolerance_is_zero():
    from moqwk.console.tables import front_table

    def title(record: dict) -> str:
        return str(front_table(record).title)

    single = summary_record(tie_tolerance=0.0, tie_tolerance_method={
        "method": "single candidate: nothing to tie", "value": 0.0})
    assert title(single) == ("Ranked Pareto front (tie tolerance 0.0000: single candidate: "
                             "nothing to tie)")
    assert title(summary_record()) == "Ranked Pareto front (tie tolerance 0.0123)"


def test_no_selection_says_so_and_has_no_selected_row():
    text = optuna_summary(TRIALS, summary_record(trial_number=None, values=None, feasible=None))
    assert "No trial was selected: no candidate passed the stability gate." in text
    assert "`moqwk fit --run-dir RUN_DIR --trial 0`" in text
    assert "| selected" not in text


def test_tail_tradeoff_is_spelled_out():
    trade = [{"metric": "low_tail_mae", "candidate": 0.2, "baseline": 0.1, "excess": 0.05}]
    text = optuna_summary(TRIALS, summary_record(tail_tradeoff=trade, feasible=False,
                                                 tail_regression_reason="placement test"))
    assert "Tail regression allowed explicitly: placement test" in text
    assert "- low_tail_mae: 0.200 vs baseline 0.100 (excess over guardrail 0.050)" in text
    assert "The selected trial is outside a guardrail." in text


def test_rule_gate_and_reproduce_sections():
    text = optuna_summary(TRIALS, summary_record())
    assert "low tail <= 0.150, high tail <= 0.170" in text
    assert section(text, "Rule")[1:3] == ["1. highest worst-prompt QWK", "2. then highest mean QWK"]
    assert "Tie tolerance 0.0123: given." in text
    gate = table_rows(section(text, "Stability gate"))
    assert gate == [["baseline", "0.690", "n/a", ""], ["2", "0.680", "0.700", "pass"]]
    repro = section(text, "Reproduce")
    assert repro[repro.index("```sh") + 1:repro.index("```sh") + 3] == [
        "moqwk search --run-dir runs/a  # resumes the study", "moqwk select --run-dir runs/a"]


# --------------------------------------------------------------------------- compare


def compare_record(met: bool) -> dict:
    def vals(w, m, lo, hi):
        return {"worst_prompt_qwk": w, "mean_qwk": m, "low_tail_mae": lo, "high_tail_mae": hi,
                "pooled_qwk": 0.7, "low_tail_bias": 0.05, "high_tail_bias": -0.04}

    return {
        "fresh_folds": {"scheme": "prompt_holdout", "seed": 1042, "repeats": 2},
        "objectives": DEFAULT_OBJECTIVES.to_dict(),
        "runs": [{"run_dir": "runs/s", "sampler": "nsga2", "trial_number": 9, "n_trials": 40,
                  "in_sample": vals(0.66, 0.72, 0.1, 0.1), "fresh": vals(0.58, 0.70, 0.12, 0.11),
                  "gate_passed": True, "trial_time_s": 512.4},
                 {"run_dir": "runs/g", "sampler": "grid", "trial_number": 4, "n_trials": 25,
                  "in_sample": vals(0.6, 0.7, 0.1, 0.1), "fresh": vals(0.59, 0.69, 0.12, 0.12),
                  "gate_passed": False, "trial_time_s": None}],
        "verdict": {"first": "runs/s", "second": "runs/g", "met": met,
                    "qwk_matched_or_improved": met, "tails_not_worse": True,
                    "tail_regression_allowed": False,
                    "checks": {"worst_prompt_qwk": {"candidate": 0.58, "baseline": 0.59,
                                                    "delta": -0.01, "ok": False}}},
    }


def test_compare_markdown_rows_and_verdict():
    text = compare_markdown(compare_record(met=False))
    assert "seed 1042, 2 repeat(s), never used by the searches" in text
    lines = text.splitlines()
    header = next(ln for ln in lines if ln.startswith("| run |"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[:7] == ["run", "sampler", "trial", "trials", "mapping",
                         "worst-prompt QWK in-sample", "worst-prompt QWK fresh"]
    row = next(ln for ln in lines if ln.startswith("| runs/s |"))
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "runs/s", "nsga2", "9", "40", "round", "0.660", "0.580", "0.720", "0.700", "0.100", "0.120",
        "0.100", "0.110", "0.700", "0.050", "-0.040", "pass", "512 s"]
    assert next(ln for ln in lines if ln.startswith("| runs/g |")).endswith("| fail | n/a |")
    assert "`runs/s` against `runs/g`: **not met**" in text
    assert "| worst-prompt QWK | 0.580 | 0.590 | -0.010 | n/a |  | no |" in text
    assert "**met**" in compare_markdown(compare_record(met=True))


def test_compare_of_one_run_has_no_verdict():
    record = compare_record(met=True)
    record["runs"] = record["runs"][:1]
    del record["verdict"]
    assert "Verdict" not in compare_markdown(record)


# --------------------------------------------------------------------------- objectives_of


def test_objectives_of_an_artifact():
    assert objectives_of({}) == DEFAULT_OBJECTIVES  # made before artifacts recorded them
    o = ObjectiveSet(primary="mean_qwk", secondary="worst_prompt_qwk",
                     tails=("high_tail_mae", "low_tail_mae"))
    assert objectives_of({"objectives": o.to_dict()}) == o


# --------------------------------------------------------------------------- residuals


@pytest.mark.parametrize("global_scale, pooled", [(True, "| pooled QWK | 1.000 |"),
                                                  (False, "| pooled QWK | n/a (per-prompt")])
def test_residual_diagnostics_pooled_qwk_only_on_a_global_scale(global_scale, pooled):
    n = 6
    m = compute_metrics(prompt_codes=np.array([0, 0, 0, 1, 1, 1]), prompt_names=["a", "b"],
                        repeat=np.zeros(n, int), y_true=np.array([1., 3, 5, 1, 3, 5]),
                        y_pred=np.array([1., 3, 5, 1, 3, 5]), lo=np.ones(n),
                        hi=np.full(n, 5.0), step=np.ones(n), min_prompt_n=3, low_band=0.25,
                        high_band=0.75, global_scale=global_scale)
    text = residual_diagnostics(m, title="t", scheme="prompt_holdout", params={"max_depth": 3},
                                global_scale=global_scale)
    assert pooled in text
    assert "| worst-prompt QWK | 1.000 (a) |" in text
    assert '"max_depth": 3' in text


def test_a_transductive_choice_says_which_batch_its_numbers_assume():
    """The decision sentences (console, optuna_summary.md and the HTML report all print them)
    and the markdown mapping section name the declared batch; a record from before batches
    were declared reads as whole prompts."""
    from moqwk.reports.decision import transductive_sentence
    from moqwk.reports.markdown import mapping_section

    mapping = {"spec": {"method": "prompt_standardize",
                        "params": {"min_batch": 10, "batch": 15, "fallback": "none"}},
               "transductive": True, "batch": 15, "fallback_share": 0.02, "folds": []}
    record = {"mapping": mapping}
    sentence = transductive_sentence(record)
    assert sentence is not None and "assumes batch = 15" in sentence
    assert "batch = 15 (each prompt's essays scored 15 at a time)" in "\n".join(
        mapping_section(record))
    old = {"mapping": {**mapping, "batch": None, "spec": {
        "method": "prompt_standardize", "params": {"min_batch": 10, "fallback": "none"}}}}
    old["mapping"].pop("batch")
    assert "assumes batch = prompt" in (transductive_sentence(old) or "")
    assert transductive_sentence({"mapping": {"transductive": False}}) is None

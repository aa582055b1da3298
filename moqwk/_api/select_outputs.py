"""``moqwk select``'s outputs: the residual re-runs, the artifacts and the reports.

:mod:`moqwk.stages.selector` decides and returns records; this module, above it, writes them: the
baseline's and the choice's prompt-holdout residuals, ``selected_params.json`` (or
``selection_failed.json``), the front, the markdown summary and the HTML report. The API
(:func:`moqwk.select`), the CLI and the demo call :func:`run_selection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moqwk.base import artifacts
from moqwk.base.progress import NO_PROGRESS, Progress
from moqwk.errors import StabilityGateError
from moqwk.run.artifact_records import SelectionRecord
from moqwk.run.layout import BASELINE_OOF, FRONT, SELECTED, SELECTION_FAILED, SUMMARY
from moqwk.run.workspace import Workspace
from moqwk.stages.selector import (
    RunTrials,
    Selection,
    SelectOptions,
    holdout_estimate,
    load_trials,
    select,
    selection_record,
)


def _reproduced(run: RunTrials, result: Any, values: Mapping[str, float]) -> dict:
    again = run.objectives.values(result.metrics)
    diff = max(abs(again[k] - values[k]) for k in run.objectives.names)
    return {"values": again, "max_abs_difference": diff, "matches": diff < 1e-9}


def write_selection(ws: Workspace, run: RunTrials, sel: Selection, opts: SelectOptions, *,
                    commands: list[str], progress: Progress = NO_PROGRESS) -> SelectionRecord:
    """Re-run the baseline and the choice on prompt_holdout for their residuals, then write
    every artifact and the reports; the record written.

    The baseline's rows go to ``residuals_baseline_oof.csv``; the choice's, with its metrics and
    diagnostics, replace the run's CV outputs. A selection that fails the gate still writes the
    baseline's rows, its record and both reports.
    """
    from moqwk.reports.markdown import optuna_summary
    from moqwk.run.cv_outputs import write_cv_outputs

    engine = ws.engine("prompt_holdout", progress=progress)
    engine.prepare()
    base_params = run.baseline["params"]
    chosen = sel.chosen
    rerun_chosen = chosen is not None and dict(chosen["params"]) != dict(base_params)
    what = "baseline" + (f" and trial {chosen['number']}" if rerun_chosen and chosen else "")
    with progress.stage(f"residuals on prompt_holdout: {what}",
                        total=(2 if rerun_chosen else 1) * engine.n_fits, unit="folds") as st:
        base_result = engine.run(base_params, on_fold=st.advance)
        result = (engine.run(chosen["params"], on_fold=st.advance) if rerun_chosen and chosen
                  else base_result)
    artifacts.write_csv(ws.run_dir / BASELINE_OOF, base_result.oof)
    base_again = _reproduced(run, base_result, run.baseline["values"])
    reproduced = None
    mapping = None
    holdout = None
    if chosen is not None:
        reproduced = _reproduced(run, result, chosen["values"])
        mapping = result.mapping
        write_cv_outputs(ws, engine, result, scheme="prompt_holdout",
                         title=f"selected trial {chosen['number']}")
        # the choice is made: only now, once, is it scored on the holdout
        holdout = holdout_estimate(ws, run, opts, chosen=chosen, dev_result=result,
                                   selection_bias=sel.selection_bias, progress=progress)
    typed = selection_record(ws, run, sel, opts, reproduced=reproduced, commands=commands,
                             mapping=mapping, baseline_reproduced=base_again, holdout=holdout)
    record = typed.to_dict()  # the file's JSON, which the reports render
    artifacts.write_json(ws.run_dir / FRONT, {
        "pool": "all complete trials (--allow-tail-regression)" if opts.allow_tail_regression
        else "feasible trials",
        "trials": [{k: r[k] for k in ("number", "params", "values", "constraints", "feasible",
                                      "role")} for r in sel.front]})
    if chosen is not None:
        artifacts.write_json(ws.run_dir / SELECTED, record)
    else:
        artifacts.write_json(ws.run_dir / SELECTION_FAILED, record)
    figures = _html_report(ws, run, record, opts, progress)
    artifacts.write_text(ws.run_dir / SUMMARY, optuna_summary(run.trials, record,
                                                              figures=figures))
    return typed


def _html_report(ws: Workspace, run: RunTrials, record: dict, opts: SelectOptions,
                 progress: Progress) -> list:
    """The HTML report and its figures; a report that cannot be built is a warning, not a
    failed selection (the decision is written already)."""
    import warnings

    from moqwk.reports.html import build_report

    try:
        return build_report(ws.run_dir, selection=record, trials=run.trials,
                            storage=opts.storage, study_name=opts.study_name,
                            progress=progress).figures
    except Exception as e:  # noqa: BLE001 - the selection stands; the report can be rebuilt
        warnings.warn(f"the HTML report could not be built ({type(e).__name__}: {e}); the "
                      f"selection is written; rebuild it with `moqwk report --run-dir "
                      f"{ws.run_dir}`", stacklevel=2)
        return []


def _worst_margin_words(opts: SelectOptions) -> str:
    if opts.gate_worst_margin is not None:
        return f"{opts.gate_worst_margin}"
    return f"{opts.gate_worst_se_k:g} x the paired SE"


def run_selection(ws: Workspace, opts: SelectOptions, *, commands: list[str],
                  progress: Progress = NO_PROGRESS) -> tuple[SelectionRecord, Selection]:
    """``moqwk select``: load, decide, write; raises when nothing can be selected."""
    run = load_trials(ws.run_dir, storage=opts.storage, study_name=opts.study_name)
    sel = select(ws, run, opts, progress=progress)
    record = write_selection(ws, run, sel, opts, commands=commands, progress=progress)
    if sel.chosen is None:
        tried = ", ".join(str(g.trial_number) for g in sel.gates)
        raise StabilityGateError(
            f"no candidate passed the stability gate (tried trials {tried} under "
            f"stratified_text, margin {opts.gate_margin}, worst-prompt QWK margin "
            f"{_worst_margin_words(opts)}, at most {opts.gate_max_fallback_share:.0%} of essays "
            f"on a mapping's fallback); see {ws.run_dir / SUMMARY}; keep the baseline with "
            f"`moqwk fit --run-dir {ws.run_dir} --trial 0`, or raise select.gate_margin, "
            "gate_worst_se_k, gate_max_fallback_share or max_gate_candidates only with a "
            "reason")
    return record, sel

"""The decision of ``moqwk select`` in plain sentences, one home for the console and the report.

Every sentence says what its numbers are: the success criterion is judged on the search's own
folds, so it is labelled in-sample; a baseline that wins is said to be the baseline; an
unfinished study is said to be unfinished.
"""

from __future__ import annotations

from collections.abc import Mapping

from moqwk.core.objectives import metric

# the unfinished-study sentence lives with the run record (compare reads it there, below the
# reports); re-exported here, the home of the decision's sentences
from moqwk.run.record import unfinished_sentence as unfinished_sentence


def is_baseline_choice(record: Mapping) -> bool:
    """The chosen trial is the baseline itself, or a trial with the baseline's params."""
    if record.get("trial_number") is None:
        return False
    base = record["baseline"]
    if record["trial_number"] == base["trial_number"]:
        return True
    chosen, baseline = record.get("params") or {}, base.get("params") or {}
    return bool(chosen) and bool(baseline) and dict(chosen) == dict(baseline)


def transductive_sentence(record: Mapping) -> str | None:
    """One sentence when the chosen mapping uses per-prompt batch statistics."""
    mapping = record.get("mapping") or {}
    if not mapping.get("transductive"):
        return None
    spec = mapping.get("spec") or {}
    params = spec.get("params") or {}
    share = mapping.get("fallback_share")
    fell = (f"; {share:.1%} of essays fell back" if isinstance(share, float) and share > 0
            else "")
    batch = mapping.get("batch", params.get("batch", "prompt"))
    assumed = (f"Every number here assumes batch = {batch}: each prompt's essays scored "
               f"{batch} at a time (CV scored its held-out essays in seeded random batches of "
               f"that size)" if isinstance(batch, int) else
               "Every number here assumes batch = prompt: each prompt's whole cohort scored at "
               "once, which a smaller batch in use will not match")
    return (f"The selected score mapping ({spec.get('method')}) is transductive: each essay's "
            f"score depends on the other essays of its prompt scored with it, as a batch of at "
            f"least {params.get('min_batch')} essays (smaller batches take the fallback: "
            f"{params.get('fallback')}){fell}. {assumed}.")


def _reported(record: Mapping, summary: Mapping) -> list[str]:
    """The primary and secondary objectives of ``record`` that ``summary`` holds, in order."""
    obj = record.get("objectives") or {}
    return [str(n) for n in (obj.get("primary"), obj.get("secondary")) if n in summary]


def estimate_sentence(record: Mapping) -> str | None:
    """What the selected config is expected to score on new folds (BBC-CV), beside in-sample."""
    sb = record.get("selection_bias") or {}
    summary = sb.get("summary") or {}
    names = _reported(record, summary)
    if not names:
        return None
    parts = []
    for n in names:
        e = summary[n]
        parts.append(f"{metric(n).label} {metric(n).format(e['estimate'])} "
                     f"[{metric(n).format(e['lo'])}, {metric(n).format(e['hi'])}] "
                     f"(in-sample {metric(n).format(e['in_sample'])})")
    return ("Expected on new folds, corrected for the selection (BBC-CV, "
            f"{sb.get('n_boot')} replicates, {sb.get('interval', '95% percentile')} interval): "
            + "; ".join(parts) + ".")


def holdout_sentence(record: Mapping) -> str | None:
    """The chosen config on ``cv.holdout``'s essays, beside in-sample and BBC-CV, each with
    what it assumes (None without a holdout)."""
    h = record.get("holdout") or {}
    summary = h.get("summary") or {}
    names = _reported(record, summary)
    if not names:
        return None
    parts = []
    for n in names:
        e, f = summary[n], metric(n).format
        bbc = f" · BBC-CV {f(e['bbc'])}" if e.get("bbc") is not None else ""
        parts.append(f"{metric(n).label}: in-sample {f(e['in_sample'])}{bbc} · holdout "
                     f"{f(e['holdout_size_corrected'])} size-corrected (as measured on the "
                     f"holdout's essays: {f(e['holdout'])} ± {f(e['holdout_se'])})")
    what = ("unseen essays of the same prompts" if h.get("unit") == "essays"
            else "unseen prompts")
    return (f"On the holdout ({h.get('n_essays')} {what}, {h.get('share'):.0%} reserved before "
            "any fold and scored once, after the choice): " + "; ".join(parts) + ". In-sample "
            "assumes nothing was selected; BBC-CV assumes new folds of these essays; the "
            "holdout assumes " + what + " and is size-corrected to the development folds' "
            "footing.")


def decision_sentences(record: Mapping) -> list[str]:
    """What was chosen and how it compares with the baseline, in plain words."""
    out: list[str] = []
    unfinished = unfinished_sentence(record)
    if unfinished:
        out.append(unfinished)
    n = record.get("trial_number")
    if n is None:
        out.append("No trial was selected: no candidate passed the stability gate. The gate "
                   "table says which metric each candidate regressed on. To keep the baseline "
                   "(trial 0), run `moqwk fit --run-dir RUN_DIR --trial 0`.")
        return out
    base = record["baseline"]
    if is_baseline_choice(record):
        tied = [c["trial_number"] for c in record.get("candidates", [])
                if c.get("in_tie_band") and c["trial_number"] != n]
        with_ = (f"; trial(s) {', '.join(map(str, tied))} tied with it within the tie band "
                 "and ranked lower") if tied else ""
        out.append(f"Selected trial {n}: the search found nothing better than the baseline "
                   f"(trial {base['trial_number']}){with_}.")
        for extra in (estimate_sentence(record), holdout_sentence(record)):
            if extra:
                out.append(extra)
        return out
    crit = record.get("success_criterion") or {}
    failed = [metric(m).label for m, c in crit.get("checks", {}).items() if not c.get("ok")]
    verdict = "met" if crit.get("met") else "NOT met"
    out.append(f"Selected trial {n}. In-sample (the search's own folds, optimistic), the "
               f"success criterion against the baseline (trial {base['trial_number']}) is "
               f"{verdict}" + (f": worse on {', '.join(failed)}" if failed else "") + ".")
    for extra in (estimate_sentence(record), holdout_sentence(record),
                  transductive_sentence(record)):
        if extra:
            out.append(extra)
    return out

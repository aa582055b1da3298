"""Markdown reports written next to the artifacts (pure text builders, no I/O).

Column headers and number formats come from the metric registry (:mod:`moqwk.core.objectives`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from moqwk.core.objectives import fmt, metric, objectives_of
from moqwk.reports.decision import decision_sentences
from moqwk.reports.words import count
from moqwk.run.diagnostics import residual_diagnostics as residual_diagnostics  # moved down a layer


def _vals(v: Mapping | None, names: Sequence[str]) -> str:
    v = v or {}
    return " | ".join(metric(k).format(v.get(k)) for k in names)


def _header(names: Sequence[str]) -> str:
    return " | ".join(metric(k).label for k in names)


@dataclass(frozen=True)
class FigureLink:
    """A figure of the HTML report: its file stem under ``reports/figures/``, title, caption."""

    name: str
    title: str
    caption: str


def figures_section(figures: Sequence[FigureLink], *, html: str = "optuna_summary.html",
                    figure_dir: str = "figures") -> list[str]:
    """The "Figures" section of ``optuna_summary.md`` (links relative to ``reports/``)."""
    lines = ["## Figures", "",
             f"The same figures with their captions, offline: [{html}]({html}). SVG for papers, "
             "PNG for slides.", ""]
    for f in figures:
        lines += [f"### {f.title}", "",
                  f"![{f.title}]({figure_dir}/{f.name}.svg)", "",
                  f"{f.caption} ([SVG]({figure_dir}/{f.name}.svg), "
                  f"[PNG]({figure_dir}/{f.name}.png))", ""]
    return lines


def holdout_section(record: dict, names: Sequence[str]) -> list[str]:
    """The selected trial's in-sample, BBC-CV and holdout numbers side by side (``cv.holdout``),
    each row saying what it assumes; nothing without a holdout."""
    h = record.get("holdout")
    if not h:
        return []
    summ = h["summary"]

    def row(label: str, key: str, assumes: str) -> str:
        cells = []
        for n in names:
            v = summ[n].get(key)
            cell = fmt(v) if v is not None else "-"
            if key == "holdout":
                cell += f" ± {fmt(summ[n]['holdout_se'])}"
            cells.append(cell)
        return f"| {label} | {' | '.join(cells)} | {assumes} |"

    what = ("unseen essays of the same prompts" if h["unit"] == "essays"
            else "unseen prompts")
    return [
        "", "### In-sample, BBC-CV and holdout", "",
        f"The holdout: {h['n_essays']} essays of {h['n_prompts']} prompts "
        f"({h['share']:.0%} by {h['unit']}, seed {h['seed']}), reserved before any fold was made "
        "and scored once, after the choice, each by the chosen trial's model of the "
        "prompt_holdout fold that held its prompt out. Size-corrected: minus the chosen "
        "config's shift when its development numbers are read at the holdout's size.", "",
        f"| selected trial {record['trial_number']} | {_header(names)} | assumes |",
        "|---|" + "---|" * len(names) + "---|",
        row("in-sample", "in_sample", "nothing was selected on these folds (optimistic)"),
        row("BBC-CV", "bbc", "new folds of the development essays"),
        row("holdout, size-corrected", "holdout_size_corrected", what),
        row("holdout, as read (± SE)", "holdout", f"{what}, at the holdout's size"),
    ]


def optuna_summary(trials: list[dict], record: dict, *,
                   figures: Sequence[FigureLink] = ()) -> str:
    """The search and the decision: every trial, the front, guardrails, gate and how to redo it.

    ``figures`` are the HTML report's figures written next to it; a "Figures" section links them.
    """
    obj = objectives_of(record)
    names = obj.names
    g = record["guardrails"]
    base = record["baseline"]
    lines = [
        "# Search and selection summary",
        "",
        f"Study `{record['study']['name']}` in `{record['study']['storage']}`: "
        f"{record['study']['n_complete']} complete of "
        f"{count(record['study']['n_trials'], 'trial')}.",
        "",
        "## Decision",
        "",
    ]
    for sentence in decision_sentences(record):
        lines += [sentence, ""]
    if record["trial_number"] is not None:
        lines.append(f"The selected trial is "
                     f"{'feasible' if record['feasible'] else 'outside a guardrail'}. The success "
                     "criterion asks for both QWKs matched or improved and neither tail worse "
                     "than the baseline's, on the search's own prompt-holdout folds.")
    if record["tail_tradeoff"]:
        lines += ["", f"Tail regression allowed explicitly: {record['tail_regression_reason']}", ""]
        for t in record["tail_tradeoff"]:
            lines.append(f"- {t['metric']}: {fmt(t['candidate'])} vs baseline "
                         f"{fmt(t['baseline'])} (excess over guardrail {fmt(t['excess'])})")
    lines += [
        "",
        f"| | {_header(names)} |",
        "|---|" + "---|" * len(names),
        f"| baseline (trial {base['trial_number']}) | {_vals(base['values'], names)} |",
    ]
    if record["values"]:
        lines.append(f"| selected (trial {record['trial_number']}) "
                     f"| {_vals(record['values'], names)} |")
    lines += holdout_section(record, names)
    if figures:
        lines += ["", *figures_section(figures)[:-1]]
    lines += mapping_section(record)
    lines += [
        "",
        "## Guardrails",
        "",
        "Tail MAEs in normalised units may exceed the baseline's by at most "
        f"{fmt(g['tolerance'])}: "
        f"low tail <= {fmt(g['low_tail_limit'])}, high tail <= {fmt(g['high_tail_limit'])}.",
        "",
        "## Rule",
        "",
        *[f"{i + 1}. {step}" for i, step in enumerate(record["rule"]["order"])],
        "",
        f"Tie tolerance {fmt(record['tie_tolerance'], 4)}: "
        f"{record['tie_tolerance_method']['method']}.",
        "",
        "## Ranked Pareto front",
        "",
        f"| rank | trial | {_header(names)} | tied |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for c in record["candidates"]:
        lines.append(f"| {c['rank']} | {c['trial_number']} | {_vals(c, names)} "
                     f"| {'yes' if c['in_tie_band'] else ''} |")
    gate = record["stability_gate"]
    lines += [
        "",
        f"## Stability gate ({gate['scheme']}, margin {fmt(gate['margin'])})",
        "",
        "| trial | " + " | ".join(gate["metrics"]) + " | verdict |",
        "|---|" + "---|" * (len(gate["metrics"]) + 1),
        "| baseline | " + " | ".join(fmt(gate["baseline"].get(m)) for m in gate["metrics"])
        + " | |",
    ]
    for r in gate["results"]:
        lines.append(f"| {r['trial_number']} | "
                     + " | ".join(fmt(r["metrics"].get(m)) for m in gate["metrics"])
                     + f" | {'pass' if r['passed'] else 'fail'} |")
    lines += [
        "",
        f"## All trials ({metric(obj.primary).label}, then {metric(obj.secondary).label})",
        "",
        f"| trial | state | role | {_header(names)} | feasible |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    done = [t for t in trials if t["values"]]
    done.sort(key=lambda t: (metric(obj.primary).loss(t["values"][obj.primary]),
                             metric(obj.secondary).loss(t["values"][obj.secondary]),
                             t["number"]))
    for t in done + [t for t in trials if not t["values"]]:
        lines.append(f"| {t['number']} | {t['state']} | {t['role']} | {_vals(t['values'], names)} "
                     f"| {'yes' if t['feasible'] else 'no'} |")
    lines += ["", "## Reproduce", "", "```sh", *record["reproduce"], "```", ""]
    return "\n".join(lines)


def _batch_words(mapping: Mapping) -> str:
    from moqwk.core.batching import describe_batch

    spec_params = (mapping.get("spec") or {}).get("params") or {}
    return describe_batch(mapping.get("batch", spec_params.get("batch", "prompt")))


def mapping_section(record: Mapping) -> list[str]:
    """The selected config's score mapping: method, parameters, what each fold fitted."""
    mapping = record.get("mapping")
    if not mapping:
        return []
    spec = mapping["spec"]
    lines = ["", "## Score mapping", "",
             f"Method `{spec['method']}` with parameters `{json.dumps(spec['params'])}`"
             + (" (transductive: per-prompt batch statistics of the scored essays; every "
                f"number assumes {_batch_words(mapping)})"
                if mapping.get("transductive") else "") + ".", ""]
    folds = mapping.get("folds") or []
    shown = [f for f in folds if f.get("numbers")]
    if shown:
        keys = [k for k, v in shown[0]["numbers"].items() if isinstance(v, int | float)
                and not isinstance(v, bool)][:5]
        lines += ["Fitted in each prompt-holdout fold on that fold's training essays only "
                  f"({shown[0]['fitted_on'].get('predictions')}):", "",
                  "| repeat | fold | essays fitted on | " + " | ".join(keys)
                  + " | held-out essays that fell back |",
                  "|---|---|---|" + "---|" * len(keys) + "---|"]
        for f in shown:
            lines.append(f"| {f['repeat']} | {f['fold']} | {f['fitted_on'].get('essays')} | "
                         + " | ".join(fmt(f["numbers"].get(k), 4) for k in keys)
                         + f" | {f.get('fallback_essays', 0)} of {f.get('held_out_essays')} |")
    else:
        lines.append("Nothing is fitted for this method.")
    return lines


def _joint_words(joint: Mapping | None) -> str:
    """The joint rule of compare's verdict in one sentence (empty without one)."""
    if not joint or joint.get("mean_standardised_loss") is None:
        return ""
    return (f" Joint rule: {joint['rule']}; here {joint['mean_standardised_loss']:.2f}, "
            f"{'within' if joint['ok'] else 'beyond'} the limit"
            + (" (every objective worse)" if joint.get("all_worse") else "") + ".")


def compare_markdown(record: dict) -> str:
    """``compare.md``: in-sample against fresh numbers per run, and the verdict."""
    ff = record["fresh_folds"]
    obj = objectives_of(record)
    extra = ["pooled_qwk", "low_tail_bias", "high_tail_bias"]
    head = ["run", "sampler", "trial", "trials", "mapping"]
    for n in obj.names:
        head += [f"{metric(n).label} in-sample", f"{metric(n).label} fresh"]
    head += [f"{metric(n).label} fresh" for n in extra] + ["gate", "trial time"]
    lines = ["# moqwk compare", "",
             f"Fresh folds: {ff['scheme']}, seed {ff['seed']}, {ff['repeats']} repeat(s), never "
             "used by the searches. In-sample numbers are the searches' own (optimistic).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in record["runs"]:
        i, f = r["in_sample"], r["fresh"]
        t = r["trial_time_s"]
        cells = [r["run_dir"], r["sampler"], str(r["trial_number"]), str(r["n_trials"]),
                 str(r.get("mapping") or "round")
                 + (" (transductive)" if r.get("transductive") else "")]
        for n in obj.names:
            cells += [metric(n).format(i.get(n)), metric(n).format(f.get(n))]
        cells += [metric(n).format(f.get(n)) for n in extra]
        cells += ["pass" if r["gate_passed"] else "fail", fmt(t, 0) + " s" if t else "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    for r in record["runs"]:
        if r.get("unfinished"):
            lines += ["", f"**`{r['run_dir']}`**: {r['unfinished']}"]
    v = record.get("verdict")
    if v:
        lines += ["", "## Verdict (on fresh folds)", "",
                  f"`{v['first']}` against `{v['second']}`: **{'met' if v['met'] else 'not met'}**"
                  f" (QWKs matched or improved: {v['qwk_matched_or_improved']}; tails not worse: "
                  f"{v['tails_not_worse']}; tail regression allowed: "
                  f"{v['tail_regression_allowed']}). Ties: {v.get('ties', 'none')}."
                  + _joint_words(v.get("joint")), "",
                  "| metric | first | second | difference | paired SE | outcome | ok |",
                  "|---|---|---|---|---|---|---|"]
        for m, c in v["checks"].items():
            lines.append(f"| {metric(m).label} | {metric(m).format(c['candidate'])} "
                         f"| {metric(m).format(c['baseline'])} | {metric(m).format(c['delta'])} "
                         f"| {fmt(c.get('se'))} | {c.get('outcome', '')} "
                         f"| {'yes' if c['ok'] else 'no'} |")
    lines += ["", "```json", json.dumps(record["fresh_folds"]), "```", ""]
    return "\n".join(lines)

"""The HTML report of a real selected run, held against the run's own JSON and CSV.

Numbers are recomputed here by other means (pandas group-bys, brute force over the records)
rather than with the report's own helpers.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moqwk.cli import main
from moqwk.errors import RunDirError
from moqwk.reports.html import build_figures, build_report, load_run, summaries
from moqwk.reports.html.load import scale_arrays

pytestmark = pytest.mark.slow

N_BOOT = 200  # enough for the behaviour tested here; the report's default is 1000


@pytest.fixture(scope="module")
def report(reported_run):
    """The shared run whose report ``moqwk report`` rebuilt (conftest): (run dir, page)."""
    return reported_run.run_dir, reported_run.html


def records(run: Path) -> tuple[list[dict], dict]:
    import json

    trials = json.loads((run / "artifacts/optuna_trials.json").read_text())
    sel = json.loads((run / "artifacts/selected_params.json").read_text())
    return trials, sel


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data


# --------------------------------------------------------------------------- numbers


def test_per_prompt_point_estimates_are_the_trials_own_per_prompt_qwk(report):
    run, _ = report
    trials, sel = records(run)
    data = load_run(run)
    cv = data.cv_metrics
    essays = data.oof["selected"].query("repeat == 0")
    lo, _hi, step = scale_arrays(essays["prompt"].to_numpy(str), cv["scale"])
    table = summaries.per_prompt_qwk(
        data.oof, lo=lo, step=step, n_boot=20, seed=0,
        n_levels={r["prompt"]: r["n_levels"] for r in cv["per_prompt"]})
    by_number = {t["number"]: t for t in trials}
    for config, number in (("baseline", sel["baseline"]["trial_number"]),
                           ("selected", sel["trial_number"])):
        expected = by_number[number]["per_prompt_qwk"]
        got = table[table["config"] == config].set_index("prompt")["qwk"]
        assert set(got.index) == set(expected)
        for p, q in expected.items():
            assert got[p] == pytest.approx(q, abs=1e-12), (config, p)
        eligible = [r["prompt"] for r in cv["per_prompt"] if r["n"] >= cv["min_prompt_n"]]
        assert got[eligible].min() == pytest.approx(
            by_number[number]["values"]["worst_prompt_qwk"], abs=1e-12)


@pytest.mark.parametrize("where", ["csv", "study"])
def test_baseline_predictions_reproduce_its_metrics(report, tmp_path, where):
    """The baseline's rows come from residuals_baseline_oof.csv, or (a run selected before
    select wrote it) are rebuilt from the study's oof_level; its tail MAE must come out."""
    run, _ = report
    if where == "study":
        old = tmp_path / "old"
        shutil.copytree(run, old)
        (old / "artifacts/residuals_baseline_oof.csv").unlink()
        run = old
    trials, sel = records(run)
    data = load_run(run)
    expected = ("artifacts/residuals_baseline_oof.csv" if where == "csv" else "study.db")
    assert expected in data.sources["oof_baseline"]
    rows = data.oof["baseline"]
    scale = data.cv_metrics["scale"]
    z = (rows["y_pred"] - rows["y_true"]) / (scale["max"] - scale["min"])  # normalised error
    low = rows["in_low_tail"].astype(bool)
    base = next(t for t in trials if t["number"] == sel["baseline"]["trial_number"])
    assert z[low].abs().mean() == pytest.approx(base["values"]["low_tail_mae"], abs=1e-12)


def test_bootstrap_is_paired_reproducible_and_exact_where_predictions_are(report):
    run, _ = report
    data = load_run(run)
    cv = data.cv_metrics
    sel = data.oof["selected"]
    perfect = sel.assign(y_pred=sel["y_true"])
    essays = sel.query("repeat == 0")
    lo, _hi, step = scale_arrays(essays["prompt"].to_numpy(str), cv["scale"])
    kw = {"lo": lo, "step": step, "n_levels": {r["prompt"]: r["n_levels"]
                                                for r in cv["per_prompt"]}}
    a = summaries.per_prompt_qwk({"selected": sel, "perfect": perfect}, n_boot=50, seed=1, **kw)
    b = summaries.per_prompt_qwk({"selected": sel, "perfect": perfect}, n_boot=50, seed=1, **kw)
    c = summaries.per_prompt_qwk({"selected": sel, "perfect": perfect}, n_boot=50, seed=2, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["lo"], c["lo"], equal_nan=True)
    p = a[a["config"] == "perfect"]
    assert (p["qwk"] == 1.0).all() and (p["lo"] == 1.0).all() and (p["hi"] == 1.0).all()
    s = a[a["config"] == "selected"]
    assert (s["hi"] - s["lo"] > 0).all()


def test_calibration_is_the_mean_prediction_per_true_score(report):
    run, _ = report
    data = load_run(run)
    sel = data.oof["selected"]
    essays = sel.query("repeat == 0")
    lo, hi, _ = scale_arrays(essays["prompt"].to_numpy(str), data.cv_metrics["scale"])
    got = summaries.calibration(sel, lo=lo, hi=hi, normalise=False).set_index("true")
    want = sel.groupby("y_true")["y_pred"].agg(["mean", "size"])
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=0, atol=1e-12)
    assert list(got["n"]) == list(want["size"])  # one repeat: rows are essays


def test_pareto_figure_plots_the_runs_front_infeasible_baseline_and_selection(report):
    run, _ = report
    trials, sel = records(run)
    data = load_run(run)
    built = {b.name: b for b in build_figures(data, n_boot=N_BOOT)}
    fig = built["pareto_front"].figure

    def points(role: str) -> set[tuple[float, float]]:
        out = set()
        for ax in fig.axes:
            for c in ax.collections:
                if (c.get_gid() or "") == f"{role}:worst_prompt_qwk:mean_qwk":
                    out |= {(round(x, 12), round(y, 12)) for x, y in c.get_offsets()}
        return out

    import json

    front = {t["number"] for t in json.loads((run / "artifacts/pareto_front.json").read_text())
             ["trials"]}
    done = [t for t in trials if t["state"] == "complete"]

    def xy(ts):
        return {(round(t["values"]["worst_prompt_qwk"], 12), round(t["values"]["mean_qwk"], 12))
                for t in ts}

    assert any(not t["feasible"] for t in done), "the fixture should have infeasible trials"
    assert points("front") == xy(t for t in done if t["number"] in front)
    assert points("infeasible") == xy(t for t in done if not t["feasible"])
    assert points("dominated") == xy(t for t in done if t["feasible"] and t["number"] not in front)
    by_number = {t["number"]: t for t in trials}
    assert points("selected") == xy([by_number[sel["trial_number"]]])
    assert points("baseline") == xy([by_number[sel["baseline"]["trial_number"]]])
    band = [p for ax in fig.axes for p in ax.patches
            if (p.get_gid() or "").startswith("tie:worst_prompt_qwk:")]
    assert band, "the tie band is drawn"
    best = max(c["worst_prompt_qwk"] for c in sel["candidates"])
    x0, x1 = band[0].get_x(), band[0].get_x() + band[0].get_width()
    assert (x0, x1) == pytest.approx((best - sel["tie_tolerance"], best))


def test_history_step_line_is_the_running_best_feasible_value(report):
    run, _ = report
    trials, _sel = records(run)
    fig = {b.name: b for b in build_figures(load_run(run), n_boot=N_BOOT)}["search_history"]
    line = next(ln for ax in fig.figure.axes for ln in ax.lines
                if ln.get_gid() == "best:low_tail_mae")
    xs, ys = line.get_xdata(), line.get_ydata()
    for n, y in zip(xs, ys, strict=True):
        feasible = [t["values"]["low_tail_mae"] for t in trials
                    if t["feasible"] and t["number"] <= n]
        assert y == pytest.approx(min(feasible))


# --------------------------------------------------------------------------- the page


def test_page_is_self_contained_small_and_strict(report):
    run, html_path = report
    text = html_path.read_text(encoding="utf-8")
    assert html_path.stat().st_size < 2_000_000
    parser = _Tags()
    parser.feed(text)
    tags = parser.tags
    assert not [t for t, _ in tags if t in ("script", "iframe", "object", "embed", "link")]
    csp = [a["content"] for t, a in tags
           if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1 and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]
    digest = base64.b64encode(hashlib.sha256(parser.style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp[0], "the stylesheet's hash is the one the policy allows"
    imgs = [a for t, a in tags if t == "img"]
    assert len(imgs) == 6
    for a in imgs:
        assert a["src"].startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(a["src"].split(",", 1)[1])
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        assert "http" not in re.sub(rb'xmlns(:\w+)?="[^"]*"|<!DOCTYPE[^>]*>|<metadata>.*?'
                                    rb"</metadata>", b"", svg, flags=re.S).decode()
    for t, a in tags:
        if t == "a":
            href = a["href"]
            assert href.startswith("#") or not re.match(r"^[a-z]+:", href), href
            if not href.startswith("#"):
                assert (html_path.parent / href).is_file(), href


def test_figure_files(report):
    run, html_path = report
    fig_dir = run / "reports/figures"
    names = {"pareto_front", "per_prompt_qwk", "calibration", "search_history",
             "selection_bias", "in_sample_vs_fresh"}
    assert {p.stem for p in fig_dir.glob("*.svg")} == names
    for n in names:
        ET.parse(fig_dir / f"{n}.svg")
        png = (fig_dir / f"{n}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_byte_for_byte_reproducible(report):
    """Built again by the library (the fixture's was built by `moqwk report`): same bytes."""
    run, html_path = report
    before = {p: p.read_bytes() for p in [html_path, *(run / "reports/figures").iterdir()]}
    build_report(run)
    after = {p: p.read_bytes() for p in [html_path, *(run / "reports/figures").iterdir()]}
    assert before == after


# --------------------------------------------------------------------------- what is missing


def test_without_study_or_compare_the_report_says_what_is_missing(report, tmp_path):
    run, _ = report
    bare = tmp_path / "bare"
    shutil.copytree(run, bare)
    (bare / "study.db").unlink()
    shutil.rmtree(bare / "compare")
    (bare / "artifacts/residuals_baseline_oof.csv").unlink()  # as selected by an older moqwk
    html = build_report(bare, n_boot=N_BOOT).html.read_text()
    assert "baseline config&#x27;s per-essay predictions are not in the run" in html
    assert "No compare.json found" in html
    assert not (bare / "reports/figures/in_sample_vs_fresh.svg").exists(), "stale figure removed"
    assert (bare / "reports/figures/selection_bias.svg").exists()  # from selected_params.json
    data = load_run(bare)
    assert set(data.oof) == {"selected"}


def test_moqwk_report_on_a_run_without_selection_exits_7(tmp_path, capsys):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts/optuna_trials.json").write_text("[]")
    assert main(["report", "--run-dir", str(tmp_path)]) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "moqwk select" in err[0]
    with pytest.raises(RunDirError):
        load_run(tmp_path / "nowhere")


def test_moqwk_report_cli_writes_the_page(reported_run):
    assert f"wrote {reported_run.html} and 6 figure(s)" in reported_run.stdout

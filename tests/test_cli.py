"""The ``moqwk`` command in-process (``moqwk.cli.main``) plus one run of the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import cohen_kappa_score

from moqwk.cli import main
from moqwk.config import load_config
from moqwk.data.corpus import load_corpus

OOF_COLUMNS = ["id", "prompt", "fold", "repeat", "y_true", "y_pred_raw", "y_pred_mapped",
               "y_pred", "residual", "mapping_fallback", "in_low_tail", "in_high_tail"]
METRIC_KEYS = {"worst_prompt_qwk", "mean_qwk", "pooled_qwk", "low_tail_mae", "high_tail_mae",
               "low_tail_bias", "high_tail_bias"}


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def edit_config(src: Path, dst: Path, **changes: dict) -> Path:
    raw = yaml.safe_load(src.read_text())
    for section, values in changes.items():
        raw.setdefault(section, {}).update(values)
    dst.write_text(yaml.safe_dump(raw))
    return dst


def read_oof(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "artifacts/residuals_cv_val_oof.csv",
                       dtype={"id": str, "prompt": str})


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "artifacts/cv_metrics.json").read_text())


def check_partition(folds_of_repeat: list[list[str]], ids: set[str], n_folds: int) -> None:
    """Every id in exactly one validation fold of this repeat; no fold empty."""
    assert len(folds_of_repeat) == n_folds
    assert all(folds_of_repeat)
    counts = Counter(i for fold in folds_of_repeat for i in fold)
    assert set(counts) == ids
    assert set(counts.values()) == {1}


def folds_per_prompt(folds_of_repeat: list[list[str]], prompt_of: dict[str, str]) -> dict:
    seen: dict[str, set[int]] = {}
    for k, fold in enumerate(folds_of_repeat):
        for i in fold:
            seen.setdefault(prompt_of[i], set()).add(k)
    return seen


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, demo_config_yaml: str) -> SimpleNamespace:
    """One ``moqwk cv`` of the demo config, shared by the artifact tests (read-only)."""
    d = tmp_path_factory.mktemp("cli-baseline")
    cfg = d / "config.yaml"
    cfg.write_text(demo_config_yaml)
    run_dir = d / "run"
    assert main(["cv", "--config", str(cfg), "--run-dir", str(run_dir)]) == 0
    return SimpleNamespace(config=cfg, run_dir=run_dir, oof=read_oof(run_dir),
                           metrics=read_metrics(run_dir))


@pytest.fixture(scope="module")
def demo_prompt_of(demo_config_yaml: str) -> dict[str, str]:
    from moqwk.data.demo_corpus import make_demo_corpus

    df = make_demo_corpus(0)
    return dict(zip(df["essay_id"], df["prompt"], strict=True))


# --------------------------------------------------------------------------- cv artifacts


def test_cv_writes_its_artifacts(baseline: SimpleNamespace) -> None:
    d = baseline.run_dir
    for rel in ("splits.json", "artifacts/residuals_cv_val_oof.csv", "artifacts/cv_metrics.json",
                "reports/residual_diagnostics.md"):
        assert (d / rel).is_file(), rel
    assert not list(d.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_residuals_csv(baseline: SimpleNamespace, demo_prompt_of: dict[str, str]) -> None:
    oof = baseline.oof
    assert list(oof.columns) == OOF_COLUMNS
    assert len(oof) == 720 and oof["id"].is_unique
    assert set(oof["id"]) == set(demo_prompt_of)
    assert (oof["prompt"] == oof["id"].map(demo_prompt_of)).all()
    assert set(oof["repeat"]) == {0} and set(oof["fold"]) == set(range(5))
    lo, hi, step = 1.0, 5.0, 0.5
    y, yp, raw = oof["y_true"], oof["y_pred"], oof["y_pred_raw"]
    assert y.between(lo, hi).all() and yp.between(lo, hi).all()
    k = (yp - lo) / step
    np.testing.assert_allclose(k, k.round(), atol=1e-9)  # y_pred on the scale's grid
    np.testing.assert_allclose(oof["residual"], yp - y, atol=1e-9)
    snapped = np.clip(lo + np.rint((raw - lo) / step) * step, lo, hi)
    near_half = np.abs(((raw - lo) / step) % 1 - 0.5) < 1e-4  # %.6g rounding of y_pred_raw
    assert ((snapped == yp) | near_half).all()
    assert raw.nunique() > 100  # unrounded predictions, not the snapped ones
    # the fold column is the recorded prompt_holdout fold
    rec = json.loads((baseline.run_dir / "splits.json").read_text())["schemes"]["prompt_holdout"]
    fold_of = {i: k for k, fold in enumerate(rec["repeats"][0]) for i in fold}
    assert (oof["fold"] == oof["id"].map(fold_of)).all()


def test_cv_metrics_json(baseline: SimpleNamespace) -> None:
    m = baseline.metrics
    assert METRIC_KEYS <= set(m)
    assert all(isinstance(m[k], float) and np.isfinite(m[k]) for k in METRIC_KEYS)
    assert m["scheme"] == "prompt_holdout"
    assert m["n_essays"] == 720 and m["n_prompts"] == 10
    assert m["scale"] == {"kind": "global", "min": 1.0, "max": 5.0, "step": 0.5}
    splits = json.loads((baseline.run_dir / "splits.json").read_text())
    assert m["splits_sha256"] == splits["schemes"]["prompt_holdout"]["sha256"]
    assert m["data_hash"] == splits["data_hash"]
    assert m["params"]["n_estimators"] == 60  # the config's baseline
    # the demo corpus is learnable: a broken feature or mapping path lands far below this
    assert 0.45 < m["mean_qwk"] < 0.9
    assert m["worst_prompt_qwk"] <= m["mean_qwk"]
    # shrinkage toward the middle: over-predicted low tail, under-predicted high tail
    assert m["low_tail_bias"] > 0 > m["high_tail_bias"]


def test_metrics_match_an_independent_recomputation(baseline: SimpleNamespace) -> None:
    """Per-prompt QWK with scikit-learn over the FULL label range, tails from the CSV alone."""
    oof, m = baseline.oof, baseline.metrics
    lo, hi, step = 1.0, 5.0, 0.5
    labels = list(range(int(round((hi - lo) / step)) + 1))

    def level(v: pd.Series) -> np.ndarray:
        return np.rint((v.to_numpy(float) - lo) / step).astype(int)

    qwk = {p: cohen_kappa_score(level(g["y_true"]), level(g["y_pred"]), weights="quadratic",
                                labels=labels)
           for p, g in oof.groupby("prompt")}
    n = oof.groupby("prompt").size()
    eligible = {p: q for p, q in qwk.items() if n[p] >= 20}
    assert set(qwk) - set(eligible) == {"P10"}  # 13 essays: scored, not in the objective

    rows = {r["prompt"]: r for r in m["per_prompt"]}
    assert set(rows) == set(qwk)
    for p, q in qwk.items():
        assert rows[p]["qwk"] == pytest.approx(q, abs=1e-9), p
        assert rows[p]["n"] == n[p] and rows[p]["eligible"] == (p in eligible)
    assert m["worst_prompt_qwk"] == pytest.approx(min(eligible.values()), abs=1e-9)
    assert m["worst_prompt"] == min(eligible, key=eligible.get)
    assert m["mean_qwk"] == pytest.approx(np.mean(list(eligible.values())), abs=1e-9)
    pooled = cohen_kappa_score(level(oof["y_true"]), level(oof["y_pred"]), weights="quadratic",
                               labels=labels)
    assert m["pooled_qwk"] == pytest.approx(pooled, abs=1e-9)

    z_true = (oof["y_true"] - lo) / (hi - lo)
    err = (oof["y_pred"] - oof["y_true"]) / (hi - lo)
    low, high = z_true <= 0.25, z_true >= 0.75
    assert (oof["in_low_tail"] == low).all() and (oof["in_high_tail"] == high).all()
    assert (oof.loc[low, "y_true"] <= 2.0).all() and (oof.loc[high, "y_true"] >= 4.0).all()
    assert low.sum() == m["low_tail"]["n"] > 0 and high.sum() == m["high_tail"]["n"] > 0
    assert m["low_tail_mae"] == pytest.approx(err[low].abs().mean(), abs=1e-9)
    assert m["high_tail_mae"] == pytest.approx(err[high].abs().mean(), abs=1e-9)
    assert m["low_tail_bias"] == pytest.approx(err[low].mean(), abs=1e-9)
    assert m["high_tail_bias"] == pytest.approx(err[high].mean(), abs=1e-9)
    assert m["low_tail"]["mae_units"] == pytest.approx(
        (oof.loc[low, "y_pred"] - oof.loc[low, "y_true"]).abs().mean(), abs=1e-9)


def test_residual_diagnostics_report(baseline: SimpleNamespace) -> None:
    text = (baseline.run_dir / "reports/residual_diagnostics.md").read_text()
    m = baseline.metrics
    assert text.startswith("# Residual diagnostics: baseline")
    assert f"| worst-prompt QWK | {m['worst_prompt_qwk']:.3f} ({m['worst_prompt']}) |" in text
    assert f"| mean per-prompt QWK | {m['mean_qwk']:.3f} |" in text
    assert f"| low | {m['low_tail']['n']} | {m['low_tail_mae']:.3f} |" in text
    assert "| P10 | 13 |" in text and text.split("| P10 | 13 |")[1].split("\n")[0].endswith("no |")
    assert '"n_estimators": 60' in text


# --------------------------------------------------------------------------- splits


def test_prompt_holdout_never_leaks_a_prompt(tmp_path: Path, demo_config_path: Path,
                                             demo_prompt_of: dict[str, str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg = edit_config(demo_config_path, tmp_path / "r3.yaml", cv={"repeats": 3})
    rc, out, err = run(capsys, "splits", "--config", cfg, "--run-dir", tmp_path / "run")
    assert rc == 0, err
    assert "prompt_holdout: 5 folds x 3 repeat(s)" in out
    rec = json.loads((tmp_path / "run/splits.json").read_text())
    ids = set(demo_prompt_of)
    ph = rec["schemes"]["prompt_holdout"]
    assert len(ph["repeats"]) == 3
    for folds in ph["repeats"]:
        check_partition(folds, ids, 5)
        seen = folds_per_prompt(folds, demo_prompt_of)
        assert len(seen) == 10
        assert all(len(ks) == 1 for ks in seen.values()), seen  # one validation fold per prompt
    assert len({json.dumps(r) for r in ph["repeats"]}) > 1  # repeats differ
    st = rec["schemes"]["stratified_text"]
    for folds in st["repeats"]:
        check_partition(folds, ids, 5)
        assert any(len(ks) > 1 for ks in folds_per_prompt(folds, demo_prompt_of).values())


def test_cv_splits_json_is_a_prompt_holdout_partition(baseline: SimpleNamespace,
                                                      demo_prompt_of: dict[str, str]) -> None:
    rec = json.loads((baseline.run_dir / "splits.json").read_text())
    assert list(rec["schemes"]) == ["prompt_holdout"]
    (folds,) = rec["schemes"]["prompt_holdout"]["repeats"]
    check_partition(folds, set(demo_prompt_of), 5)
    assert all(len(ks) == 1 for ks in folds_per_prompt(folds, demo_prompt_of).values())


def test_changed_seed_on_the_same_run_dir_fails(baseline: SimpleNamespace, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                assert_one_error_line) -> None:
    """The run's own config.yaml guards it first (naming the field); splits.json guards it too
    when that copy is gone."""
    before = (baseline.run_dir / "splits.json").read_text()
    metrics_before = (baseline.run_dir / "artifacts/cv_metrics.json").read_text()
    cfg = edit_config(baseline.config, tmp_path / "seed43.yaml", cv={"seed": 43})
    rc, _out, err = run(capsys, "cv", "--config", cfg, "--run-dir", baseline.run_dir)
    assert rc == 2
    assert_one_error_line(err, "--config differs", "cv.seed", "new --run-dir")
    copy = baseline.run_dir / "config.yaml"
    saved = copy.read_text()
    copy.unlink()
    try:
        rc, _out, err = run(capsys, "cv", "--config", cfg, "--run-dir", baseline.run_dir)
    finally:
        copy.write_text(saved)
    assert rc == 3
    assert_one_error_line(err, "splits", "prompt_holdout", "a run never changes its splits",
                          "new --run-dir")
    assert (baseline.run_dir / "splits.json").read_text() == before
    assert (baseline.run_dir / "artifacts/cv_metrics.json").read_text() == metrics_before


def test_changed_n_folds_or_data_on_the_same_run_dir_fails(
        baseline: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        assert_one_error_line) -> None:
    cfg = edit_config(baseline.config, tmp_path / "k4.yaml", cv={"n_folds": 4})
    rc, _out, err = run(capsys, "splits", "--config", cfg, "--run-dir", baseline.run_dir,
                        "--scheme", "prompt_holdout")
    assert rc == 2
    assert_one_error_line(err, "cv.n_folds")
    cfg = edit_config(baseline.config, tmp_path / "seed1.yaml", data={"demo_seed": 1})
    rc, _out, err = run(capsys, "splits", "--config", cfg, "--run-dir", baseline.run_dir,
                        "--scheme", "prompt_holdout")
    assert rc == 2
    assert_one_error_line(err, "data.demo_seed", "new --run-dir")


def test_changed_data_file_on_the_same_run_dir_fails(
        tmp_path: Path, demo_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str],
        assert_one_error_line) -> None:
    """Same config, other content in the data file: the run record's data hash refuses it."""
    data = tmp_path / "essays.csv"
    demo_frame.to_csv(data, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"path": str(data), "id_column": "essay_id"},
        "scale": {"kind": "global", "min": 1.0, "max": 5.0, "step": 0.5},
        "features": {"word": {"svd_components": 8}, "char": {"svd_components": 8}},
        "model": {"nthread": 1}, "baseline": {"params": {"n_estimators": 20}}}))
    run_dir = tmp_path / "run"
    rc, _out, err = run(capsys, "cv", "--config", cfg, "--run-dir", run_dir)
    assert rc == 0, err
    demo_frame.assign(score=demo_frame["score"].where(demo_frame.index != 0, 5.0)).to_csv(
        data, index=False)
    before = (run_dir / "artifacts/cv_metrics.json").read_text()
    rc, _out, err = run(capsys, "cv", "--run-dir", run_dir)
    assert rc == 3
    assert_one_error_line(err, "other data", "new --run-dir")
    assert (run_dir / "artifacts/cv_metrics.json").read_text() == before


def test_same_config_reuses_recorded_splits(baseline: SimpleNamespace,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = json.loads((baseline.run_dir / "splits.json").read_text())
    rc, out, err = run(capsys, "splits", "--config", baseline.config, "--run-dir",
                       baseline.run_dir, "--scheme", "prompt_holdout")
    assert rc == 0, err
    assert before["schemes"]["prompt_holdout"]["sha256"][:16] in out
    assert json.loads((baseline.run_dir / "splits.json").read_text()) == before


def test_overridden_repeats_are_recorded_apart(baseline: SimpleNamespace, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              assert_one_error_line) -> None:
    """``ensure_splits(repeats=3)`` (e.g. a stability check) records its own fold set; it must
    neither clash with the config's folds nor let a changed cv.repeats pass silently."""
    from moqwk.run.splits_file import ensure_splits
    from moqwk.run.workspace import Workspace

    run_dir = tmp_path / "run"
    with pytest.warns(UserWarning):
        ws = Workspace.open(load_config(baseline.config), run_dir)
    one = ensure_splits(run_dir, ws.corpus, ws.config, "prompt_holdout")
    three = ensure_splits(run_dir, ws.corpus, ws.config, "prompt_holdout", repeats=3)
    again = ensure_splits(run_dir, ws.corpus, ws.config, "prompt_holdout", repeats=3)
    assert (one.repeats, three.repeats) == (1, 3) and again.sha256 == three.sha256
    rec = json.loads((run_dir / "splits.json").read_text())["schemes"]
    assert rec["prompt_holdout"]["sha256"] == one.sha256
    assert rec["prompt_holdout@seed=42,repeats=3"]["sha256"] == three.sha256
    cfg = edit_config(baseline.config, tmp_path / "r3.yaml", cv={"repeats": 3})
    rc, _out, err = run(capsys, "splits", "--config", cfg, "--run-dir", run_dir,
                        "--scheme", "prompt_holdout")
    assert rc == 2
    assert_one_error_line(err, "cv.repeats")
    (run_dir / "config.yaml").unlink()  # without the run's config copy, splits.json guards it
    rc, _out, err = run(capsys, "splits", "--config", cfg, "--run-dir", run_dir,
                        "--scheme", "prompt_holdout")
    assert rc == 3
    assert_one_error_line(err, "restore cv.n_folds/repeats/seed")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text,needle", [
    ("data: {demo: true}\ncv: {n_folds: 1}\n", "cv.n_folds"),
    ("data: {demo: true}\ncv:\n  n_folds: [5\n", "not valid YAML at line"),
    ("data: {demo: true}\nfeatures: {word: {svd_components: 0}}\n", "features.word.svd_components"),
    ("colour: blue\n", "colour: unknown section"),
    ("", "the file is empty"),
    (None, "not found; write one with `moqwk init`"),
])
def test_bad_config_exits_2_with_one_error_line(tmp_path: Path, text: str | None, needle: str,
                                                capsys: pytest.CaptureFixture[str],
                                                assert_one_error_line) -> None:
    cfg = tmp_path / "config.yaml"
    if text is not None:
        cfg.write_text(text)
    rc, out, err = run(capsys, "cv", "--config", cfg, "--run-dir", tmp_path / "run")
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert_one_error_line(err, needle)
    assert out == ""


@pytest.mark.parametrize("where", ["global", "subcommand"])
def test_debug_shows_the_traceback(tmp_path: Path, where: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("data: {demo: true}\ncv: {n_folds: 1}\n")
    argv = ["cv", "--config", cfg, "--run-dir", tmp_path / "run"]
    argv = ["--debug", *argv] if where == "global" else [*argv, "--debug"]
    rc, _out, err = run(capsys, *argv)
    assert rc == 2
    assert "Traceback (most recent call last)" in err
    assert "moqwk.errors.ConfigError: cv.n_folds" in err
    assert err.rstrip().splitlines()[-1].startswith("Error: cv.n_folds")


def test_main_leaves_the_callers_warning_settings_alone(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    cfg = tmp_path / "config.yaml"
    cfg.write_text("data: {demo: true}\ncv: {n_folds: 1}\n")
    before_show, before_filters = warnings.showwarning, list(warnings.filters)
    rc, _out, _err = run(capsys, "search", "--config", cfg, "--run-dir", tmp_path / "run")
    assert rc == 2
    assert warnings.showwarning is before_show
    assert warnings.filters == before_filters


@pytest.mark.parametrize("command, says", [
    ("search", "finished trials are kept"), ("grid", "finished trials are kept"),
    ("fit", "no model was written"), ("select", "written atomically")])
def test_ctrl_c_says_what_the_interrupted_command_leaves(capsys, command, says) -> None:
    """fit has no trials: its Ctrl-C used to print the search's "finished trials are kept"."""
    from moqwk.cli import _run

    def ctrl_c(_args: object) -> int:
        raise KeyboardInterrupt

    assert _run(SimpleNamespace(func=ctrl_c, debug=False, command=command)) == 130
    err = capsys.readouterr().err
    assert err.startswith("Interrupted: ") and says in err
    assert ("trials" in err) == (command in ("search", "grid"))


def test_an_error_raised_while_handling_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """Optuna's tell can turn a Ctrl-C into an UnboundLocalError whose context is the interrupt."""
    from moqwk.cli import _run

    def interrupted_inside_tell(_args: object) -> int:
        try:
            raise KeyboardInterrupt
        finally:
            raise UnboundLocalError("cannot access local variable 'frozen_trial'")

    def plain_bug(_args: object) -> int:
        raise UnboundLocalError("a real bug")

    assert _run(SimpleNamespace(func=interrupted_inside_tell, debug=False,
                                command="search")) == 130
    assert "Interrupted: finished trials are kept" in capsys.readouterr().err
    assert _run(SimpleNamespace(func=plain_bug, debug=False)) == 1
    assert "UnboundLocalError: a real bug" in capsys.readouterr().err
    assert _run(SimpleNamespace(func=interrupted_inside_tell, debug=True)) == 130
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "Interrupted:" in err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _err = run(capsys)
    assert rc == 2 and "exit codes:" in out and "cv" in out


# --------------------------------------------------------------------------- schemes, params


def test_scheme_stratified_text(demo_config_path: Path, tmp_path: Path,
                                demo_prompt_of: dict[str, str],
                                capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    rc, out, err = run(capsys, "cv", "--config", demo_config_path, "--run-dir", run_dir,
                       "--scheme", "stratified_text")
    assert rc == 0, err
    assert "CV summary (stratified_text)" in out
    m = read_metrics(run_dir)
    rec = json.loads((run_dir / "splits.json").read_text())
    assert m["scheme"] == "stratified_text" and list(rec["schemes"]) == ["stratified_text"]
    assert m["splits_sha256"] == rec["schemes"]["stratified_text"]["sha256"]
    oof = read_oof(run_dir)
    assert list(oof.columns) == OOF_COLUMNS and oof["id"].is_unique and len(oof) == 720
    # prompts are spread over folds (not held out), and score levels are stratified
    assert oof.groupby("prompt")["fold"].nunique().max() > 1
    share_high = oof.groupby("fold")["in_high_tail"].mean()
    assert share_high.max() - share_high.min() < 0.05


def test_params_file_is_used(baseline: SimpleNamespace, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    params = {"max_depth": 2, "learning_rate": 0.3, "n_estimators": 5}
    pfile = tmp_path / "params.json"
    pfile.write_text(json.dumps(params))
    run_dir = tmp_path / "run"
    rc, _out, err = run(capsys, "cv", "--config", baseline.config, "--run-dir", run_dir,
                        "--params", pfile)
    assert rc == 0, err
    m = read_metrics(run_dir)
    assert m["params"] == {**params, "mapping.method": "round"}  # the config's mapping: round
    oof = read_oof(run_dir)
    base = baseline.oof
    assert (oof["id"] == base["id"]).all() and (oof["fold"] == base["fold"]).all()
    assert not np.allclose(oof["y_pred_raw"], base["y_pred_raw"])  # other model, other numbers
    assert m["mean_qwk"] != baseline.metrics["mean_qwk"]
    report = (run_dir / "reports/residual_diagnostics.md").read_text()
    assert report.startswith("# Residual diagnostics: given params")
    assert '"n_estimators": 5' in report

    # selected_params.json's shape ({"params": {...}}) is accepted and gives the same run
    wrapped = tmp_path / "selected_params.json"
    wrapped.write_text(json.dumps({"params": params, "trial": 3}))
    rc, _out, err = run(capsys, "cv", "--config", baseline.config, "--run-dir",
                        tmp_path / "run2", "--params", wrapped)
    assert rc == 0, err
    pd.testing.assert_frame_equal(read_oof(tmp_path / "run2"), oof)


@pytest.mark.parametrize("content,needle", [(None, "not found"), ("{nope", "not valid JSON"),
                                            ("[1, 2]", "JSON object")])
def test_bad_params_file_exits_2(baseline: SimpleNamespace, tmp_path: Path, content: str | None,
                                 needle: str, capsys: pytest.CaptureFixture[str],
                                 assert_one_error_line) -> None:
    pfile = tmp_path / "params.json"
    if content is not None:
        pfile.write_text(content)
    rc, _out, err = run(capsys, "cv", "--config", baseline.config, "--run-dir",
                        tmp_path / "run", "--params", pfile)
    assert rc == 2
    assert_one_error_line(err, "--params", needle)


# --------------------------------------------------------------------------- init


def _init_argv(csv: Path) -> list[object]:
    return ["init", "--data", csv, "--id-column", "essay_id", "--text-column", "text",
            "--prompt-column", "prompt", "--score-column", "score"]


def test_init_then_cv(tmp_path: Path, demo_frame: pd.DataFrame,
                      capsys: pytest.CaptureFixture[str], error_lines) -> None:
    csv = tmp_path / "data" / "essays.csv"
    csv.parent.mkdir()
    demo_frame.to_csv(csv, index=False)
    cfg = tmp_path / "configs" / "demo.yaml"
    rc, out, err = run(capsys, *_init_argv(csv), "-o", cfg)
    assert rc == 0, err
    assert f"Wrote {cfg}" in out and "moqwk cv --config" in out
    text = cfg.read_text()
    assert "path: '../data/essays.csv'" in text  # relative to the config file
    assert "kind: global" in text and "step: 0.5" in text
    config = load_config(cfg)
    assert config.data.path == csv.resolve()
    assert (config.scale.kind, config.scale.min, config.scale.step) == ("global", 1.0, 0.5)
    assert config.cv.n_folds == 5
    # the inferred range is the observed one, and the file says so where it can be widened
    seen = f"lowest and highest scores seen ({demo_frame['score'].min():g} and " \
           f"{demo_frame['score'].max():g})"
    assert seen in text and config.scale.max == demo_frame["score"].max()

    # keep it fast: smaller n-gram SVDs and fewer trees than the starter's, one XGBoost thread
    assert text.count("svd_components: 64") == 2 and text.count("n_estimators: 300") == 1
    cfg.write_text(text.replace("svd_components: 64", "svd_components: 16")
                   .replace("n_estimators: 300", "n_estimators: 100") + "model: {nthread: 1}\n")
    config = load_config(cfg)
    run_dir = tmp_path / "runs" / "baseline"
    rc, out, err = run(capsys, "cv", "--config", cfg, "--run-dir", run_dir)
    assert rc == 0, err
    assert error_lines(err) == []
    m = read_metrics(run_dir)
    assert m["n_essays"] == 720 and m["scale"]["kind"] == "global"
    # baseline.params with the config's mapping: (the starter writes the default, stretch)
    assert m["params"] == {**config.baseline_params, "mapping.method": "stretch"}
    line = next(ln for ln in out.splitlines() if ln.startswith("scored with mapping "))
    assert line.startswith("scored with mapping stretch (")  # the method and its params
    assert line.endswith("; features handcrafted, word, char, lexical")  # one line, unwrapped
    assert 0.45 < m["mean_qwk"] < 0.9
    assert list(read_oof(run_dir).columns) == OOF_COLUMNS


def test_init_prints_to_stdout_and_refuses_to_overwrite(
        tmp_path: Path, demo_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], assert_one_error_line) -> None:
    demo_frame.to_csv(tmp_path / "essays.csv", index=False)
    monkeypatch.chdir(tmp_path)
    rc, out, _err = run(capsys, *_init_argv(Path("essays.csv")))
    assert rc == 0
    raw = yaml.safe_load(out)
    # printed, the config may be redirected anywhere: the path must not depend on where it lands
    assert raw["data"]["path"] == str((tmp_path / "essays.csv").resolve())
    assert raw["scale"]["kind"] == "global"
    elsewhere = tmp_path / "configs"
    elsewhere.mkdir()
    (elsewhere / "printed.yaml").write_text(out)
    assert load_config(elsewhere / "printed.yaml").data.path == (tmp_path / "essays.csv").resolve()

    cfg = tmp_path / "config.yaml"
    cfg.write_text("keep me\n")
    rc, _out, err = run(capsys, *_init_argv(Path("essays.csv")), "-o", cfg)
    assert rc == 2
    assert_one_error_line(err, "exists", "--force")
    assert cfg.read_text() == "keep me\n"
    rc, _out, err = run(capsys, *_init_argv(Path("essays.csv")), "-o", cfg, "--force")
    assert rc == 0, err
    assert load_config(cfg).data.path == (tmp_path / "essays.csv").resolve()


def test_init_per_prompt_scales(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from moqwk.data.demo_corpus import make_demo_corpus

    df = make_demo_corpus(0, per_prompt_scales=True)
    df.to_csv(tmp_path / "essays.csv", index=False)
    cfg = tmp_path / "config.yaml"
    rc, _out, err = run(capsys, *_init_argv(tmp_path / "essays.csv"), "-o", cfg)
    assert rc == 0, err
    config = load_config(cfg)
    assert config.scale.kind == "per_prompt"
    assert dict(config.scale.per_prompt["P02"]) == {"min": 0, "max": 60, "step": 1}
    with pytest.warns(UserWarning, match="P10"):
        corpus = load_corpus(config)  # every score fits the stated scales
    assert not corpus.scales.is_global and len(corpus.scales.per_prompt) == 10


def test_init_on_one_prompt_writes_a_loadable_config(
        tmp_path: Path, demo_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str],
        assert_one_error_line) -> None:
    """init's config parses; cv then says why one prompt cannot be cross-validated."""
    one = demo_frame[demo_frame.prompt == "P02"]
    one.to_csv(tmp_path / "essays.csv", index=False)
    cfg = tmp_path / "config.yaml"
    rc, _out, err = run(capsys, *_init_argv(tmp_path / "essays.csv"), "-o", cfg)
    assert rc == 0, err
    assert load_config(cfg).cv.n_folds == 2
    rc, _out, err = run(capsys, "cv", "--config", cfg, "--run-dir", tmp_path / "run")
    assert rc == 3
    assert_one_error_line(err, "only 1 prompt", "add prompts")


def test_init_bad_column_and_scores(tmp_path: Path, demo_frame: pd.DataFrame,
                                    capsys: pytest.CaptureFixture[str],
                                    assert_one_error_line) -> None:
    csv = tmp_path / "essays.csv"
    demo_frame.to_csv(csv, index=False)
    argv = _init_argv(csv)
    argv[-1] = "Overall"
    rc, _out, err = run(capsys, *argv)
    assert rc == 3
    assert_one_error_line(err, "'Overall' (score) not found", "--score-column")

    bad = demo_frame.copy()
    bad["score"] = bad["score"].astype(object)
    bad.loc[2, "score"] = "seven"
    bad.to_csv(csv, index=False)
    rc, _out, err = run(capsys, *_init_argv(csv))
    assert rc == 3
    assert_one_error_line(err, "'score'", "demo-0003")

    rc, _out, err = run(capsys, *_init_argv(tmp_path / "missing.csv"))
    assert rc == 3
    assert_one_error_line(err, "missing.csv not found")

    frame = demo_frame.iloc[:0]
    frame.to_csv(csv, index=False)
    rc, _out, err = run(capsys, *_init_argv(csv))
    assert rc == 3
    assert_one_error_line(err, "has no essays")

    # levels 0, 0.3 and 1 fit no step: one DataError line (exit 3), not a crash (exit 1)
    pd.DataFrame({"essay_id": list("abcd"), "text": ["x y", "x z", "x w", "x v"],
                  "prompt": ["P1", "P1", "P2", "P2"], "score": [0, 0.3, 1, 0]}).to_csv(
        csv, index=False)
    rc, _out, err = run(capsys, *_init_argv(csv))
    assert rc == 3
    assert_one_error_line(err, "'score': cannot infer a scale", "scale section")


# --------------------------------------------------------------------------- console script


def test_console_script_exit_code_and_error_line(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "moqwk"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "moqwk.cli"]
    cfg = tmp_path / "config.yaml"
    cfg.write_text("data: {demo: true}\ntails: {low_band: 0.9}\n")
    proc = subprocess.run([*cmd, "cv", "--config", str(cfg), "--run-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("Error: tails.low_band: must be below tails.high_band")
    assert proc.stdout == ""
    assert not (tmp_path / "r").exists()  # nothing written for a bad config

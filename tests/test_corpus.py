"""Corpus validation, scale inference and loading (moqwk.data.corpus)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moqwk.config import DataConfig, ScaleConfig, parse_config
from moqwk.core.scale import Scale
from moqwk.data.corpus import infer_scale, load_corpus, read_table, validate_frame
from moqwk.data.demo_corpus import DEMO_PER_PROMPT_SCALES, make_demo_corpus
from moqwk.errors import DataError

DC = DataConfig(path=None)  # columns essay_id, text, prompt, score
INFER = ScaleConfig()
GLOBAL = ScaleConfig(kind="global", min=1.0, max=5.0, step=0.5)
LEVELS = np.arange(1.0, 5.01, 0.5)


def frame(n_prompts: int = 6, per_prompt: int = 9) -> pd.DataFrame:
    """A valid corpus: every prompt observes all nine levels 1.0-5.0."""
    rows = []
    for p in range(n_prompts):
        for j in range(per_prompt):
            i = len(rows)
            rows.append({"essay_id": f"e{i:03d}", "prompt": f"P{p}",
                         "text": f"Essay {i} on prompt {p}. It has words.",
                         "score": float(LEVELS[j % len(LEVELS)])})
    return pd.DataFrame(rows)


def validate(df: pd.DataFrame, sc: ScaleConfig = INFER, *, n_folds: int = 5,
             min_prompt_n: int = 1, dc: DataConfig = DC):
    return validate_frame(df, dc, sc, n_folds=n_folds, min_prompt_n=min_prompt_n,
                          source="essays.csv")


def data_error(df: pd.DataFrame, sc: ScaleConfig = INFER, **kw) -> str:
    with pytest.raises(DataError) as ei:
        validate(df, sc, **kw)
    assert ei.value.exit_code == 3
    return str(ei.value)


# --------------------------------------------------------------------------- validation errors


def test_valid_frame_builds_a_corpus() -> None:
    df = frame()
    c = validate(df)
    assert len(c) == len(df)
    assert c.ids.tolist() == df["essay_id"].tolist()
    assert c.prompt_names == tuple(f"P{p}" for p in range(6))
    assert c.scales.global_scale == Scale(1.0, 5.0, 0.5)
    np.testing.assert_allclose(c.y_norm, (df["score"] - 1.0) / 4.0)


@pytest.mark.parametrize("role,column", [("id", "essay_id"), ("text", "text"),
                                         ("prompt", "prompt"), ("score", "score")])
def test_missing_column_names_it_lists_columns_and_the_setting(role: str, column: str) -> None:
    msg = data_error(frame().drop(columns=[column]))
    assert f"{column!r} ({role}) not found in essays.csv" in msg
    others = [c for c in ("essay_id", "prompt", "text", "score") if c != column]
    assert all(c in msg for c in others)  # what the file does have
    assert f"set data.{role}_column" in msg


def test_missing_renamed_column_names_the_configured_name() -> None:
    dc = DataConfig(path=None, score_column="Overall")
    msg = data_error(frame(), dc=dc)
    assert "'Overall' (score) not found" in msg and "data.score_column" in msg


def test_a_header_without_rows_is_a_data_error(tmp_path: Path) -> None:
    frame().iloc[:0].to_csv(tmp_path / "essays.csv", index=False)
    msg = data_error(read_table(tmp_path / "essays.csv"))
    assert "essays.csv has no essays" in msg and "check data.path" in msg


def test_duplicate_ids_are_named() -> None:
    df = frame()
    df.loc[7, "essay_id"] = "e002"
    msg = data_error(df)
    assert "'essay_id'" in msg and "duplicate ids" in msg
    assert msg.count("e002") == 1  # named once, with both file lines (header = line 1)
    assert "e002 (lines 4, 9)" in msg
    assert "drop or rename" in msg


def test_many_offending_ids_are_truncated_with_a_count() -> None:
    df = frame()
    df["score"] = df["score"].astype(object)
    df.loc[:9, "score"] = "n/a"
    msg = data_error(df)
    assert "e000, e001, e002, e003, e004 (and 5 more)" in msg
    assert "e005" not in msg


def test_empty_ids_give_file_line_numbers(tmp_path: Path) -> None:
    df = frame()
    df.loc[3, "essay_id"] = ""
    csv = tmp_path / "essays.csv"
    df.to_csv(csv, index=False)
    msg = data_error(read_table(csv))
    assert "'essay_id'" in msg and "empty ids" in msg
    assert "rows 5 (file line numbers)" in msg  # header is line 1, row 0 is line 2
    assert "every essay needs an id" in msg


@pytest.mark.parametrize("bad", ["", "   \n\t", None, 123, np.nan])
def test_empty_or_non_text_essays_are_named(bad: object) -> None:
    df = frame()
    df["text"] = df["text"].astype(object)
    df.at[4, "text"] = bad
    msg = data_error(df)
    assert "'text'" in msg and "empty or non-text" in msg
    assert "ids e004;" in msg
    assert "remove them or fill in the text" in msg


@pytest.mark.parametrize("bad", [None, "", "  "])
def test_missing_prompt_is_named(bad: object) -> None:
    df = frame()
    df["prompt"] = df["prompt"].astype(object)
    df.loc[[2, 11], "prompt"] = bad  # a blank name is no prompt either (predict agrees)
    msg = data_error(df)
    assert "'prompt'" in msg and "e002, e011" in msg and "every essay needs a prompt" in msg


@pytest.mark.parametrize("bad", [np.nan, None, "three", "", "inf", float("inf"), "3,5"])
def test_nan_or_non_numeric_scores_are_named(bad: object) -> None:
    df = frame()
    df["score"] = df["score"].astype(object)
    df.at[5, "score"] = bad
    msg = data_error(df)
    assert "'score'" in msg and "NaN or non-numeric" in msg
    assert "ids e005;" in msg
    assert "drop those essays or fix their scores" in msg


def test_numeric_strings_are_scores() -> None:
    """A CSV read as text: "3.5" is a score."""
    df = frame()
    df["score"] = df["score"].map(str)
    assert validate(df).scores.tolist() == frame()["score"].tolist()


def test_off_scale_scores_are_named_with_the_scale() -> None:
    df = frame()
    df.loc[[3, 20], "score"] = [5.5, 0.0]
    msg = data_error(df, GLOBAL)
    assert "'score'" in msg and "off the scale (1 to 5 in steps of 0.5)" in msg
    assert "e003, e020" in msg
    assert "fix the scores or the scale section of the config" in msg


def test_off_step_scores_are_named() -> None:
    df = frame()
    df.loc[8, "score"] = 3.25
    msg = data_error(df, GLOBAL)
    assert "off the scale's step (1 to 5 in steps of 0.5)" in msg
    assert "ids e008;" in msg
    assert "fix the scores or the scale section" in msg


def test_off_scale_beats_off_step_in_the_message() -> None:
    df = frame()
    df.loc[1, "score"] = 3.25
    df.loc[2, "score"] = 9.0
    msg = data_error(df, GLOBAL)
    assert "off the scale (" in msg and "ids e002;" in msg and "e001" not in msg


def test_off_scale_on_a_per_prompt_scale() -> None:
    df = frame(n_prompts=5)
    per = {f"P{p}": {"min": 1.0, "max": 5.0, "step": 0.5} for p in range(5)}
    per["P2"] = {"min": 1.0, "max": 3.0, "step": 0.5}
    msg = data_error(df, ScaleConfig(kind="per_prompt", per_prompt=per))
    assert "off the scale (its prompt's scale)" in msg
    p2_high = df[(df.prompt == "P2") & (df.score > 3.0)]["essay_id"].tolist()
    assert ", ".join(p2_high[:5]) in msg


def test_fewer_prompts_than_folds() -> None:
    msg = data_error(frame(n_prompts=3), n_folds=5)
    assert "'prompt'" in msg and "3 prompts but cv.n_folds is 5" in msg
    assert "lower cv.n_folds to 3 or add prompts" in msg


@pytest.mark.parametrize("n_folds", [2, 5])
def test_one_prompt_is_not_enough(n_folds: int) -> None:
    """Not "lower cv.n_folds to 2": with one prompt no fold count works."""
    msg = data_error(frame(n_prompts=1), n_folds=n_folds)
    assert "'prompt'" in msg and "only 1 prompt" in msg and "needs at least 2" in msg
    assert "lower cv.n_folds" not in msg


def test_per_prompt_scale_missing_a_prompt() -> None:
    per = {f"P{p}": {"min": 1.0, "max": 5.0, "step": 0.5} for p in range(6) if p not in (2, 4)}
    msg = data_error(frame(), ScaleConfig(kind="per_prompt", per_prompt=per))
    assert "scale.per_prompt: no scale for prompt(s) P2, P4" in msg
    assert "add them to the config or use scale.kind: infer" in msg


def test_per_prompt_scale_keys_match_non_string_prompts() -> None:
    """Prompts read as numbers (Parquet) match per_prompt keys written as numbers in YAML."""
    df = frame(n_prompts=5)
    df["prompt"] = df["prompt"].str[1:].astype(int)
    per = {p: {"min": 1, "max": 5, "step": 0.5} for p in range(5)}
    c = validate(df, ScaleConfig(kind="per_prompt", per_prompt=per))
    assert c.prompt_names == ("0", "1", "2", "3", "4")


# --------------------------------------------------------------------------- small prompts


def test_small_prompts_warn_but_load() -> None:
    df = pd.concat([frame(n_prompts=5, per_prompt=30),
                    frame(n_prompts=1, per_prompt=7).assign(
                        prompt="tiny", essay_id=lambda d: "t" + d["essay_id"])])
    with pytest.warns(UserWarning, match=r"1 prompt\(s\) have fewer than min_prompt_n=20 "
                                         r"essays \(tiny\)"):
        c = validate(df, min_prompt_n=20)
    assert "tiny" in c.prompt_names and len(c) == 157


def test_no_warning_when_every_prompt_is_big_enough() -> None:
    declared = ScaleConfig(kind="global", min=1.0, max=5.0, step=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate(frame(per_prompt=20), declared, min_prompt_n=20)


def test_an_inferred_scale_is_warned_about_as_a_leak() -> None:
    with pytest.warns(UserWarning, match="label leak.*Declare the rubric's range"):
        validate(frame(per_prompt=20), min_prompt_n=20)


# --------------------------------------------------------------------------- infer_scale


def test_infer_global_on_one_scale(demo_frame: pd.DataFrame) -> None:
    s = infer_scale(demo_frame["prompt"], demo_frame["score"])
    assert s.is_global
    # The observed range: the demo corpus (seed 0) has no 5.0, so inference can only see 4.5.
    assert s.global_scale == Scale(1.0, float(demo_frame["score"].max()), 0.5)
    assert demo_frame["score"].min() == 1.0


def test_infer_global_when_small_prompts_miss_levels() -> None:
    big = frame(n_prompts=5, per_prompt=27)
    small = pd.DataFrame({"essay_id": ["s1", "s2", "s3", "s4", "s5", "s6"],
                          "prompt": ["S1", "S1", "S1", "S2", "S2", "S2"],
                          "text": ["x"] * 6,
                          # S1 sees only 2.5-3.5; S2 only whole numbers (its own step looks 1.0)
                          "score": [2.5, 3.0, 3.5, 2.0, 3.0, 4.0]})
    df = pd.concat([big, small], ignore_index=True)
    s = infer_scale(df["prompt"], df["score"])
    assert s.is_global and s.global_scale == Scale(1.0, 5.0, 0.5)


def test_infer_global_on_a_fine_decimal_step() -> None:
    """A prompt starting at 0.3 on a 0.1 grid is on the grid (float division is inexact)."""
    levels = np.round(np.arange(0.0, 1.01, 0.1), 1).tolist()
    prompts = ["A"] * 33 + ["B"] * 3
    scores = levels * 3 + [0.3, 0.5, 0.7]
    s = infer_scale(pd.Series(prompts), pd.Series(scores))
    assert s.is_global and s.global_scale == Scale(0.0, 1.0, 0.1)


def test_infer_per_prompt_when_ranges_really_differ() -> None:
    """Two large prompts, 0-3 and 0-60: two scales, not unobserved levels of one."""
    a = pd.Series([0.0, 1.0, 2.0, 3.0] * 25)
    b = pd.Series(np.arange(61, dtype=float))
    prompts = pd.Series(["A"] * len(a) + ["B"] * len(b))
    s = infer_scale(prompts, pd.concat([a, b], ignore_index=True))
    assert not s.is_global
    assert s.per_prompt == {"A": Scale(0.0, 3.0, 1.0), "B": Scale(0.0, 60.0, 1.0)}


def test_infer_per_prompt_on_demo_per_prompt_scales() -> None:
    df = make_demo_corpus(0, per_prompt_scales=True)
    s = infer_scale(df["prompt"], df["score"])
    assert not s.is_global
    assert set(s.per_prompt) == set(DEMO_PER_PROMPT_SCALES)
    exact = []
    for p, (lo, hi, step) in DEMO_PER_PROMPT_SCALES.items():
        got = s.per_prompt[p]
        obs = df.loc[df.prompt == p, "score"]
        # Inference sees only observed levels: its range is the observed one, inside the
        # declared one; it equals the declared scale wherever the essays reach both ends.
        assert got == Scale(float(obs.min()), float(obs.max()), step)
        assert lo <= got.min and got.max <= hi
        if (obs.min(), obs.max()) == (lo, hi):
            exact.append(p)
            assert got == Scale(lo, hi, step)
    # P05, P09 and P10 (13 essays) do not reach their declared ends in seed 0.
    assert len(exact) >= 6 and {"P01", "P02", "P04"} <= set(exact)


def test_per_prompt_demo_validates_with_inferred_scales() -> None:
    df = make_demo_corpus(0, per_prompt_scales=True)
    c = validate(df)
    assert not c.scales.is_global
    assert c.y_norm.min() == 0.0 and c.y_norm.max() == 1.0
    # every prompt reaches both ends of its own inferred scale
    for p in c.prompt_names:
        z = c.y_norm[c.prompts == p]
        assert z.min() == 0.0 and z.max() == 1.0


def test_infer_single_level_prompt_does_not_crash() -> None:
    s = infer_scale(pd.Series(["A"] * 3), pd.Series([2.0, 2.0, 2.0]))
    assert s.global_scale == Scale(2.0, 3.0, 1.0)


# --------------------------------------------------------------------------- loading files


def _config(tmp_path: Path, data_file: str, **cv) -> object:
    raw = {"data": {"path": data_file}, "cv": {"min_prompt_n": 20, **cv}}
    return parse_config(raw, base_dir=tmp_path)


def test_csv_and_parquet_load_the_same_corpus(tmp_path: Path, demo_frame: pd.DataFrame) -> None:
    demo_frame.to_csv(tmp_path / "essays.csv", index=False)
    demo_frame.to_parquet(tmp_path / "essays.parquet", index=False)
    with pytest.warns(UserWarning, match="P10"):
        from_csv = load_corpus(_config(tmp_path, "essays.csv"))
    with pytest.warns(UserWarning, match="P10"):
        from_pq = load_corpus(_config(tmp_path, "essays.parquet"))
    for c in (from_csv, from_pq):
        assert len(c) == 720 and len(c.prompt_names) == 10
        assert c.ids.tolist() == demo_frame["essay_id"].tolist()
        assert list(c.texts) == demo_frame["text"].tolist()  # newlines survive the CSV
        np.testing.assert_array_equal(c.scores, demo_frame["score"].to_numpy())
        assert c.scales.global_scale == Scale(1.0, 4.5, 0.5)
    assert from_csv.source.endswith("essays.csv") and from_pq.source.endswith("essays.parquet")
    assert from_csv.data_hash == from_pq.data_hash  # same essays, same hash, any format


def test_csv_keeps_na_like_values_as_text(tmp_path: Path) -> None:
    df = frame()
    df.loc[0, "essay_id"] = "NA"
    df.loc[1, "text"] = "None"
    df.to_csv(tmp_path / "essays.csv", index=False)
    c = validate(read_table(tmp_path / "essays.csv"))
    assert c.ids[0] == "NA" and c.texts[1] == "None"


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found; check data.path in the config"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"could not read .*broken.parquet"):
        read_table(tmp_path / "broken.parquet")


def test_demo_config_loads_the_demo_corpus(tmp_path: Path) -> None:
    cfg = parse_config({"data": {"demo": True}}, base_dir=tmp_path)
    with pytest.warns(UserWarning):
        c = load_corpus(cfg)
    assert len(c) == 720 and c.source == "demo corpus (seed 0)"


# --------------------------------------------------------------------------- data_hash


def test_data_hash_is_stable_and_tracks_content(demo_frame: pd.DataFrame) -> None:
    base = validate(demo_frame).data_hash
    assert validate(demo_frame.copy()).data_hash == base
    assert len(base) == 64

    changed = demo_frame.copy()
    changed.loc[100, "text"] = changed.loc[100, "text"] + " One more sentence."
    assert validate(changed).data_hash != base

    ws = demo_frame.copy()
    ws.loc[100, "text"] = ws.loc[100, "text"] + " "
    assert validate(ws).data_hash != base  # any text change, even whitespace

    score = demo_frame.copy()
    score.loc[5, "score"] = 4.0 if score.loc[5, "score"] != 4.0 else 3.5
    assert validate(score).data_hash != base

    prompt = demo_frame.copy()
    prompt.loc[5, "prompt"] = "P01" if prompt.loc[5, "prompt"] != "P01" else "P02"
    assert validate(prompt).data_hash != base


def test_data_hash_does_not_depend_on_numpy_scalar_repr() -> None:
    """Scores hash as Python floats: numpy 2's repr ``np.float64(3.0)`` must not leak in."""
    import hashlib

    df = frame(n_prompts=5, per_prompt=2)
    h = hashlib.sha256()
    for i, p, t, s in zip(df.essay_id, df.prompt, df.text, df.score, strict=True):
        h.update(f"{i}\x1f{p}\x1f{float(s)!r}\x1f".encode())
        h.update(t.encode())
        h.update(b"\x1e")
    assert validate(df).data_hash == h.hexdigest()

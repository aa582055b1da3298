"""The YAML config: defaults, errors naming the field path, env expansion, hashes."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from moqwk.config import (
    DEFAULT_BASELINE_PARAMS,
    CVConfig,
    ModelConfig,
    SearchConfig,
    SelectConfig,
    TailConfig,
    load_config,
    parse_config,
)
from moqwk.errors import ConfigError
from moqwk.features import FeatureConfig


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, text))
    assert ei.value.exit_code == 2
    return str(ei.value)


# --------------------------------------------------------------------------- defaults


def test_defaults_parse(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "data: {path: essays.csv}\n"))
    assert cfg.data.path == (tmp_path / "essays.csv").resolve()
    assert (cfg.data.id_column, cfg.data.text_column, cfg.data.prompt_column,
            cfg.data.score_column) == ("essay_id", "text", "prompt", "score")
    assert not cfg.data.demo
    assert cfg.scale.kind == "infer"
    assert cfg.cv == CVConfig() == CVConfig(n_folds=5, repeats=1, seed=42, min_prompt_n=20)
    assert cfg.tails == TailConfig(0.25, 0.75, 0.05)
    assert cfg.model == ModelConfig("reg:squarederror", 0)
    assert dict(cfg.baseline_params) == DEFAULT_BASELINE_PARAMS
    assert cfg.features == FeatureConfig()
    assert cfg.search == SearchConfig() and cfg.select == SelectConfig()
    assert cfg.source == (tmp_path / "config.yaml").resolve()


def test_empty_sections_mean_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """\
        data: {demo: true}
        scale:
        cv:
        tails:
        model:
        baseline:
        search:
        select:
    """))
    assert cfg.data.demo and cfg.data.path is None
    assert cfg.cv == CVConfig() and cfg.tails == TailConfig()


def test_values_are_read(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """\
        data: {path: /abs/essays.parquet, score_column: Overall, id_column: text_id_kaggle}
        scale: {kind: global, min: 1, max: 5, step: 0.5}
        cv: {n_folds: 4, repeats: 3, seed: 7, min_prompt_n: 10}
        tails: {low_band: 0.2, high_band: 0.8, tolerance: 0}
        model: {nthread: 2}
        baseline: {params: {max_depth: 6}}
    """))
    assert cfg.data.path == Path("/abs/essays.parquet")
    assert cfg.data.score_column == "Overall" and cfg.data.id_column == "text_id_kaggle"
    assert (cfg.scale.kind, cfg.scale.min, cfg.scale.max, cfg.scale.step) == ("global", 1.0,
                                                                              5.0, 0.5)
    assert isinstance(cfg.scale.min, float)  # YAML int 1 becomes a float
    assert cfg.cv == CVConfig(4, 3, 7, 10)
    assert cfg.tails == TailConfig(0.2, 0.8, 0.0)
    assert cfg.model.nthread == 2
    assert cfg.baseline_params == {**DEFAULT_BASELINE_PARAMS, "max_depth": 6}


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "data: {demo: true}\n"))
    with pytest.raises(AttributeError):
        cfg.cv.n_folds = 3  # type: ignore[misc]


# --------------------------------------------------------------------------- field errors


@pytest.mark.parametrize("text,path", [
    ("cv: {n_folds: 1}", "cv.n_folds: must be >= 2"),
    ("cv: {n_folds: five}", "cv.n_folds: expected a whole number"),
    ("cv: {n_folds: 2.5}", "cv.n_folds: expected a whole number"),
    ("cv: {n_folds: true}", "cv.n_folds: expected a whole number"),
    ("cv: {repeats: 0}", "cv.repeats: must be >= 1"),
    ("cv: {seed: 1.5}", "cv.seed: expected a whole number"),
    ("cv: {min_prompt_n: 0}", "cv.min_prompt_n: must be >= 1"),
    ("cv: {folds: 5}", "cv.folds: unknown field; allowed: holdout, holdout_seed, holdout_unit, "
                       "min_prompt_n, n_folds, repeats, seed"),
    ("cv: 5", "cv: expected a mapping, got int"),
    ("tails: {low_band: low}", "tails.low_band: expected a number"),
    ("tails: {low_band: -0.1}", "tails.low_band: must lie in [0, 1]"),
    ("tails: {high_band: 1.5}", "tails.high_band: must lie in [0, 1]"),
    ("tails: {low_band: 0.8}", "tails.low_band: must be below tails.high_band"),
    ("tails: {low_band: 0.5, high_band: 0.5}", "tails.low_band: must be below tails.high_band"),
    ("tails: {tolerance: -0.01}", "tails.tolerance: must be >= 0"),
    ("tails: {tolerence: 0.1}", "tails.tolerence: unknown field"),
    ("scale: {kind: ordinal}", "scale.kind: must be one of global, per_prompt, infer"),
    ("scale: {kind: global, min: 1, max: 5}", "scale.step: kind global needs min, max and step"),
    ("scale: {kind: global, step: 0.5}", "scale.min: kind global needs"),
    ("scale: {kind: global, min: 5, max: 1, step: 0.5}", "scale: scale max must exceed min"),
    ("scale: {kind: global, min: 1, max: 5, step: 0}", "scale: scale step must be > 0"),
    ("scale: {kind: global, min: 1, max: 5, step: 0.3}", "scale: (max - min) must be a whole"),
    ("scale: {kind: global, min: one, max: 5, step: 1}", "scale.min: expected a number"),
    ("scale: {kind: per_prompt}", "scale.per_prompt: kind per_prompt needs"),
    ("scale: {kind: per_prompt, per_prompt: [1, 2]}", "scale.per_prompt: expected a mapping"),
    ("scale: {kind: per_prompt, per_prompt: {P1: {min: 0, max: 3}}}",
     "scale.per_prompt.P1: needs min, max and step"),
    ("scale: {kind: per_prompt, per_prompt: {P1: {min: 0, max: 3, step: x}}}",
     "scale.per_prompt.P1.step: expected a number"),
    ("scale: {kind: per_prompt, per_prompt: {P1: {min: 3, max: 0, step: 1}}}",
     "scale.per_prompt.P1: scale max must exceed min"),
    ("data: {demo: true, id_column: 5}", "data.id_column: expected a string"),
    ("data: {demo: yes please}", "data.demo: expected true or false"),
    ("data: {path: 5}", "data.path: expected a string path"),
    ("data: {demo: true, path_to: x}", "data.path_to: unknown field"),
    ("data: {id_column: id}", "data.path: missing; give the corpus CSV/Parquet path or set"),
    ("model: {nthread: many}", "model.nthread: expected a whole number"),
    ("model: {objective: 3}", "model.objective: expected a string"),
    ("baseline: {params: [1, 2]}", "baseline.params: expected a mapping"),
    ("baseline: {parameters: {}}", "baseline.parameters: unknown field"),
    ("search: {trials: 5}", "search.trials: unknown field"),
    ("select: {margin: 0.1}", "select.margin: unknown field"),
    ("features: {word: {svd_components: 0}}", "features.word.svd_components: must be >= 1"),
    ("features: {char: {min_df: -1}}", "features.char.min_df"),
    ("features: {words: {}}", "features.words: unknown field; allowed: char, connectives"),
    ("moedl: {nthread: 2}", "moedl: unknown section; allowed: baseline, cv, data, features"),
])
def test_bad_field_names_its_path(tmp_path: Path, text: str, path: str) -> None:
    if "data:" not in text:
        text = "data: {demo: true}\n" + text
    msg = config_error(tmp_path, text + "\n")
    assert path in msg, msg


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "the top level must be a mapping" in config_error(tmp_path, "- data\n- cv\n")


def test_bad_yaml_gives_the_line(tmp_path: Path) -> None:
    msg = config_error(tmp_path, """\
        data: {demo: true}
        cv:
          n_folds: [5
        tails: {}
    """)
    assert "not valid YAML at line" in msg and "config.yaml" in msg
    line = int(msg.split("at line ")[1].split(":")[0])
    assert line in (3, 4)  # the unclosed flow sequence; PyYAML reports where it notices


def test_bad_indentation_gives_its_line(tmp_path: Path) -> None:
    msg = config_error(tmp_path, "data:\n  demo: true\n cv: 3\n")
    assert "not valid YAML at line 3" in msg


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    msg = config_error(tmp_path, text)
    assert "the file is empty" in msg and "moqwk init" in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope.yaml not found; write one with "
                                          r"`moqwk init`") as ei:
        load_config(tmp_path / "nope.yaml")
    assert ei.value.exit_code == 2


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)


# --------------------------------------------------------------------------- env expansion


def test_env_default_used_when_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOQWK_TEST_DATA_DIR", raising=False)
    cfg = load_config(write(tmp_path, "data: {path: '${MOQWK_TEST_DATA_DIR:-corpora}/e.csv'}\n"))
    assert cfg.data.path == (tmp_path / "corpora" / "e.csv").resolve()  # relative to the file


def test_env_value_used_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOQWK_TEST_DATA_DIR", "/srv/data")
    cfg = load_config(write(tmp_path, "data: {path: '${MOQWK_TEST_DATA_DIR:-corpora}/e.csv'}\n"))
    assert cfg.data.path == Path("/srv/data/e.csv")


def test_env_empty_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shell ``${VAR:-default}`` semantics: an empty value takes the default."""
    monkeypatch.setenv("MOQWK_TEST_DATA_DIR", "")
    cfg = load_config(write(tmp_path, "data: {path: '${MOQWK_TEST_DATA_DIR:-/d}/e.csv'}\n"))
    assert cfg.data.path == Path("/d/e.csv")


def test_env_without_default_must_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOQWK_TEST_UNSET", raising=False)
    msg = config_error(tmp_path, "data: {path: '${MOQWK_TEST_UNSET}/e.csv'}\n")
    assert "environment variable MOQWK_TEST_UNSET is not set" in msg
    assert "${MOQWK_TEST_UNSET:-default}" in msg
    monkeypatch.setenv("MOQWK_TEST_UNSET", "/x")
    cfg = load_config(write(tmp_path, "data: {path: '${MOQWK_TEST_UNSET}/e.csv'}\n"))
    assert cfg.data.path == Path("/x/e.csv")


def test_tilde_expands(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "data: {path: ~/essays.csv}\n"))
    assert cfg.data.path == Path.home() / "essays.csv"


# --------------------------------------------------------------------------- hashes


BASE = {
    "data": {"demo": True},
    "search": {"n_trials": 20, "sampler": "nsga2", "seed": 3,
               "space": {"max_depth": {"type": "int", "low": 2, "high": 6}}},
    "select": {"gate_margin": 0.05},
}


def _cfg(tmp_path: Path, **override):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in override.items():
        section, key = dotted.split("__")
        raw.setdefault(section, {})[key] = value
    return parse_config(raw, base_dir=tmp_path)


def test_study_hash_ignores_budget_workers_and_selection(tmp_path: Path) -> None:
    base = _cfg(tmp_path)
    for change in ({"search__n_trials": 500}, {"search__timeout": 3600},
                   {"search__n_jobs": 4}, {"select__gate_margin": 0.2},
                   {"model__nthread": 1}):
        other = _cfg(tmp_path, **change)
        assert other.study_hash() == base.study_hash(), change
        assert other.hash() != base.hash(), change  # the full config hash still sees it


def test_study_hash_tracks_what_trials_depend_on(tmp_path: Path) -> None:
    base = _cfg(tmp_path)
    wider = {"max_depth": {"type": "int", "low": 2, "high": 10}}
    for change in ({"search__space": wider}, {"search__seed": 4}, {"search__sampler": "tpe"},
                   {"cv__seed": 1}, {"cv__n_folds": 4}, {"tails__low_band": 0.2},
                   {"baseline__params": {"max_depth": 5}},
                   {"features__word": {"svd_components": 8}}, {"data__score_column": "x"},
                   {"model__objective": "reg:pseudohubererror"}):
        assert _cfg(tmp_path, **change).study_hash() != base.study_hash(), change


def test_study_hash_does_not_depend_on_where_the_data_lives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A study resumed from another machine or checkout (data checked by data_hash instead)."""
    text = "data: {path: '${MOQWK_TEST_DATA_DIR:-data}/essays.csv'}\ncv: {n_folds: 4}\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = load_config(write(tmp_path / "a", text))
    monkeypatch.setenv("MOQWK_TEST_DATA_DIR", "/mnt/elsewhere")
    b = load_config(write(tmp_path / "b", text))
    assert a.data.path != b.data.path
    assert a.study_hash() == b.study_hash()
    other_column = load_config(write(tmp_path / "b", text.replace(
        "essays.csv'}", "essays.csv', score_column: Cohesion}")))
    assert other_column.study_hash() != b.study_hash()


def test_hashes_are_stable(tmp_path: Path) -> None:
    a, b = _cfg(tmp_path), _cfg(tmp_path)
    assert a.hash() == b.hash() and a.study_hash() == b.study_hash()
    assert len(a.hash()) == len(a.study_hash()) == 64
    # defaults written out or left implicit are the same config
    explicit = _cfg(tmp_path, cv__n_folds=5, tails__high_band=0.75)
    assert explicit.hash() == a.hash() and explicit.study_hash() == a.study_hash()


def test_the_default_mapping_is_stretch_and_the_baseline_keeps_round(tmp_path: Path) -> None:
    config = _cfg(tmp_path)
    assert config.mapping.spec.method == "stretch"  # ADR 0002's benchmark chose it
    assert config.baseline_mapping.method == "round"  # the guardrails keep today's scoring


def test_a_run_that_relied_on_the_old_round_default_is_not_resumed_as_stretch(
        tmp_path: Path) -> None:
    """Hashes leave defaults out, but mapping.method's old default (round) is pinned: a config
    naming round hashes as configs that relied on the old default did, and the new default
    (stretch) hashes differently, so a study made with round cannot be continued as stretch."""
    implicit = _cfg(tmp_path)
    explicit_round = _cfg(tmp_path, mapping__method="round")
    explicit_stretch = _cfg(tmp_path, mapping__method="stretch")
    assert implicit.study_hash() == explicit_stretch.study_hash()
    assert explicit_round.study_hash() != implicit.study_hash()
    assert explicit_round.hash() != implicit.hash()
    # round, the historical default, adds nothing to what is hashed; stretch does
    from moqwk.config.load import _default_raw, _minus

    assert "mapping" not in _minus(explicit_round.scoring_dict(), _default_raw())
    assert "mapping" in _minus(implicit.scoring_dict(), _default_raw())


def test_lexical_is_on_by_default_and_a_run_without_it_is_not_resumed_with_it(
        tmp_path: Path) -> None:
    """features.lexical joined the default features (ADR 0005); its old default (off) is
    pinned in the hash base like mapping.method's: a study made without the family cannot be
    continued with it."""
    implicit = _cfg(tmp_path)
    assert implicit.features.lexical.enabled
    off = _cfg(tmp_path, features__lexical={"enabled": False})
    on = _cfg(tmp_path, features__lexical={"enabled": True})
    assert implicit.study_hash() == on.study_hash() != off.study_hash()
    from moqwk.config.load import _default_raw, _minus

    assert "features" not in _minus(off.scoring_dict(), _default_raw())
    assert "features" in _minus(implicit.scoring_dict(), _default_raw())


def test_max_bin_is_32_by_default_and_a_study_made_under_256_is_not_resumed_with_it(
        tmp_path: Path) -> None:
    """model.max_bin became 32 (ADR 0006); its old value, 256, is pinned in the hash base: a
    study whose trials trained with 256 bins cannot be continued with 32."""
    implicit = _cfg(tmp_path)
    assert implicit.model.max_bin == 32
    old = _cfg(tmp_path, model__max_bin=256)
    new = _cfg(tmp_path, model__max_bin=32)
    assert implicit.study_hash() == new.study_hash() != old.study_hash()
    from moqwk.config.load import _default_raw, _minus

    assert "model" not in _minus(old.scoring_dict(), _default_raw())


def test_to_dict_is_json_and_complete(tmp_path: Path) -> None:
    import json

    d = _cfg(tmp_path).to_dict()
    json.dumps(d)
    assert set(d) == {"data", "scale", "features", "cv", "tails", "model", "objectives",
                      "mapping", "baseline", "search", "select"}
    assert d["baseline"]["params"] == DEFAULT_BASELINE_PARAMS


# --------------------------------------------------------------------------- the run's copy


ROUND_TRIP = """\
data: {path: '${MOQWK_TEST_ROUND_TRIP:-corpus}/essays.csv', score_column: Overall}
scale:
  kind: per_prompt
  per_prompt:
    P1: {min: 1, max: 5, step: 0.5}
    P2: {min: 0, max: 60, step: 1}
features:
  word: {ngram_range: [1, 3], min_df: 0.01, svd_components: 8}
  char: {enabled: false}
  table: {path: extra/features.csv, id_column: id, columns: [a, b]}
cv: {n_folds: 4, repeats: 2, seed: 9, min_prompt_n: 12}
tails: {low_band: 0.2, high_band: 0.8, tolerance: 0.03}
model: {nthread: 1}
baseline: {params: {max_depth: 3, tree_method: hist}}
search:
  n_trials: 7
  timeout: 90
  sampler: tpe
  seed: 5
  space:
    max_depth: {type: int, low: 2, high: 6}
    learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
    tree_method: {type: categorical, choices: [hist, approx]}
  initial_configs: [{max_depth: 5, learning_rate: 0.1, tree_method: approx}]
  grid: {max_depth: [3, 5], learning_rate: [0.05]}
select: {tie_tolerance: 0.01, gate_margin: 0.03, max_gate_candidates: 2, n_boot: 50}
"""


@pytest.mark.parametrize("text", [ROUND_TRIP, "data: {demo: true}\n"], ids=["every-section",
                                                                           "defaults"])
def test_the_run_copy_loads_back_to_the_same_config(tmp_path: Path, text: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """config.yaml in a run directory elsewhere: same normalised config, same hashes, and its
    relative paths (and ${VAR}s) still point where the original's did."""
    monkeypatch.setenv("MOQWK_TEST_ROUND_TRIP", "from-env")
    (tmp_path / "project").mkdir()
    original = load_config(write(tmp_path / "project", text))
    run_dir = tmp_path / "elsewhere" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    copy = run_dir / "config.yaml"
    copy.write_text(original.to_yaml(), encoding="utf-8")
    monkeypatch.delenv("MOQWK_TEST_ROUND_TRIP")  # the copy holds the expanded value
    again = load_config(copy)
    assert again.raw == original.raw
    assert (again.hash(), again.scoring_hash(), again.study_hash()) == (
        original.hash(), original.scoring_hash(), original.study_hash())
    for section in ("data", "scale", "cv", "tails", "model", "search", "select"):
        assert getattr(again, section) == getattr(original, section), section
    assert again.baseline_params == original.baseline_params
    # the feature table's path is written out absolute; it names the same file
    assert replace(again.features, table=None) == replace(original.features, table=None)
    if original.data.path is not None:
        assert again.data.path == tmp_path / "project" / "from-env" / "essays.csv"
        table, was = again.features.table, original.features.table
        assert table.resolved == was.resolved == tmp_path / "project" / "extra" / "features.csv"
        assert (table.id_column, table.columns) == (was.id_column, was.columns)
    assert again.to_yaml() == original.to_yaml()  # a copy of the copy is the same file


def test_declaring_batches_leaves_every_other_runs_hash_alone(tmp_path: Path) -> None:
    """mapping.params.batch is new and its default (10) changes how a transductive mapping is
    scored, so such configs hash anew (a run scored with whole prompts is not resumed in
    batches of 10); `batch: prompt`, the old scoring, hashes as configs written before the
    field did; configs without a transductive mapping keep their hashes."""
    from moqwk.config.load import _default_raw, _minus, _unpin_batch

    psd = _cfg(tmp_path, mapping__method="prompt_standardize")
    old_way = _cfg(tmp_path, mapping__method="prompt_standardize",
                   mapping__params={"batch": "prompt"})
    assert psd.mapping.spec.params["batch"] == 10
    assert psd.study_hash() != old_way.study_hash()
    # what old_way hashes is exactly the config as written before batches existed
    before = old_way.study_dict()
    del before["mapping"]["params"]["batch"]
    assert _minus(_unpin_batch(old_way.study_dict()), _default_raw()) == _minus(
        before, _default_raw())
    for method in ("round", "stretch", "thresholds"):
        d = _cfg(tmp_path, mapping__method=method).study_dict()
        assert "batch" not in json.dumps(d), method
    space = {"mapping.method": {"type": "categorical", "choices": ["stretch",
                                                                   "prompt_standardize"]}}
    offered = _cfg(tmp_path, search__space=space)
    assert offered.study_dict()["transductive_batch_default"] == 10
    plain = {"mapping.method": {"type": "categorical", "choices": ["stretch", "round"]}}
    assert "transductive_batch_default" not in _cfg(tmp_path, search__space=plain).study_dict()


def test_a_bad_batch_is_refused_with_its_full_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^mapping\.params\.batch: .*min_batch"):
        _cfg(tmp_path, mapping__method="prompt_center", mapping__params={"batch": 4})

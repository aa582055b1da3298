"""What a run directory knows about itself (moqwk.run.record): its config copy and run.json.

No CV runs here: configs are parsed from YAML and run records built by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from moqwk.config import Config, load_config, parse_config
from moqwk.errors import ConfigError, RunDirError
from moqwk.run.record import (
    RunRecord,
    check_same_config,
    plan_study_run,
    read_run_record,
    record_config,
    reproduce_command,
    resolve_config,
    run_config,
    write_run_record,
)

DATA_HASH = "d" * 64


@pytest.fixture
def make_config(tmp_path: Path, write_search_config):
    """``make_config(name, **section_changes) -> Config``: the small search config, edited."""

    def make(name: str = "config.yaml", **changes: dict) -> Config:
        path = write_search_config(tmp_path / "configs" / name)
        raw = yaml.safe_load(path.read_text())
        for section, values in changes.items():
            raw.setdefault(section, {}).update(values)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return load_config(path)

    return make


def started(run_dir: Path, config: Config, **record: object) -> Path:
    """A run directory that already ran: its config.yaml and a run.json."""
    record_config(run_dir, config)
    fields = {"kind": "search", "sampler": "nsga2", "n_trials": 12, "seed": 3,
              "scoring_hash": config.scoring_hash(), "study_hash": config.study_hash(),
              "data_hash": DATA_HASH, **record}
    write_run_record(run_dir, RunRecord(**fields))
    return run_dir


# --------------------------------------------------------------------------- resolve_config


def test_a_new_run_dir_needs_a_config(tmp_path: Path, make_config):
    with pytest.raises(ConfigError, match="has no config.yaml yet; pass --config"):
        resolve_config(tmp_path / "run", None, level="scoring")
    given = make_config()
    assert resolve_config(tmp_path / "run", given, level="scoring") is given
    assert not (tmp_path / "run").exists()  # resolving writes nothing


def test_run_dir_alone_gives_the_recorded_config(tmp_path: Path, make_config):
    cfg = make_config()
    record_config(tmp_path / "run", cfg)
    got = resolve_config(tmp_path / "run", None, level="study")
    assert got.raw == cfg.raw
    assert (got.study_hash(), got.scoring_hash()) == (cfg.study_hash(), cfg.scoring_hash())


def test_a_config_that_differs_is_refused_naming_the_field(tmp_path: Path, make_config):
    record_config(tmp_path / "run", make_config())
    other = make_config("other.yaml", cv={"min_prompt_n": 15})
    for level in ("scoring", "study"):
        with pytest.raises(ConfigError) as ei:
            resolve_config(tmp_path / "run", other, level=level)
        msg = str(ei.value)
        assert ei.value.exit_code == 2
        assert "--config differs" in msg and "cv.min_prompt_n" in msg
        assert "drop --config" in msg and "new --run-dir" in msg


def test_what_each_level_ignores(tmp_path: Path, make_config):
    """Scoring: not the baseline or search settings; study: not the budget, threads or the
    selection; neither: where the data lives (data.path) or model.nthread."""
    record_config(tmp_path / "run", make_config())
    run = tmp_path / "run"
    baseline = make_config("b.yaml", baseline={"params": {"max_depth": 4}})
    assert resolve_config(run, baseline, level="scoring") is baseline
    with pytest.raises(ConfigError, match="baseline.params.max_depth"):
        resolve_config(run, baseline, level="study")
    budget = make_config("n.yaml", search={"n_trials": 99, "n_jobs": 2, "timeout": 60.0},
                         select={"gate_margin": 0.5}, model={"nthread": 2})
    assert resolve_config(run, budget, level="study") is budget
    sampler = make_config("s.yaml", search={"sampler": "tpe"})
    with pytest.raises(ConfigError, match="search.sampler"):
        resolve_config(run, sampler, level="study")


def test_scoring_commands_keep_the_study_settings_of_a_study_run(tmp_path: Path, make_config):
    """`moqwk grid --config my.yaml` records sampler grid; `select --config my.yaml` on that run
    (README's pipeline) must still match the study's config hash, yet keep my.yaml's select."""
    grid_cfg = make_config("grid.yaml", search={"sampler": "grid"},
                           baseline={"params": {"max_depth": 4}})
    run = started(tmp_path / "run", grid_cfg, kind="grid", sampler="grid")
    mine = make_config("mine.yaml", select={"gate_margin": 0.5}, model={"nthread": 2})
    got = resolve_config(run, mine, level="scoring")
    assert got.study_hash() == grid_cfg.study_hash()
    assert (got.search.sampler, got.baseline_params["max_depth"]) == ("grid", 4)
    assert got.select.gate_margin == 0.5 and got.model.nthread == 2
    assert got.data.path == mine.data.path and got.source == mine.source
    cv_run = started(tmp_path / "cv", grid_cfg, kind="cv", sampler=None)
    assert resolve_config(cv_run, mine, level="scoring") is mine  # cv runs own no study


def test_many_differences_are_summed_up(tmp_path: Path, make_config):
    record_config(tmp_path / "run", make_config())
    other = make_config("o.yaml", cv={"n_folds": 4, "repeats": 2, "seed": 1, "min_prompt_n": 9},
                        tails={"tolerance": 0.1, "low_band": 0.2})
    with pytest.raises(ConfigError) as ei:
        check_same_config(other, run_config(tmp_path / "run"), level="scoring",
                          run_dir=tmp_path / "run", what="--config")
    msg = str(ei.value)
    assert "cv.min_prompt_n, cv.n_folds, cv.repeats, cv.seed and 2 more" in msg


def test_record_config_keeps_the_first_copy(tmp_path: Path, make_config):
    run = tmp_path / "run"
    first, second = make_config(), make_config("x.yaml", search={"sampler": "tpe"})
    record_config(run, first)
    record_config(run, second)
    assert run_config(run).raw == first.raw
    record_config(run, second, replace_scoring_only=True)  # a cv-only run taken over by a search
    assert run_config(run).raw == second.raw


# --------------------------------------------------------------------------- run.json


def test_run_record_round_trips_and_ignores_unknown_fields(tmp_path: Path):
    rec = RunRecord(kind="grid", sampler="grid", n_trials=25, scoring_hash="s", data_hash="d",
                    study_hash="h", baseline_params={"max_depth": 3})
    write_run_record(tmp_path, rec)
    assert read_run_record(tmp_path) == rec
    raw = json.loads((tmp_path / "run.json").read_text())
    raw["added_by_a_newer_moqwk"] = 1
    (tmp_path / "run.json").write_text(json.dumps(raw))
    assert read_run_record(tmp_path) == rec
    assert read_run_record(tmp_path / "nowhere") is None


def test_a_new_study_run_takes_its_record_from_the_config(tmp_path: Path, make_config):
    cfg = make_config(search={"n_trials": 17, "sampler": "tpe"})
    rec = plan_study_run(tmp_path / "run", cfg, kind="search", n_trials=None, storage=None,
                         study_name="moqwk", data_hash=DATA_HASH)
    assert (rec.kind, rec.sampler, rec.n_trials, rec.seed) == ("search", "tpe", 17, 3)
    assert (rec.study_hash, rec.scoring_hash) == (cfg.study_hash(), cfg.scoring_hash())
    grid = plan_study_run(tmp_path / "g", cfg, kind="grid", n_trials=None, storage=None,
                          study_name="moqwk", data_hash=DATA_HASH)
    assert (grid.kind, grid.sampler) == ("grid", "grid")


def test_the_seed_defaults_to_cv_seed(tmp_path: Path, make_config):
    cfg = make_config(search={"seed": None}, cv={"seed": 77})
    rec = plan_study_run(tmp_path / "run", cfg, kind="search", n_trials=None, storage=None,
                         study_name="moqwk", data_hash=DATA_HASH)
    assert rec.seed == 77


def test_the_storage_password_is_never_recorded(tmp_path: Path, make_config):
    rec = plan_study_run(tmp_path / "run", make_config(), kind="search", n_trials=4,
                         storage="postgresql+psycopg://u:hunter2@db:5432/x",
                         study_name="s1", data_hash=DATA_HASH)
    assert rec.storage == "postgresql+psycopg://u:***@db:5432/x"


def test_resuming_keeps_the_recorded_budget_unless_one_is_given(tmp_path: Path, make_config):
    cfg = make_config()
    run = started(tmp_path / "run", cfg, n_trials=12)
    kw = dict(storage=None, study_name="moqwk", data_hash=DATA_HASH)
    assert plan_study_run(run, cfg, kind="search", n_trials=None, **kw).n_trials == 12
    assert plan_study_run(run, cfg, kind="search", n_trials=20, **kw).n_trials == 20
    assert read_run_record(run).n_trials == 12  # planning writes nothing


@pytest.mark.parametrize("kind, sampler, holds, asked", [
    ("grid", "grid", "a nsga2 search", "a grid"),
    ("search", "tpe", "a nsga2 search", "a tpe search"),
])
def test_a_change_of_kind_or_sampler_is_refused_with_the_command_that_works(
        tmp_path: Path, make_config, kind, sampler, holds, asked):
    run = started(tmp_path / "run", make_config())
    cfg = make_config("other.yaml", search={"sampler": sampler})
    with pytest.raises(RunDirError) as ei:
        plan_study_run(run, cfg, kind=kind, n_trials=None, storage=None, study_name="moqwk",
                       data_hash=DATA_HASH)
    msg = str(ei.value)
    assert ei.value.exit_code == 7
    assert f"holds {holds}, not {asked}" in msg
    assert f"`moqwk search --run-dir {run}`" in msg
    assert "\n" not in msg


def test_a_grid_run_refuses_a_search(tmp_path: Path, make_config):
    cfg = make_config()
    run = started(tmp_path / "run", cfg, kind="grid", sampler="grid", n_trials=25)
    with pytest.raises(RunDirError, match=f"holds a grid, not a nsga2 search; resume it with "
                                          f"`moqwk grid --run-dir {run}`"):
        plan_study_run(run, cfg, kind="search", n_trials=None, storage=None, study_name="moqwk",
                       data_hash=DATA_HASH)


def test_another_study_or_baseline_is_refused(tmp_path: Path, make_config):
    cfg = make_config()
    run = started(tmp_path / "run", cfg, baseline_params={"max_depth": 3},
                  baseline_source="selected params of grid")
    kw = dict(kind="search", n_trials=None, data_hash=DATA_HASH)
    with pytest.raises(RunDirError, match="study is 'moqwk' in its study.db"):
        plan_study_run(run, cfg, storage=None, study_name="other", **kw)
    with pytest.raises(RunDirError, match="another baseline \\(selected params of grid\\)"):
        plan_study_run(run, cfg, storage=None, study_name="moqwk",
                       baseline_params={"max_depth": 4}, **kw)
    same = plan_study_run(run, cfg, storage=None, study_name="moqwk",
                          baseline_params={"max_depth": 3}, **kw)
    assert same.baseline_params == {"max_depth": 3}


def test_a_cv_run_can_become_a_search(tmp_path: Path, make_config):
    cfg = make_config()
    run = started(tmp_path / "run", cfg, kind="cv", sampler=None, n_trials=None)
    rec = plan_study_run(run, cfg, kind="search", n_trials=None, storage=None,
                         study_name="moqwk", data_hash=DATA_HASH)
    assert (rec.kind, rec.sampler) == ("search", "nsga2")


# --------------------------------------------------------------------------- reproduce


@pytest.mark.parametrize("fields, command", [
    ({"kind": "search"}, ["moqwk", "search", "--run-dir", "runs/a"]),
    ({"kind": "grid", "sampler": "grid"}, ["moqwk", "grid", "--run-dir", "runs/a"]),
    ({"kind": "search", "storage": "postgresql+psycopg://u:***@db/x", "study_name": "w"},
     ["moqwk", "search", "--run-dir", "runs/a", "--storage", "postgresql+psycopg://u:***@db/x",
      "--study-name", "w"]),
])
def test_reproduce_command(fields, command):
    rec = RunRecord(scoring_hash="s", data_hash="d", **fields)
    assert reproduce_command(Path("runs/a"), rec) == command


def test_demo_refuses_a_run_dir_made_with_another_config_and_says_how_to_start_afresh(
        tmp_path: Path, capsys, assert_one_error_line) -> None:
    """A runs/demo whose config.yaml is not the built-in demo's (edited, or written by a moqwk
    whose defaults differed: here the score mapping before stretch became the default) is
    refused before any work, with the way out, and left as it was."""
    from moqwk._api.demo import demo_config
    from moqwk.cli import main
    from moqwk.run.record import record_config

    run_dir = tmp_path / "runs" / "demo"
    run_dir.mkdir(parents=True)
    built_in = demo_config(run_dir)
    older = parse_config({**built_in.to_dict(), "mapping": {"method": "round"}},
                         base_dir=run_dir)
    record_config(run_dir, older)
    before = (run_dir / "config.yaml").read_bytes()
    assert main(["demo", "--run-dir", str(run_dir)]) == 2
    err = assert_one_error_line(capsys.readouterr().err)
    assert "mapping.method" in err and "made by another moqwk version" in err
    assert f"move or delete {run_dir}" in err
    assert (run_dir / "config.yaml").read_bytes() == before
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml"]

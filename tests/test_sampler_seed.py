"""``--sampler`` and ``--seed``: recorded by the run, kept on resume, never changed silently.

A run directory keeps its sampler: resuming without ``--sampler`` continues with it, and a
command that would change it (another ``--sampler``, ``grid``, a ``--config`` naming another
sampler) is refused with exit 7, one line, and the command that resumes the run. ``--seed``
overrides ``search.seed`` exactly as writing it in the config would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml

from moqwk.cli import main

pytestmark = pytest.mark.slow

GENERATION = "NSGAIISampler:generation"


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def trials(run_dir: Path) -> list:
    return optuna.load_study(study_name="moqwk", storage=f"sqlite:///{run_dir / 'study.db'}",
                             sampler=optuna.samplers.RandomSampler()).trials


def files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run, the study included."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file()}


def search(*argv: object) -> int:
    return main(["search", *(str(a) for a in argv)])


@pytest.fixture(scope="module")
def tpe(tmp_path_factory: pytest.TempPathFactory, write_search_config) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("tpe")
    cfg = write_search_config(root / "config.yaml")  # search.sampler not set: nsga2
    run = root / "run"
    assert search("--config", cfg, "--run-dir", run, "--sampler", "tpe", "--n-trials", 2) == 0
    return SimpleNamespace(root=root, config=cfg, run=run)


def copy_of(tpe, tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(tpe.run, dest)
    return dest


def test_the_sampler_is_recorded(tpe):
    assert read_json(tpe.run / "artifacts/optuna_study.json")["sampler"]["name"] == "tpe"
    record = read_json(tpe.run / "run.json")
    assert (record["kind"], record["sampler"], record["n_trials"]) == ("search", "tpe", 2)
    assert yaml.safe_load((tpe.run / "config.yaml").read_text())["search"]["sampler"] == "tpe"
    # TPE trials get no NSGA-II generation (moqwk gives one to every NSGA-II trial)
    assert all(GENERATION not in t.system_attrs for t in trials(tpe.run))


def test_random_sampler_is_recorded_too(tpe, tmp_path):
    run = tmp_path / "random"
    assert search("--config", tpe.config, "--run-dir", run, "--sampler", "random",
                  "--n-trials", 1) == 0
    assert read_json(run / "artifacts/optuna_study.json")["sampler"]["name"] == "random"
    assert read_json(run / "run.json")["sampler"] == "random"


def test_resuming_without_sampler_continues_with_the_recorded_one(tpe, tmp_path):
    run = copy_of(tpe, tmp_path)
    assert search("--run-dir", run, "--n-trials", 4) == 0
    after = trials(run)
    assert len(after) == 4 and all(t.state.name == "COMPLETE" for t in after)
    assert all(GENERATION not in t.system_attrs for t in after), "resumed as NSGA-II"
    assert read_json(run / "artifacts/optuna_study.json")["sampler"]["name"] == "tpe"
    record = read_json(run / "run.json")
    assert (record["sampler"], record["n_trials"]) == ("tpe", 4)
    before = [(t.params, t.values) for t in trials(tpe.run)]
    assert [(t.params, t.values) for t in after[:2]] == before  # earlier trials untouched


@pytest.mark.parametrize("argv, asked", [
    (["search", "--sampler", "random"], "a random search"),
    (["search", "--config", "CONFIG"], "a nsga2 search"),  # the config file's own sampler
    (["grid"], "a grid"),
    (["grid", "--config", "CONFIG"], "a grid"),
], ids=["other-sampler", "config-without-sampler", "grid", "grid-with-config"])
def test_a_change_of_sampler_or_kind_is_refused_with_the_command_that_works(
        tpe, tmp_path, moqwk, assert_one_error_line, argv, asked):
    run = copy_of(tpe, tmp_path)
    before = files(run)
    argv = [str(tpe.config) if a == "CONFIG" else a for a in argv]
    rc, out, err = moqwk(*argv, "--run-dir", run)
    assert rc == 7, err
    line = assert_one_error_line(err, f"holds a tpe search, not {asked}",
                                 f"resume it with `moqwk search --run-dir {run}`")
    assert "--sampler" not in line or "--sampler" in argv  # names no flag the user did not give
    assert out == ""
    assert files(run) == before


def test_grid_run_refuses_search_sampler(tmp_path, write_search_config, moqwk,
                                         assert_one_error_line):
    cfg = write_search_config(tmp_path / "config.yaml",
                              search={"grid": {"max_depth": [2, 4]}})
    run = tmp_path / "grid"
    assert main(["grid", "--config", str(cfg), "--run-dir", str(run)]) == 0
    before = files(run)
    rc, _out, err = moqwk("search", "--run-dir", run, "--sampler", "nsga2")
    assert rc == 7
    assert_one_error_line(err, "holds a grid, not a nsga2 search",
                          f"resume it with `moqwk grid --run-dir {run}`")
    assert files(run) == before


# --------------------------------------------------------------------------- --seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, write_search_config) -> SimpleNamespace:
    """Three 2-trial NSGA-II runs: --seed 11 over a config with search.seed 3; a config with
    search.seed 11; the seed-3 config alone. Trial 1 is the baseline's seeded neighbour."""
    root = tmp_path_factory.mktemp("seed")
    cfg3 = write_search_config(root / "seed3.yaml")  # search.seed: 3
    cfg11 = write_search_config(root / "seed11.yaml", search={"seed": 11})
    runs = SimpleNamespace(root=root, config=cfg3, flag=root / "flag", written=root / "written",
                           plain=root / "plain")
    assert search("--config", cfg3, "--run-dir", runs.flag, "--seed", 11, "--n-trials", 2) == 0
    assert search("--config", cfg11, "--run-dir", runs.written, "--n-trials", 2) == 0
    assert search("--config", cfg3, "--run-dir", runs.plain, "--n-trials", 2) == 0
    return runs


def test_seed_flag_is_the_same_as_search_seed_in_the_config(seeded):
    flag, written, plain = (trials(d) for d in (seeded.flag, seeded.written, seeded.plain))
    assert [t.user_attrs.get("moqwk_role") for t in flag] == ["baseline", "seed"]
    assert [(t.params, t.values) for t in flag] == [(t.params, t.values) for t in written]
    assert flag[1].params != plain[1].params  # so the flag was not ignored
    assert flag[0].params == plain[0].params  # the baseline does not depend on the seed


def test_seed_flag_is_recorded(seeded):
    assert read_json(seeded.flag / "run.json")["seed"] == 11
    study = read_json(seeded.flag / "artifacts/optuna_study.json")
    assert study["sampler"]["seed"] == 11 and study["seeds"]["search"] == 11
    assert yaml.safe_load((seeded.flag / "config.yaml").read_text())["search"]["seed"] == 11
    assert read_json(seeded.plain / "run.json")["seed"] == 3


def test_another_seed_on_the_same_run_is_refused_naming_search_seed(seeded, tmp_path, moqwk,
                                                                    assert_one_error_line):
    run = tmp_path / "flag"
    shutil.copytree(seeded.flag, run)
    before = files(run)
    rc, _out, err = moqwk("search", "--run-dir", run, "--seed", 12)
    assert rc == 2
    assert_one_error_line(err, "--seed differs", "search.seed", "drop --seed")
    assert files(run) == before
    rc, _out, err = moqwk("search", "--run-dir", run, "--seed", 11)  # the same seed resumes
    assert rc == 0, err
    assert len(trials(run)) == 2


def test_a_bad_search_field_is_exit_2_naming_it(tmp_path, moqwk, assert_one_error_line):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("data: {demo: true}\nsearch: {n_trials: forty}\n")
    for command in ("search", "grid"):
        rc, out, err = moqwk(command, "--config", cfg, "--run-dir", tmp_path / "run")
        assert rc == 2 and out == ""
        assert_one_error_line(err, "search.n_trials", "'forty'")
        assert len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()

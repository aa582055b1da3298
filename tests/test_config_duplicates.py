"""A key given twice in one mapping of a config (or of a --params file) is refused: one
``Error:`` line naming the key's path and its line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _init_config(moqwk, demo_frame, tmp_path: Path) -> Path:
    csv = tmp_path / "essays.csv"
    demo_frame.to_csv(csv, index=False)
    cfg = tmp_path / "config.yaml"
    rc, _out, err = moqwk("init", "--data", csv, "--id-column", "essay_id", "--text-column",
                          "text", "--prompt-column", "prompt", "--score-column", "score",
                          "-o", cfg)
    assert rc == 0, err
    return cfg


def test_a_second_section_appended_to_an_init_config_is_refused(moqwk, demo_frame, tmp_path,
                                                                assert_one_error_line):
    """The issue's case: `init` wrote a `mapping:` section; a second one appended at the end
    used to replace it silently."""
    cfg = _init_config(moqwk, demo_frame, tmp_path)
    text = cfg.read_text(encoding="utf-8")
    assert text.count("\nmapping:") == 1
    first = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("mapping:"))
    cfg.write_text(text + "mapping:\n  method: round\n", encoding="utf-8")
    last = len(cfg.read_text(encoding="utf-8").splitlines()) - 1
    rc, _out, err = moqwk("cv", "--config", cfg, "--run-dir", "runs/a")
    assert rc == 2
    assert_one_error_line(err, f"{cfg} line {last}: mapping: duplicate key",
                          f"first at line {first}")
    assert not Path("runs").exists()


@pytest.mark.parametrize("yaml_text, path, line", [
    ("cv:\n  n_folds: 5\n  seed: 1\n  n_folds: 4\n", "cv.n_folds", 4),
    ("baseline:\n  params: {max_depth: 3, max_depth: 4}\n", "baseline.params.max_depth", 2),
    ("search:\n  initial_configs:\n    - {max_depth: 3}\n    - max_depth: 3\n"
     "      max_depth: 5\n", "search.initial_configs[1].max_depth", 5),
])
def test_a_duplicated_key_at_any_depth_is_refused(tmp_path, yaml_text, path, line):
    from moqwk.config import load_config
    from moqwk.errors import ConfigError

    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {demo: true}\n" + yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert str(e.value).startswith(f"{cfg} line {line + 1}: {path}: duplicate key")


def test_yaml_anchors_and_merges_are_not_duplicates(tmp_path):
    from moqwk.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {demo: true}\n"
                   "baseline:\n  params: &p {max_depth: 3, learning_rate: 0.1}\n"
                   "search:\n  initial_configs:\n    - {<<: *p, max_depth: 4}\n",
                   encoding="utf-8")
    config = load_config(cfg)
    assert dict(config.search.initial_configs[0]) == {"max_depth": 4, "learning_rate": 0.1}


def test_a_params_file_with_a_duplicated_key_is_refused(moqwk, demo_config_path, tmp_path,
                                                        assert_one_error_line):
    params = tmp_path / "p.json"
    params.write_text('{"max_depth": 3, "learning_rate": 0.1, "max_depth": 6}', encoding="utf-8")
    assert json.loads(params.read_text(encoding="utf-8"))["max_depth"] == 6  # json keeps the last
    rc, _out, err = moqwk("cv", "--config", demo_config_path, "--run-dir", "runs/a",
                          "--params", params)
    assert rc == 2
    assert_one_error_line(err, f"--params: {params}", "'max_depth': duplicate key")
    assert not Path("runs").exists()

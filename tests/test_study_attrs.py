"""The study's and trials' user attributes: one namespace (``moqwk/study/attrs.py``).

No module of moqwk spells a ``"moqwk_..."`` key itself (an ``ast`` scan of every string constant,
f-string parts included); the declared keys are unique and prefixed (two older keys excepted, by
name); a real demo search stores exactly declared keys, each on its declared scope with a value of
its declared JSON type; and the reference page holds the declarations' table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import optuna
import pytest

from moqwk.cli import main
from moqwk.study.attrs import ALL, BY_KEY, PREFIX, StudyAttr, TrialAttr, table

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "moqwk"
#: The keys from before the namespace, kept so older studies read.
UNPREFIXED = {"per_prompt_qwk", "oof_level"}
JSON_TYPES = {"string": str, "boolean": bool, "integer": int, "object": dict, "array": list}


def test_no_module_but_attrs_spells_a_moqwk_key() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "study" / "attrs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.startswith(PREFIX):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not found, f"use moqwk.study.attrs' constants instead of bare keys: {found}"


def test_keys_are_unique_prefixed_and_scoped() -> None:
    keys = [a.key for a in ALL]
    assert len(keys) == len(set(keys)) == len(BY_KEY)
    assert {k for k in keys if not k.startswith(PREFIX)} == UNPREFIXED
    assert {a.key for a in ALL if a.legacy} == UNPREFIXED
    assert all(a.json_type in JSON_TYPES and a.doc for a in ALL)
    consts = {v for cls in (TrialAttr, StudyAttr) for n, v in vars(cls).items() if n.isupper()}
    assert consts == set(keys)  # every constant declared, every declaration a constant
    assert {a.scope for a in ALL if a.key in vars(StudyAttr).values()} == {"study"}
    assert {a.scope for a in ALL if a.key in vars(TrialAttr).values()} == {"trial"}


def test_stored_keys_did_not_change() -> None:
    """The strings older studies hold: changing one would make them unreadable."""
    assert (TrialAttr.ROLE, TrialAttr.FAILURE, TrialAttr.PARAMS, TrialAttr.OOF_LEVEL,
            StudyAttr.GUARDRAILS, StudyAttr.CONFIG_HASH) == (
        "moqwk_role", "moqwk_failure", "moqwk_params", "oof_level", "moqwk_guardrails",
        "moqwk_config_hash")


def test_reference_page_holds_the_table() -> None:
    text = (REPO / "docs" / "reference" / "artifacts.md").read_text(encoding="utf-8")
    assert table() in text, ("docs/reference/artifacts.md: the user-attribute table differs "
                             "from moqwk/study/attrs.py; paste `.venv/bin/python -c \"from "
                             "moqwk.study.attrs import table; print(table())\"`")


@pytest.mark.slow
def test_a_demo_search_stores_exactly_declared_keys(tmp_path: Path, write_search_config) -> None:
    cfg = write_search_config(tmp_path / "config.yaml")
    run_dir = tmp_path / "run"
    assert main(["search", "--config", str(cfg), "--run-dir", str(run_dir),
                 "--n-trials", "3"]) == 0
    study = optuna.load_study(study_name="moqwk", storage=f"sqlite:///{run_dir / 'study.db'}")
    stored = [("study", k, v) for k, v in study.user_attrs.items()]
    stored += [("trial", k, v) for t in study.trials for k, v in t.user_attrs.items()]
    wrong = [(scope, k) for scope, k, v in stored
             if k not in BY_KEY or BY_KEY[k].scope != scope
             or not isinstance(v, JSON_TYPES[BY_KEY[k].json_type])]
    assert not wrong, f"undeclared, wrongly scoped or wrongly typed user attributes: {wrong}"
    # every study attribute is set by a search; of the trials', all but the ones for the
    # unusual cases (surplus, failed, raced, retried), none of which happens here
    assert {k for _, k, _ in stored} == {a.key for a in ALL} - {
        TrialAttr.SURPLUS, TrialAttr.FAILURE, TrialAttr.PRUNED, TrialAttr.RETRY_OF}

"""The scoring runtime does not carry the search: ``import moqwk``, ``moqwk.load_model`` and
predict import nothing from Optuna, SQLAlchemy, matplotlib or optuna-dashboard; the runtime
requirements (``requirements/runtime.txt``) are a subset of the package's, and, installed alone in
a fresh venv with moqwk itself (no dependencies), they score essays with a model directory that
``moqwk fit`` wrote."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME_TXT = REPO / "requirements" / "runtime.txt"
SEARCH_STACK = ("optuna", "sqlalchemy", "alembic", "matplotlib", "optuna_dashboard")

#: Run in a subprocess: score the essays of a CSV with the model, both ways, and report which
#: modules of the search stack got imported.
SCORE = """
import json, sys
import pandas as pd
import moqwk
after_import = sorted({m.split(".")[0] for m in sys.modules} & set(STACK))
model = moqwk.load_model(sys.argv[1])
frame = pd.read_csv(sys.argv[2], dtype=str)
a = model.predict(frame)
b = moqwk.predict(model=sys.argv[1], essays=sys.argv[2])
assert a.equals(b), (a, b)
print(json.dumps({"after_import": after_import,
                  "after_predict": sorted({m.split(".")[0] for m in sys.modules} & set(STACK)),
                  "y_pred": a["y_pred"].tolist(), "ids": a["id"].tolist()}))
""".replace("STACK", repr(SEARCH_STACK))


def _requirement_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, write_search_config) -> Path:
    """A model directory written by ``moqwk fit`` (the baseline trial of a one-trial search)."""
    from moqwk.cli import main

    root = tmp_path_factory.mktemp("runtime")
    cfg = write_search_config(root / "config.yaml")
    run_dir = root / "run"
    assert main(["-q", "search", "--config", str(cfg), "--run-dir", str(run_dir),
                 "--n-trials", "1"]) == 0
    assert main(["fit", "--run-dir", str(run_dir), "--trial", "0"]) == 0
    return run_dir / "model"


@pytest.fixture(scope="module")
def essays_csv(tmp_path_factory, _demo_frame_cached) -> Path:
    path = tmp_path_factory.mktemp("essays") / "essays.csv"
    _demo_frame_cached.drop(columns=["score"]).head(25).to_csv(path, index=False)
    return path


def _expected(model_dir: Path, essays_csv: Path) -> list[float]:
    import pandas as pd

    from moqwk.model import load_model

    return load_model(model_dir).predict(pd.read_csv(essays_csv, dtype=str))["y_pred"].tolist()


def test_import_moqwk_and_scoring_import_no_search_stack(model_dir, essays_csv):
    out = subprocess.run([sys.executable, "-c", SCORE, str(model_dir), str(essays_csv)],
                         capture_output=True, text=True, check=True, cwd=REPO)
    got = json.loads(out.stdout)
    assert got["after_import"] == []
    assert got["after_predict"] == []
    assert got["y_pred"] == _expected(model_dir, essays_csv)


def test_no_module_of_moqwk_shares_a_name_with_the_api():
    # Importing a submodule binds it as an attribute of its package, so a module moqwk/cv.py
    # would replace the function moqwk.cv as soon as anything imported it.
    children = {p.stem for p in (REPO / "moqwk").iterdir()
                if p.suffix == ".py" or (p / "__init__.py").exists()}
    code = "import moqwk; print(' '.join(moqwk._EXPORTS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    exports = set(out.stdout.split())
    assert "cv" in exports and "search" in exports
    assert children & exports == set()


def test_the_api_names_are_the_functions_after_every_stage_module_loads():
    code = ("import moqwk, moqwk.stages.search_loop, moqwk.engine.cv, moqwk.stages.compare, "
            "moqwk.stages.selector, moqwk._api.demo, types; "
            "assert all(callable(getattr(moqwk, n)) and not isinstance(getattr(moqwk, n), "
            "types.ModuleType) for n in ('search', 'cv', 'compare', 'select')); "
            "print(sorted(moqwk.__all__) == sorted(['__version__', *moqwk._EXPORTS]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "True"


def test_runtime_requirements_are_the_package_s_less_the_search_stack():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = _requirement_lines(RUNTIME_TXT.read_text())
    assert set(runtime) <= set(deps), "runtime.txt must repeat pyproject's lines as they are"
    assert {_name(d) for d in deps} - {_name(r) for r in runtime} == {"optuna", "matplotlib"}


@pytest.mark.slow
def test_a_fresh_venv_with_the_runtime_set_alone_scores_essays(model_dir, essays_csv,
                                                                tmp_path):
    """pip installs requirements/runtime.txt and moqwk without dependencies into a new venv; the
    model directory scores the essays there as here, through the API and ``moqwk predict``."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(py), "--disable-pip-version-check"]
    # The wheel of moqwk builds while pip installs the runtime set.
    wheel_dir = tmp_path / "wheel"
    build = subprocess.Popen([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                              str(wheel_dir), str(REPO)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deps = subprocess.run([*pip, "install", "-q", "-r", str(RUNTIME_TXT)],
                          capture_output=True, text=True)
    _out, build_err = build.communicate(timeout=600)
    assert deps.returncode == 0, deps.stderr
    assert build.returncode == 0, build_err
    wheel = next(wheel_dir.glob("moqwk-*.whl"))
    inst = subprocess.run([*pip, "install", "-q", "--no-deps", str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr

    present = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in "
                              f"{SEARCH_STACK!r} if u.find_spec(m)])"],
                             capture_output=True, text=True, check=True)
    assert present.stdout.strip() == "[]", "the fresh venv has part of the search stack"

    expected = _expected(model_dir, essays_csv)
    out = subprocess.run([str(py), "-c", SCORE, str(model_dir), str(essays_csv)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["y_pred"] == expected

    scores = tmp_path / "scores.csv"
    cli = subprocess.run([str(env_dir / "bin" / "moqwk"), "predict", "--model", str(model_dir),
                          "--data", str(essays_csv), "-o", str(scores)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    import pandas as pd

    assert pd.read_csv(scores)["y_pred"].tolist() == expected

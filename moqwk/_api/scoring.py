"""``moqwk.cv`` and ``moqwk.compare``: one config cross-validated; selected configs re-scored on
fresh folds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moqwk._api._common import ConfigLike, ProgressLike, as_config, as_progress, config_for_run
from moqwk._api.results import CompareResult, CompareRun, CVResult, frozen
from moqwk.errors import ConfigError, RunDirError


def cv(*, config: ConfigLike | None = None, run_dir: str | Path,
       scheme: str = "prompt_holdout", params: Mapping[str, Any] | None = None,
       mapping: str | None = None, progress: ProgressLike = False) -> CVResult:
    """Cross-validate one XGBoost config (``moqwk cv``); write residuals, metrics, diagnostics.

    Args:
        config: a YAML path, a mapping shaped like one, or a Config; None uses ``run_dir``'s
            own ``config.yaml``. Given with a run directory that has one, they must agree on
            everything scoring depends on.
        run_dir: the run directory (created if missing).
        scheme: ``prompt_holdout`` (the default) or ``stratified_text``.
        params: XGBoost (and ``mapping.*``, ``features.*``) params; None scores the
            config's baseline params with its ``features:`` and ``mapping:`` sections.
        mapping: a mapping method name that replaces the config's ``mapping.method``
            (``moqwk cv --mapping``).
        progress: False (default), True for bars or lines on stderr, or a Progress.

    Raises:
        ConfigError: a bad config (the message names the field), or one that differs from the
            run's.
        DataError: the corpus is unusable.
        RunDirError: ``run_dir`` holds a search or grid (cv would replace select's outputs).
    """
    from moqwk.core.splits import SCHEMES
    from moqwk.run.cv_outputs import run_cv
    from moqwk.run.record import read_run_record
    from moqwk.run.workspace import Workspace

    if scheme not in SCHEMES:
        raise ConfigError(f"scheme: {scheme!r} is not a fold scheme; choose from "
                          f"{', '.join(SCHEMES)}")
    run_dir = Path(run_dir)
    record = read_run_record(run_dir)
    if record is not None and record.is_study:
        raise RunDirError(f"{run_dir} holds a {record.kind}; `moqwk cv` would replace the "
                          "residuals and metrics that `moqwk select` wrote there: use another "
                          "--run-dir")
    cfg = config_for_run(run_dir, config, level="scoring")
    if params is not None:  # a bad features.* value is refused before anything is written
        cfg.features.with_params(params, path="params")
    ws = Workspace.open(cfg, run_dir)
    result, _engine, paths = run_cv(ws, scheme=scheme,
                                    params=dict(params) if params is not None else None,
                                    mapping=mapping, progress=as_progress(progress))
    m = result.metrics
    return CVResult(run_dir=run_dir, scheme=scheme,
                    objectives=frozen(ws.config.objectives.values(m)),
                    per_prompt_qwk=frozen(m.per_prompt_qwk()), worst_prompt=m.worst_prompt,
                    pooled_qwk=m.pooled_qwk, params=frozen(result.params), metrics=m,
                    paths=frozen(paths), mapping=frozen(result.mapping),
                    features=frozen(result.features))


def compare(*run_dirs: str | Path, config: ConfigLike | None = None, out: str | Path,
            fresh_seed: int | None = None, fresh_repeats: int = 3,
            progress: ProgressLike = False) -> CompareResult:
    """Re-score the selected configs of ``run_dirs`` on fresh folds (``moqwk compare``).

    Args:
        run_dirs: selected runs (each has ``artifacts/selected_params.json``); the verdict asks
            whether the first matches or beats the second.
        config: the config they share; None: the first run's ``config.yaml``. Every run must
            agree with it on scoring.
        out: where ``compare.json`` and ``compare.md`` go.
        fresh_seed: a fold seed the searches never used (default ``cv.seed + 1000``).
        fresh_repeats: fresh fold assignments.
        progress: False (default), True, or a Progress.
    """
    from moqwk._api.compare_outputs import run_compare
    from moqwk.stages.compare import compare_config

    if not run_dirs:
        raise ConfigError("compare: give at least one run directory")
    if fresh_repeats < 1:
        raise ConfigError(f"fresh_repeats (--fresh-repeats) must be >= 1, got {fresh_repeats}")
    dirs = [Path(d) for d in run_dirs]
    cfg = compare_config(dirs, as_config(config) if config is not None else None)
    out = Path(out)
    seed = fresh_seed if fresh_seed is not None else cfg.cv.seed + 1000
    record = run_compare(cfg, dirs, out, seed=seed, repeats=fresh_repeats,
                         progress=as_progress(progress))
    runs = tuple(CompareRun(run_dir=Path(r["run_dir"]), trial_number=int(r["trial_number"]),
                            sampler=r["sampler"], in_sample=frozen(r["in_sample"]),
                            fresh=frozen(r["fresh"])) for r in record["runs"])
    verdict = record.get("verdict")
    return CompareResult(out=out, runs=runs,
                         verdict_met=bool(verdict["met"]) if verdict else None,
                         fresh_seed=seed, record=frozen(record),
                         paths=frozen({"json": out / "compare.json",
                                       "markdown": out / "compare.md"}))


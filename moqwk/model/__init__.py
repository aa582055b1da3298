"""Fitted models: ``moqwk fit`` writes a model directory, ``moqwk predict`` scores essays with it.

- :mod:`moqwk.model.fit`: :func:`fit_run` (a run's selected trial on its whole corpus) and
  :func:`fit_model` (any config, corpus and params);
- :mod:`moqwk.model.predict`: :func:`load_model` and :class:`Model` (``Model.predict(frame)``);
- :mod:`moqwk.model.mapping_record`: :func:`apply_score_mapping`, raw predictions to scores;
- :mod:`moqwk.model.manifest`: the directory's files, ``model.json`` and the version policy.

>>> model = moqwk.load_model("runs/nsga2/model")
>>> scores = model.predict(frame)        # id, prompt, y_pred, y_pred_raw, y_pred_norm
"""

from moqwk.model.fit import FitResult, FitSource, fit_corpus, fit_model, fit_run, fit_source
from moqwk.model.mapping_record import apply_score_mapping
from moqwk.model.predict import OUTPUT_COLUMNS, Model, load_model

__all__ = ["OUTPUT_COLUMNS", "FitResult", "FitSource", "Model", "apply_score_mapping",
           "fit_corpus", "fit_model", "fit_run", "fit_source", "load_model"]

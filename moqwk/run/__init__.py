"""The run directory: its layout, its record and config, its splits, and one CV run's outputs.

- :mod:`moqwk.run.layout`: every file name of a run directory;
- :mod:`moqwk.run.record`: ``run.json`` and ``config.yaml`` (what the run is; the config it uses);
- :mod:`moqwk.run.workspace`: :class:`Workspace`, a config, its corpus and a run directory;
- :mod:`moqwk.run.splits_file`: ``splits.json``;
- :mod:`moqwk.run.cv_outputs`: ``moqwk cv``'s residuals, metrics and diagnostics.
- :mod:`moqwk.run.artifact_records`: the typed, versioned records of ``selected_params.json``
  and ``progress.json``, and :func:`~moqwk.run.artifact_records.read_trials`.
"""

"""Reports for people, written next to the artifacts.

- :mod:`moqwk.reports.markdown`: the residual diagnostics of a CV run, the search and selection
  summary (``optuna_summary.md``) and ``compare.md`` (pure text builders, no I/O);
- :mod:`moqwk.reports.decision`: the decision of ``select`` in plain sentences (pure);
- :mod:`moqwk.reports.html`: the self-contained HTML report and its figures
  (``optuna_summary.html``, ``figures/``); it reads a run's artifacts and writes those files.
"""

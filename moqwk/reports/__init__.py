"""Reports for people, written next to the artifacts: pure text builders, no I/O.

- :mod:`moqwk.reports.markdown`: the residual diagnostics of a CV run, the search and selection
  summary (``optuna_summary.md``) and ``compare.md``.
"""

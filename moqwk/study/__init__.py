"""Optuna at one edge: storages, samplers, the space, trial records and recovery.

Nothing else in moqwk touches Optuna's private attributes; each use here carries a comment
naming the public API that is missing.

- :mod:`moqwk.study.storage`: open a storage (a table of backends), create or load a study;
- :mod:`moqwk.study.samplers`: the sampler registry, seeding;
- :mod:`moqwk.study.space`: the search space as Optuna distributions;
- :mod:`moqwk.study.records`: trials as plain records, ``progress.json``'s numbers;
- :mod:`moqwk.study.recovery`: interrupted trials failed and queued again.

The submodules are imported where used (not re-exported here) so that reading the sampler names
(:data:`moqwk.study.samplers.SAMPLER_NAMES`, used by config validation and ``--help``) does not
import Optuna.
"""

"""The run config: one YAML file parsed into frozen dataclasses, section by section.

- :mod:`moqwk.config.sections`: data, scale, CV, tails, model, baseline, objectives;
- :mod:`moqwk.config.search`: the search space, sampler and budget; the selector's settings;
- :mod:`moqwk.config.load`: :class:`Config`, :func:`load_config`, hashes, the normalised copy;
- ``features:`` is parsed by :mod:`moqwk.features.config`.
"""

from moqwk.config.load import Config, diff_paths, load_config, parse_config
from moqwk.config.search import (
    DEFAULT_GRID,
    DEFAULT_N_TRIALS,
    DEFAULT_SPACE,
    SearchConfig,
    SelectConfig,
    SpaceParam,
)
from moqwk.config.sections import (
    DEFAULT_BASELINE_PARAMS,
    CVConfig,
    DataConfig,
    MappingConfig,
    ModelConfig,
    ObjectivesConfig,
    ScaleConfig,
    TailConfig,
    expand_env,
)

__all__ = [
    "DEFAULT_BASELINE_PARAMS", "DEFAULT_GRID", "DEFAULT_N_TRIALS", "DEFAULT_SPACE", "CVConfig",
    "Config", "DataConfig", "MappingConfig", "ModelConfig", "ObjectivesConfig", "ScaleConfig",
    "SearchConfig", "SelectConfig", "SpaceParam", "TailConfig", "diff_paths", "expand_env",
    "load_config", "parse_config",
]

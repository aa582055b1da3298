"""``search.racing*`` and ``search.n_jobs: auto``: parsed at load time, outside the study hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from moqwk.config import parse_config
from moqwk.errors import ConfigError


def _cfg(**search):
    return parse_config({"data": {"demo": True}, "search": search}, base_dir=Path("/"))


def test_defaults_are_racing_on_and_auto_cores():
    c = _cfg()
    assert c.search.racing is True and c.search.racing_rungs is None
    assert c.search.racing_margin is None and c.search.n_jobs is None
    assert c.raw["search"]["n_jobs"] == "auto" and c.raw["search"]["racing_rungs"] == "auto"


def test_racing_and_workers_do_not_change_the_study_hash():
    """A run made before racing existed (its config has none of these fields) keeps its hash,
    so it resumes; so does a study whose config turns racing off or changes the rungs."""
    base = _cfg(n_jobs=1)
    for other in (_cfg(), _cfg(racing=False), _cfg(racing_rungs=[1, 3], racing_margin=0.05),
                  _cfg(racing_margin={"mean_qwk": 0.01}, n_jobs=2),
                  _cfg(racing_bound="statistical", racing_z=1.5)):
        assert other.study_hash() == base.study_hash()
    assert _cfg(population_size=4).study_hash() != base.study_hash()  # the hash still works


@pytest.mark.parametrize(("field", "value", "says"), [
    ("racing", "yes", "search.racing: expected true or false"),
    ("racing_rungs", [3, 2], "search.racing_rungs: fold counts must increase"),
    ("racing_rungs", [0], "search.racing_rungs: 'auto' or a list"),
    ("racing_rungs", 2, "search.racing_rungs: 'auto' or a list"),
    ("racing_margin", -0.1, "search.racing_margin: 'auto', a number >= 0"),
    ("racing_margin", {"mean_qwk": "x"}, "search.racing_margin.mean_qwk: a number >= 0"),
    ("n_jobs", 0, "search.n_jobs: 'auto' or a whole number >= 1"),
    ("racing_bound", "hopeful", "search.racing_bound"),
    ("racing_z", 0, "search.racing_z"),
    ("racing_z", "two", "search.racing_z"),
    ("n_jobs", "all", "search.n_jobs: 'auto' or a whole number >= 1"),
])
def test_bad_racing_fields_name_their_path(field, value, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace("[", r"\[")):
        _cfg(**{field: value})


def test_a_rung_not_below_the_folds_is_refused_when_the_search_plans():
    from moqwk.engine import racing

    c = _cfg(racing_rungs=[2, 5])
    with pytest.raises(ConfigError, match="search.racing_rungs: 5 folds is not fewer than"):
        racing.plan(c, 5, c.objectives.names)
    assert racing.plan(_cfg(racing=False), 5, c.objectives.names) is None
    p = racing.plan(_cfg(), 5, c.objectives.names)
    assert p is not None and p.rungs == (2, 4)
    assert p.margins == (0.02, 0.02, 0.01, 0.01)
    with pytest.raises(ConfigError, match="search.racing_margin.pooled_qwk: not an objective"):
        racing.plan(_cfg(racing_margin={"pooled_qwk": 0.1}), 5, c.objectives.names)


def test_the_plan_carries_the_bound_and_records_it_only_when_statistical():
    from moqwk.engine import racing

    c = _cfg()
    p = racing.plan(c, 5, c.objectives.names)
    assert p is not None and (p.bound, p.z) == ("worst_case", 2.0)
    assert "bound" not in p.to_dict()  # progress.json as before for the default
    s = racing.plan(_cfg(racing_bound="statistical", racing_z=1.5), 5, c.objectives.names)
    assert s is not None and s.to_dict()["bound"] == "statistical" and s.to_dict()["z"] == 1.5

"""One declaration per config field: a field declared once is parsed, checked with an error
naming its path, written by ``to_dict``, overridable, and a row of the config reference."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from moqwk.base.fields import dump, fields_of, override, parse, setting
from moqwk.config import load as load_mod
from moqwk.config import search as search_mod
from moqwk.config.load import DECLARED, parse_config
from moqwk.config.reference import render, section_table, tables
from moqwk.errors import ConfigError

DEMO = {"data": {"demo": True}}
PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "config.md"


@pytest.fixture
def new_search_field(monkeypatch):
    """``search.new_knob`` declared the way a new field is: one ``setting()`` line in the
    section's dataclass. (Here the dataclass is subclassed at run time, so the two names that
    hold the class are pointed at it; in the source the line goes into ``SearchConfig``.)"""

    @dataclasses.dataclass(frozen=True)
    class WithKnob(search_mod.SearchConfig):
        new_knob: int = setting(3, lo=1, help="a knob added by a test")

    monkeypatch.setattr(search_mod, "SearchConfig", WithKnob)
    monkeypatch.setitem(DECLARED, "search", WithKnob)
    return WithKnob


def test_a_new_field_is_parsed_checked_written_overridden_and_documented(new_search_field):
    cfg = parse_config({**DEMO, "search": {"new_knob": 5}}, base_dir=Path("/"))
    assert cfg.search.new_knob == 5 and cfg.raw["search"]["new_knob"] == 5
    default = parse_config(DEMO, base_dir=Path("/"))
    assert default.search.new_knob == 3 and default.to_dict()["search"]["new_knob"] == 3
    with pytest.raises(ConfigError, match=r"^search\.new_knob: must be >= 1, got 0$"):
        parse_config({**DEMO, "search": {"new_knob": 0}}, base_dir=Path("/"))
    with pytest.raises(ConfigError, match=r"^search\.new_knob: expected a whole number"):
        parse_config({**DEMO, "search": {"new_knob": "many"}}, base_dir=Path("/"))
    with pytest.raises(ConfigError, match=r"search\.new_knb: unknown field; allowed: .*new_knob"
                                          r".*; did you mean new_knob\?"):
        parse_config({**DEMO, "search": {"new_knb": 5}}, base_dir=Path("/"))
    # the search overrides (--sampler, --seed, ...) re-read the section: any field can be set
    changed = default.with_search(new_knob=7)
    assert changed.search.new_knob == 7 and changed.raw["search"]["new_knob"] == 7
    with pytest.raises(ConfigError, match=r"search\.new_knob: must be >= 1"):
        default.with_search(new_knob=0)
    # the reference: a row, and the committed page is now out of date, by name
    row = "| `search.new_knob` | int >= 1 | `3` | a knob added by a test |"
    assert row in tables()["search"]
    new_page, changed_tables = render(PAGE.read_text(encoding="utf-8"))
    assert changed_tables == ["search"] and row in new_page


def test_the_committed_page_is_what_the_declarations_generate():
    _, changed = render(PAGE.read_text(encoding="utf-8"))
    assert changed == []


@pytest.mark.parametrize("section", sorted(DECLARED))
def test_every_section_is_its_declarations(section):
    """The normalised form, the unknown-field error and the reference table of each section
    list exactly its declared fields, in declaration order: no second list to drift."""
    declared = [n for n, _ in fields_of(DECLARED[section])]
    cfg = parse_config(DEMO, base_dir=Path("/"))
    assert list(cfg.raw[section]) == declared
    with pytest.raises(ConfigError) as e:
        parse_config({**DEMO, section: {"zz": 1}}, base_dir=Path("/"))
    assert str(e.value).startswith(f"{section}.zz: unknown field; allowed: "
                                   f"{', '.join(sorted(declared))}")
    table = tables()[section]
    assert [line.split("`")[1] for line in table.splitlines()[2:]] == \
        [f"{section}.{n}" for n in declared]


def test_the_defaults_live_in_the_declarations_only():
    """select's options and a default config read SelectConfig's declared defaults."""
    from moqwk.config import SelectConfig
    from moqwk.stages.selector import SelectOptions, options_from

    opts = options_from(SelectConfig())
    for name, f in fields_of(SelectConfig):
        assert getattr(opts, name) == getattr(SelectOptions(), name) == f.default, name
    cv = parse_config(DEMO, base_dir=Path("/")).cv
    assert cv.min_prompt_n == dict(fields_of(type(cv)))["min_prompt_n"].default == 20


def test_a_flag_is_checked_as_the_field_it_overrides():
    from moqwk.config import SelectConfig
    from moqwk.stages.selector import options_from

    assert options_from(SelectConfig(), gate_margin=0.05).gate_margin == 0.05
    assert options_from(SelectConfig(), tie_tolerance=0.0).tie_tolerance == 0.0
    for flags, says in [({"gate_margin": -1.0}, "--gate-margin: must be >= 0, got -1.0"),
                        ({"max_gate_candidates": 0}, "--max-candidates: must be >= 1, got 0"),
                        ({"tie_tolerance": -0.5}, "--tie-tolerance: 'auto' or a finite number"
                                                  " >= 0, got -0.5")]:
        with pytest.raises(ConfigError) as e:
            options_from(SelectConfig(), **flags)
        assert str(e.value) == says


def test_the_declaration_type_on_its_own(tmp_path):
    """A section written from scratch: parse, errors, dump, override and its table."""

    @dataclasses.dataclass(frozen=True)
    class Knobs:
        level: int = setting(2, lo=1, hi=9, flag="--level", help="how far")
        mode: str = setting("fast", choices=("fast", "slow"), help="how")
        band: float | None = setting(None, kind=float, auto=True, lo=0.0, help="how wide")
        names: tuple[str, ...] = setting((), help="which")

    k = parse(Knobs, {"level": 3, "band": "auto", "names": ["a"]}, "knobs")
    assert k == Knobs(level=3, band=None, names=["a"])
    assert dump(Knobs()) == {"level": 2, "mode": "fast", "band": "auto", "names": []}
    for raw, says in [({"level": 10}, "knobs.level: must be <= 9, got 10"),
                      ({"level": True}, "knobs.level: expected a whole number, got True"),
                      ({"mode": "slo"}, "knobs.mode: must be one of fast, slow, got 'slo'; did "
                                     "you mean slow?"),
                      ({"mode": "quick"}, "knobs.mode: must be one of fast, slow, got 'quick'"),
                      ({"band": -1}, "knobs.band: 'auto' or a number >= 0, got -1.0"),
                      ({"levle": 1}, "knobs.levle: unknown field; allowed: band, level, mode, "
                                     "names; did you mean level?"),
                      ([1], "knobs: expected a mapping, got list [1]")]:
        with pytest.raises(ConfigError) as e:
            parse(Knobs, raw, "knobs")
        assert str(e.value) == says
    assert override(Knobs(), "knobs", level=4, mode=None).level == 4
    with pytest.raises(ConfigError, match="^--level: must be >= 1, got 0$"):
        override(Knobs(), "knobs", level=0)
    assert section_table("knobs", Knobs).splitlines()[2:] == [
        "| `knobs.level` | int in [1, 9] | `2` | how far (`--level`) |",
        "| `knobs.mode` | `fast` \\| `slow` | `fast` | how |",
        "| `knobs.band` | `auto` \\| number >= 0 | `auto` | how wide |",
        "| `knobs.names` | value | `[]` | which |",
    ]


def test_a_new_feature_family_field_is_a_reference_row(monkeypatch):
    """A family's fields are declared in its module with the same setting(): the features
    table lists the family and its fields with no other edit."""
    from moqwk.features.family import PerEssayFamily
    from moqwk.features.registry import FAMILIES

    @dataclasses.dataclass(frozen=True)
    class LoudConfig:
        enabled: bool = setting(False, help="build this block")
        volume: int = setting(2, lo=1, help="how loud")

    class Loud(PerEssayFamily):
        name = prefix = "loud"
        config_type = LoudConfig
        help = "capital letters"

        def feature_names(self, cfg):
            return ("loud.caps",)

        def compute(self, cfg, ids, texts):
            raise NotImplementedError

    monkeypatch.setitem(FAMILIES, "loud", Loud())
    from moqwk.features import FeatureConfig

    cfg = FeatureConfig.from_mapping({"loud": {"enabled": True, "volume": 4}})
    assert cfg.loud == LoudConfig(True, 4) and cfg.to_dict()["loud"] == {"enabled": True,
                                                                          "volume": 4}
    with pytest.raises(ConfigError, match=r"^features\.loud\.volume: must be >= 1, got 0$"):
        FeatureConfig.from_mapping({"loud": {"volume": 0}})
    assert cfg.with_params({"features.loud.enabled": False}).loud.enabled is False
    table = tables()["features"]
    assert "| `features.loud` | mapping (or bool) | see `features.loud` below | capital " \
           "letters |" in table
    assert "| `features.loud.volume` | int >= 1 | `2` | how loud |" in table
    assert load_mod.SECTIONS  # the features section is the registry's: no list to extend

"""The prompt-agnostic feature families: readability, connectives, lexical (issue 19, item 2).

Each feature is checked on small hand-made texts whose counts are known by hand; each family on
leakage (its fitted state reads the training texts only), determinism, JSON state round trips,
row independence (an essay's values do not depend on the essays scored with it) and on being
blind to the topic where it claims to be.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from moqwk.data.demo_corpus import make_demo_corpus
from moqwk.features.connectives import CATEGORIES, CONNECTIVES, ConnectivesFamily
from moqwk.features.lexical import BANDS, LexicalFamily, package_counts
from moqwk.features.readability import ReadabilityFamily, syllables

FAMILIES = [ReadabilityFamily, ConnectivesFamily, LexicalFamily]


def values(family, text: str) -> dict[str, float]:
    row = family.transform([text])[0]
    return dict(zip(family.feature_names, row.tolist(), strict=True))


# --------------------------------------------------------------------------- readability


@pytest.mark.parametrize(
    ("word", "n"),
    [("cat", 1), ("make", 1), ("tree", 1), ("table", 2), ("away", 2), ("beautiful", 3),
     ("education", 4), ("the", 1), ("rhythm", 1)],
)
def test_syllables_follow_the_vowel_group_rule(word, n):
    assert syllables(word) == n


def test_readability_on_a_text_with_known_counts():
    # 2 sentences of 3 and 4 words; syllables 1,1,1 | 1,1,1,2 (a-way): 8 in 7 words, 23 letters
    v = values(ReadabilityFamily(), "The cat sat. The dog ran away.")
    words, sents, syl, letters = 7, 2, 8, 3 + 3 + 3 + 3 + 3 + 3 + 4
    assert v["read.syllables_per_word"] == pytest.approx(syl / words)
    assert v["read.polysyllable_share"] == 0.0
    assert v["read.flesch_reading_ease"] == pytest.approx(
        206.835 - 1.015 * words / sents - 84.6 * syl / words
    )
    assert v["read.flesch_kincaid_grade"] == pytest.approx(
        0.39 * words / sents + 11.8 * syl / words - 15.59
    )
    assert v["read.ari"] == pytest.approx(4.71 * letters / words + 0.5 * words / sents - 21.43)
    assert v["read.coleman_liau"] == pytest.approx(
        0.0588 * 100 * letters / words - 0.296 * 100 * sents / words - 15.8
    )
    assert v["read.gunning_fog"] == pytest.approx(0.4 * words / sents)
    assert v["read.sent_len_median"] == 3.5
    assert v["read.sent_len_max"] == 4.0
    assert v["read.short_sentence_share"] == 1.0  # both have <= 5 words
    assert v["read.long_sentence_share"] == 0.0


def test_clause_markers_are_counted_per_sentence():
    v = values(
        ReadabilityFamily(), "I stayed home because it rained. The man who came was tired and left."
    )
    assert v["read.subordinators_per_sentence"] == 0.5  # because
    assert v["read.relatives_per_sentence"] == 0.5  # who
    assert v["read.coordinators_per_sentence"] == 0.5  # and
    assert v["read.clauses_per_sentence"] == 2.0  # 1 + (1 + 1) / 2


def test_a_polysyllable_raises_fog_and_lowers_reading_ease():
    fam = ReadabilityFamily()
    plain, hard = values(fam, "We saw the big dog."), values(fam, "We saw the enormous dog.")
    assert hard["read.polysyllable_share"] == pytest.approx(1 / 5)
    assert hard["read.gunning_fog"] > plain["read.gunning_fog"]
    assert hard["read.flesch_reading_ease"] < plain["read.flesch_reading_ease"]


# --------------------------------------------------------------------------- connectives


def test_connectives_by_category_longest_phrase_first():
    text = (
        "However, I agree with the plan. Even though it rained, we went out.\n"
        "In conclusion, for example, it was fun."
    )
    v = values(ConnectivesFamily(), text)
    per = {c: v[f"conn.{c}_per_sentence"] for c in CATEGORIES}
    # contrast: however, even though (one phrase, not also 'though'); stance: i agree
    assert per["contrast"] == pytest.approx(2 / 3)
    assert per["stance"] == pytest.approx(1 / 3)
    assert per["conclusion"] == pytest.approx(1 / 3)
    assert per["example"] == pytest.approx(1 / 3)
    assert per["cause"] == per["addition"] == per["sequence"] == 0.0
    assert v["conn.all_per_sentence"] == pytest.approx(5 / 3)
    assert v["conn.distinct"] == 5.0
    assert v["conn.categories_used"] == pytest.approx(4 / len(CATEGORIES))
    assert v["conn.opener_share"] == 1.0  # every sentence opens with a connective


def test_connectives_match_whole_words_only():
    v = values(ConnectivesFamily(), "The butter also melted. Sofa thus.")
    assert v["conn.contrast_per_sentence"] == 0.0  # 'but' inside 'butter', 'so' inside 'Sofa'
    assert v["conn.addition_per_sentence"] == 0.5  # also
    assert v["conn.cause_per_sentence"] == 0.5  # thus
    assert v["conn.opener_share"] == 0.0


def test_every_connective_is_in_exactly_one_category():
    phrases = [p for ps in CONNECTIVES.values() for p in ps]
    assert len(phrases) == len(set(phrases))


# --------------------------------------------------------------------------- lexical


def test_lexical_counts_unknown_words_as_spelling_errors():
    counts = package_counts()
    assert "teh" not in counts and "becuase" not in counts and "because" in counts
    v = values(LexicalFamily(), "the teh because becuase")
    assert v["lex.oov_rate"] == 0.5
    assert v["lex.known_share"] == 0.5
    assert v["lex.oov_type_share"] == 0.5
    assert v["lex.band_1k"] == 0.5  # 'the' and 'because' are among the 1,000 commonest words


def test_lexical_bands_partition_the_words():
    X = LexicalFamily().transform(make_demo_corpus(1, n_essays=60)["text"].tolist())
    names = LexicalFamily.feature_names
    bands = [names.index(f"lex.band_{b // 1000}k") for b in BANDS] + [
        names.index("lex.band_beyond")
    ]
    np.testing.assert_allclose(X[:, bands].sum(1) + X[:, names.index("lex.oov_rate")], 1.0)


def test_rarer_content_words_look_more_sophisticated():
    fam = LexicalFamily()
    plain = values(fam, "People think school is good for kids.")
    rich = values(fam, "Students acknowledge education is beneficial for adolescents.")
    assert rich["lex.content_log_freq_mean"] < plain["lex.content_log_freq_mean"]
    assert rich["lex.sophisticated_type_share"] > plain["lex.sophisticated_type_share"]


def test_training_reference_is_fitted_on_the_training_texts_only():
    train = ["the dog ran home", "the dog sat down", "a dog ran far", "the cat ran"]
    val = ["the zebra ran home"]
    fam = LexicalFamily(reference="training", min_df=2).fit(train)
    before = fam.state()
    assert before["counts"] == {"dog": 3, "ran": 3, "the": 3}  # essays using each word, >= 2
    fam.transform(val + ["zebra zebra zebra"])  # scoring never changes the fitted state
    assert fam.state() == before
    # a word seen only in held-out essays stays unknown, however often they use it
    assert values(fam, "zebra ran")["lex.oov_rate"] == 0.5
    # the state is a function of the training texts: refitting on them gives the same state
    assert LexicalFamily(reference="training", min_df=2).fit(list(train)).state() == before
    assert LexicalFamily(reference="training", min_df=2).fit(train[:3]).state() != before


def test_training_reference_must_be_fitted_first():
    with pytest.raises(RuntimeError, match="before fit"):
        LexicalFamily(reference="training").transform(["a text"])


def test_lexical_knobs_are_checked():
    from moqwk.errors import ConfigError

    with pytest.raises(ConfigError, match="features.lexical.reference"):
        LexicalFamily(reference="brown")
    with pytest.raises(ConfigError, match="features.lexical.min_df"):
        LexicalFamily(min_df=0)


# --------------------------------------------------------------------------- every family


def _make(cls):
    return cls(reference="training", min_df=2) if cls is LexicalFamily else cls()


@pytest.fixture(scope="module")
def demo_texts() -> list[str]:
    return make_demo_corpus(3, n_essays=200)["text"].tolist()


@pytest.mark.parametrize("cls", FAMILIES)
def test_family_is_deterministic_row_independent_and_round_trips(cls, demo_texts):
    train, val = demo_texts[:150], demo_texts[150:]
    fam = _make(cls).fit(train)
    X = fam.transform(val)
    assert X.shape == (len(val), len(cls.feature_names)) and X.dtype == np.float64
    assert np.isfinite(X).all()
    assert len(set(cls.feature_names)) == len(cls.feature_names)
    np.testing.assert_array_equal(_make(cls).fit(train).transform(val), X)
    # an essay's row does not depend on the other essays transformed with it
    np.testing.assert_array_equal(fam.transform(val[::-1])[::-1], X)
    np.testing.assert_array_equal(fam.transform(val[:1])[0], X[0])
    # the state survives JSON and scores the same
    state = json.loads(json.dumps(fam.state()))
    np.testing.assert_array_equal(cls.from_state(state).transform(val), X)


@pytest.mark.parametrize("cls", FAMILIES)
def test_family_gives_zeros_for_an_empty_essay(cls):
    fam = _make(cls).fit(["the dog ran", "the dog sat"])
    row = fam.transform(["", "   \n "])
    assert (row == 0).all()


@pytest.mark.parametrize("cls", [ReadabilityFamily, ConnectivesFamily])
def test_topic_words_do_not_move_the_stateless_families(cls):
    # the same essay about another topic: each topic noun swapped for one with the same letters
    # and syllable counts (the only things readability reads of a word)
    a = "I think phones are bad because drivers crash. However, laws help. In short, ban phones."
    b = "I think stones are bad because writers crash. However, laws help. In short, ban stones."
    fam = cls()
    np.testing.assert_array_equal(fam.transform([a]), fam.transform([b]))


def test_states_name_their_family():
    for cls in FAMILIES:
        with pytest.raises(ValueError, match="not a"):
            cls.from_state({"family": "other"})
    assert math.isfinite(values(ReadabilityFamily(), "One.")["read.flesch_reading_ease"])

"""A built-in, deterministic demo corpus of synthetic essays: no network, no data files.

``make_demo_corpus(seed)`` draws everything from ``numpy.random.default_rng(seed)`` and the word
lists below. Ten prompts of uneven size (one under 20 essays) each have their own topic words mixed
with a shared function-word and general vocabulary. A latent proficiency per essay drives length
(sentences, paragraphs), vocabulary sophistication, lexical diversity, sentence length, spelling,
punctuation and capitalisation; every text property gets its own noise, and the score is a noisy
function of the same proficiency, so a model on text features recovers a QWK of roughly 0.5-0.8.

Scores use ``DEMO_GLOBAL_SCALE`` (1.0-5.0 in steps of 0.5, thin tails) by default, or with
``per_prompt_scales=True`` each prompt's own integer range from ``DEMO_PER_PROMPT_SCALES``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEMO_GLOBAL_SCALE: tuple[float, float, float] = (1.0, 5.0, 0.5)

# (min, max, step) per prompt, ASAP-like variety of ranges.
DEMO_PER_PROMPT_SCALES: dict[str, tuple[float, float, float]] = {
    "P01": (0.0, 3.0, 1.0),
    "P02": (0.0, 60.0, 1.0),
    "P03": (1.0, 6.0, 1.0),
    "P04": (0.0, 12.0, 1.0),
    "P05": (2.0, 12.0, 1.0),
    "P06": (0.0, 4.0, 1.0),
    "P07": (0.0, 30.0, 1.0),
    "P08": (1.0, 4.0, 1.0),
    "P09": (0.0, 24.0, 1.0),
    "P10": (1.0, 5.0, 1.0),
}

# Relative prompt sizes (720 essays -> 159, 119, ..., 13) and how long each prompt's essays run.
_PROMPT_WEIGHTS = np.array([95, 160, 60, 120, 40, 70, 33, 80, 50, 12], dtype=float)
_PROMPT_LENGTH = np.array([1.0, 1.15, 0.85, 1.05, 0.9, 1.2, 0.8, 1.0, 0.95, 1.1])


def _vocab(words: str) -> np.ndarray:
    """A word list from one space-separated string."""
    return np.array(words.split())


_FUNCTION = _vocab(
    "the a an and but or so because of to in on at for with by from as that this these those "
    "it they we i you he she their our my is are was were be have has can will would should "
    "not very also more most when if then there"
)
_BASIC = _vocab(
    "people thing good bad time way day life world school work home friend family help make "
    "think know want need like use get give go see say many much big small new old important "
    "problem idea reason example money place job kid young hard easy happy better best right "
    "wrong fun lot really everyone something change start learn feel"
)
_SOPHISTICATED = _vocab(
    "consequently furthermore nevertheless substantial significant perspective fundamental "
    "comprehensive demonstrate evaluate alternatively inevitably considerable circumstances "
    "contemporary acknowledge particularly predominantly responsibility opportunity "
    "subsequently accumulate phenomenon sustainable beneficial detrimental indispensable "
    "proportion legitimate controversial implications assumption hypothesis inherently "
    "elaborate facilitate undermine compelling meticulous prevalent ambiguous"
)
_TOPICS: dict[str, np.ndarray] = {
    p: _vocab(words)
    for p, words in {
        "P01": "phone cellphone texting driving accident road driver distraction safety law "
        "message crash traffic ban attention highway",
        "P02": "library censorship book offensive shelf reader author banned parent material "
        "magazine movie librarian freedom content",
        "P03": "cyclist hill desert water thirst bicycle road heat town sign map journey "
        "tired shortcut pedal",
        "P04": "winter hibiscus garden flower snow spring plant mother memory home country "
        "grandmother season bloom test",
        "P05": "memoir parent kitchen cuban immigrant house music neighbor culture tradition "
        "warmth dinner recipe love",
        "P06": "dirigible mast airship empire building builder wind hydrogen mooring docking "
        "engineer height storm obstacle",
        "P07": "patience waiting line doctor appointment calm tolerance delay wait moment "
        "patient complain stay quiet",
        "P08": "laughter joke story funny smile laugh humor friendship relationship party "
        "moment memory giggle comedy",
        "P09": "venus planet spacecraft exploration nasa surface atmosphere temperature "
        "scientist pressure mission orbit danger study",
        "P10": "election college vote president popular voter state candidate electoral "
        "democracy senator campaign ballot majority",
    }.items()
}

# Score noise: the score is proficiency + N(0, _SCORE_NOISE); each text property gets its own noise.
_SCORE_NOISE = 0.6
_TRAIT_NOISE = 0.55


def _prompt_sizes(n_essays: int) -> np.ndarray:
    """Split ``n_essays`` over the prompts by ``_PROMPT_WEIGHTS`` (largest remainder, >= 1 each)."""
    rest = n_essays - len(_PROMPT_WEIGHTS)
    quota = rest * _PROMPT_WEIGHTS / _PROMPT_WEIGHTS.sum()
    sizes = np.floor(quota).astype(int)
    order = np.argsort(-(quota - sizes), kind="stable")
    sizes[order[: rest - sizes.sum()]] += 1
    return sizes + 1


def _clip(x: float, lo: float, hi: float) -> float:
    """``x`` limited to ``[lo, hi]`` (plain floats: faster than ``np.clip`` on scalars)."""
    return min(max(x, lo), hi)


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """``n`` words from ``pool``; a larger ``alpha`` favours its first words (less diversity)."""
    return pool[(len(pool) * rng.random(n) ** alpha).astype(int)]


def _misspell(rng: np.random.Generator, word: str) -> str:
    """Swap two adjacent letters, drop one, or double one."""
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(3))
    if kind == 0:
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _essay(rng: np.random.Generator, prompt: str, length_factor: float, z: float) -> str:
    """One essay whose properties each follow proficiency ``z`` plus their own noise."""
    t_len, t_vocab, t_div, t_sent, t_err = (z + rng.normal(0.0, _TRAIT_NOISE, 5)).tolist()
    target = int(_clip(length_factor * (210 + 75 * t_len), 80, 420))
    mean_sent = _clip(13 + 3.0 * t_sent, 6, 24)
    sent_lens = np.clip(rng.normal(mean_sent, 3.5, target // 4 + 2).round(), 4, 30).astype(int)
    n_sent = int(np.searchsorted(np.cumsum(sent_lens), target)) + 1
    sent_lens = sent_lens[:n_sent]
    n_words = int(sent_lens.sum())

    p_soph = _clip(0.08 + 0.06 * t_vocab, 0.0, 0.3)
    alpha = _clip(2.0 - 0.45 * t_div, 0.7, 3.5)
    p_typo = _clip(0.05 - 0.03 * t_err, 0.0, 0.2)
    p_mech = _clip(0.12 - 0.08 * t_err, 0.0, 0.45)  # punctuation / capitalisation errors

    u = rng.random(n_words)
    words = np.where(
        u < 0.42,
        _pick(rng, _FUNCTION, n_words, 1.3),
        np.where(
            u < 0.42 + 0.58 * 0.35,
            _pick(rng, _TOPICS[prompt], n_words, alpha),
            np.where(
                rng.random(n_words) < p_soph,
                _pick(rng, _SOPHISTICATED, n_words, alpha),
                _pick(rng, _BASIC, n_words, alpha),
            ),
        ),
    ).tolist()
    for k in np.flatnonzero((rng.random(n_words) < p_typo) & (u >= 0.42)):
        if len(words[k]) >= 4:
            words[k] = _misspell(rng, words[k])

    n_par = int(_clip(round(2 + 0.9 * (t_len + 1.5) + rng.normal(0, 0.5)), 2, 6))
    n_par = min(n_par, n_sent)
    cuts = np.linspace(0, n_sent, n_par + 1).round().astype(int).tolist()
    lowercase, no_cap_i, run_on = (rng.random((3, n_sent)) < p_mech).tolist()  # mechanics errors
    p_comma = 0.15 + 0.1 * _clip(t_sent, -1.5, 1.5)
    comma = (rng.random(n_sent) < p_comma).tolist()
    question = (rng.random(n_sent) < 0.03).tolist()
    for c in cuts[1:]:
        run_on[c - 1] = False  # every paragraph ends on a full stop
    sentences: list[str] = []
    bounds = np.concatenate([[0], np.cumsum(sent_lens)]).tolist()
    for s in range(n_sent):
        ws = words[bounds[s] : bounds[s + 1]]
        if comma[s] and len(ws) >= 8:
            ws[len(ws) // 2 - 1] += ","
        body = " ".join([ws[0] if lowercase[s] else ws[0].capitalize(), *ws[1:]])
        if not no_cap_i[s]:
            body = body.replace(" i ", " I ")
        sentences.append(body + ("" if run_on[s] else "?" if question[s] else "."))

    paragraphs = [" ".join(sentences[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return "\n\n".join(paragraphs)


def _on_scale(x: np.ndarray, lo: float, hi: float, step: float) -> np.ndarray:
    """Round ``x`` to the nearest step from ``lo`` and clip it to ``[lo, hi]``."""
    return np.clip(lo + np.round((x - lo) / step) * step, lo, hi)


def make_demo_corpus(
    seed: int = 0, *, n_essays: int = 720, per_prompt_scales: bool = False
) -> pd.DataFrame:
    """A synthetic essay corpus with columns ``essay_id``, ``prompt``, ``text`` and ``score``.

    The same ``seed`` gives an identical frame. Scores are on ``DEMO_GLOBAL_SCALE`` unless
    ``per_prompt_scales`` is true, then on each prompt's ``DEMO_PER_PROMPT_SCALES`` range.
    """
    if n_essays < 2 * len(_PROMPT_WEIGHTS):
        raise ValueError(f"n_essays must be at least {2 * len(_PROMPT_WEIGHTS)}, got {n_essays}")
    rng = np.random.default_rng(seed)
    prompts = list(DEMO_PER_PROMPT_SCALES)
    sizes = _prompt_sizes(n_essays)
    prompt_idx = rng.permutation(np.repeat(np.arange(len(prompts)), sizes))
    z = rng.normal(0.0, 1.0, n_essays)
    # Standardised latent score: proficiency plus rater noise, unit variance.
    latent = (z + rng.normal(0.0, _SCORE_NOISE, n_essays)) / np.sqrt(1 + _SCORE_NOISE**2)
    texts = [
        _essay(rng, prompts[p], float(_PROMPT_LENGTH[p]), float(z[i]))
        for i, p in enumerate(prompt_idx)
    ]

    if per_prompt_scales:
        score = np.empty(n_essays)
        for p, (lo, hi, step) in enumerate(DEMO_PER_PROMPT_SCALES.values()):
            m = prompt_idx == p
            score[m] = _on_scale((lo + hi) / 2 + latent[m] * (hi - lo) / 4.5, lo, hi, step)
    else:
        lo, hi, step = DEMO_GLOBAL_SCALE
        score = _on_scale(3.0 + 0.62 * latent, lo, hi, step)

    width = max(4, len(str(n_essays)))
    return pd.DataFrame(
        {
            "essay_id": [f"demo-{i + 1:0{width}d}" for i in range(n_essays)],
            "prompt": [prompts[p] for p in prompt_idx],
            "text": texts,
            "score": score.astype(float),
        }
    )


def demo_corpus(seed: int = 0, *, n_essays: int = 720,
                per_prompt_scales: bool = False) -> pd.DataFrame:
    """``moqwk.demo_corpus``: the built-in synthetic corpus as a frame (``essay_id``,
    ``prompt``, ``text``, ``score``), what ``data: {demo: true}`` reads; the same ``seed``
    gives the same essays. Drop ``score`` to have essays to score."""
    return make_demo_corpus(seed, n_essays=n_essays, per_prompt_scales=per_prompt_scales)

"""Small text measures shared by answerers, citations and evaluation."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
STOP = frozenset(
    "a an the of and or in on for to with by from as at is are was were be been being this that these those "
    "it its we our they their which what who whom whose how why when where does do did can could should would "
    "may might will shall not no than then there here into over under about between such also using use used "
    "based paper papers study studies show shows shown explain explains any some all more most other".split()
)


@lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    for suf in ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "s", "ly"):
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            return word[: -len(suf)]
    return word


def terms(text: str) -> list[str]:
    """Lower-cased, lightly stemmed content words."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOP and len(w) > 1]


def overlap_score(query: str, text: str) -> float:
    """Share of the query's content terms found in text (0..1)."""
    q = set(terms(query))
    if not q:
        return 0.0
    return len(q & set(terms(text))) / len(q)


def token_f1(pred: str, gold: str) -> float:
    """SQuAD-style token F1 between two texts on content terms."""
    p, g = terms(pred), terms(gold)
    if not p or not g:
        return float(p == g)
    common = 0
    pool = list(g)
    for t in p:
        if t in pool:
            pool.remove(t)
            common += 1
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)

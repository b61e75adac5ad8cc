"""The relevance gate: whether retrieved sources are worth answering from (else the engine abstains).

A source is relevant when its dense cosine with the question (or with the question's content words alone) is
at least `min_relevance` and that cosine plus COVERAGE_WEIGHT x its coverage reaches MIN_EVIDENCE. Coverage is the IDF-weighted share of the
question's terms that the paper (title + abstract) contains, question-phrasing words ("what is known about",
"why does it happen", "which papers use") left out. Dense similarity alone cannot tell "a paper on this" from
"a paper near this" (an off-collection question about ResNet learning rates meets ML papers at cosine 0.4
or more); the question's rare terms can. Calibrated with `python -m eval.calibrate_relevance` on
eval/datasets/relevance_dev.jsonl; the table is in eval/results/relevance-calibration.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rag.text import STOP, terms
from rag.types import Source

ABSTAIN_TEXT = "I found nothing in the indexed papers that answers this question."
CHOSEN_NOTICE = ("The question does not closely match the papers you restricted it to; answering from them as "
                 "asked.")
COVERAGE_WEIGHT = 0.3
MIN_EVIDENCE = 0.59
# A written answer that declines although a source's evidence reaches this gives way to the extractive answer.
# Relevance dev set with Qwen2.5-Coder-1.5B (eval/results/abstention-qwen1.5b-2026-12-07): every answerable
# question the model declined had evidence >= 0.947; no off-collection question the gate let through exceeded 0.842.
CONFIDENT_EVIDENCE = 0.9
# A paper that stands out in meaning (cosine >= STANDOUT_MIN and STANDOUT_MARGIN above the next source) passes
# without the words: PubMedQA questions are article titles whose words the abstracts often lack.
STANDOUT_MIN = 0.45
STANDOUT_MARGIN = 0.05
# How a question is asked rather than what it is about: never required of a paper.
QUESTION_WORDS = frozenset(
    "know known happen happens happening work works paper papers article articles study studies research evidence "
    "anyone anything exist exists existing best good way ways approach approaches method methods use uses used using "
    "find found show shows tell explain explains describe describes propose proposes proposed recent new field "
    "literature publication publications please true really whether there make makes report reports reported "
    "collection".split())
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # the BM25 index's token pattern


def content_words(question: str) -> list[str]:
    """The question's words that a paper answering it should contain (stop and phrasing words dropped)."""
    from ingest.lexical import english_stopwords  # words the BM25 index never saw: they must not count as rare

    drop = STOP | QUESTION_WORDS | english_stopwords()
    return [w for w in _TOKEN.findall(question.lower()) if w not in drop]


def fill_gate_inputs(question: str, sources: Sequence[Source], lexical: Any,
                     dense_of: Callable[[str, list[str]], dict[str, float]] | None = None) -> None:
    """Set each source's `coverage` (and `focus`, when `dense_of(text, paper_ids)` gives best-chunk cosines).

    `focus` is the dense cosine of the question's content words alone: "Which papers use category theory?"
    meets the category-theory paper at 0.22, "category theory" at 0.37. Coverage comes from the lexical
    index (IDF-weighted), or unweighted from the text when the index cannot tell document frequencies."""
    words = content_words(question)
    if not sources:
        return
    if dense_of is not None and words:
        focus = dense_of(" ".join(words), [s.paper_id for s in sources])
        for s in sources:
            s.focus = round(focus.get(s.paper_id, 0.0), 4)
    if hasattr(lexical, "coverage"):
        cov = lexical.coverage(words, [s.paper_id for s in sources])
        for s in sources:
            s.coverage = round(cov.get(s.paper_id, 0.0), 4)
        return
    wanted = set(terms(" ".join(words)))
    for s in sources:
        s.coverage = round(len(wanted & set(terms(f"{s.title}. {s.text}"))) / len(wanted), 4) if wanted else 0.0


def closeness(source: Source) -> float:
    """The dense evidence: the better of the question's and its content words' cosine with the paper."""
    return max(source.dense, source.focus)


def evidence(source: Source, weight: float = COVERAGE_WEIGHT) -> float:
    """Dense evidence plus weighted coverage: what the gate compares with MIN_EVIDENCE."""
    return closeness(source) + weight * source.coverage


def strongest(sources: Sequence[Source], min_relevance: float, weight: float = COVERAGE_WEIGHT) -> tuple[float, bool]:
    """What the gate compares: the best evidence among sources at least `min_relevance` close (0.0 when none
    is), and whether one paper stands out in meaning from the rest.

    Papers in `sources.gate_also` (rag.types.Retrieved: those sentence rescoring moved out of the chunk-level
    top k) count too, so the gate judges the ranking it was calibrated on."""
    pool = [*sources, *getattr(sources, "gate_also", ())]
    best = max((evidence(s, weight) for s in pool if closeness(s) >= min_relevance), default=0.0)
    close = sorted((closeness(s) for s in pool), reverse=True)  # standing out needs others to compare with
    stands = len(close) >= 2 and close[0] >= max(STANDOUT_MIN, min_relevance) and close[0] - close[1] >= STANDOUT_MARGIN
    return best, stands


def relevant(question: str, sources: list[Source], min_relevance: float, *, weight: float = COVERAGE_WEIGHT,
             min_evidence: float = MIN_EVIDENCE) -> bool:
    """Whether some source is close enough in meaning and covers enough of the question's rare terms, or one
    paper stands out in meaning from the rest (see `strongest`).

    `question` is unused: the sources carry the gate's inputs (dense, focus, coverage; see fill_gate_inputs)."""
    best, stands = strongest(sources, min_relevance, weight)
    return stands or (best > 0.0 and best >= min_evidence)

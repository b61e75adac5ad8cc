"""The relevance gate: whether retrieved sources are worth answering from (else the engine abstains)."""

from __future__ import annotations

from rag.text import overlap_score
from rag.types import Source

ABSTAIN_TEXT = "I found nothing in the indexed papers that answers this question."
# Just above min_relevance the best dense cosine of answerable and out-of-corpus questions overlaps (seed set:
# out-of-corpus max 0.43, answerable p10 0.49); there a retrieved abstract (with its title) must also contain
# at least MIN_TERM_OVERLAP of the question's content terms.
LEXICAL_BAND = 0.10
MIN_TERM_OVERLAP = 0.5


def relevant(question: str, sources: list[Source], min_relevance: float) -> bool:
    """Whether the sources are worth answering from (else the engine abstains)."""
    best = max((s.dense for s in sources), default=0.0)
    if best < min_relevance:
        return False
    return best >= min_relevance + LEXICAL_BAND or any(
        overlap_score(question, f"{s.title}. {s.text}") >= MIN_TERM_OVERLAP for s in sources)

"""The answer object the API returns and `paperchat ask --json` prints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field


@dataclass
class Source:
    """A retrieved paper as given to the answerer; n counts from 1."""

    n: int
    paper_id: str
    title: str
    score: float
    text: str
    url: str | None = None
    authors: str = ""
    year: int | None = None
    date: str = ""
    categories: str = ""
    dense: float = 0.0  # best chunk cosine with the question
    lexical: float = 0.0  # BM25 score of the paper (title + abstract)
    coverage: float = 0.0  # IDF-weighted share of the question's content words the paper contains (0..1)
    focus: float = 0.0  # best chunk cosine with the question's content words alone (phrasing stripped)
    sentence: float = 0.0  # best sentence cosine with the question (the ranking's head, when rescored; else 0)


class Retrieved(list[Source]):
    """Sources as retrieved, plus `gate_also`: papers the relevance gate weighs beside them (rag/relevance.py),
    those that sentence rescoring moved out of the chunk-level top k. A plain list of sources has none."""

    def __init__(self, sources: Iterable[Source] = (), gate_also: Iterable[Source] = ()) -> None:
        super().__init__(sources)
        self.gate_also = list(gate_also)


@dataclass
class Citation:
    """One cited source with the sentence that supports the claim."""

    n: int
    paper_id: str
    title: str
    url: str | None
    quote: str


@dataclass
class Claim:
    """One sentence of a written answer, checked against the sources it cites.

    `citations` are the (renumbered) `[n]` the claim keeps after verification; `support` is the best
    support score of a shown source for it (0..1); `supported` is False when no source supports it."""

    text: str
    citations: list[int] = field(default_factory=list)
    support: float = 0.0
    supported: bool = True


@dataclass
class Quote:
    """A sentence of a source that bears on the question, shown before a written answer arrives."""

    n: int  # the source's number as retrieved (the final answer may renumber its citations)
    title: str
    sentence: str


@dataclass
class Evidence:
    """The first event of a streamed LLM answer: the best sentence of each source the model is reading.

    Streams are `Evidence` (LLM backends only), then `str` text deltas, then the final `Answer`."""

    quotes: list[Quote] = field(default_factory=list)

    def text(self) -> str:
        """One line per quote: `[n] "sentence" (title)`."""
        return "\n".join(f'[{q.n}] "{q.sentence}" ({q.title})' for q in self.quotes)


@dataclass
class Answer:
    """An answer with citations; `[n]` in `answer` points to `sources[n-1]`."""

    question: str
    answer: str
    abstained: bool
    backend: str
    citations: list[Citation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    notice: str | None = None
    claims: list[Claim] = field(default_factory=list)  # filled for written (LLM) answers; empty otherwise

    def to_dict(self) -> dict[str, object]:
        """The JSON contract: question, answer, abstained, backend, citations, sources, timings_ms, notice, claims."""
        d = asdict(self)
        d["sources"] = [{k: s[k] for k in ("n", "paper_id", "title", "score", "text", "url", "year")}
                        for s in d["sources"]]
        return d

"""Parse `[n]` citation markers, drop invalid ones, renumber to cited sources, attach quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ingest.sentences import split_sentences
from rag.text import overlap_score
from rag.types import Citation, Source

MARKER = re.compile(r"\[(\s*\d+\s*(?:(?:[-–,;]|\band\b)\s*\d+\s*)*)\]")


def neutralise(text: str) -> str:
    """Source text with its bracketed numbers made inert: `[2]` becomes `(2)`.

    Applied to abstracts before they can reach an answer (extractive sentences, the LLM prompt), so only
    markers we or the model wrote are parsed as citations: an abstract quoting "[2]" cites nothing."""
    return MARKER.sub(lambda m: f"({m.group(1).strip()})", text)


def expand(group: str) -> list[int]:
    """Numbers inside one marker: '1, 3' -> [1, 3]; '1-3' -> [1, 2, 3]; bad ranges are dropped."""
    nums: list[int] = []
    for part in re.split(r"[,;]|\band\b", group):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*[-–]\s*(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a <= b and b - a < 50:
                nums.extend(range(a, b + 1))
        elif part.isdigit():
            nums.append(int(part))
    return nums


@dataclass
class Cited:
    """Result of post-processing an answer's citations."""

    text: str
    citations: list[Citation]
    sources: list[Source]
    dropped: int  # marker numbers that pointed at no source


def best_quote(claim: str, source: Source) -> str:
    """The sentence of the source that best supports the claim (lexical overlap)."""
    sents = split_sentences(source.text) or [source.text]
    return max(sents, key=lambda s: overlap_score(claim, s))


def _claims(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, numbers cited in it) for each sentence of the answer."""
    out = []
    for sent in split_sentences(text) or [text]:
        nums = [n for m in MARKER.finditer(sent) for n in expand(m.group(1))]
        out.append((MARKER.sub("", sent).strip(), nums))
    return out


def finalize(text: str, sources: list[Source], citable: set[int] | None = None) -> Cited:
    """Rewrite markers to the sources actually cited (renumbered from 1, in order of first use).

    Invalid numbers (no such source, or not in `citable`: the sources the answerer saw) are removed;
    sources come back reordered so `[n]` is `sources[n-1]`, with the uncited ones after the cited ones.
    """
    valid = {s.n for s in sources} if citable is None else {s.n for s in sources} & citable
    order: list[int] = []
    dropped = 0
    for m in MARKER.finditer(text):
        for n in expand(m.group(1)):
            if n in valid:
                if n not in order:
                    order.append(n)
            else:
                dropped += 1
    new_of = {old: i for i, old in enumerate(order, start=1)}

    def sub(m: re.Match[str]) -> str:
        nums = list(dict.fromkeys(new_of[n] for n in expand(m.group(1)) if n in new_of))
        return "".join(f"[{n}]" for n in nums)

    new_text = MARKER.sub(sub, text)
    new_text = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", new_text)).strip()
    by_old = {s.n: s for s in sources}
    rest = [s for s in sources if s.n not in new_of]
    reordered = [replace(by_old[o], n=new_of[o]) for o in order]
    reordered += [replace(s, n=len(order) + i) for i, s in enumerate(rest, start=1)]
    claims = _claims(text)
    citations = []
    for old in order:
        src = by_old[old]
        claim = next((c for c, nums in claims if old in nums), text)
        citations.append(Citation(n=new_of[old], paper_id=src.paper_id, title=src.title, url=src.url,
                                  quote=best_quote(claim, src)))
    return Cited(new_text, citations, reordered, dropped)

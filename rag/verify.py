"""Claim-level verification of a written answer against the sources the model saw.

Every sentence of an LLM answer is a claim. Each claim is scored against each shown source:

    support = SEMANTIC_WEIGHT * cosine(claim, best-matching sentence of the source)   (the bundled MiniLM)
            + (1 - SEMANTIC_WEIGHT) * share of the claim's content terms found in the source

Then, per claim:
    * a cited source is kept only when its support is >= SUPPORT_THRESHOLD;
    * when another shown source supports the claim better by >= REATTRIBUTE_MARGIN (or the cited ones do
      not support it at all, or nothing was cited), the citation moves to that source (re-attributed);
    * a claim no shown source supports is unsupported: marked (kept, without a citation) or removed.

The constants are calibrated by `python -m eval.calibrate_support` on pairs built from PubMedQA (a
long answer's sentences vs their own abstract / the most similar other abstract) and SciFact (claims vs
cited / most similar uncited abstract); see that module for the figures.

Sentences with fewer than MIN_CLAIM_TERMS content words ("Yes.", "In short:") are not claims: they are
kept as they are and not checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ingest.sentences import split_sentences
from rag.citations import MARKER, expand
from rag.text import overlap_score, terms
from rag.types import Claim, Source

# Calibrated by eval/calibrate_support.py on 800 pairs (eval/results/support-calibration/report.json):
# held-out balanced accuracy 0.89 (lexical overlap alone: 0.77); held-out accuracy is flat for weights
# 0.7-1.0, and 0.7 keeps a lexical anchor for numbers and names. The margin is the smallest that moves a
# supported, correct citation to a topically close wrong paper in <= 1% of claims (0.8%; it fixes 89% of
# mis-citations to such a paper).
SEMANTIC_WEIGHT = 0.7
SUPPORT_THRESHOLD = 0.5
REATTRIBUTE_MARGIN = 0.09
MIN_CLAIM_TERMS = 3
ENCODE_BATCH = 64  # batches of at most this many texts stay on the ONNX query encoder (no torch import)

_SPACE_PUNCT = re.compile(r"[ \t]+([.,;:!?])")


@dataclass
class Verified:
    """A verified answer: its text with the kept / moved `[n]` (the answerer's numbering) and its claims.

    `quotes` maps (claim index, source n) to the source sentence that best supports the claim."""

    text: str
    claims: list[Claim]
    quotes: dict[tuple[int, int], str] = field(default_factory=dict)
    reattributed: int = 0
    dropped: int = 0  # citations removed because their source did not support the claim
    unsupported: int = 0
    removed: int = 0

    @property
    def supported_count(self) -> int:
        return sum(1 for c in self.claims if c.supported and c.citations)


def _strip_markers(sentence: str) -> str:
    return _SPACE_PUNCT.sub(r"\1", re.sub(r"[ \t]{2,}", " ", MARKER.sub("", sentence))).strip()


def split_claims(text: str) -> list[tuple[str, list[int], str]]:
    """(sentence without markers, numbers it cites, separator after it) for each sentence of `text`.

    Lines are kept apart (the separator is "\\n" at a line end); a piece made only of markers
    ("... result. [2]") is attached to the sentence before it.
    """
    out: list[tuple[str, list[int], str]] = []
    lines = text.strip().split("\n")
    for li, line in enumerate(lines):
        sents = split_sentences(line.strip()) if line.strip() else []
        for si, sent in enumerate(sents):
            nums = [n for m in MARKER.finditer(sent) for n in expand(m.group(1))]
            plain = _strip_markers(sent)
            sep = " " if si < len(sents) - 1 else ("\n" if li < len(lines) - 1 else "")
            if not re.search(r"\w", plain) and out:
                prev_text, prev_nums, _ = out[-1]
                out[-1] = (prev_text, prev_nums + nums, sep)
                continue
            out.append((plain, nums, sep))
        if not sents and out:  # an empty line: keep the paragraph break
            t, n, _ = out[-1]
            out[-1] = (t, n, "\n\n")
    return out


def with_markers(sentence: str, nums: Sequence[int]) -> str:
    """The sentence with `[n]` markers placed before its final punctuation."""
    if not nums:
        return sentence
    marks = "".join(f"[{n}]" for n in dict.fromkeys(nums))
    m = re.search(r"([.!?:;]+[\"')\]]*)$", sentence)
    if m:
        return f"{sentence[:m.start()].rstrip()} {marks}{m.group(1)}"
    return f"{sentence} {marks}"


class SupportScorer:
    """Scores claims against sources: MiniLM cosine to the best source sentence plus term overlap.

    `embed` is any object with `get_text_embedding_batch(texts) -> vectors` (normalised); None scores
    by term overlap alone.
    """

    def __init__(self, embed: Any, weight: float = SEMANTIC_WEIGHT) -> None:
        self.embed = embed
        self.weight = weight if embed is not None else 0.0

    def _vectors(self, texts: list[str]) -> np.ndarray:
        vecs: list[Any] = []
        for i in range(0, len(texts), ENCODE_BATCH):
            vecs.extend(self.embed.get_text_embedding_batch(texts[i:i + ENCODE_BATCH]))
        arr = np.asarray(vecs, dtype=np.float32)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return arr / np.maximum(norms, 1e-9)

    def components(self, claims: list[str], sources: list[Source]) -> tuple[np.ndarray, np.ndarray, list[list[str]], np.ndarray]:
        """(semantic [claims x sources], lexical [claims x sources], each source's sentences, best sentence index)."""
        sents = [[s for s in split_sentences(src.text) if len(s) >= 15] or [src.text] for src in sources]
        lex = np.array([[overlap_score(c, f"{src.title} {src.text}") for src in sources] for c in claims],
                       dtype=np.float32).reshape(len(claims), len(sources))
        sem = np.zeros_like(lex)
        best_idx = np.zeros((len(claims), len(sources)), dtype=int)
        if self.embed is None or not claims or not sources:
            for j, ss in enumerate(sents):  # best sentence by overlap when there is no encoder
                for i, c in enumerate(claims):
                    best_idx[i, j] = int(np.argmax([overlap_score(c, s) for s in ss]))
            return sem, lex, sents, best_idx
        flat = [s for ss in sents for s in ss]
        vecs = self._vectors(list(claims) + flat)
        cos = vecs[: len(claims)] @ vecs[len(claims):].T
        start = 0
        for j, ss in enumerate(sents):
            block = cos[:, start:start + len(ss)]
            sem[:, j] = np.clip(block.max(axis=1), 0, 1)
            best_idx[:, j] = block.argmax(axis=1)
            start += len(ss)
        return sem, lex, sents, best_idx

    def score(self, claims: list[str], sources: list[Source]) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
        """(support [claims x sources], each source's sentences, index of each claim's best sentence per source)."""
        sem, lex, sents, best_idx = self.components(claims, sources)
        return self.weight * sem + (1 - self.weight) * lex, sents, best_idx


def verify(text: str, sources: list[Source], scorer: SupportScorer, mode: Literal["mark", "remove"] = "mark",
           threshold: float = SUPPORT_THRESHOLD, margin: float = REATTRIBUTE_MARGIN) -> Verified:
    """Check every claim of `text` against `sources` (the shown ones, full text; `[n]` is `Source.n`).

    Returns the rewritten text (still in the answerer's numbering) and one Claim per sentence.
    """
    parts = split_claims(text)
    checked = [i for i, (t, _, _) in enumerate(parts) if len(terms(t)) >= MIN_CLAIM_TERMS]
    by_n = {s.n: j for j, s in enumerate(sources)}
    support, sents, best_idx = scorer.score([parts[i][0] for i in checked], sources)
    out = Verified(text="", claims=[])
    pieces: list[str] = []
    row_of = {i: r for r, i in enumerate(checked)}
    for i, (sent, nums, sep) in enumerate(parts):
        nums = [n for n in dict.fromkeys(nums) if n in by_n]
        if i not in row_of or not sources:
            out.claims.append(Claim(text=sent, citations=nums, support=0.0, supported=True))
            pieces.append(with_markers(sent, nums) + sep)
            continue
        r = row_of[i]
        s = support[r]
        best_j = int(np.argmax(s))
        best_n, best_s = sources[best_j].n, float(s[best_j])
        kept = [n for n in nums if s[by_n[n]] >= threshold]
        out.dropped += len(nums) - len(kept)
        top_kept = max((float(s[by_n[n]]) for n in kept), default=0.0)
        if best_s >= threshold and best_n not in kept and (not kept or best_s - top_kept >= margin):
            kept = [best_n] + [n for n in kept if best_s - s[by_n[n]] < margin]
            out.reattributed += 1 if nums else 0
        if kept:
            sup = max(float(s[by_n[n]]) for n in kept)
            out.claims.append(Claim(text=sent, citations=kept, support=round(sup, 4), supported=True))
            for n in kept:
                out.quotes[(len(out.claims) - 1, n)] = sents[by_n[n]][best_idx[r, by_n[n]]]
            pieces.append(with_markers(sent, kept) + sep)
            continue
        out.unsupported += 1
        if mode == "remove":
            out.removed += 1
            continue
        out.claims.append(Claim(text=sent, citations=[], support=round(best_s, 4), supported=False))
        pieces.append(sent + sep)
    out.text = "".join(pieces).strip()
    return out


def renumber_claims(claims: list[Claim], old_sources: list[Source], new_sources: list[Source]) -> list[Claim]:
    """Claims with their citations mapped from the answerer's numbering to the final one (by paper id)."""
    new_of_pid = {s.paper_id: s.n for s in new_sources}
    old_to_new = {s.n: new_of_pid[s.paper_id] for s in old_sources if s.paper_id in new_of_pid}
    return [Claim(text=c.text, citations=[old_to_new[n] for n in c.citations if n in old_to_new],
                  support=c.support, supported=c.supported) for c in claims]

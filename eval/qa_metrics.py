"""Pure metric functions for question answering with citations (no I/O, no models).

Conventions:
    * A metric that is undefined for a question returns ``None`` (for example retrieval hit@k when the
      question has no gold paper, or citation precision when the answer cites nothing); `mean` skips
      ``None`` so averages are over the questions where the metric means something.
    * Ids are compared as strings; rankings are lists of paper ids, best first, without duplicates.

Anchors: BEIR / LlamaIndex RetrieverEvaluator (hit rate, MRR), ALCE (citation recall and precision, here at
paper level), RAGAS (faithfulness: share of answer claims supported by the retrieved context).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from ingest.sentences import split_sentences
from rag.citations import MARKER, expand
from rag.text import overlap_score, terms
from rag.text import token_f1 as _token_f1

SUPPORT_THRESHOLD = 0.6  # share of a claim's content terms that its cited sources must contain


# --- retrieval -------------------------------------------------------------------------------------
def hit_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float | None:
    """1.0 when any gold id is in the top k, else 0.0; None when there is no gold."""
    g = set(gold)
    if not g:
        return None
    return 1.0 if g & set(ranked[:k]) else 0.0


def recall_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float | None:
    """Share of the gold ids found in the top k; None when there is no gold."""
    g = set(gold)
    if not g:
        return None
    return len(g & set(ranked[:k])) / len(g)


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str], k: int | None = None) -> float | None:
    """1 / rank of the first gold id (within the top k when given), 0.0 if absent; None when no gold."""
    g = set(gold)
    if not g:
        return None
    for i, pid in enumerate(ranked[:k] if k else ranked, start=1):
        if pid in g:
            return 1.0 / i
    return 0.0


def gold_ranks(ranked: Sequence[str], gold: Iterable[str]) -> dict[str, int | None]:
    """Rank (from 1) of each gold id in the ranking, None when it was not retrieved."""
    pos = {pid: i for i, pid in enumerate(ranked, start=1)}
    return {g: pos.get(g) for g in gold}


# --- citations (paper level, ALCE-style) ------------------------------------------------------------
def citation_precision(cited: Iterable[str], gold: Iterable[str]) -> float | None:
    """Cited papers that are gold / all cited papers.

    None when nothing is cited (counted by `no_citation`) or when there is no gold (out-of-corpus
    questions are scored by the abstention rates instead).
    """
    c, g = set(cited), set(gold)
    if not c or not g:
        return None
    return len(c & g) / len(c)


def citation_recall(cited: Iterable[str], gold: Iterable[str]) -> float | None:
    """Gold papers cited / gold papers (0.0 when nothing is cited); None when there is no gold."""
    c, g = set(cited), set(gold)
    if not g:
        return None
    return len(c & g) / len(g)


def no_citation(cited: Iterable[str], abstained: bool) -> float | None:
    """1.0 when a (non-abstaining) answer cites nothing; None for abstentions."""
    if abstained:
        return None
    return 0.0 if set(cited) else 1.0


# --- answer content --------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[-\u2010-\u2015]", " ", text.lower())).strip()


def key_fact_hit(answer: str, key_facts_any: Sequence[str]) -> float | None:
    """1.0 when at least one key phrase occurs in the answer (case-, hyphen- and space-insensitive).

    None when the question lists no key facts.
    """
    facts = [_norm(f) for f in key_facts_any if f.strip()]
    if not facts:
        return None
    a = _norm(answer)
    return 1.0 if any(f in a for f in facts) else 0.0


def answer_f1(answer: str, reference: str | None) -> float | None:
    """SQuAD-style token F1 (content terms, light stemming) against the reference; None without one."""
    if not reference or not reference.strip():
        return None
    return _token_f1(MARKER.sub(" ", answer), reference)


# --- faithfulness ----------------------------------------------------------------------------------
def claims(answer: str) -> list[tuple[str, list[int]]]:
    """(sentence without markers, cited source numbers) per answer sentence.

    A sentence made only of markers (``"... result. [2]"``) is attached to the sentence before it.
    """
    out: list[tuple[str, list[int]]] = []
    for sent in split_sentences(answer.strip()):
        nums = [n for m in MARKER.finditer(sent) for n in expand(m.group(1))]
        text = re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", sent)).strip()
        if not terms(text) and out:
            out[-1] = (out[-1][0], out[-1][1] + nums)
            continue
        if text:
            out.append((text, nums))
    return out


def claim_support(claim: str, cited_texts: Sequence[str]) -> float:
    """Lexical support of one claim by its cited sources: best share of its content terms in one source.

    A claim copied from a source scores 1.0.
    """
    if not cited_texts:
        return 0.0
    return max(overlap_score(claim, t) for t in cited_texts)


def lexical_faithfulness(answer: str, source_texts: Mapping[int, str], abstained: bool = False,
                         threshold: float = SUPPORT_THRESHOLD) -> float | None:
    """Share of answer sentences whose cited sources contain >= `threshold` of their content terms.

    A sentence with no (valid) citation counts as unsupported. None for abstentions and empty answers.
    `source_texts` maps the answer's `[n]` numbers to source texts.
    """
    return _supported_share(answer, source_texts, abstained, claim_support, threshold, min_terms=1)


def supported_claims(answer: str, source_texts: Mapping[int, str], abstained: bool,
                     support: Callable[[str, Sequence[str]], float], threshold: float) -> float | None:
    """Share of the answer's claims (sentences of >= MIN_CLAIM_TERMS content words) whose cited sources support
    them: `support(claim, cited texts) >= threshold` (rag/verify.py's calibrated score). A claim citing nothing
    counts as unsupported. None for abstentions and answers without claims."""
    from rag.verify import MIN_CLAIM_TERMS

    return _supported_share(answer, source_texts, abstained, support, threshold, MIN_CLAIM_TERMS)


def _supported_share(answer: str, source_texts: Mapping[int, str], abstained: bool,
                     support: Callable[[str, Sequence[str]], float], threshold: float, min_terms: int) -> float | None:
    """Share of the answer's claims of >= `min_terms` content terms with `support(claim, cited texts) >= threshold`;
    a claim citing no known source is unsupported. None for abstentions and answers without such claims."""
    if abstained:
        return None
    cl = [(c, nums) for c, nums in claims(answer) if len(terms(c)) >= min_terms]
    if not cl:
        return None
    ok = 0
    for text, nums in cl:
        cited = [source_texts[n] for n in dict.fromkeys(nums) if n in source_texts]
        if cited and support(text, cited) >= threshold:
            ok += 1
    return ok / len(cl)


_DECISION = re.compile(r"\b(yes|no|maybe)\b", re.I)


def decision(answer: str) -> str | None:
    """The yes/no/maybe an answer opens with (first such word in its first sentence), else None."""
    first = re.split(r"(?<=[.!?])\s", answer.strip(), maxsplit=1)[0]
    m = _DECISION.search(first)
    return m.group(1).lower() if m else None


def yes_no_agreement(answer: str, label: str | None, abstained: bool) -> float | None:
    """1.0 when the answer's opening yes/no/maybe equals the expert label (PubMedQA), 0.0 otherwise (an
    answer that decides nothing, or abstains, disagrees); None when the question has no label."""
    if not label:
        return None
    return 1.0 if not abstained and decision(answer) == label.lower() else 0.0


# --- abstention ------------------------------------------------------------------------------------
def abstention_rates(rows: Iterable[Mapping[str, object]]) -> dict[str, float | int | None]:
    """Correct abstention on out-of-corpus questions and false abstention on answerable ones.

    Each row needs ``kind`` and ``abstained``; rows of kind ``out_of_corpus`` should be declined, every other
    kind should be answered. A rate is None when its group is empty.
    """
    rows = list(rows)
    ooc = [bool(r["abstained"]) for r in rows if r.get("kind") == "out_of_corpus" and r.get("abstained") is not None]
    ans = [bool(r["abstained"]) for r in rows if r.get("kind") != "out_of_corpus" and r.get("abstained") is not None]
    return {
        "correct_abstention": (sum(ooc) / len(ooc)) if ooc else None,
        "false_abstention": (sum(ans) / len(ans)) if ans else None,
        "n_out_of_corpus": len(ooc),
        "n_answerable": len(ans),
    }


# --- latency and aggregation -----------------------------------------------------------------------
def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    vals = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not vals:
        return None
    if len(vals) == 1:
        return vals[0]
    pos = (len(vals) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def latency_summary(timings: Iterable[Mapping[str, float]],
                    stages: Sequence[str] = ("retrieve", "first_token", "answer", "total")) -> dict[str, dict[str, float | None]]:
    """p50, p95 and mean milliseconds per stage."""
    timings = list(timings)
    out: dict[str, dict[str, float | None]] = {}
    for st in stages:
        vals = [float(t[st]) for t in timings if t.get(st) is not None]
        if not vals and st == "first_token":
            continue  # runs from before first-token timing existed
        out[st] = {"p50": _r(percentile(vals, 50)), "p95": _r(percentile(vals, 95)),
                   "mean": _r(sum(vals) / len(vals)) if vals else None}
    return out


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the defined values; None when none is defined."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


ROW_METRICS = ("hit@1", "hit@3", "hit@10", "recall@k", "recall@10", "mrr", "citation_precision",
               "citation_recall", "no_citation", "key_fact_hit", "token_f1", "faithfulness_lexical",
               "faithfulness_llm", "supported_claims", "yes_no_agreement")


def aggregate(rows: Sequence[Mapping[str, object]], names: Sequence[str] = ROW_METRICS) -> dict[str, object]:
    """Mean of each per-row metric (over rows where it is defined) with its count, plus abstention rates.

    Each row carries its per-question metrics under ``row["metrics"]``.
    """
    out: dict[str, object] = {"n": len(rows)}
    for name in names:
        vals = [r["metrics"].get(name) for r in rows if isinstance(r.get("metrics"), Mapping)]  # type: ignore[union-attr, attr-defined]
        defined = [v for v in vals if v is not None]
        if defined:
            out[name] = _r(mean(defined))
            out[f"{name}_n"] = len(defined)
    if any(r.get("abstained") is not None for r in rows):
        out.update({k: _r(v) if isinstance(v, float) else v for k, v in abstention_rates(rows).items()})
    return out

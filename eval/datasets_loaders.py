"""Evaluation datasets: the seed QA set (and any file in its format), PubMedQA-dev and BEIR claims.

Every loader returns a `QADataset`: the questions (`QAItem`), where the corpus comes from (files to ingest
or records written to a JSONL file at run time) and a sha256 of the source files, so a report says exactly
what it measured.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.records import make_paper, title_key

ROOT = Path(__file__).resolve().parent.parent
SEED_QA = Path(__file__).resolve().parent / "datasets" / "seed_qa.jsonl"
SAMPLE_CORPUS = ROOT / "data" / "sample"
SHARED_DATA = ROOT.parent / "shared" / "data"
PUBMEDQA = SHARED_DATA / "pubmedqa-dev" / "pqal_dev.json.gz"
SCIFACT = SHARED_DATA / "scifact-train"
KINDS = ("single", "multi", "out_of_corpus")


@dataclass
class QAItem:
    """One evaluation question; gold papers by id and/or exact title."""

    qid: str
    question: str
    gold_ids: list[str] = field(default_factory=list)
    gold_titles: list[str] = field(default_factory=list)
    answer: str = ""
    key_facts_any: list[str] = field(default_factory=list)
    kind: str = "single"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class QADataset:
    """Questions plus the corpus they are asked over."""

    name: str
    items: list[QAItem]
    sha256: str
    source: str
    corpus_paths: list[Path] = field(default_factory=list)
    corpus_records: list[dict[str, Any]] = field(default_factory=list)  # written to a JSONL file, then ingested
    retrieval_only: bool = False

    def limit(self, n: int | None) -> QADataset:
        """The first n questions (all when n is None)."""
        if n is not None:
            self.items = self.items[:n]
        return self


def sha256_of(paths: Iterable[Path]) -> str:
    """sha256 over the bytes of the files, in order."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def paper_id_of(raw_id: str) -> str:
    """The paper id the ingest pipeline gives a record with this source id (arXiv ids get `arxiv:`)."""
    return make_paper(title="x", abstract="x", raw_id=raw_id).paper_id


def _open_text(path: Path) -> Any:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


# --- seed QA format ----------------------------------------------------------------------------------
def load_qa_jsonl(path: Path, corpus: list[Path] | None = None) -> QADataset:
    """A dataset in the seed format (see eval/datasets/README.md); the corpus defaults to data/sample."""
    path = Path(path)
    items: list[QAItem] = []
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from exc
            if not isinstance(rec, dict) or not str(rec.get("question") or "").strip():
                raise ValueError(f"{path}:{lineno}: a record needs a non-empty 'question'")
            kind = str(rec.get("kind") or ("out_of_corpus" if not (rec.get("gold_ids") or rec.get("gold_titles"))
                                           else "single"))
            if kind not in KINDS:
                raise ValueError(f"{path}:{lineno}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
            items.append(QAItem(
                qid=str(rec.get("id") or f"q{lineno:03d}"),
                question=str(rec["question"]).strip(),
                gold_ids=[str(x) for x in rec.get("gold_ids") or []],
                gold_titles=[str(x) for x in rec.get("gold_titles") or []],
                answer=str(rec.get("answer") or ""),
                key_facts_any=[str(x) for x in rec.get("key_facts_any") or []],
                kind=kind,
            ))
    return QADataset(name=path.stem, items=items, sha256=sha256_of([path]), source=str(path),
                     corpus_paths=list(corpus) if corpus else [SAMPLE_CORPUS])


def resolve_gold_titles(items: list[QAItem], titles_by_id: dict[str, str]) -> list[str]:
    """Add the ids of `gold_titles` to each item's `gold_ids` (exact title, then case/punctuation-insensitive).

    `titles_by_id` is the index's paper id -> title map. Returns the titles that matched no paper.
    """
    exact: dict[str, list[str]] = {}
    loose: dict[str, list[str]] = {}
    for pid, title in titles_by_id.items():
        exact.setdefault(title, []).append(pid)
        loose.setdefault(title_key(title), []).append(pid)
    missing: list[str] = []
    for it in items:
        for t in it.gold_titles:
            ids = exact.get(t) or loose.get(title_key(t))
            if not ids:
                missing.append(t)
                it.extra.setdefault("unresolved_titles", []).append(t)
                continue
            for pid in ids:
                if pid not in it.gold_ids:
                    it.gold_ids.append(pid)
    return missing


# --- PubMedQA ----------------------------------------------------------------------------------------
_FIRST_SENT = re.compile(r"^(.{20,200}?[.!?])(?:\s|$)")


def load_pubmedqa(path: Path = PUBMEDQA, title: str = "id") -> QADataset:
    """PubMedQA PQA-L: each item's CONTEXTS joined are its paper's abstract (the corpus is all items).

    The gold paper is the item's own abstract (id `pubmed:<PMID>`), the reference answer is LONG_ANSWER
    and `final_decision` (yes/no/maybe) is kept in `extra`. PubMedQA has no titles and its questions are
    rephrased article titles, so the title is `PubMed <PMID>` (title="id", default, no leak) or the first
    sentence of the abstract (title="first-sentence").
    """
    path = Path(path)
    with _open_text(path) as fh:
        data = json.load(fh)
    items, records = [], []
    for pmid, rec in data.items():
        abstract = " ".join(str(c).strip() for c in rec.get("CONTEXTS") or [] if str(c).strip())
        if title == "first-sentence":
            m = _FIRST_SENT.match(abstract)
            t = m.group(1) if m else f"PubMed {pmid}"
        else:
            t = f"PubMed {pmid}"
        raw = f"pubmed:{pmid}"
        records.append({"id": raw, "title": t, "abstract": abstract,
                        "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"})
        items.append(QAItem(qid=str(pmid), question=str(rec["QUESTION"]).strip(), gold_ids=[paper_id_of(raw)],
                            answer=str(rec.get("LONG_ANSWER") or ""), kind="single",
                            extra={"final_decision": rec.get("final_decision")}))
    return QADataset(name="pubmedqa-dev", items=items, sha256=sha256_of([path]), source=str(path),
                     corpus_records=records)


# --- BEIR claims (retrieval only) ----------------------------------------------------------------------
def _find(folder: Path, stem: str) -> Path:
    for p in (folder / stem, folder / f"{stem}.gz"):
        if p.exists():
            return p
    raise FileNotFoundError(f"{folder}: no {stem} or {stem}.gz")


def load_beir_claims(folder: Path = SCIFACT, split: str = "train") -> QADataset:
    """BEIR queries with qrels as retrieval-only rows (gold = corpus ids with relevance > 0).

    Queries without a relevant document in the split are skipped (the BEIR convention); the corpus is the
    folder's corpus.jsonl[.gz], which paperchat's BEIR reader ingests with the corpus `_id` as paper id.
    """
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise FileNotFoundError(f"{qrels_path}: no qrels for split '{split}'")
    gold: dict[str, list[str]] = {}
    with open(qrels_path, encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id" or not row[2].strip().lstrip("-").isdigit():
                continue
            if int(row[2]) > 0:
                gold.setdefault(row[0], []).append(paper_id_of(row[1]))
    queries_path = _find(folder, "queries.jsonl")
    items = []
    with _open_text(queries_path) as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                qid = str(q["_id"])
                if qid in gold:
                    items.append(QAItem(qid=qid, question=str(q["text"]).strip(), gold_ids=gold[qid], kind="single"))
    corpus = _find(folder, "corpus.jsonl")
    return QADataset(name=f"beir-{folder.name}-{split}", items=items, sha256=sha256_of([queries_path, qrels_path]),
                     source=str(folder), corpus_paths=[corpus], retrieval_only=True)


# --- by name -----------------------------------------------------------------------------------------
BUILTIN = {"seed": "the seed QA set over data/sample", "pubmedqa": "PubMedQA-dev, 500 questions",
           "scifact": "BEIR SciFact train claims (retrieval only)"}


def load_dataset(name_or_path: str | Path, corpus: list[Path] | None = None) -> QADataset:
    """A built-in dataset by name (seed, pubmedqa, scifact) or a seed-format JSONL file; `beir:DIR` for a BEIR folder."""
    s = str(name_or_path)
    if s == "seed":
        return load_qa_jsonl(SEED_QA, corpus)
    if s == "pubmedqa":
        return load_pubmedqa()
    if s == "scifact":
        return load_beir_claims(SCIFACT)
    if s.startswith("beir:"):
        return load_beir_claims(Path(s[5:]))
    p = Path(s)
    if not p.exists():
        raise FileNotFoundError(f"no dataset {s!r}: give a JSONL file or one of {', '.join(BUILTIN)}")
    if p.is_dir():
        return load_beir_claims(p)
    if p.name.startswith("pqal") or p.name.endswith(".json.gz") or p.suffix == ".json":
        return load_pubmedqa(p)
    return load_qa_jsonl(p, corpus)

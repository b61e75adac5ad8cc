"""Semantic Scholar records (Graph API responses and Datasets lines): paperId, externalIds, abstract."""

from __future__ import annotations

from collections.abc import Mapping

from ingest.readers.base import listed
from ingest.records import Paper, make_paper

_EXTERNAL = {"doi": "doi", "arxiv": "arxiv", "pubmed": "pmid"}


def is_semantic_scholar(rec: Mapping[str, object]) -> bool:
    """True for a Semantic Scholar paper record (API: paperId/externalIds; Datasets: corpusid/externalids)."""
    return ("paperId" in rec or "externalIds" in rec or "externalids" in rec or "paperid" in rec
            or ("corpusid" in rec and "abstract" in rec))


def paper_from_semantic_scholar(rec: Mapping[str, object], source: str) -> Paper:
    """A Paper from a Semantic Scholar record; the best external id (arXiv, DOI, PubMed) names it, else S2's."""
    low = {str(k).lower(): v for k, v in rec.items()}
    ext = low.get("externalids")
    if not isinstance(ext, Mapping):
        ext = {}
    ids: dict[str, object] = {}
    for key, value in ext.items():
        kind = _EXTERNAL.get(str(key).lower())
        if kind and value:
            ids[kind] = value
    s2 = low.get("paperid") or low.get("corpusid") or ext.get("CorpusId")
    if s2 is not None:
        ids["s2"] = s2
    authors = low.get("authors")
    fields = listed(low.get("fieldsofstudy")) or [f.get("category") for f in listed(low.get("s2fieldsofstudy"))
                                                  if isinstance(f, Mapping)]
    year = low.get("publicationdate") or low.get("year")
    better = any(k in ids for k in ("arxiv", "doi", "pmid"))
    return make_paper(
        title=low.get("title"),
        abstract=low.get("abstract"),
        ids=ids,
        authors=authors,
        date=str(year) if isinstance(year, int) else year,
        url=None if better else low.get("url"),
        categories=[str(f).replace(" ", "_") for f in fields if f],
        source=source,
    )

"""OpenAlex works (API responses and snapshot lines): the abstract comes as an inverted index."""

from __future__ import annotations

from collections.abc import Mapping

from ingest.readers.base import listed
from ingest.records import Paper, make_paper


def is_openalex(rec: Mapping[str, object]) -> bool:
    """True for an OpenAlex work record."""
    rid = rec.get("id")
    return "abstract_inverted_index" in rec or (isinstance(rid, str) and rid.startswith("https://openalex.org/W"))


def rebuild_abstract(index: object) -> str | None:
    """The abstract text from `abstract_inverted_index` ({word: [positions]}); None when absent."""
    if not isinstance(index, Mapping) or not index:
        return None
    words: dict[int, str] = {}
    for word, positions in index.items():
        if not isinstance(positions, list):
            raise ValueError("abstract_inverted_index should map words to lists of positions")
        for pos in positions:
            if isinstance(pos, int) and not isinstance(pos, bool) and 0 <= pos < 1_000_000:
                words[pos] = str(word)
    return " ".join(words[i] for i in sorted(words))


def _authors(rec: Mapping[str, object]) -> list[str]:
    out = []
    for a in listed(rec.get("authorships")):
        if isinstance(a, Mapping):
            author = a.get("author")
            name = author.get("display_name") if isinstance(author, Mapping) else a.get("raw_author_name")
            if isinstance(name, str) and name.strip():
                out.append(name)
    return out


def _topics(rec: Mapping[str, object]) -> list[str]:
    out = []
    for key in ("keywords", "topics", "concepts"):
        for t in listed(rec.get(key)):
            name = t.get("display_name") if isinstance(t, Mapping) else None
            if isinstance(name, str) and name.strip():
                out.append(name.strip().replace(" ", "_"))
        if out:
            break
    return out[:10]


def paper_from_openalex(rec: Mapping[str, object], source: str) -> Paper:
    """A Paper from an OpenAlex work; ids: OpenAlex W-id, DOI, PMID (and an arXiv id when its DOI is arXiv's)."""
    ids = rec.get("ids") if isinstance(rec.get("ids"), Mapping) else {}
    assert isinstance(ids, Mapping)
    location = rec.get("primary_location")
    landing = location.get("landing_page_url") if isinstance(location, Mapping) else None
    return make_paper(
        title=rec.get("title") or rec.get("display_name"),
        abstract=rebuild_abstract(rec.get("abstract_inverted_index")) or rec.get("abstract"),
        ids={"doi": rec.get("doi") or ids.get("doi"), "pmid": ids.get("pmid"),
             "openalex": rec.get("id") or ids.get("openalex")},
        authors=_authors(rec),
        date=rec.get("publication_date") or (str(rec["publication_year"]) if rec.get("publication_year") else None),
        url=None if rec.get("doi") else landing,
        categories=_topics(rec),
        source=source,
    )

"""Map a loosely shaped record (JSON object, CSV row) onto a Paper, whatever its schema."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from ingest.readers.base import source_prefix
from ingest.readers.openalex import is_openalex, paper_from_openalex
from ingest.readers.semantic_scholar import is_semantic_scholar, paper_from_semantic_scholar
from ingest.records import Paper, make_paper, person

TITLE_KEYS = ("title", "paper_title", "name", "display_name")
ABSTRACT_KEYS = ("abstract", "summary", "text", "abstract_text", "body", "abstract note")  # Zotero: Abstract Note
ID_KEYS = ("_id", "id", "paper_id", "arxiv_id", "doc_id", "corpus_id", "doi", "key")  # Zotero: Key
AUTHOR_KEYS = ("authors", "author", "authors_parsed")
DATE_KEYS = ("date", "published", "publication_date", "listing_date", "update_date", "year", "publication year")
URL_KEYS = ("url", "link", "abs_url", "pdf_url")
CATEGORY_KEYS = ("categories", "category", "tags", "keywords", "manual tags")
# fields naming a known kind of id, whatever the record's main id is
KNOWN_ID_KEYS = {"doi": "doi", "pmid": "pmid", "pubmed_id": "pmid", "pubmed": "pmid", "arxiv_id": "arxiv",
                 "arxiv": "arxiv", "eprint": "arxiv", "openalex_id": "openalex", "openalex": "openalex"}


def _lowered(rec: Mapping[str, object]) -> dict[str, object]:
    return {str(k).strip().lower(): v for k, v in rec.items()}


def _first(rec: Mapping[str, object], keys: tuple[str, ...], lowered: dict[str, object] | None = None) -> object:
    lowered = _lowered(rec) if lowered is None else lowered
    for key in keys:
        value = lowered.get(key)
        if value not in (None, "", []):
            return value
    return None


def schema_of(rec: Mapping[str, object]) -> str:
    """Name of the schema a record follows: beir, arxiv or generic."""
    keys = {str(k).lower() for k in rec}
    if "_id" in keys and "text" in keys:
        return "beir"
    if "id" in keys and "abstract" in keys and ("categories" in keys or "update_date" in keys or "listing_date" in keys):
        return "arxiv"
    return "generic"


def paper_from_record(rec: object, source: str) -> Paper:
    """A Paper from a dict-like record; ValueError says what is wrong."""
    if not isinstance(rec, Mapping):
        raise ValueError(f"expected an object with title and abstract, got {type(rec).__name__}")
    if is_openalex(rec):
        return paper_from_openalex(rec, source)
    if is_semantic_scholar(rec):
        return paper_from_semantic_scholar(rec, source)
    low = _lowered(rec)  # once per record (it was once per field)
    title, abstract = _first(rec, TITLE_KEYS, low), _first(rec, ABSTRACT_KEYS, low)
    if title is None and abstract is None and not (set(low) & set(TITLE_KEYS + ABSTRACT_KEYS)):
        keys = ", ".join(str(k) for k in list(rec)[:8]) or "none"
        raise ValueError(f"no title or abstract field (keys: {keys})")
    date = _first(rec, DATE_KEYS, low)
    ids = {kind: low[key] for key, kind in KNOWN_ID_KEYS.items() if low.get(key) not in (None, "")}
    authors = _first(rec, AUTHOR_KEYS, low)
    if "abstract note" in low and isinstance(authors, str):  # Zotero's CSV: "Last, First; Last, First"
        authors = [person(a) for a in authors.split(";") if a.strip()]
    return make_paper(
        ids=ids,
        id_prefix="" if "_id" in low and "text" in low else _prefix(source),  # BEIR (qrels name its bare ids)
        title=title,
        abstract=abstract,
        raw_id=_first(rec, ID_KEYS, low),
        authors=authors,
        url=_first(rec, URL_KEYS, low),
        date=str(date) if isinstance(date, int) else date,
        categories=_first(rec, CATEGORY_KEYS, low),
        source=source,
    )


@lru_cache(maxsize=64)
def _prefix(source: str) -> str:
    return source_prefix(Path(source))


def has_paper_columns(columns: list[str]) -> bool:
    """True when a header names a title and an abstract column."""
    cols = {c.strip().lower() for c in columns}
    return bool(cols & set(TITLE_KEYS)) and bool(cols & set(ABSTRACT_KEYS))

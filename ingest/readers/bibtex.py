"""BibTeX reader (Zotero, Mendeley, JabRef, Google Scholar exports), parsed by bibtexparser 2.

LaTeX accents, braces and commands are turned into text by pylatexenc (math stays as written). Ids: DOI,
arXiv id (eprint + archivePrefix/eprinttype, Mendeley's arxivId, an arxiv.org url, an arXiv DOI), PMID;
otherwise the citation key, namespaced by the file's name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Rejection, read_text, source_prefix
from ingest.records import arxiv_id, make_paper, person

ENTRY = re.compile(r"^@\s*[a-z]+\s*[{(]", re.I)
_PERCENT = re.compile(r"(?<!\\)%")
_converter = None


def looks_like_bibtex(text: str) -> bool:
    """True when one of the first 10 non-blank lines starts a BibTeX entry (`@article{`); text before it is a
    comment to BibTeX (JabRef's `% Encoding`, Mendeley's "Automatically generated" lines)."""
    lines = [ln.strip() for ln in text.split("\n", 200)[:200] if ln.strip()][:10]
    return any(ENTRY.match(ln) for ln in lines)


def latex_to_text(value: str) -> str:
    """Plain text of a LaTeX field value: accents and escapes decoded, braces and formatting dropped."""
    global _converter
    if _converter is None:
        from pylatexenc.latex2text import LatexNodes2Text

        _converter = LatexNodes2Text(math_mode="verbatim", strict_latex_spaces=False)
    try:
        return _converter.latex_to_text(_PERCENT.sub(r"\\%", value))  # a bare % is text here, not a comment
    except Exception:  # noqa: BLE001 - pylatexenc on odd input: keep the raw value
        return value


def _authors(value: str) -> list[str]:
    """'Smith, John and Müller, Jörg' -> ['John Smith', 'Jörg Müller']."""
    out = []
    for name in re.split(r"\s+and\s+", value.strip()):
        name = name.strip()
        if not name or name.lower() == "others":
            continue
        out.append(person(name))
    return out


def _arxiv(fields: dict[str, str]) -> str | None:
    prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "").lower()
    for value in (fields.get("eprint") if prefix in ("arxiv", "") else None, fields.get("arxivid")):
        if value and (ax := arxiv_id(value.removeprefix("arXiv:").removeprefix("arxiv:"))):
            return ax
    return None


def read_bibtex(path: Path) -> Iterator[Item]:
    """Every entry of a .bib file; a malformed entry is refused with its line, the rest still read."""
    import bibtexparser
    from bibtexparser.model import DuplicateBlockKeyBlock

    where = str(path)
    text, problems = read_text(path)
    yield from problems
    if not text:
        return
    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)  # failures are reported as rejections
    library = bibtexparser.parse_string(text)
    prefix = source_prefix(path)
    items: list[tuple[int, Item]] = []
    for block in library.failed_blocks:
        line = (block.start_line or 0) + 1
        if isinstance(block, DuplicateBlockKeyBlock):
            items.append((line, Rejection(where, line, f"duplicate citation key '{block.key}'; kept the first")))
        else:
            first = (block.raw or "").strip().split("\n", 1)[0][:60]
            items.append((line, Rejection(where, line, f"malformed BibTeX entry ({first!r}: unbalanced braces "
                                                       "or quotes)")))
    for entry in library.entries:
        line = (entry.start_line or 0) + 1
        fields = {k.lower(): str(f.value) for k, f in entry.fields_dict.items()}
        text_of = {k: latex_to_text(v) for k, v in fields.items() if k in ("title", "abstract", "author", "keywords")}
        try:
            paper = make_paper(
                title=text_of.get("title"),
                abstract=text_of.get("abstract"),
                raw_id=entry.key,
                id_prefix=prefix,
                ids={"arxiv": _arxiv(fields) or fields.get("url"), "doi": fields.get("doi"),
                     "pmid": fields.get("pmid")},
                authors=_authors(text_of.get("author", "")),
                url=fields.get("url"),
                date=fields.get("date") or fields.get("year"),
                categories=[k.strip().replace(" ", "_") for k in re.split(r"[;,]", text_of.get("keywords", ""))
                            if k.strip()],
                source=where,
            )
        except ValueError as exc:
            items.append((line, Rejection(where, line, f"entry '{entry.key}': {exc}")))
            continue
        items.append((line, Located(paper, where, line)))
    for _, item in sorted(items, key=lambda x: x[0]):
        yield item

"""PubMed XML (`<PubmedArticleSet>` from efetch or the baseline files), streamed through expat.

The parser is configured safe: any entity declaration (the billion-laughs and external-entity attacks need
one) stops the file, external DTDs and parameter entities are never read, and a record larger than the
record limit is refused. Records before a fatal XML error are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from xml.parsers import expat

from ingest.readers.base import Item, Located, Rejection
from ingest.readers.medline import _MONTHS
from ingest.readers.textio import BLOCK, GZIP_ERRORS, MAX_FILE_BYTES, MAX_RECORD_BYTES, mb, open_decompressed
from ingest.records import make_paper

ROOTS = re.compile(r"<(PubmedArticleSet|PubmedArticle|MedlineCitationSet)[\s>]")
ARTICLE = "PubmedArticle"
TEXT_TAGS = {"ArticleTitle", "AbstractText", "PMID", "ArticleId", "ELocationID", "LastName", "ForeName",
             "Initials", "CollectiveName", "Year", "Month", "Day", "MedlineDate", "DescriptorName", "Keyword"}


class Refused(Exception):
    """The document declares entities: not read."""


def looks_like_pubmed_xml(text: str) -> bool:
    """True for an XML document whose root is a PubMed article set (the DOCTYPE or the first element)."""
    head = text.lstrip("\ufeff \r\n\t")
    return head.startswith("<") and bool(ROOTS.search(head[:4096]))


class _Article:
    def __init__(self, line: int, start: int) -> None:
        self.line, self.start = line, start
        self.title: list[str] = []
        self.abstract: list[str] = []
        self.pmid: str | None = None
        self.doi: str | None = None
        self.arxiv: str | None = None
        self.authors: list[str] = []
        self.date: dict[str, str] = {}
        self.mesh: list[str] = []
        self.size = 0


class _Handler:
    """Collects one PubmedArticle at a time; finished articles wait in `done`."""

    def __init__(self, parser: expat.XMLParserType, where: str, limit: int) -> None:
        self.p, self.where, self.limit = parser, where, limit
        self.art: _Article | None = None
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.buf: list[str] = []
        self.author: dict[str, str] = {}
        self.done: list[Item] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == ARTICLE:
            self.art = _Article(self.p.CurrentLineNumber, self.p.CurrentByteIndex)
        if self.art is None:
            return
        self.stack.append((name, attrs))
        if name in TEXT_TAGS or name == "AbstractText":
            self.buf = []
        if name == "Author":
            self.author = {}
        if name == "AbstractText" and attrs.get("Label"):
            self.buf = [attrs["Label"].strip() + ": "]

    def data(self, text: str) -> None:
        if self.art is None or not self.stack:
            return
        self.art.size += len(text)
        if self.art.size <= self.limit:
            self.buf.append(text)

    def end(self, name: str) -> None:
        art = self.art
        if art is None:
            return
        _, attrs = self.stack.pop() if self.stack else (name, {})
        parents = [n for n, _ in self.stack]
        text = "".join(self.buf).strip()
        if name == "ArticleTitle" and "Article" in parents:
            art.title.append(text)
        elif name == "AbstractText" and "Abstract" in parents and "OtherAbstract" not in parents:
            art.abstract.append(text)
        elif name == "PMID" and art.pmid is None and "MedlineCitation" in parents and "CommentsCorrections" not in parents:
            art.pmid = text
        elif name in ("ELocationID", "ArticleId") and "CommentsCorrections" not in parents and "ReferenceList" not in parents:
            kind = (attrs.get("EIdType") or attrs.get("IdType") or "").lower()
            if kind == "doi" and art.doi is None:
                art.doi = text
            elif kind == "arxiv" and art.arxiv is None:
                art.arxiv = text
        elif name in ("LastName", "ForeName", "CollectiveName") and "Author" in parents:
            self.author[name] = text
        elif name == "Author" and "AuthorList" in parents:
            a = self.author
            full = a.get("CollectiveName") or " ".join(x for x in (a.get("ForeName"), a.get("LastName")) if x)
            if full:
                art.authors.append(full)
        elif name in ("Year", "Month", "Day", "MedlineDate") and "PubDate" in parents:
            art.date.setdefault(name, text)
        elif name == "DescriptorName" and "MeshHeading" in parents:
            art.mesh.append(text.replace(" ", "_"))
        if name == ARTICLE:
            self.done.append(self._finish(art))
            self.art, self.stack = None, []

    def _finish(self, art: _Article) -> Item:
        if art.size > self.limit:
            return Rejection(self.where, art.line, f"record larger than {mb(self.limit)}; skipped")
        d = art.date
        date = d.get("Year") or d.get("MedlineDate")
        if d.get("Year") and d.get("Month"):
            m = _MONTHS.get(d["Month"][:3].lower()) or (int(d["Month"]) if d["Month"].isdigit() else None)
            if m:
                date = f"{d['Year']}-{m:02d}" + (f"-{int(d['Day']):02d}" if d.get("Day", "").isdigit() else "")
        try:
            paper = make_paper(title=" ".join(art.title), abstract=" ".join(art.abstract),
                               ids={"pmid": art.pmid, "doi": art.doi, "arxiv": art.arxiv}, authors=art.authors,
                               date=date, categories=art.mesh[:10], source=self.where)
        except ValueError as exc:
            return Rejection(self.where, art.line, f"PMID {art.pmid}: {exc}" if art.pmid else str(exc))
        return Located(paper, self.where, art.line)


def _refuse_entities(*_: object) -> None:
    raise Refused("the document declares entities (refused: entity expansion is not allowed)")


def safe_parser() -> expat.XMLParserType:
    """An expat parser that reads no external DTD or entity, and refuses entity declarations."""
    p = expat.ParserCreate()
    p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    p.EntityDeclHandler = _refuse_entities
    p.UnparsedEntityDeclHandler = _refuse_entities
    p.ExternalEntityRefHandler = lambda *_: 0  # type: ignore[assignment]  # never fetched
    p.buffer_text = True
    return p


def read_pubmed_xml(path: Path, record_limit: int = MAX_RECORD_BYTES, file_limit: int = MAX_FILE_BYTES
                    ) -> Iterator[Item]:
    """Every PubmedArticle of a PubMed XML file; a bad article is refused with its line."""
    where = str(path)
    p = safe_parser()
    h = _Handler(p, where, record_limit)
    p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = h.start, h.end, h.data
    total = 0
    try:
        with open_decompressed(path) as fh:
            while block := fh.read1(BLOCK):
                total += len(block)
                if total > file_limit:
                    yield from h.done
                    yield Rejection(where, p.CurrentLineNumber, f"file larger than {mb(file_limit)} "
                                    "decompressed; stopped reading there")
                    return
                p.Parse(block, False)
                yield from h.done
                h.done.clear()
            p.Parse(b"", True)
            yield from h.done
    except Refused as exc:
        yield from h.done
        yield Rejection(where, p.CurrentLineNumber, str(exc))
    except expat.ExpatError as exc:
        yield from h.done
        yield Rejection(where, exc.lineno, f"malformed XML ({expat.ErrorString(exc.code)}); stopped reading")
    except GZIP_ERRORS as exc:
        yield from h.done
        yield Rejection(where, p.CurrentLineNumber, f"truncated or corrupt gzip ({exc})")

"""RIS reader (EndNote, Zotero, Scopus, Web of Science exports); each record's tags are mapped by rispy.

Records are split here (TY ... ER), streamed through the bounded line reader, so each rejection names the
line where its record starts. Fields: TI/T1 title, AB/N2 abstract, AU/A1 authors, PY/Y1/DA date, DO doi,
UR links, KW keywords, ID the record's own id (namespaced by the file's name).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Rejection, Text, finished_record, listed, read_lines, source_prefix
from ingest.readers.textio import MAX_RECORD_BYTES
from ingest.records import Paper, make_paper, person

TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")
START = re.compile(r"^TY  - ")


def looks_like_ris(text: str) -> bool:
    """True when the first non-blank line is a RIS record start (`TY  - JOUR`)."""
    first = next((ln.strip("\ufeff \r") for ln in text.split("\n") if ln.strip()), "")
    return bool(START.match(first + " " if first.endswith("-") else first))


def _date(value: object) -> str | None:
    """'2020/01/05/' or '2020///' -> '2020-01-05' or '2020'."""
    if not isinstance(value, str):
        return None
    parts = [p for p in value.strip().split("/") if p.strip()]
    return "-".join(parts[:3]) if parts else None


def paper_from_ris(rec: dict[str, object], source: str, prefix: str) -> Paper:
    urls = rec.get("urls") if isinstance(rec.get("urls"), list) else []
    assert isinstance(urls, list)
    arxiv = next((u for u in urls if isinstance(u, str) and "arxiv.org/" in u), None)
    return make_paper(
        title=rec.get("title") or rec.get("primary_title"),
        abstract=rec.get("abstract") or rec.get("notes_abstract"),
        raw_id=rec.get("id"),
        id_prefix=prefix,
        ids={"doi": rec.get("doi"), "arxiv": arxiv},
        authors=[person(str(a)) for a in listed(rec.get("authors")) or listed(rec.get("first_authors"))],
        url=urls[0] if urls else None,
        date=_date(rec.get("year") or rec.get("publication_year") or rec.get("date")),
        categories=[str(k).strip().replace(" ", "_") for k in listed(rec.get("keywords")) if str(k).strip()],
        source=source,
    )


def read_ris(path: Path) -> Iterator[Item]:
    """Every record of a RIS file; a bad record is refused with its first line, the rest still read."""
    import rispy

    where, prefix = str(path), source_prefix(path)
    record: list[str] = []
    start = 0
    size = 0
    stray: int | None = None

    def build() -> Paper:
        text = "\n".join(record) + ("\nER  - \n" if not record[-1].startswith("ER  -") else "\n")
        try:
            (rec,) = rispy.loads(text)
        except Exception as exc:  # noqa: BLE001 - rispy on a malformed record
            raise ValueError(f"malformed RIS record ({type(exc).__name__}: {exc})") from None
        return paper_from_ris(rec, where, prefix)

    def finish() -> Iterator[Item]:
        if record:
            yield from finished_record(where, start, size, build)

    for line in read_lines(path):
        if not isinstance(line, Text):
            yield line
            continue
        text = line.text.lstrip("\ufeff")
        if START.match(text + " " if text.rstrip() == "TY  -" else text):
            yield from finish()
            record, start, size = [text], line.lineno, len(text)
            if stray is not None:
                yield Rejection(where, stray, "lines outside a RIS record (no 'TY  - ' line before them)")
                stray = None
        elif record:
            size += len(text)
            if size <= MAX_RECORD_BYTES:
                record.append(text)
            if text.startswith("ER  -"):
                yield from finish()
                record = []
        elif text.strip() and stray is None:
            stray = line.lineno
    yield from finish()
    if stray is not None:
        yield Rejection(where, stray, "lines outside a RIS record (no 'TY  - ' line before them)")

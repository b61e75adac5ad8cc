"""Reader for a Hugging Face "Daily Papers" page saved as text: title lines, each followed by its abstract."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Rejection, read_text
from ingest.records import make_paper

MAX_TITLE = 300
MIN_ABSTRACT = 200
_DATE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{1,2}(, \d{4})?$")


def pairs(text: str) -> list[tuple[int, str, str]]:
    """(line, title, abstract) for every short line directly followed by a long paragraph."""
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.split("\n")) if ln.strip()]
    out: list[tuple[int, str, str]] = []
    for (lineno, title), (_, body) in zip(lines, lines[1:]):
        if len(title) <= MAX_TITLE and len(body) >= MIN_ABSTRACT and not title.endswith("."):
            out.append((lineno, title, body))
    return out


def looks_like_daily_papers(text: str) -> bool:
    """True when most long paragraphs in the text are preceded by a title-like line."""
    long_paras = sum(1 for ln in text.split("\n") if len(ln.strip()) >= MIN_ABSTRACT)
    return long_paras > 0 and len(pairs(text)) >= max(1, long_paras // 2)


def read_daily_papers(path: Path) -> Iterator[Item]:
    """Papers from a Daily Papers page dump; the listing date (e.g. 'Sep 3') is kept as given."""
    text, errors = read_text(path)
    yield from errors
    date = next((ln.strip() for ln in text.split("\n") if _DATE.match(ln.strip())), None)
    for lineno, title, abstract in pairs(text):
        try:
            yield Located(make_paper(title=title, abstract=abstract, date=date, source=str(path)), str(path), lineno)
        except ValueError as exc:
            yield Rejection(str(path), lineno, str(exc))

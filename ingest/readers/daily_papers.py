"""Reader for a Hugging Face "Daily Papers" page saved as text: title lines, each followed by its abstract.

Only a page with that shape is read: a "Daily Papers" heading near the top, and most long paragraphs
preceded by a title line. Any other text is an unknown format, never made-up papers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Rejection, read_text
from ingest.records import make_paper

MAX_TITLE = 300
MIN_ABSTRACT = 200
HEADING = "daily papers"
HEADING_WITHIN = 40  # non-blank lines from the top
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
    head = [ln.strip().lower() for ln in text.split("\n") if ln.strip()][:HEADING_WITHIN]
    if HEADING not in head:
        return False
    long_paras = sum(1 for ln in text.split("\n") if len(ln.strip()) >= MIN_ABSTRACT)
    return long_paras > 0 and len(pairs(text)) >= max(1, long_paras // 2)


def read_daily_papers(path: Path) -> Iterator[Item]:
    """Papers from a Daily Papers page dump; the listing date (e.g. 'Sep 3') is kept as given."""
    text, errors = read_text(path)
    yield from errors
    if not text and any(isinstance(e, Rejection) for e in errors):  # too large or unreadable
        return
    if not looks_like_daily_papers(text):
        yield Rejection(str(path), None, "unknown format: not a Daily Papers page (no 'Daily Papers' heading "
                        "followed by titles and abstracts)")
        return
    date = next((ln.strip() for ln in text.split("\n") if _DATE.match(ln.strip())), None)
    for lineno, title, abstract in pairs(text):
        try:
            yield Located(make_paper(title=title, abstract=abstract, date=date, source=str(path)), str(path), lineno)
        except ValueError as exc:
            yield Rejection(str(path), lineno, str(exc))

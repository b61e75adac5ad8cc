"""CSV/TSV reader: a header row naming at least a title and an abstract column (Zotero's export included).

Streamed line by line through the bounded reader: a row is never larger than the record limit.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Rejection, Text, read_lines
from ingest.readers.mapping import has_paper_columns, paper_from_record
from ingest.readers.textio import MAX_RECORD_BYTES

csv.field_size_limit(MAX_RECORD_BYTES)


def read_csv(path: Path) -> Iterator[Item]:
    """Rows of a CSV or TSV file with a header; line numbers count physical lines."""
    where = str(path)
    pending: list[Item] = []  # notices and refused lines met while the csv module pulls text

    def texts() -> Iterator[str]:
        for line in read_lines(path):
            if isinstance(line, Text):
                yield line.text + "\n"
                continue
            pending.append(line)
            if isinstance(line, Rejection):
                yield "\n"  # keeps the csv module's line count on the file's lines (a blank row is skipped)

    source = texts()
    first = next(source, "")
    yield from pending
    pending.clear()
    delim = "\t" if first.count("\t") > first.count(",") else ","

    def with_first() -> Iterator[str]:
        yield first
        yield from source

    reader = csv.DictReader(with_first(), delimiter=delim)
    if not reader.fieldnames or not has_paper_columns(list(reader.fieldnames)):
        yield Rejection(where, 1, f"CSV header {reader.fieldnames} has no title and abstract columns")
        return
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            yield from pending
            return
        except csv.Error as exc:
            yield from pending
            yield Rejection(where, start, f"malformed CSV ({exc})")
            return
        yield from pending
        pending.clear()
        if None in row:
            yield Rejection(where, start, "row has more fields than the header")
            continue
        try:
            yield Located(paper_from_record(row, where), where, start)
        except ValueError as exc:
            yield Rejection(where, start, str(exc))

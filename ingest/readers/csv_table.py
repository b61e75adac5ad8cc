"""CSV/TSV reader: a header row naming at least a title and an abstract column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Rejection, read_text
from ingest.readers.mapping import has_paper_columns, paper_from_record

csv.field_size_limit(10_000_000)


def read_csv(path: Path) -> Iterator[Item]:
    """Rows of a CSV or TSV file with a header; line numbers count physical lines."""
    text, errors = read_text(path)
    yield from errors
    first = text.split("\n", 1)[0]
    delim = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delim)
    if not reader.fieldnames or not has_paper_columns(list(reader.fieldnames)):
        yield Rejection(str(path), 1, f"CSV header {reader.fieldnames} has no title and abstract columns")
        return
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Rejection(str(path), start, f"malformed CSV ({exc})")
            return
        if None in row:
            yield Rejection(str(path), start, "row has more fields than the header")
            continue
        try:
            yield Located(paper_from_record(row, str(path)), str(path), start)
        except ValueError as exc:
            yield Rejection(str(path), start, str(exc))

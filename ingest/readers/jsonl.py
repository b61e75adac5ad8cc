"""JSON Lines and JSON readers (generic records, arXiv metadata, BEIR corpus.jsonl)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Rejection, iter_lines, read_text
from ingest.readers.mapping import paper_from_record


def read_jsonl(path: Path) -> Iterator[Item]:
    """One JSON object per line; a bad line is rejected, the rest still read."""
    for lineno, text, err in iter_lines(path):
        if err:
            yield Rejection(str(path), lineno, err)
            continue
        if not text or not text.strip():
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Rejection(str(path), lineno, f"malformed JSON ({exc.msg} at column {exc.colno})")
            continue
        try:
            yield Located(paper_from_record(rec, str(path)), str(path), lineno)
        except ValueError as exc:
            yield Rejection(str(path), lineno, str(exc))


def read_json(path: Path) -> Iterator[Item]:
    """A JSON document: a list of records, or an object holding one (e.g. {"papers": [...]}) or keyed by id."""
    text, errors = read_text(path)
    yield from errors
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Rejection(str(path), exc.lineno, f"malformed JSON ({exc.msg} at column {exc.colno})")
        return
    records: list[object]
    if isinstance(doc, list):
        records = doc
    elif isinstance(doc, dict) and any(isinstance(v, list) and v and isinstance(v[0], dict) for v in doc.values()):
        records = next(v for v in doc.values() if isinstance(v, list) and v and isinstance(v[0], dict))
    elif isinstance(doc, dict) and "title" in {str(k).lower() for k in doc}:
        records = [doc]
    elif isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
        records = [{"id": k, **v} for k, v in doc.items()]
    else:
        yield Rejection(str(path), 1, "JSON of the wrong shape: expected a list of paper records")
        return
    for i, rec in enumerate(records, start=1):
        try:
            yield Located(paper_from_record(rec, str(path)), str(path), i)
        except ValueError as exc:
            yield Rejection(str(path), i, f"record {i}: {exc}")

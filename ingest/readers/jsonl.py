"""JSON Lines and JSON readers (generic records, arXiv metadata, BEIR corpus.jsonl)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Rejection, Text, read_lines, read_text
from ingest.readers.mapping import paper_from_record

_WS = re.compile(r"[ \t\n\r]*")


def json_error(exc: json.JSONDecodeError) -> str:
    """'malformed JSON (Expecting value at column 3)', without the doubled 'at' of some messages."""
    sep = " " if exc.msg.endswith(" at") else " at "
    return f"malformed JSON ({exc.msg}{sep}column {exc.colno})"


def read_jsonl(path: Path) -> Iterator[Item]:
    """One JSON object per line; a bad line is rejected, the rest still read.

    Raw control characters inside strings (tabs, NUL) are accepted here and cleaned later.
    """
    where = str(path)
    for line in read_lines(path):
        if not isinstance(line, Text):
            yield line
            continue
        lineno, text = line
        if not text.strip():
            continue
        try:
            rec = json.loads(text, strict=False)
        except json.JSONDecodeError as exc:
            yield Rejection(str(path), lineno, json_error(exc))
            continue
        except RecursionError:
            yield Rejection(str(path), lineno, "malformed JSON (nested too deeply)")
            continue
        try:
            yield Located(paper_from_record(rec, where), where, lineno)
        except ValueError as exc:
            yield Rejection(where, lineno, str(exc))


def _value_start(text: str, key: str) -> int | None:
    """Offset where the value of `key` starts in a top-level JSON object (None when not found)."""
    decoder = json.JSONDecoder(strict=False)
    i = _WS.match(text).end()  # type: ignore[union-attr]
    if text[i:i + 1] != "{":
        return None
    i += 1
    while True:
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i:i + 1] != '"':
            return None
        name, i = decoder.raw_decode(text, i)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i:i + 1] != ":":
            return None
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
        if name == key:
            return i
        _, i = decoder.raw_decode(text, i)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i:i + 1] == ",":
            i += 1


def element_lines(text: str, key: str | None = None) -> list[int] | None:
    """The line on which each element of a top-level JSON array starts, or of the array under `key` of a
    top-level object (None when there is no such array)."""
    decoder = json.JSONDecoder(strict=False)
    i = _WS.match(text).end() if key is None else _value_start(text, key)  # type: ignore[union-attr]
    if i is None or text[i:i + 1] != "[":
        return None
    pos, line = 0, 1
    out: list[int] = []
    i += 1
    while True:
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if i >= len(text) or text[i] == "]":
            return out
        line += text.count("\n", pos, i)
        pos = i
        out.append(line)
        _, i = decoder.raw_decode(text, i)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i:i + 1] == ",":
            i += 1


def read_json(path: Path) -> Iterator[Item]:
    """A JSON document: a list of records, or an object holding one (e.g. {"papers": [...]}) or keyed by id.

    Rejections name the line where a record starts (in a list, or a list inside an object such as an OpenAlex
    or Semantic Scholar API page), else the record number.
    """
    text, errors = read_text(path)
    yield from errors
    if not text and any(isinstance(e, Rejection) for e in errors):  # too large or unreadable
        return
    text = text.lstrip("\ufeff")
    try:
        doc = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        yield Rejection(str(path), exc.lineno, json_error(exc))
        return
    except RecursionError:
        yield Rejection(str(path), None, "malformed JSON (nested too deeply)")
        return
    records: list[object]
    lines: list[int] | None = None
    if isinstance(doc, list):
        records = doc
        lines = element_lines(text)
    elif isinstance(doc, dict) and any(isinstance(v, list) and v and isinstance(v[0], dict) for v in doc.values()):
        key, records = next((k, v) for k, v in doc.items() if isinstance(v, list) and v and isinstance(v[0], dict))
        lines = element_lines(text, key)
    elif isinstance(doc, dict) and "title" in {str(k).lower() for k in doc}:
        records = [doc]
        lines = [1 + text.count("\n", 0, len(text) - len(text.lstrip()))]
    elif isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
        records = [{"id": k, **v} for k, v in doc.items()]
    else:
        keys = ", ".join(map(str, list(doc)[:8])) if isinstance(doc, dict) else type(doc).__name__
        yield Rejection(str(path), 1, f"JSON of the wrong shape ({keys}): expected a list of paper records "
                        "with title and abstract, or an object holding one")
        return
    for i, rec in enumerate(records, start=1):
        line = lines[i - 1] if lines and len(lines) == len(records) else None
        try:
            yield Located(paper_from_record(rec, str(path)), str(path), line or i)
        except ValueError as exc:
            yield Rejection(str(path), line, f"record {i}: {exc}")

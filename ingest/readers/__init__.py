"""Readers: detect a file's format from its content and yield papers or rejections."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Rejection, head_bytes, looks_binary
from ingest.readers.csv_table import read_csv
from ingest.readers.daily_papers import looks_like_daily_papers, read_daily_papers
from ingest.readers.jsonl import read_json, read_jsonl
from ingest.readers.mapping import has_paper_columns

__all__ = ["Item", "Located", "Rejection", "detect_format", "read_path"]

READERS: dict[str, Callable[[Path], Iterator[Item]]] = {
    "jsonl": read_jsonl,
    "json": read_json,
    "csv": read_csv,
    "daily_papers": read_daily_papers,
}


def detect_format(path: Path) -> str | None:
    """Name of the reader for a file, judged by its content (the name's suffix only breaks ties)."""
    sample = head_bytes(path, 65536)
    if not sample or looks_binary(sample):
        return None
    text = sample.decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        first = text.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "jsonl"
        except json.JSONDecodeError:
            pass
        name = path.name.lower()
        return "jsonl" if ".jsonl" in name or ".ndjson" in name else "json"
    header = text.split("\n", 1)[0]
    for delim in (",", "\t"):
        if delim in header and has_paper_columns(next(iter(__import__("csv").reader([header], delimiter=delim)))):
            return "csv"
    if any(s in path.name.lower() for s in (".csv", ".tsv")):
        return "csv"
    if looks_like_daily_papers(text):
        return "daily_papers"
    return None


def iter_files(path: Path) -> Iterator[Path | Rejection]:
    """Files under a path (itself if a file), sorted, hidden ones skipped, symlink loops reported."""
    if not path.exists() and not path.is_symlink():
        yield Rejection(str(path), None, "no such file or directory")
        return
    if path.is_symlink() and not path.exists():
        yield Rejection(str(path), None, "broken symlink or symlink loop")
        return
    if path.is_file():
        yield path
        return
    seen: set[str] = set()
    for root, dirs, files in os.walk(path, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            yield Rejection(root, None, "symlink loop: directory already visited")
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = Path(root) / name
            if p.is_symlink() and not p.exists():
                yield Rejection(str(p), None, "broken symlink or symlink loop")
            else:
                yield p


def read_path(path: str | Path) -> Iterator[Item]:
    """Every paper and rejection found under a file or directory."""
    for f in iter_files(Path(path)):
        if isinstance(f, Rejection):
            yield f
            continue
        try:
            if f.stat().st_size == 0:
                yield Rejection(str(f), None, "empty file")
                continue
            fmt = detect_format(f)
        except OSError as exc:
            yield Rejection(str(f), None, f"cannot read file ({exc.strerror})")
            continue
        if fmt is None:
            yield Rejection(str(f), None, "unknown or binary format: expected JSONL, JSON, CSV with a header, "
                            "BEIR corpus.jsonl, arXiv metadata or a Daily Papers page (any of them may be .gz)")
            continue
        got_any = False
        for item in READERS[fmt](f):
            got_any = True
            yield item
        if not got_any:
            yield Rejection(str(f), None, f"no paper records found (read as {fmt})")

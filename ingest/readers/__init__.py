"""Readers: detect a file's format from its content and yield papers or rejections."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ingest.readers.base import Item, Located, Notice, Rejection, looks_binary
from ingest.readers.bibtex import looks_like_bibtex, read_bibtex
from ingest.readers.csv_table import read_csv
from ingest.readers.daily_papers import looks_like_daily_papers, read_daily_papers
from ingest.readers.jsonl import read_json, read_jsonl
from ingest.readers.medline import looks_like_medline, read_medline
from ingest.readers.pubmed_xml import looks_like_pubmed_xml, read_pubmed_xml
from ingest.readers.ris import looks_like_ris, read_ris
from ingest.readers.mapping import has_paper_columns
from ingest.readers.textio import SAMPLE_BYTES, count_lines, count_marker, detect_encoding, head_bytes

__all__ = ["Item", "Located", "Notice", "Rejection", "detect_format", "estimate_records", "read_path"]

READERS: dict[str, Callable[[Path], Iterator[Item]]] = {
    "jsonl": read_jsonl,
    "json": read_json,
    "csv": read_csv,
    "daily_papers": read_daily_papers,
    "bibtex": read_bibtex,
    "ris": read_ris,
    "medline": read_medline,
    "pubmed_xml": read_pubmed_xml,
}

EXPECTED = ("expected JSONL, JSON, CSV/TSV with a title and an abstract column (Zotero's CSV export too), BEIR "
            "corpus.jsonl, arXiv metadata, OpenAlex works, Semantic Scholar papers, BibTeX, RIS, PubMed MEDLINE "
            "text or PubMed XML, or a Daily Papers page (any of them may be .gz)")


def detect_format(path: Path) -> str | None:
    """Name of the reader for a file, judged by its content (the name's suffix only breaks ties)."""
    got = sample_text(path)
    if got is None:
        return None
    text, whole = got[0].lstrip(), got[1]
    if text.startswith("<"):
        return "pubmed_xml" if looks_like_pubmed_xml(text) else None
    if looks_like_bibtex(text):
        return "bibtex"
    if looks_like_ris(text):
        return "ris"
    if looks_like_medline(text):
        return "medline"
    if text.startswith(("[", "{")):
        return _json_flavour(path, text, whole=whole)
    header = text.split("\n", 1)[0]
    for delim in (",", "\t"):
        if delim in header and has_paper_columns(next(iter(csv.reader([header], delimiter=delim)))):
            return "csv"
    if any(s in path.name.lower() for s in (".csv", ".tsv")):
        return "csv"
    if looks_like_daily_papers(text):
        return "daily_papers"
    return None


def sample_text(path: Path) -> tuple[str, bool] | None:
    """The file's first 64 KB decoded in its detected encoding, and whether that is the whole file (None when
    empty or binary)."""
    sample = head_bytes(path, SAMPLE_BYTES)
    if not sample:
        return None
    enc = detect_encoding(sample, whole=len(sample) < SAMPLE_BYTES)
    if enc.ascii_compatible and looks_binary(sample):
        return None
    return sample[enc.bom:].decode(enc.name, errors="replace").lstrip("\ufeff"), len(sample) < SAMPLE_BYTES


def _json_flavour(path: Path, text: str, whole: bool) -> str:
    """'json' for one JSON document, 'jsonl' for one object per line (even when some lines are broken)."""
    if whole:
        try:
            doc = json.loads(text, strict=False)
        except (json.JSONDecodeError, RecursionError):
            pass
        else:  # one record on one line reads the same either way; call it JSONL as before
            one_record = isinstance(doc, dict) and text.strip().count("\n") == 0 and has_paper_columns(list(doc))
            return "jsonl" if one_record else "json"
    lines = [ln for ln in text.split("\n") if ln.strip()][:20]
    parsed = 0
    for ln in lines:
        try:
            parsed += isinstance(json.loads(ln, strict=False), dict)
        except (json.JSONDecodeError, RecursionError):
            pass
    if parsed >= 2 or (parsed == 1 and text.startswith("{")):
        return "jsonl"
    name = path.name.lower()
    if ".jsonl" in name or ".ndjson" in name:
        return "jsonl"
    return "json"


def unreadable_reason(path: Path) -> str:
    """Why no reader accepts a file, in words a user can act on."""
    sample = head_bytes(path, SAMPLE_BYTES)
    if not sample:
        return "not a readable gzip file (corrupt or truncated before any data)"
    got = sample_text(path)
    if got is None:
        return f"unknown or binary format (the file is not text); {EXPECTED}"
    if not got[0].strip():
        return "empty file (only whitespace)"
    return f"unknown format; {EXPECTED}"


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
    if not path.is_dir():
        yield Rejection(str(path), None, "not a regular file or directory (a device, FIFO or socket)")
        return
    seen: set[str] = set()
    errors: list[OSError] = []
    found = False
    for root, dirs, files in os.walk(path, followlinks=True, onerror=errors.append):
        while errors:
            err = errors.pop(0)
            yield Rejection(str(err.filename or root), None, f"cannot read directory ({err.strerror})")
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
            found = True
            if p.is_symlink() and not p.exists():
                yield Rejection(str(p), None, "broken symlink or symlink loop")
            elif not p.is_file():
                yield Rejection(str(p), None, "not a regular file (a device, FIFO or socket)")
            else:
                yield p
    for err in errors:
        yield Rejection(str(err.filename or path), None, f"cannot read directory ({err.strerror})")
    if not found:
        yield Rejection(str(path), None, "no files found in directory")

MARKERS = {"bibtex": b"\n@", "ris": b"\nTY  - ", "medline": b"\nPMID- ", "pubmed_xml": b"<PubmedArticle>"}


def estimate_records(paths: list[str | Path]) -> int | None:
    """Records under paths, from line counts of JSONL and CSV files and record-start markers of BibTeX, RIS,
    MEDLINE and PubMed XML (for a progress bar's ETA).

    None when any file is another format (one JSON document, a Daily Papers page), whose count would
    take a full parse. CSV fields with line breaks, BibTeX @comment/@string blocks make it an overestimate.
    """
    total = 0
    for path in paths:
        for f in iter_files(Path(path)):
            if isinstance(f, Rejection):
                continue
            try:
                fmt = detect_format(f) if f.stat().st_size else None
                if fmt == "jsonl":
                    total += count_lines(f)
                elif fmt == "csv":
                    total += max(count_lines(f) - 1, 0)
                elif fmt in MARKERS:
                    total += count_marker(f, MARKERS[fmt])
                elif fmt is not None:
                    return None
            except OSError:
                continue
    return total


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
            if fmt is None:
                yield Rejection(str(f), None, unreadable_reason(f))
                continue
        except OSError as exc:
            yield Rejection(str(f), None, f"cannot read file ({exc.strerror or exc})")
            continue
        got_any = False
        try:
            for item in READERS[fmt](f):
                got_any = True
                yield item
        except Exception as exc:  # noqa: BLE001 - a reader failing on odd input stops its file, never the ingest
            got_any = True
            yield Rejection(str(f), None, f"stopped reading the file ({type(exc).__name__}: {exc})")
        if not got_any:
            yield Rejection(str(f), None, f"no paper records found (read as {fmt})")

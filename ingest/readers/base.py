"""What every reader yields (papers, rejections, notices), and reading a file as text: whole, or line by line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ingest.readers.textio import (
    GZIP_ERRORS,
    MAX_DOCUMENT_BYTES,
    SAMPLE_BYTES,
    Encoding,
    utf8_verdict,
    decode_line,
    detect_encoding,
    guess_legacy,
    iter_lines,
    MAX_RECORD_BYTES,
    mb,
    read_bounded,
)
from ingest.records import Paper


@dataclass(frozen=True)
class Rejection:
    """A record (or a whole file) that could not be read, with where and why."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Located:
    """A paper with the file and line it came from."""

    paper: Paper
    path: str
    line: int


@dataclass(frozen=True)
class Notice:
    """A warning about a file or record that was still read (encoding used, bytes replaced, id changed)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


Item = Located | Rejection | Notice


def finished_record(where: str, start: int, size: int, build: Callable[[], Paper]) -> Iterator[Located | Rejection]:
    """A record a line reader has collected: its paper, or a Rejection at its first line (too large, or
    `build` raised ValueError with the reason)."""
    if size > MAX_RECORD_BYTES:
        yield Rejection(where, start, f"record larger than {mb(MAX_RECORD_BYTES)}; skipped")
        return
    try:
        yield Located(build(), where, start)
    except ValueError as exc:
        yield Rejection(where, start, str(exc))


class Text(NamedTuple):
    """One readable line of a file (newline removed) and its 1-based number."""

    lineno: int
    text: str


def read_lines(path: Path) -> Iterator[Text | Notice | Rejection]:
    """Every line of a plain or gzipped file for a line-oriented reader (JSONL, CSV, RIS, MEDLINE).

    A line's warning (bytes replaced, encoding chosen) comes first as a Notice; a line that could not be read
    (too large, corrupt gzip, file too large) is a Rejection naming file:line and is not yielded as Text.
    """
    where = str(path)
    for line in iter_lines(path):
        if line.warning:
            yield Notice(where, line.lineno or None, line.warning)
        if line.error:
            yield Rejection(where, line.lineno, line.error)
        elif line.text is not None:
            yield Text(line.lineno, line.text)


COMPOUND = (".gz",)


def listed(value: object) -> list[object]:
    """The value when it is a list, else an empty list (for loosely typed JSON fields)."""
    return value if isinstance(value, list) else []


def source_prefix(path: Path) -> str:
    """The namespace for a file's bare ids: its name without suffixes ('refs.bib.gz' -> 'refs:')."""
    name = path.name
    for suffix in COMPOUND:
        name = name.removesuffix(suffix)
    stem = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    return f"{stem}:" if stem else ""


def looks_binary(sample: bytes) -> bool:
    """True when a byte sample is not text (many control bytes, or not UTF-8 and not Latin text)."""
    if not sample:
        return False
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control / len(sample) > 0.10


def read_text(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> tuple[str, list[Rejection | Notice]]:
    """Whole file as text, for formats parsed in one piece (JSON, BibTeX, a Daily Papers page).

    Bounded by `limit` decompressed bytes (a larger file gives "" and a rejection). Lines with bytes that do
    not decode keep their place with U+FFFD and a notice; the encoding used is a notice when not UTF-8.
    """
    where = str(path)
    try:
        data = read_bounded(path, limit)
    except GZIP_ERRORS as exc:
        return "", [Rejection(where, None, f"truncated or corrupt gzip ({exc})")]
    if data is None:
        return "", [Rejection(where, None, f"file larger than {mb(limit)} decompressed; this format is read "
                                           "whole, so split the file")]
    enc = detect_encoding(data[:SAMPLE_BYTES] if len(data) > SAMPLE_BYTES else data, whole=len(data) <= SAMPLE_BYTES)
    notes: list[Rejection | Notice] = [Notice(where, None, enc.note)] if enc.note else []
    data = data[enc.bom:]
    if not enc.ascii_compatible:
        text = data.decode(enc.name, errors="replace")
        return text.replace("\r\n", "\n"), notes
    if enc.name == "utf-8" and not utf8_verdict(data, True):
        name = guess_legacy(data)
        enc = Encoding(name, 0, f"not UTF-8: read as {name} (detected by charset-normalizer)")
        notes = [Notice(where, None, f"not UTF-8: read as {name} (detected by charset-normalizer)")]
    parts: list[str] = []
    for i, raw in enumerate(data.split(b"\n"), start=1):
        text, warning = decode_line(raw, enc.name)
        if warning:
            notes.append(Notice(where, i, warning))
        parts.append(text.rstrip("\r"))
    return "\n".join(parts), notes

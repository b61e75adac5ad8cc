"""What every reader yields, and byte-level file opening shared by the readers."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.records import Paper

GZIP_MAGIC = b"\x1f\x8b"


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


Item = Located | Rejection


def head_bytes(path: Path, n: int = 8192) -> bytes:
    """The first n (decompressed) bytes of a file; of a truncated or corrupt gzip, what decompresses."""
    with open(path, "rb") as fh:
        raw = fh.read(n)
        if not raw.startswith(GZIP_MAGIC):
            return raw
        fh.seek(0)
        out = bytearray()
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            while len(out) < n and not inflate.eof:
                block = fh.read(65536)
                if not block:
                    break
                out += inflate.decompress(block, n - len(out))
                while inflate.unconsumed_tail and len(out) < n:
                    out += inflate.decompress(inflate.unconsumed_tail, n - len(out))
        except zlib.error:
            pass
        return bytes(out[:n])


def is_utf16(sample: bytes) -> bool:
    """True when a byte sample starts with a UTF-16 or UTF-32 byte-order mark."""
    return sample.startswith((b"\xff\xfe", b"\xfe\xff"))


def looks_binary(sample: bytes) -> bool:
    """True when a byte sample is not text (many control bytes, or not UTF-8 and not Latin text)."""
    if not sample:
        return False
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control / len(sample) > 0.10


def open_decompressed(path: Path) -> BinaryIO:
    """The file opened for binary reading, through gzip when it starts with the gzip magic."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def iter_lines(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (line number, text or None, error or None) for a plain or gzipped file.

    An undecodable line yields text None and the error; a truncated gzip yields a final error row.
    """
    lineno = 0
    try:
        with open_decompressed(path) as fh:
            for raw in fh:
                lineno += 1
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield lineno, None, f"invalid UTF-8 at byte {exc.start + 1} of the line (save the file as UTF-8)"
                    continue
                yield lineno, text.rstrip("\r\n"), None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        yield lineno + 1, None, f"truncated or corrupt gzip after line {lineno} ({exc})"


def count_lines(path: Path) -> int:
    """Lines of a plain or gzipped file, counted in 1 MB blocks (a truncated gzip: what reads)."""
    n, last = 0, b"\n"
    try:
        with open_decompressed(path) as fh:
            while block := fh.read(1 << 20):
                n += block.count(b"\n")
                last = block[-1:]
    except (EOFError, zlib.error, gzip.BadGzipFile):
        pass
    return n + (last != b"\n")


def read_text(path: Path) -> tuple[str, list[Rejection]]:
    """Whole file as text (lines that fail to decode dropped and reported)."""
    parts: list[str] = []
    errors: list[Rejection] = []
    for lineno, text, err in iter_lines(path):
        if err:
            errors.append(Rejection(str(path), lineno, err))
            parts.append("")
        else:
            parts.append(text or "")
    return "\n".join(parts), errors

"""Bytes to text for every reader: bounded streaming, encoding detection, replaced bytes reported.

A line (or record) is never read whole before its size is known: blocks are split on newlines as they
stream in, and a line that grows past `MAX_RECORD_BYTES` is skipped to its end and refused. Whole-file
formats (JSON, BibTeX) are read into memory only up to `MAX_DOCUMENT_BYTES`.

Encodings: UTF-8 when it decodes (a UTF-8 byte-order mark is skipped); UTF-16/32 by byte-order mark or by
the pattern of zero bytes; anything else is detected with charset-normalizer and the choice is reported.
A stray undecodable byte keeps its line, replaced by U+FFFD, with a warning naming the line.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MB = 1 << 20
MAX_RECORD_BYTES = 16 * MB  # one line or record, decompressed
MAX_DOCUMENT_BYTES = 128 * MB  # a whole-file format (JSON, BibTeX), decompressed: it is parsed in memory
MAX_FILE_BYTES = 64 * 1024 * MB  # a streamed file (JSONL, CSV, RIS, MEDLINE, XML), decompressed
BLOCK = MB
SAMPLE_BYTES = 65536
GZIP_MAGIC = b"\x1f\x8b"
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_WESTERN = ("cp1252", "latin_1", "iso8859_15")  # preferred among equally good guesses (Excel, old Windows tools)
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
Stream = gzip.GzipFile | io.BufferedReader  # both have read1: what is there, without waiting for a full block


def mb(n: int) -> str:
    """'16 MB' for a byte count (as the limits are stated)."""
    return f"{n / MB:g} MB"


@dataclass(frozen=True)
class Encoding:
    """How a file's bytes become text: codec name, byte-order mark length, and what to tell the user."""

    name: str
    bom: int = 0
    note: str | None = None  # None for plain UTF-8

    @property
    def ascii_compatible(self) -> bool:
        return not self.name.startswith(("utf-16", "utf-32"))


@dataclass(frozen=True)
class Line:
    """One line of a file: its text, or None with the reason it was refused; a warning when bytes were replaced."""

    lineno: int
    text: str | None
    error: str | None = None
    warning: str | None = None


def open_decompressed(path: Path) -> Stream:
    """The file opened for binary reading, through gzip when it starts with the gzip magic."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    return gzip.GzipFile(path, "rb") if gz else open(path, "rb")


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


def utf16_without_bom(sample: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when every other byte of a text sample is zero (no byte-order mark)."""
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even, odd = sample[0:pairs * 2:2].count(0), sample[1:pairs * 2:2].count(0)
    if odd > 0.3 * pairs and even < 0.02 * pairs:
        return "utf-16-le"
    if even > 0.3 * pairs and odd < 0.02 * pairs:
        return "utf-16-be"
    return None


def utf8_verdict(sample: bytes, whole: bool) -> bool:
    """True when a sample reads as UTF-8: it decodes, or it has good multibyte characters and few stray bad bytes
    (text in an 8-bit encoding almost never forms a valid UTF-8 sequence)."""
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if not whole and exc.reason == "unexpected end of data" and exc.start >= len(sample) - 3:
            return True  # the sample cut a character in half
    text = sample.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for c in text if c > "\x7f" and c != "\ufffd")
    return good > 0 and 4 * good >= bad


def guess_legacy(data: bytes) -> str:
    """The most plausible 8-bit encoding of bytes that are not UTF-8 (charset-normalizer, Western first on ties)."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return "cp1252"
    best = min(m.chaos for m in matches)
    near = [m for m in matches if m.chaos <= best + 0.01]
    # an encoding that decodes these bytes to the same text is listed in could_be_from_charset
    same = {name for m in near for name in [m.encoding, *m.could_be_from_charset]}
    return next((w for w in _WESTERN if w in same), near[0].encoding)


def detect_encoding(sample: bytes, whole: bool = False) -> Encoding:
    """The encoding of a file from its first bytes (`whole` when the sample is the entire file)."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            if name == "utf-8":
                return Encoding("utf-8", len(bom))
            return Encoding(name, len(bom), f"read as {name.upper()} (byte-order mark)")
    u16 = utf16_without_bom(sample)
    if u16:
        return Encoding(u16, 0, f"read as {u16.upper()} (detected, no byte-order mark)")
    if utf8_verdict(sample, whole):
        return Encoding("utf-8")
    name = guess_legacy(sample)
    return Encoding(name, 0, f"not UTF-8: read as {name} (detected by charset-normalizer)")


_collected: list[tuple[int, int]] = []


def _collect(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _collected.append((exc.start, exc.end))
    return "\ufffd", exc.end


codecs.register_error("paperchat-collect", _collect)


def decode_line(raw: bytes, encoding: str) -> tuple[str, str | None]:
    """Text of a line, and a warning when some bytes did not decode (they become U+FFFD)."""
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError:
        pass
    _collected.clear()
    text = raw.decode(encoding, errors="paperchat-collect")
    spans = list(_collected)
    _collected.clear()
    where = ", ".join(f"{s + 1}" if e - s == 1 else f"{s + 1}-{e}" for s, e in spans[:5])
    more = f" and {len(spans) - 5} more" if len(spans) > 5 else ""
    return text, f"invalid {encoding} byte(s) at byte {where}{more} of the line replaced with U+FFFD"


def _split(blocks: Iterator[bytes] | Iterator[str], nl: bytes | str, limit: int
           ) -> Iterator[bytes | str | None]:
    """Lines (with their newline) from a stream of blocks; None for a line longer than `limit`, skipped
    to its end without keeping it."""
    buf: list[bytes | str] = []
    size = 0
    skipping = False
    for block in blocks:
        start = 0
        while True:
            end = block.find(nl, start)  # type: ignore[arg-type]
            if end < 0:
                if not skipping:
                    piece = block[start:]
                    size += len(piece)
                    if size > limit:
                        skipping, buf, size = True, [], 0
                    elif piece:
                        buf.append(piece)
                break
            end += len(nl)
            if skipping:
                yield None
                skipping = False
            else:
                piece = block[start:end]
                if size + len(piece) > limit:
                    yield None
                else:
                    buf.append(piece)
                    yield nl[:0].join(buf)  # type: ignore[arg-type]
            buf, size, start = [], 0, end
    if skipping:
        yield None
    elif buf:
        yield nl[:0].join(buf)  # type: ignore[arg-type]


def _blocks(fh: Stream, file_limit: int, state: dict[str, int]) -> Iterator[bytes]:
    while block := fh.read1(BLOCK):
        state["read"] += len(block)
        if state["read"] > file_limit:
            state["over"] = 1
            return
        yield block


def iter_lines(path: Path, record_limit: int = MAX_RECORD_BYTES, file_limit: int = MAX_FILE_BYTES,
               encoding: Encoding | None = None) -> Iterator[Line]:
    """Every line of a plain or gzipped file as text (newline removed), bounded and decoded.

    The first row is a notice (line 0, text None, warning set) when the file is not plain UTF-8. A line
    over `record_limit` bytes, a read past `file_limit` bytes and a truncated gzip are error rows.
    """
    enc = encoding or detect_encoding(head_bytes(path, SAMPLE_BYTES), whole=False)
    if enc.note:
        yield Line(0, None, None, enc.note)
    name, utf8_seen = enc.name, enc.name != "utf-8"
    lineno = 0
    state = {"read": 0, "over": 0}
    too_big = f"record larger than {mb(record_limit)}; skipped"
    try:
        with open_decompressed(path) as fh:
            if enc.bom:
                fh.read(enc.bom)
            if enc.ascii_compatible:
                lines: Iterator[bytes | str | None] = _split(_blocks(fh, file_limit, state), b"\n", record_limit)
            else:
                dec = codecs.getincrementaldecoder(enc.name)(errors="replace")
                texts = (dec.decode(b) for b in _blocks(fh, file_limit, state))
                # a UTF-16 character is at least 2 bytes: the limit in characters is half the byte limit
                lines = _split(texts, "\n", record_limit // 2)
            for raw in lines:
                lineno += 1
                if raw is None:
                    yield Line(lineno, None, too_big)
                    continue
                if isinstance(raw, str):
                    yield Line(lineno, raw.rstrip("\r\n"))
                    continue
                text, warning = decode_line(raw, name)
                if warning and not utf8_seen and name == "utf-8" and not utf8_verdict(raw, True):
                    # the sample was plain ASCII: the first bad line decides the file's real encoding
                    legacy = guess_legacy(raw)
                    name = legacy
                    text, warning = decode_line(raw, name)
                    yield Line(0, None, None, f"not UTF-8 from line {lineno}: read as {name} "
                                              "(detected by charset-normalizer)")
                elif not warning and not utf8_seen and name == "utf-8" and max(raw, default=0) > 0x7F:
                    utf8_seen = True
                yield Line(lineno, text.rstrip("\r\n"), None, warning)
    except GZIP_ERRORS as exc:
        yield Line(lineno + 1, None, f"truncated or corrupt gzip after line {lineno} ({exc})")
        return
    if state["over"]:
        yield Line(lineno + 1, None, f"file larger than {mb(file_limit)} decompressed; stopped reading there")


def count_lines(path: Path, file_limit: int = MAX_FILE_BYTES) -> int:
    """Lines of a plain or gzipped file, counted in 1 MB blocks (a truncated gzip: what reads)."""
    n, last = 0, b"\n"
    state = {"read": 0, "over": 0}
    try:
        with open_decompressed(path) as fh:
            for block in _blocks(fh, file_limit, state):
                n += block.count(b"\n")
                last = block[-1:]
    except GZIP_ERRORS:
        pass
    return n + (last != b"\n")


def count_marker(path: Path, marker: bytes, file_limit: int = MAX_FILE_BYTES) -> int:
    """Occurrences of `marker` in a plain or gzipped file, streamed in 1 MB blocks (a record count for
    formats whose records start with a fixed text: `\nTY  - `, `\nPMID- `, `<PubmedArticle>`)."""
    n, carry = 0, b"\n"  # the file's start counts as a line start
    state = {"read": 0, "over": 0}
    try:
        with open_decompressed(path) as fh:
            for block in _blocks(fh, file_limit, state):
                data = carry + block
                n += data.count(marker)
                carry = data[-(len(marker) - 1):] if len(marker) > 1 else b""
    except GZIP_ERRORS:
        pass
    return n


def read_bounded(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> bytes | None:
    """All (decompressed) bytes of a file, or None when it is larger than `limit`."""
    out = bytearray()
    with open_decompressed(path) as fh:
        while block := fh.read1(BLOCK):
            out += block
            if len(out) > limit:
                return None
    return bytes(out)

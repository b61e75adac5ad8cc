"""Uploaded files: type and size checks, and copies under safe names (an uploaded name is never a path)."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ingest.readers.textio import detect_encoding

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_EXPANDED_BYTES = 2 * 1024**3  # a .gz upload may expand to this much; bounds the time a bomb holds the ingest
MAX_UPLOAD = "50mb"  # the same limit for Gradio's launch(max_file_size=...)
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt", ".bib", ".ris", ".nbib", ".xml")
ALLOWED = tuple(SUFFIXES) + tuple(s + ".gz" for s in SUFFIXES)
FILE_TYPES = [*SUFFIXES, ".gz"]  # for gr.File(file_types=...): what the browser's picker offers


def display_name(name: str) -> str:
    """A name safe to show: the last path component, printable characters only, at most 80."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\- ()+]", "_", base).strip() or "upload"
    return base[:80]


def allowed_suffix(name: str) -> str | None:
    """The allowed suffix the name ends with (.jsonl, .csv.gz, ...), or None."""
    low = (name or "").lower()
    return next((s for s in sorted(ALLOWED, key=len, reverse=True) if low.endswith(s)), None)


def expanded_size(path: Path, limit: int) -> int:
    """Decompressed size of a gzip file, counted in 1 MB blocks and stopping past `limit` (what reads of a
    truncated one)."""
    n = 0
    try:
        with gzip.GzipFile(path, "rb") as gz:
            while (block := gz.read1(1 << 20)) and n <= limit:
                n += len(block)
    except (OSError, EOFError, zlib.error):
        pass
    return n


def _looks_ok(path: Path, suffix: str, max_expanded: int = MAX_EXPANDED_BYTES) -> str | None:
    """Why the content does not match its type, or None."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if suffix.endswith(".gz"):
        if not head.startswith(b"\x1f\x8b"):
            return "not a gzip file"
        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(4096)
        except (OSError, EOFError) as exc:
            return f"unreadable gzip ({exc})"
        if expanded_size(path, max_expanded) > max_expanded:
            return f"expands to more than {max_expanded / 2**20:g} MB (the limit for uploads)"
    if b"\x00" in head and detect_encoding(head).ascii_compatible:  # UTF-16/32 text has zero bytes
        return "binary content, expected text"
    return None


@dataclass
class Staged:
    """Uploads copied into `directory`: staged path -> shown name, and the files refused."""

    directory: Path
    files: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def stage(uploads: list[str], directory: Path, max_bytes: int = MAX_UPLOAD_BYTES,
          max_expanded: int = MAX_EXPANDED_BYTES) -> Staged:
    """Check each upload and copy the good ones to `directory/NNN/<shown name>`.

    The uploaded name is kept (a file's bare ids are namespaced by its name, e.g. `my papers:1`), inside a
    directory of its own so two uploads with one name never meet."""
    out = Staged(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(uploads):
        shown = display_name(str(src))
        suffix = allowed_suffix(shown)
        if suffix is None:
            out.refused.append(f"{shown}: unsupported file type (allowed: {', '.join(ALLOWED)})")
            continue
        path = Path(src)
        try:
            size = path.stat().st_size
        except OSError as exc:
            out.refused.append(f"{shown}: cannot read upload ({exc.strerror})")
            continue
        if size > max_bytes:
            out.refused.append(f"{shown}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
            continue
        why = _looks_ok(path, suffix, max_expanded)
        if why:
            out.refused.append(f"{shown}: {why}")
            continue
        dest = directory / f"{i:03d}" / shown
        dest.parent.mkdir()
        shutil.copyfile(path, dest)
        out.files[str(dest)] = shown
    return out


def gradio_temp_dir() -> Path:
    """Where Gradio keeps uploaded files (GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def discard(uploads: list[str]) -> None:
    """Delete Gradio's temp copies of uploads once ingested (only files inside Gradio's temp directory)."""
    root = gradio_temp_dir()
    for src in uploads:
        path = Path(src).resolve()
        if root not in path.parents:
            continue
        try:
            path.unlink(missing_ok=True)
            path.parent.rmdir()  # Gradio puts each upload in a directory of its own; kept if not empty
        except OSError:
            pass

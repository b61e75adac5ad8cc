"""Write the bad-input cases that are binary or odd at the byte level (kept out of git as plain files).

Usage: python tests/data/bad/make_cases.py DEST   (the tests call build(tmp_path) instead)
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path


def _rec(i: int, **over: object) -> dict[str, object]:
    rec: dict[str, object] = {"id": f"g{i}", "title": f"Generated paper number {i} on sparse attention",
                              "abstract": f"Paper {i} studies how sparse attention patterns scale to long inputs."}
    rec.update(over)
    return rec


def _line(rec: dict[str, object]) -> bytes:
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")


def build(dest: Path) -> dict[str, Path]:
    """Create every generated case under dest; returns name -> path."""
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        (dest / name).write_bytes(data)
        out[name] = dest / name

    rnd = random.Random(8)
    put("binary.bin", bytes(rnd.randrange(256) for _ in range(4096)))
    # line 2 carries bytes that are not UTF-8 (a Latin-1 "é" and a stray 0xff)
    put("invalid_utf8.jsonl", _line(_rec(1)) + b'{"id": "g2", "title": "Caf\xe9 \xff", "abstract": "Latin-1 bytes."}\n'
        + _line(_rec(3)))
    # UTF-8 with one stray byte (0xff) inside a title: the record stays, the byte becomes U+FFFD
    put("stray_byte.jsonl", _line(_rec(1)) + '{"id": "g2", "title": "Zürich '.encode() + b'\xff paper", '
        b'"abstract": "One bad byte."}\n' + _line(_rec(3)))
    put("bom.jsonl", b"\xef\xbb\xbf" + _line(_rec(1)) + _line(_rec(2)))
    put("bom.csv", b"\xef\xbb\xbftitle,abstract\r\nBOM header paper,The first header cell starts with a BOM.\r\n")
    put("crlf.jsonl", _line(_rec(1)).replace(b"\n", b"\r\n") + _line(_rec(2)).replace(b"\n", b"\r\n"))
    put("crlf.csv", b'title,abstract,year\r\n"CRLF paper one","A quoted abstract\r\nspanning two lines.",2020\r\n'
        b'"CRLF paper two","Plain abstract.",2021\r\n')
    full = gzip.compress(b"".join(_line(_rec(i)) for i in range(1, 201)), mtime=0)
    put("truncated.jsonl.gz", full[: len(full) // 2])
    put("good.jsonl.gz", gzip.compress(_line(_rec(1)) + _line(_rec(2)), mtime=0))
    # a raw NUL byte inside a JSON string (not valid JSON strictly) and an escaped one
    put("nul_bytes.jsonl", b'{"id": "n1", "title": "NUL\x00inside", "abstract": "A raw NUL byte\x00in the abstract."}\n'
        + _line({"id": "n2", "title": "Escaped\u0000NUL", "abstract": "An escaped NUL\u0000here."}))
    put("huge_abstract.jsonl", _line(_rec(1)) + _line(_rec(2, abstract="word " * 200_000)) + _line(_rec(3)))
    put("huge_title.jsonl", _line(_rec(1, title="T" * 10_000)) + _line(_rec(2)))
    put("utf16.jsonl", ('{"title": "UTF-16 paper", "abstract": "Saved by a Windows editor."}\n').encode("utf-16"))
    return out


if __name__ == "__main__":
    for name, path in build(Path(sys.argv[1] if len(sys.argv) > 1 else ".")).items():
        print(name, path.stat().st_size)

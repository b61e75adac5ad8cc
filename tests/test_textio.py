"""Encodings and bounded reading shared by every reader (ingest/readers/textio.py)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.readers import Located, Notice, Rejection, detect_format, read_path
from ingest.readers.textio import detect_encoding, iter_lines
from tests.conftest import ROOT, SAMPLE

ACCENTED = ("Café au lait", "A naïve study of cafés in Zürich.")
CURLY = ("Authors\u2019 café", "The \u201cnaïve\u201d model.")  # cp1252 only: 0x92, 0x93, 0x94


def items(path: Path) -> tuple[list[Located], list[Rejection], list[str]]:
    got = list(read_path(path))
    return ([g for g in got if isinstance(g, Located)], [g for g in got if isinstance(g, Rejection)],
            [g.message for g in got if isinstance(g, Notice)])


def csv_text(rows: list[tuple[str, str]]) -> str:
    return "title,abstract,year\r\n" + "".join(f'"{t}","{a}",2020\r\n' for t, a in rows)


def jsonl_text(rows: list[tuple[str, str]]) -> str:
    return "".join(json.dumps({"title": t, "abstract": a}, ensure_ascii=False) + "\n" for t, a in rows)


CASES = [  # (encoding written, rows, notice expected)
    ("cp1252", [ACCENTED, CURLY], "not UTF-8: read as cp1252 (detected by charset-normalizer)"),
    ("latin-1", [ACCENTED, ("Über Straße", "Größe und Maß.")], "not UTF-8: read as cp1252 (detected by charset-normalizer)"),
    ("utf-16", [ACCENTED, CURLY], "read as UTF-16-LE (byte-order mark)"),
    ("utf-16-le", [ACCENTED, CURLY], "read as UTF-16-LE (detected, no byte-order mark)"),
    ("utf-16-be", [ACCENTED, CURLY], "read as UTF-16-BE (detected, no byte-order mark)"),
    ("utf-8-sig", [ACCENTED, CURLY], None),
]


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
@pytest.mark.parametrize("encoding,rows,notice", CASES, ids=[c[0] for c in CASES])
def test_encodings_lose_no_paper(tmp_path: Path, kind: str, encoding: str, rows: list[tuple[str, str]],
                                 notice: str | None) -> None:
    f = tmp_path / f"papers.{kind}"
    f.write_bytes((csv_text(rows) if kind == "csv" else jsonl_text(rows)).encode(encoding))
    assert detect_format(f) == kind
    papers, rejected, notices = items(f)
    assert rejected == []
    assert [(p.paper.title, p.paper.abstract) for p in papers] == rows
    assert notices == ([notice] if notice else [])


def test_stray_byte_is_replaced_and_reported_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_bytes("title,abstract\nZürich,Ünïcödé abstract.\n".encode() + b"Bad \xff byte,An abstract.\n"
                  + "Fine,Also fine.\n".encode())
    papers, rejected, notices = items(f)
    assert [p.paper.title for p in papers] == ["Zürich", "Bad \ufffd byte", "Fine"] and rejected == []
    assert notices == ["invalid utf-8 byte(s) at byte 5 of the line replaced with U+FFFD"]
    (n,) = [g for g in read_path(f) if isinstance(g, Notice)]
    assert str(n) == f"{f}:3: invalid utf-8 byte(s) at byte 5 of the line replaced with U+FFFD"


def test_ascii_start_then_cp1252_later_switches_encoding(tmp_path: Path) -> None:
    f = tmp_path / "late.jsonl"
    ascii_rows = [(f"Plain title {i}", "x" * 500) for i in range(200)]  # > 64 KB of ASCII first
    f.write_bytes(jsonl_text(ascii_rows).encode() + jsonl_text([CURLY]).encode("cp1252"))
    papers, rejected, notices = items(f)
    assert len(papers) == 201 and rejected == [] and papers[-1].paper.title == CURLY[0]
    assert notices == ["not UTF-8 from line 201: read as cp1252 (detected by charset-normalizer)"]


def test_detect_encoding_names() -> None:
    assert detect_encoding(b"plain ascii").name == "utf-8"
    assert detect_encoding("naïve".encode()).name == "utf-8"
    assert detect_encoding("naïve \u2019".encode("cp1252"), whole=True).name == "cp1252"
    assert detect_encoding("a".encode("utf-16")).bom == 2


# --- bounded reading --------------------------------------------------------------------------------

def test_oversized_line_is_refused_and_the_next_lines_read(tmp_path: Path) -> None:
    f = tmp_path / "big.jsonl"
    good = json.dumps({"title": "Good", "abstract": "Kept."})
    f.write_text(good + "\n" + "x" * 5000 + "\n" + good.replace("Good", "After") + "\n" + "y" * 3000)
    lines = list(iter_lines(f, record_limit=1000))
    assert [(ln.lineno, ln.error) for ln in lines if ln.error] == [
        (2, "record larger than 0.000953674 MB; skipped"), (4, "record larger than 0.000953674 MB; skipped")]
    assert [ln.text for ln in lines if ln.text] == [good, good.replace("Good", "After")]


def test_file_cap_stops_reading(tmp_path: Path) -> None:
    f = tmp_path / "many.jsonl"
    f.write_text("".join(json.dumps({"title": f"T{i}", "abstract": "A."}) + "\n" for i in range(80_000)))  # ~3 MB
    lines = list(iter_lines(f, file_limit=2 << 20))
    assert lines[-1].error and lines[-1].error.startswith("file larger than 2 MB decompressed; stopped reading")
    assert all(ln.text for ln in lines[:-2])


def write_bomb(path: Path, line_bytes: int) -> None:
    """A gzip whose first line is `line_bytes` of spaces (no newline), then one good record."""
    block = b" " * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as gz:
        gz.write(b'{"title": "Bomb", "abstract": "')
        for _ in range(line_bytes // len(block)):
            gz.write(block)
        gz.write(b'"}\n' + json.dumps({"id": "ok1", "title": "Good record", "abstract": "Still read."}).encode()
                 + b"\n")


def test_gzip_bomb_line_is_refused_in_process(tmp_path: Path) -> None:
    f = tmp_path / "bomb.jsonl.gz"
    write_bomb(f, 64 << 20)  # 64 MB line against the 16 MB record limit
    papers, rejected, _ = items(f)
    assert [str(r) for r in rejected] == [f"{f}:1: record larger than 16 MB; skipped"]
    assert [p.paper.title for p in papers] == ["Good record"]


@pytest.mark.slow
def test_gzip_bomb_from_the_cli_keeps_rss_flat(tmp_path: Path) -> None:
    """Issue 17 acceptance: ~1 MB .jsonl.gz expanding to a 1 GiB line, then a good record; peak RSS <= 1.5 GB."""
    f = tmp_path / "bomb.jsonl.gz"
    write_bomb(f, 1 << 30)
    assert f.stat().st_size < 2 << 20
    # A wrapper process of its own: RUSAGE_CHILDREN of this pytest process would also count earlier tests' children.
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
               "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr);"
               "sys.stdout.write('\\nPEAK_KB=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
               "sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "rag.cli", "ingest", str(f), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    out, _, peak = proc.stdout.rpartition("\nPEAK_KB=")
    peak_kb = int(peak)
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, out, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    assert f"rejected: {f}:1: record larger than 16 MB; skipped" in proc.stderr
    assert proc.stdout.startswith("added 1,")
    assert 0 < peak_kb < 1.5e6, f"peak RSS {peak_kb / 1e3:.0f} MB"


# --- no silent garbage ------------------------------------------------------------------------------

def test_daily_papers_needs_its_heading(tmp_path: Path) -> None:
    assert detect_format(SAMPLE / "daily_papers_sep3.txt") == "daily_papers"
    text = (SAMPLE / "daily_papers_sep3.txt").read_text().replace("Daily Papers", "Some Papers")
    f = tmp_path / "page.txt"
    f.write_text(text)
    assert detect_format(f) is None
    (r,) = list(read_path(f))
    assert isinstance(r, Rejection) and r.reason.startswith("unknown format; expected")


def test_random_text_is_an_unknown_format(tmp_path: Path) -> None:
    import random

    rnd = random.Random(3)
    words = ["alpha", "beta", "model", "the", "of", "learning", "primaryclass = {cs.cl},", "<articletitle>"]
    f = tmp_path / "notes.txt"
    f.write_text("\n\n".join(" ".join(rnd.choice(words) for _ in range(rnd.choice([5, 60]))) for _ in range(40)))
    assert detect_format(f) is None


@pytest.mark.parametrize("name,head,tail", [
    ("bomb.json.gz", b'[{"title": "Bomb", "abstract": "', b'"}]'),
    ("bomb.bib.gz", b"@article{x, title={Bomb}, abstract={", b"}}\n"),
])
def test_whole_file_formats_stop_at_their_cap(tmp_path: Path, name: str, head: str, tail: bytes,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.readers.base as base

    monkeypatch.setattr(base.read_text, "__defaults__", (4 << 20,))  # a 4 MB cap instead of 128 MB
    f = tmp_path / name
    with gzip.open(f, "wb") as gz:
        gz.write(head + b" " * (8 << 20) + tail)
    assert [str(it) for it in read_path(f)] == [
        f"{f}: file larger than 4 MB decompressed; this format is read whole, so split the file"]


def test_pubmed_xml_record_cap(tmp_path: Path) -> None:
    f = tmp_path / "big.xml.gz"
    with gzip.open(f, "wb") as gz:
        gz.write(b'<?xml version="1.0"?><PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>'
                 b"<ArticleTitle>T</ArticleTitle><Abstract><AbstractText>" + b"a" * (20 << 20)
                 + b"</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>\n<PubmedArticle>"
                 b"<MedlineCitation><PMID>2</PMID><Article><ArticleTitle>Good</ArticleTitle><Abstract><AbstractText>"
                 b"Fine.</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>")
    got = list(read_path(f))
    assert str(got[0]) == f"{f}:1: record larger than 16 MB; skipped"
    assert isinstance(got[1], Located) and got[1].paper.paper_id == "pmid:2" and len(got) == 2

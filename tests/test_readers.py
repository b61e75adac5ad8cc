"""Readers: format detection, field mapping, ids, and rejections naming file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ingest.readers import Located, Rejection, detect_format, read_path
from ingest.records import clean_text, make_paper
from tests.conftest import SAMPLE


def papers(path: Path) -> list[Located]:
    return [x for x in read_path(path) if isinstance(x, Located)]


def rejections(path: Path) -> list[Rejection]:
    return [x for x in read_path(path) if isinstance(x, Rejection)]


def test_sample_daily_papers_has_65_papers() -> None:
    got = papers(SAMPLE)
    assert len(got) == 65
    titles = {g.paper.title for g in got}
    assert "Deep Networks Always Grok and Here is Why" in titles
    assert all(len(g.paper.abstract) > 200 for g in got)
    assert len({g.paper.paper_id for g in got}) == 65


def test_arxiv_snapshot_schema(tmp_path: Path) -> None:
    rec = {"id": "2101.00001v2", "title": "A  Title\\\\ broken", "abstract": "Line one\n  line two.",
           "authors": "A. Smith, B. Jones and C. Wu", "categories": "cs.CL cs.AI", "update_date": "2021-01-05"}
    f = tmp_path / "arxiv.json.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(json.dumps(rec) + "\n")
    (p,) = papers(f)
    assert detect_format(f) == "jsonl"
    assert p.paper.paper_id == "arxiv:2101.00001"
    assert p.paper.url == "https://arxiv.org/abs/2101.00001"
    assert p.paper.title == "A Title broken"
    assert p.paper.abstract == "Line one line two."
    assert p.paper.authors == ("A. Smith", "B. Jones", "C. Wu")
    assert p.paper.categories == ("cs.CL", "cs.AI")
    assert p.paper.year == 2021


def test_beir_corpus(tmp_path: Path) -> None:
    f = tmp_path / "corpus.jsonl"
    f.write_text(json.dumps({"_id": "4983", "title": "T", "text": "Some abstract text.", "metadata": {}}) + "\n")
    (p,) = papers(f)
    assert p.paper.paper_id == "4983" and p.paper.abstract == "Some abstract text."


def test_csv_with_header_and_bad_row(tmp_path: Path) -> None:
    f = tmp_path / "papers.csv"
    f.write_text('title,abstract,year\n"Good one","An abstract, with comma.",2020\n"No abstract",,2021\n')
    got = list(read_path(f))
    assert isinstance(got[0], Located) and got[0].paper.year == 2020
    assert isinstance(got[1], Rejection) and got[1].line == 3 and "abstract" in got[1].reason


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    good = json.dumps({"title": "A", "abstract": "B text."})
    f.write_text(good + "\n{not json\n" + json.dumps({"title": "C", "abstract": "D text."}) + "\n")
    items = list(read_path(f))
    assert [type(i).__name__ for i in items] == ["Located", "Rejection", "Located"]
    assert items[1].line == 2 and str(f) in str(items[1])


def test_missing_path_and_unknown_format(tmp_path: Path) -> None:
    (r,) = rejections(tmp_path / "nope.jsonl")
    assert "no such file" in r.reason
    b = tmp_path / "blob.bin"
    b.write_bytes(bytes(range(256)) * 10)
    (r,) = rejections(b)
    assert "unknown or binary" in r.reason


def test_title_hash_id_is_stable_across_whitespace_and_case() -> None:
    a = make_paper(title="Deep  Nets", abstract="x")
    b = make_paper(title="deep nets", abstract="y")
    assert a.paper_id == b.paper_id and a.paper_id.startswith("t:")


@pytest.mark.parametrize("raw,clean", [
    ("a\\\\b", "a b"), ("x &amp; y", "x & y"), ("tab\tand\nnewline", "tab and newline"), ("nul\x00byte", "nul byte"),
])
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_estimate_records_for_the_progress_bar(tmp_path: Path) -> None:
    from ingest.readers import estimate_records

    rows = [{"id": str(i), "title": f"Paper {i}", "abstract": "An abstract."} for i in range(7)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))  # no final newline
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows[:3]))
    (tmp_path / "c.csv").write_text("title,abstract\nA,x\nB,y\n")
    assert estimate_records([tmp_path]) == 7 + 3 + 2
    assert sum(isinstance(x, Located) for x in read_path(tmp_path)) == 12
    assert estimate_records([tmp_path, SAMPLE]) is None  # a Daily Papers page: no cheap count
    assert estimate_records([tmp_path / "missing.jsonl"]) == 0

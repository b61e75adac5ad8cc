"""Bad input: one test per case in tests/data/bad/ (plus generated and filesystem cases), each checking the
exact behaviour: the message names the file and the line (or record), every valid record is indexed, and
added + updated + unchanged + duplicates + rejected == records seen."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.collection import Collection
from ingest.embeddings import LocalEmbedding
from ingest.pipeline import IngestReport
from ingest.readers import Notice, read_path
from ingest.readers.base import source_prefix
from rag.cli import main
from tests.conftest import ROOT
from tests.shared_model import embedding_model

BAD = ROOT / "tests" / "data" / "bad"


def _make_cases_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_cases", BAD / "make_cases.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The byte-level odd cases, written by tests/data/bad/make_cases.py."""
    return _make_cases_module().build(tmp_path_factory.mktemp("bad_generated"))


@dataclass
class World:
    embed: LocalEmbedding
    root: Path
    n: int = 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> World:
    """One Chroma client and one embedding model for the module; each case gets its own collection."""
    root = tmp_path_factory.mktemp("bad_home")
    return World(embedding_model(cache_dir), root)


@dataclass
class Result:
    report: IngestReport
    seen: int
    titles: dict[str, str]  # paper_id -> title, as stored in Chroma
    rejected: list[str]  # "name:line: reason" with the directory part of the path removed
    warnings: list[str]  # the same for notices (records read anyway)


def ingest(world: World, *paths: Path) -> Result:
    world.n += 1
    name = f"case{world.n}"
    col = Collection(world.root, name, embed=world.embed)
    report = col.ingest(list(paths))
    seen = sum(1 for p in paths for it in read_path(p) if not isinstance(it, Notice))
    titles = {p["paper_id"]: p["title"] for p in col.list_papers()}
    assert col.health().ok, "Chroma and the lexical index disagree after an ingest"
    assert set(col.lexical.paper_ids()) == set(titles)
    assert report.papers_total == len(titles)
    # bare source ids are namespaced by their file's name ("g1" in bom.jsonl is "bom:g1"); the cases below
    # name them bare, so the namespace is dropped here (test_bare_ids_are_namespaced_by_file checks it)
    stems = {source_prefix(f) for p in paths for f in (p.rglob("*") if p.is_dir() else [p])}
    titles = {next((pid.removeprefix(s) for s in stems if pid.startswith(s)), pid): t for pid, t in titles.items()}
    assert report.records == seen, "counts do not add up to the records seen"
    rejected = []
    for r in report.rejected:
        assert r.path, "every rejection names its file"
        rejected.append(str(r).replace(str(r.path), Path(r.path).name, 1))
    warnings = [str(w).replace(str(w.path), Path(w.path).name, 1) for w in report.warnings]
    return Result(report, seen, titles, rejected, warnings)


def counts(r: Result) -> tuple[int, int, int, int, int]:
    rep = r.report
    return rep.added, rep.updated, rep.unchanged, rep.duplicates, len(rep.rejected)


# --- one test per case --------------------------------------------------------------------------

def test_empty_file(world: World) -> None:
    r = ingest(world, BAD / "empty.jsonl")
    assert counts(r) == (0, 0, 0, 0, 1) and r.rejected == ["empty.jsonl: empty file"]


def test_whitespace_only_file(world: World) -> None:
    r = ingest(world, BAD / "blank.jsonl")
    assert r.rejected == ["blank.jsonl: empty file (only whitespace)"] and not r.titles


def test_binary_file(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["binary.bin"])
    (msg,) = r.rejected
    assert msg.startswith("binary.bin: unknown or binary format (the file is not text); expected JSONL")
    assert counts(r) == (0, 0, 0, 0, 1)


def test_latin1_bytes_are_read_in_the_detected_encoding(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["invalid_utf8.jsonl"])
    assert r.rejected == [] and counts(r) == (3, 0, 0, 0, 0)
    assert r.warnings == ["invalid_utf8.jsonl: not UTF-8: read as cp1252 (detected by charset-normalizer)"]
    assert r.titles["g2"] == "Café ÿ"


def test_stray_byte_in_utf8_keeps_the_record(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["stray_byte.jsonl"])
    assert r.rejected == [] and counts(r) == (3, 0, 0, 0, 0)
    assert r.warnings == ["stray_byte.jsonl:2: invalid utf-8 byte(s) at byte 32 of the line replaced with U+FFFD"]
    assert r.titles["g2"] == "Zürich \ufffd paper"


def test_bare_ids_are_namespaced_by_file(world: World, tmp_path: Path) -> None:
    """Two files numbering their rows from 1 keep all their papers (issue 16); BEIR corpus ids stay bare."""
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.jsonl"
    a.write_text("id,title,abstract\n1,Alpha paper,About alpha.\n2,Beta paper,About beta.\n")
    b.write_text("id,title,abstract\n1,Gamma paper,About gamma.\n2,Delta paper,About delta.\n")
    c.write_text("".join(json.dumps({"id": str(i), "title": f"Other {i}", "abstract": "Else."}) + "\n" for i in (1, 2)))
    beir = tmp_path / "corpus.jsonl"
    beir.write_text(json.dumps({"_id": "4983", "title": "BEIR doc", "text": "Corpus text."}) + "\n")
    got = {it.paper.paper_id for p in (a, b, c, beir) for it in read_path(p) if hasattr(it, "paper")}
    assert got == {"a:1", "a:2", "b:1", "b:2", "c:1", "c:2", "4983"}
    r = ingest(world, a, b, c)
    assert counts(r) == (6, 0, 0, 0, 0) and r.report.papers_total == 6


def test_utf8_bom_is_ignored(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["bom.jsonl"], gen["bom.csv"])
    assert r.rejected == [] and counts(r) == (3, 0, 0, 0, 0)
    assert r.titles["g1"] == "Generated paper number 1 on sparse attention"
    assert "BOM header paper" in r.titles.values()
    assert not any("\ufeff" in t for t in r.titles.values())


def test_crlf_line_endings(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["crlf.jsonl"], gen["crlf.csv"])
    assert r.rejected == [] and counts(r) == (4, 0, 0, 0, 0)
    lines = {x.paper.title: (x.line, x.paper.abstract) for x in read_path(gen["crlf.csv"])}  # type: ignore[union-attr]
    assert lines == {"CRLF paper one": (2, "A quoted abstract spanning two lines."),
                     "CRLF paper two": (4, "Plain abstract.")}


def test_truncated_gzip_keeps_the_records_before_the_cut(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["truncated.jsonl.gz"])
    (msg,) = r.rejected
    n = len(r.titles)
    assert 50 < n < 200 and sorted(r.titles) == sorted(f"g{i}" for i in range(1, n + 1))
    assert msg.startswith(f"truncated.jsonl.gz:{n + 1}: truncated or corrupt gzip after line {n} (")
    assert counts(r) == (n, 0, 0, 0, 1)


def test_gzip_of_a_good_file(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["good.jsonl.gz"])
    assert sorted(r.titles) == ["g1", "g2"] and r.rejected == []


def test_malformed_line_in_the_middle(world: World) -> None:
    r = ingest(world, BAD / "malformed_middle.jsonl")
    assert r.rejected == ["malformed_middle.jsonl:3: malformed JSON (Unterminated string starting at column 52)"]
    assert sorted(r.titles) == ["m1", "m2", "m4", "m5"] and counts(r) == (4, 0, 0, 0, 1)


def test_jsonl_named_json_with_a_broken_first_line(world: World) -> None:
    r = ingest(world, BAD / "first_line_broken.json")
    assert r.rejected == ["first_line_broken.json:1: malformed JSON (Expecting value at column 56)"]
    assert sorted(r.titles) == ["j2", "j3"]


def test_json_of_the_wrong_shape(world: World) -> None:
    r = ingest(world, BAD / "wrong_shape.json")
    assert r.rejected == ["wrong_shape.json:1: JSON of the wrong shape (count, status, next_page): expected a list "
                          "of paper records with title and abstract, or an object holding one"]
    assert counts(r) == (0, 0, 0, 0, 1)


def test_json_array_rejections_name_line_and_record(world: World) -> None:
    r = ingest(world, BAD / "records.json")
    assert r.rejected == [
        "records.json:3: record 2: expected an object with title and abstract, got str",
        "records.json:4: record 3: expected an object with title and abstract, got NoneType",
        "records.json:5: record 4: missing abstract",
    ]
    assert sorted(r.titles.values()) == ["Diffusion models for audio", "Sparse mixture of experts at scale"]


def test_records_missing_title_or_abstract(world: World) -> None:
    r = ingest(world, BAD / "missing_fields.jsonl")
    assert r.rejected == ["missing_fields.jsonl:1: missing title", "missing_fields.jsonl:2: missing abstract",
                          "missing_fields.jsonl:3: missing title", "missing_fields.jsonl:4: missing abstract"]
    assert list(r.titles) == ["f5"] and counts(r) == (1, 0, 0, 0, 4)


def test_wrong_field_types(world: World) -> None:
    r = ingest(world, BAD / "wrong_types.jsonl")
    assert r.rejected == [
        "wrong_types.jsonl:2: field 'title' should be text, got list",
        "wrong_types.jsonl:3: field 'abstract' should be text, got dict",
        "wrong_types.jsonl:4: field 'authors' should be a list or text, got int",
        "wrong_types.jsonl:5: field 'title' should be text, got bool",
        "wrong_types.jsonl:6: field 'id' should be text, got list",
        "wrong_types.jsonl:7: expected an object with title and abstract, got list",
    ]
    assert sorted(r.titles) == ["12345", "t8"]  # a numeric id is kept, as text


def test_one_megabyte_abstract(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["huge_abstract.jsonl"])
    assert r.rejected == ["huge_abstract.jsonl:2: abstract is 999999 characters (limit 20000)"]
    assert sorted(r.titles) == ["g1", "g3"]


def test_ten_kilobyte_title(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["huge_title.jsonl"])
    assert r.rejected == ["huge_title.jsonl:1: title is 10000 characters (limit 1000)"]
    assert list(r.titles) == ["g2"]


def test_duplicate_ids_in_one_file(world: World) -> None:
    r = ingest(world, BAD / "duplicate_ids.jsonl")
    first = BAD / "duplicate_ids.jsonl"
    assert r.rejected == [f"duplicate_ids.jsonl:3: duplicate id duplicate_ids:d1 with different content (first seen at {first}:1); "
                          "kept the first"]
    assert counts(r) == (2, 0, 0, 1, 1)  # line 4 repeats line 2 exactly: a duplicate, not an error
    assert r.titles == {"d1": "Curriculum learning for reinforcement agents", "d2": "Quantization aware training"}


def test_csv_without_the_needed_columns(world: World) -> None:
    r = ingest(world, BAD / "no_columns.csv")
    assert r.rejected == ["no_columns.csv:1: CSV header ['author', 'year', 'venue'] has no title and abstract columns"]


def test_csv_with_bad_rows(world: World) -> None:
    r = ingest(world, BAD / "bad_rows.csv")
    assert r.rejected == ["bad_rows.csv:3: row has more fields than the header", "bad_rows.csv:4: missing abstract"]
    assert sorted(r.titles.values()) == ["Federated learning with differential privacy",
                                         "Neural radiance fields from few views"]


def test_latex_and_html_entities_are_normalised(world: World) -> None:
    r = ingest(world, BAD / "latex_html.jsonl")
    assert r.rejected == [] and r.titles == {"l1": "Bounds for $\\ell_1$ regularisation and sparsity"}
    (item,) = list(read_path(BAD / "latex_html.jsonl"))
    assert item.paper.abstract == ('We prove that $\\alpha < 1$ implies convergence & stability. Results hold for '  # type: ignore[union-attr]
                                   'R&D settings \u2014 see "Theorem 2".')


def test_non_english_text_and_emoji_each_get_their_own_id(world: World) -> None:
    r = ingest(world, BAD / "unicode.jsonl")
    assert r.rejected == [] and counts(r) == (6, 0, 0, 0, 0)  # once, all six shared one empty-title id
    assert set(r.titles.values()) == {"大型语言模型的检索增强", "多模态模型的对齐方法", "Apprentissage auto-supervisé pour la parole",
                                      "🚀🔥", "Café effects in Zürich", "نماذج اللغة العربية"}
    assert "Caf\u00e9 effects in Z\u00fcrich" in r.titles.values()  # NFC: e + U+0301 became é


def test_nul_bytes(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["nul_bytes.jsonl"])
    assert r.rejected == [] and r.titles == {"n1": "NUL inside", "n2": "Escaped NUL"}


def test_utf16_file(world: World, gen: dict[str, Path]) -> None:
    r = ingest(world, gen["utf16.jsonl"])
    assert r.rejected == [] and list(r.titles.values()) == ["UTF-16 paper"]
    assert r.warnings == ["utf16.jsonl: read as UTF-16-LE (byte-order mark)"]


def test_unknown_text_format(world: World) -> None:
    r = ingest(world, BAD / "notes.txt")
    (msg,) = r.rejected
    assert msg.startswith("notes.txt: unknown format; expected JSONL, JSON, CSV/TSV")


def test_directory_of_mixed_files(world: World) -> None:
    r = ingest(world, BAD / "mixed_dir")
    assert [m.split(";")[0] for m in r.rejected] == ["README.md: unknown format"]
    assert len(r.titles) == 4 and {"x1", "x2", "x4"} <= set(r.titles)  # JSONL, TSV, nested JSON; hidden skipped
    assert "Hidden file" not in r.titles.values() and counts(r) == (4, 0, 0, 0, 1)


def test_symlink_loop(world: World, tmp_path: Path) -> None:
    d = tmp_path / "loop"
    d.mkdir()
    (d / "p.jsonl").write_text(json.dumps({"id": "s1", "title": "Loops", "abstract": "Symlinks can loop."}) + "\n")
    (d / "again").symlink_to(d, target_is_directory=True)  # directory loop
    (d / "a.jsonl").symlink_to(d / "b.jsonl")  # file loop: a -> b -> a
    (d / "b.jsonl").symlink_to(d / "a.jsonl")
    r = ingest(world, d)
    assert sorted(r.rejected) == ["a.jsonl: broken symlink or symlink loop", "again: symlink loop: directory already "
                                  "visited", "b.jsonl: broken symlink or symlink loop"]
    assert list(r.titles) == ["s1"] and counts(r) == (1, 0, 0, 0, 3)


def test_path_that_does_not_exist(world: World, tmp_path: Path) -> None:
    r = ingest(world, tmp_path / "nope.jsonl")
    assert r.rejected == ["nope.jsonl: no such file or directory"] and counts(r) == (0, 0, 0, 0, 1)


def test_fifo_and_empty_directory(world: World, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)  # opening it would block: it must be refused, not read
    (tmp_path / "empty_dir").mkdir()
    r = ingest(world, fifo, tmp_path / "empty_dir")
    assert r.rejected == ["pipe.jsonl: not a regular file or directory (a device, FIFO or socket)",
                          "empty_dir: no files found in directory"]


def test_deeply_nested_json(world: World, tmp_path: Path) -> None:
    f = tmp_path / "deep.json"
    f.write_text("[" * 100_000 + "]" * 100_000)
    g = tmp_path / "deep.jsonl"
    g.write_text(json.dumps({"title": "Fine", "abstract": "A fine record."}) + "\n" + "[" * 100_000 + "\n")
    r = ingest(world, f, g)
    assert r.rejected == ["deep.json: malformed JSON (nested too deeply)", "deep.jsonl:2: malformed JSON (nested too deeply)"]
    assert list(r.titles.values()) == ["Fine"]


def test_everything_at_once_counts_add_up(world: World, gen: dict[str, Path]) -> None:
    paths = sorted(p for p in BAD.iterdir() if p.suffix != ".py") + sorted(gen.values())
    r = ingest(world, *paths)
    assert r.report.records == r.seen and r.report.added == r.report.papers_total
    assert r.report.updated == 0 and r.report.unchanged == 0
    again = Collection(world.root, f"case{world.n}", embed=world.embed).ingest(paths)
    assert (again.added, again.updated, again.unchanged) == (0, 0, r.report.added) and again.records == r.seen


# --- the command line: messages on stderr, a summary, exit status ----------------------------------

def test_cli_exit_status_and_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(BAD / "malformed_middle.jsonl"), str(BAD / "empty.jsonl"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert f"rejected: {BAD / 'malformed_middle.jsonl'}:3: malformed JSON" in err
    assert f"rejected: {BAD / 'empty.jsonl'}: empty file" in err
    assert out.startswith("added 4, updated 0, unchanged 0, duplicates 0, rejected 2; collection now 4 papers")
    # nothing could be ingested -> 1; a path that does not exist -> 1, even when others were fine
    assert main(["ingest", str(BAD / "empty.jsonl"), "--quiet"]) == 1
    capsys.readouterr()
    assert main(["ingest", str(BAD / "malformed_middle.jsonl"), str(tmp_path / "missing"), "--quiet", "--json"]) == 1
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert (d["added"], d["unchanged"], d["papers"]) == (0, 4, 4)
    assert d["rejected"] == [f"{BAD / 'malformed_middle.jsonl'}:3: malformed JSON (Unterminated string starting at "
                             f"column 52)", f"{tmp_path / 'missing'}: no such file or directory"]
    assert f"rejected: {tmp_path / 'missing'}: no such file or directory" in err

"""One paper from several sources is kept once (issue 16): by DOI, arXiv id, PMID or normalised title,
within an ingest and across ingests; a changed title on update is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.collection import Collection
from ingest.embeddings import BUNDLED_DIM
from ingest.pipeline import IngestReport
from tests.shared_model import embedding_model

BIB = """@article{smith_sparse_2021,
  title = {Sparse {Attention} for {Very} {Long} {Documents}},
  author = {Smith, Ann},
  journal = {Journal of Long Inputs},
  doi = {10.1234/jli.2021.7},
  year = {2021},
  abstract = {We make attention sparse so that documents of a million tokens fit (journal version).},
}
"""
ARXIV = {"id": "2101.00001v2", "title": "Sparse attention for very long documents",
         "abstract": "We make attention sparse so that documents of a million tokens fit.",
         "categories": "cs.CL", "update_date": "2021-01-05"}


class World:
    def __init__(self, root: Path, cache_dir: Path) -> None:
        self.root, self.embed, self.n = root, embedding_model(cache_dir), 0

    def collection(self) -> Collection:
        self.n += 1
        return Collection(self.root, f"dedup{self.n}", embed=self.embed)

    def ingest(self, col: Collection, *paths: Path) -> IngestReport:
        return col.ingest(list(paths))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> World:
    return World(tmp_path_factory.mktemp("dedup"), cache_dir)


def counts(r: IngestReport) -> tuple[int, int, int, int, int]:
    return r.added, r.updated, r.unchanged, r.duplicates, len(r.rejected)


def ids(col: Collection) -> set[str]:
    return {str(r.meta["paper_id"]) for r in col.store.iter_chunks()}


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    bib, jsonl = tmp_path / "refs.bib", tmp_path / "arxiv.jsonl"
    bib.write_text(BIB)
    jsonl.write_text(json.dumps(ARXIV) + "\n")
    return bib, jsonl


def test_bibtex_and_arxiv_jsonl_are_one_paper(world: World, files: tuple[Path, Path]) -> None:
    bib, jsonl = files
    col = world.collection()
    r = world.ingest(col, jsonl, bib)
    assert counts(r) == (1, 0, 0, 1, 0) and ids(col) == {"arxiv:2101.00001"}
    assert [str(w) for w in r.warnings] == [
        f"{bib}:1: same paper as arxiv:2101.00001 from {jsonl}:1 (the same title); kept that one, skipped this "
        "doi:10.1234/jli.2021.7"]
    again = world.ingest(col, jsonl, bib)
    assert counts(again) == (0, 0, 1, 1, 0) and ids(col) == {"arxiv:2101.00001"} and again.chunks_written == 0


def test_the_same_paper_in_a_later_ingest_is_found_in_the_collection(world: World, files: tuple[Path, Path]) -> None:
    bib, jsonl = files
    col = world.collection()
    assert counts(world.ingest(col, bib)) == (1, 0, 0, 0, 0)
    r = world.ingest(col, jsonl)
    assert counts(r) == (0, 0, 0, 1, 0) and ids(col) == {"doi:10.1234/jli.2021.7"}
    assert [w.message for w in r.warnings] == [
        "same paper as doi:10.1234/jli.2021.7 from the collection (doi:10.1234/jli.2021.7) (the same title); kept "
        "that one, skipped this arxiv:2101.00001"]
    assert counts(world.ingest(col, bib, jsonl)) == (0, 0, 1, 1, 0)


def test_same_doi_different_formats(world: World, tmp_path: Path) -> None:
    ris = tmp_path / "scopus.ris"
    ris.write_text("TY  - JOUR\nTI  - Gut microbes and immunotherapy response\nDO  - 10.1038/S41579-020-00460-0\n"
                   "AB  - The microbiota shapes responses.\nER  - \n")
    csv = tmp_path / "zotero.csv"
    csv.write_text('"Key","Title","Abstract Note","DOI"\n"K1","Gut microbiota and the response to cancer '
                   'immunotherapy","Another wording of the abstract.","https://doi.org/10.1038/s41579-020-00460-0"\n')
    col = world.collection()
    r = world.ingest(col, ris, csv)
    assert counts(r) == (1, 0, 0, 1, 0) and ids(col) == {"doi:10.1038/s41579-020-00460-0"}
    assert [str(w) for w in r.warnings] == [f"{csv}:2: same paper as doi:10.1038/s41579-020-00460-0 from {ris}:1 "
                                            "(the same id); kept that one"]


def test_different_papers_are_kept(world: World, tmp_path: Path) -> None:
    """A common short title, or one title with two different DOIs, is not one paper."""
    f = tmp_path / "p.jsonl"
    rows = [{"id": "1", "title": "Introduction", "abstract": "First issue's introduction."},
            {"id": "2", "title": "Introduction", "abstract": "Second issue's introduction."},
            {"doi": "10.1000/a", "title": "A survey of graph neural networks", "abstract": "Version one."},
            {"doi": "10.1000/b", "title": "A survey of graph neural networks", "abstract": "Another survey."}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    col = world.collection()
    r = world.ingest(col, f)
    assert counts(r) == (4, 0, 0, 0, 0) and ids(col) == {"p:1", "p:2", "doi:10.1000/a", "doi:10.1000/b"}


def test_update_that_changes_a_title_is_reported(world: World, tmp_path: Path) -> None:
    f = tmp_path / "papers.csv"
    f.write_text("id,title,abstract\n1,Old title of the first paper,An abstract.\n")
    col = world.collection()
    world.ingest(col, f)
    f.write_text("id,title,abstract\n1,An unrelated paper on proteins,Another abstract.\n")
    r = world.ingest(col, f)
    assert counts(r) == (0, 1, 0, 0, 0)
    assert [str(w) for w in r.warnings] == [f"{f}:2: updates papers:1, whose title changes from 'Old title of the "
                                            "first paper' to 'An unrelated paper on proteins'"]


def test_collections_from_before_namespaced_ids_get_no_second_copy(world: World, tmp_path: Path) -> None:
    from ingest.chunking import chunk_paper
    from ingest.records import make_paper

    col = world.collection()
    old = make_paper(title="A paper stored under its bare id", abstract="Stored long ago.", raw_id="7")
    nodes = chunk_paper(old)
    for n in nodes:
        n.embedding = [0.0] * BUNDLED_DIM
        n.embedding[0] = 1.0
    col.store.upsert(nodes)
    f = tmp_path / "papers.csv"
    f.write_text("id,title,abstract\n7,A paper stored under its bare id,Stored long ago.\n")
    r = world.ingest(col, f)
    assert counts(r) == (0, 0, 0, 1, 0) and ids(col) == {"7"}
    assert [w.message for w in r.warnings] == ["same paper as 7, stored before bare ids were namespaced by file "
                                               "name; kept that one, skipped this papers:7"]
    other = tmp_path / "other.csv"  # another file's row 7 (once, it overwrote the stored one)
    other.write_text("id,title,abstract\n7,An unrelated paper numbered seven,Something else.\n")
    assert counts(world.ingest(col, other)) == (1, 0, 0, 0, 0) and ids(col) == {"7", "other:7"}


def test_every_sample_format_into_one_collection(world: World) -> None:
    """The format samples share papers (Attention in Zotero BibTeX and Semantic Scholar, BioBERT in Semantic
    Scholar and MEDLINE, the OA study in OpenAlex and MEDLINE): each is kept once; re-ingest changes nothing."""
    data = Path(__file__).resolve().parent / "data" / "formats"
    col = world.collection()
    r = world.ingest(col, data)
    assert counts(r) == (18, 0, 0, 3, 10) and r.records == 31  # one bad record per sample
    dups = sorted(w.message.split(" (")[0] for w in r.warnings if w.message.startswith("same paper"))
    assert [d.split(" from ")[0] for d in dups] == ["same paper as arxiv:1706.03762", "same paper as doi:10.1093/"
                                                   "bioinformatics/btz682", "same paper as doi:10.7717/peerj.4375"]
    assert len(ids(col)) == 18
    again = world.ingest(col, data)
    assert counts(again) == (0, 0, 18, 3, 10) and again.chunks_written == 0

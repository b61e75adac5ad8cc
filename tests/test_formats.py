"""Reference-manager and literature-database exports (issue 16): exact papers, ids, years, links, and
file:line rejections for bad records, from the real-shaped samples in tests/data/formats/."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ingest.readers import Located, Notice, Rejection, detect_format, read_path
from tests.conftest import ROOT, SAMPLE, NetworkGuard

DATA = ROOT / "tests" / "data" / "formats"
BAD = ROOT / "tests" / "data" / "bad"


def read(name: str) -> tuple[list[tuple[object, ...]], list[str]]:
    """(line, id, title, year, url) per paper, and 'name:line: reason' per rejection."""
    path = DATA / name
    papers, rejected = [], []
    for it in read_path(path):
        if isinstance(it, Located):
            p = it.paper
            papers.append((it.line, p.paper_id, p.title, p.year, p.url))
        elif isinstance(it, Rejection):
            rejected.append(str(it).replace(str(path), name))
    return papers, rejected


def test_bibtex_zotero() -> None:
    papers, rejected = read("zotero.bib")
    assert papers == [
        (2, "arxiv:1706.03762", "Attention Is All You Need", 2017, "http://arxiv.org/abs/1706.03762"),
        (16, "doi:10.1234/jml.2021.0042", "Café Culture and the Naïve Bayes Classifier: a Study in Zürich", 2021,
         "https://journal.example.org/article/12/3"),
    ]
    assert rejected == ["zotero.bib:31: entry 'smith_no_abstract_2019': missing abstract"]
    (_, cafe) = [it.paper for it in read_path(DATA / "zotero.bib") if isinstance(it, Located)]
    assert cafe.authors == ("Jörg Müller", "María García")
    assert cafe.abstract == ("We revisit naïve Bayes with 95% confidence intervals — and find that simple models match "
                             "$\\alpha$-tuned baselines in Göteborg and Zürich.")
    assert cafe.extra == {"doi": "10.1234/jml.2021.0042"}


def test_bibtex_mendeley_with_a_malformed_entry() -> None:
    papers, rejected = read("mendeley.bib")
    assert papers == [
        (6, "arxiv:1810.04805", "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
         2018, "http://arxiv.org/abs/1810.04805"),
        (24, "mendeley:Lewis2020", "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks", 2020, None),
    ]
    assert rejected == ["mendeley.bib:19: malformed BibTeX entry ('@article{Broken2020,': unbalanced braces or quotes)"]


def test_bibtex_jabref_and_google_scholar() -> None:
    papers, rejected = read("jabref.bib")
    assert papers == [(3, "arxiv:1512.03385", "Deep Residual Learning for Image Recognition", 2016,
                       "https://arxiv.org/abs/1512.03385")]
    assert rejected == ["jabref.bib:14: entry 'kingma2014adam': missing abstract"]  # Scholar exports no abstract


def test_ris_scopus_and_endnote_tags() -> None:
    papers, rejected = read("scopus.ris")
    assert papers == [
        (1, "doi:10.1021/acs.jcim.2c00123", "Graph neural networks for molecule property prediction", 2022,
         "https://www.scopus.com/inward/record.uri?eid=2-s2.0-85123456789"),
        (21, "arxiv:2106.01234", "Contrastive pretraining for speech recognition", 2021,
         "https://arxiv.org/abs/2106.01234"),
        (37, "scopus:18", "Sparse mixture-of-experts language models", 2022, None),
    ]
    assert rejected == ["scopus.ris:31: missing title"]
    first = next(it.paper for it in read_path(DATA / "scopus.ris") if isinstance(it, Located))
    assert first.authors == ("John Smith", "Jane Doe") and first.abstract.endswith("simple message passing is competitive.")


def test_zotero_csv() -> None:
    papers, rejected = read("zotero.csv")
    assert papers == [
        (2, "zotero:ABCD1234", "Language Models are Few-Shot Learners", 2020,
         "https://proceedings.neurips.cc/paper/2020/hash/1457c0d6"),
        (4, "arxiv:2302.13971", "LLaMA: Open and Efficient Foundation Language Models", 2023,
         "http://arxiv.org/abs/2302.13971"),
        (6, "doi:10.1038/s41592-018-0001-x", "Protein folding with deep networks", 2018,
         "https://doi.org/10.1038/s41592-018-0001-x"),
    ]
    assert rejected == ["zotero.csv:5: missing abstract"]
    authors = [it.paper.authors for it in read_path(DATA / "zotero.csv") if isinstance(it, Located)]
    assert authors == [("Tom Brown", "Benjamin Mann"), ("Hugo Touvron",), ("Eva Keller",)]


def test_openalex_api_page_and_snapshot() -> None:
    papers, rejected = read("openalex_works.json")
    assert papers == [
        (3, "doi:10.7717/peerj.4375",
         "The state of OA: a large-scale analysis of the prevalence and impact of Open Access articles", 2018,
         "https://doi.org/10.7717/peerj.4375"),
        (17, "openalex:W3128889090", "A work without a DOI on sparse retrieval", 2021, "https://example.org/sparse-retrieval"),
    ]
    assert rejected == ["openalex_works.json:23: record 3: missing abstract"]
    first = next(it.paper for it in read_path(DATA / "openalex_works.json") if isinstance(it, Located))
    assert first.abstract.startswith("Despite growing interest in Open Access (OA) to scholarly literature, there is")
    assert first.extra == {"doi": "10.7717/peerj.4375", "pmid": "29456894", "openalex": "W2741809807"}
    papers, rejected = read("openalex_snapshot.jsonl")
    assert papers == [(1, "arxiv:2307.09288", "Llama 2: Open Foundation and Fine-Tuned Chat Models", 2023,
                       "https://arxiv.org/abs/2307.09288")]
    assert rejected == ["openalex_snapshot.jsonl:2: abstract_inverted_index should map words to lists of positions"]


def test_semantic_scholar() -> None:
    papers, rejected = read("s2_search.json")
    assert papers == [
        (2, "arxiv:1706.03762", "Attention is All you Need", 2017, "https://arxiv.org/abs/1706.03762"),
        (7, "doi:10.1093/bioinformatics/btz682",
         "BioBERT: a pre-trained biomedical language representation model for biomedical text mining", 2019,
         "https://doi.org/10.1093/bioinformatics/btz682"),
    ]
    assert rejected == ["s2_search.json:11: record 3: missing abstract"]
    bio = [it.paper for it in read_path(DATA / "s2_search.json") if isinstance(it, Located)][1]
    assert bio.extra == {"doi": "10.1093/bioinformatics/btz682", "pmid": "31501885",
                         "s2": "0b0a1c1d2e3f405162738495a6b7c8d9e0f1a2b3"}


def test_pubmed_medline_text() -> None:
    papers, rejected = read("pubmed.nbib")
    assert papers == [
        (1, "doi:10.1093/bioinformatics/btz682",
         "BioBERT: a pre-trained biomedical language representation model for biomedical text mining.", 2020,
         "https://doi.org/10.1093/bioinformatics/btz682"),
        (26, "doi:10.7717/peerj.4375", "The state of OA: a large-scale analysis of the prevalence and impact of "
         "Open Access articles.", 2018, "https://doi.org/10.7717/peerj.4375"),
        (42, "pmid:22222222", "Café-associated outbreaks of salmonellosis in Zürich.", 1999,
         "https://pubmed.ncbi.nlm.nih.gov/22222222/"),
    ]
    assert rejected == ["pubmed.nbib:37: PMID 11111111: missing abstract"]
    first = next(it.paper for it in read_path(DATA / "pubmed.nbib") if isinstance(it, Located))
    assert first.authors == ("Jinhyuk Lee", "Wonjin Yoon") and first.date == "2020-02-15"
    assert first.extra == {"doi": "10.1093/bioinformatics/btz682", "pmid": "31501885"}


def test_pubmed_xml() -> None:
    papers, rejected = read("pubmed.xml")
    assert papers == [
        (4, "doi:10.1038/s41579-020-00460-0", "Gut microbiota composition and the response to cancer immunotherapy.",
         2021, "https://doi.org/10.1038/s41579-020-00460-0"),
        (49, "pmid:35000002", "Sleep and memory consolidation in adolescents.", 2022,
         "https://pubmed.ncbi.nlm.nih.gov/35000002/"),
    ]
    assert rejected == ["pubmed.xml:40: PMID 35000001: missing abstract"]
    first = next(it.paper for it in read_path(DATA / "pubmed.xml") if isinstance(it, Located))
    assert first.abstract == ("BACKGROUND: The gut microbiota shapes responses to immune checkpoint inhibitors & "
                              "chemotherapy. CONCLUSIONS: Modulating the microbiota may improve outcomes (p < 0.05).")
    assert first.authors == ("Laurence Zitvogel", "Microbiome Consortium")
    assert first.extra == {"doi": "10.1038/s41579-020-00460-0", "pmid": "33301246"}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article><ArticleTitle>&lol9;</ArticleTitle>
<Abstract><AbstractText>&lol9;</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>2</PMID><Article><ArticleTitle>&xxe;</ArticleTitle>
<Abstract><AbstractText>x</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>
"""


@pytest.mark.parametrize("doc,line", [(BILLION_LAUGHS, 3), (EXTERNAL_ENTITY, 2)], ids=["billion-laughs", "external-entity"])
def test_xml_entities_are_refused(tmp_path: Path, doc: str, line: int) -> None:
    f = tmp_path / "evil.xml"
    f.write_text(doc)
    assert detect_format(f) == "pubmed_xml"
    (r,) = list(read_path(f))
    assert isinstance(r, Rejection) and r.line == line
    assert r.reason == "the document declares entities (refused: entity expansion is not allowed)"


def test_xml_error_keeps_the_articles_before_it(tmp_path: Path) -> None:
    text = (DATA / "pubmed.xml").read_text()
    f = tmp_path / "cut.xml.gz"
    f.write_bytes(gzip.compress(text[: text.index("<PubmedArticle>", text.index("35000001"))].encode() + b"<Pub"))
    items = list(read_path(f))
    assert [type(i).__name__ for i in items] == ["Located", "Rejection", "Rejection"]
    assert items[-1].reason.startswith("malformed XML (")  # type: ignore[union-attr]


SAMPLES = {"zotero.bib": "bibtex", "mendeley.bib": "bibtex", "jabref.bib": "bibtex", "scopus.ris": "ris",
           "zotero.csv": "csv", "openalex_works.json": "json", "openalex_snapshot.jsonl": "jsonl",
           "s2_search.json": "json", "pubmed.nbib": "medline", "pubmed.xml": "pubmed_xml"}


def test_detector_names_every_sample_and_refuses_the_rest(tmp_path: Path) -> None:
    assert {n: detect_format(DATA / n) for n in SAMPLES} == SAMPLES
    assert sorted(p.name for p in DATA.iterdir()) == sorted(SAMPLES)
    assert detect_format(SAMPLE / "daily_papers_sep3.txt") == "daily_papers"
    unknown = {"notes.txt": (BAD / "notes.txt").read_text(), "page.html": "<html><body><p>Hello</p></body></html>",
               "other.xml": '<?xml version="1.0"?><rss><channel><title>x</title></channel></rss>',
               "latex.tex": "\\documentclass{article}\n\\begin{document}\nHello\n\\end{document}\n",
               "code.py": "import os\n\nprint(os.getcwd())\n" * 20}
    for name, text in unknown.items():
        f = tmp_path / name
        f.write_text(text)
        assert detect_format(f) is None, name
        (r,) = list(read_path(f))
        assert isinstance(r, Rejection) and r.reason.startswith("unknown format; expected JSONL"), name


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16", "utf-16-le"])
def test_bibtex_in_other_encodings(tmp_path: Path, encoding: str) -> None:
    text = (DATA / "zotero.bib").read_text().replace("Caf\\'{e} {Culture}", "Café {Culture}")
    f = tmp_path / "refs.bib"
    f.write_bytes(text.encode(encoding))
    papers = [it.paper for it in read_path(f) if isinstance(it, Located)]
    notices = [it.message for it in read_path(f) if isinstance(it, Notice)]
    assert [p.title for p in papers] == ["Attention Is All You Need",
                                         "Café Culture and the Naïve Bayes Classifier: a Study in Zürich"]
    assert len(notices) == 1 and ("cp1252" in notices[0] or "UTF-16" in notices[0])


def test_medline_record_across_a_late_encoding_switch(tmp_path: Path) -> None:
    """The 'not UTF-8 from line N' notice met inside a MEDLINE record neither ends the record nor loses a line."""
    records = [f"PMID- {i}\nTI  - Paper number {i}\nAB  - Abstract of paper {i}, long enough to be kept.\n"
               for i in range(1, 1001)]  # > 64 KB of ASCII before the first cp1252 byte
    records[899] = records[899] + "      It ends in a café.\n"
    f = tmp_path / "late.nbib"
    f.write_bytes("\n".join(records).encode("cp1252"))
    items = list(read_path(f))
    assert not [it for it in items if isinstance(it, Rejection)]
    assert [str(it) for it in items if isinstance(it, Notice)] == [
        f"{f}: not UTF-8 from line 3600: read as cp1252 (detected by charset-normalizer)"]
    papers = [it.paper for it in items if isinstance(it, Located)]
    assert len(papers) == 1000 and papers[899].abstract.endswith("long enough to be kept. It ends in a café.")


def test_no_reader_needs_the_network(network_guard: NetworkGuard) -> None:
    """PubMed XML names its DTD by URL: it must never be fetched (nor anything else)."""
    items = [it for name in SAMPLES for it in read_path(DATA / name)]
    assert sum(isinstance(it, Located) for it in items) == 21
    assert network_guard.outside() == [] and network_guard.attempts == []


def test_record_estimates_for_the_progress_bar() -> None:
    from ingest.readers import estimate_records

    got = {n: estimate_records([DATA / n]) for n in ("zotero.bib", "mendeley.bib", "jabref.bib", "scopus.ris",
                                                      "pubmed.nbib", "pubmed.xml", "zotero.csv")}
    # jabref.bib counts its @Comment block too; zotero.csv counts the physical lines of a multi-line field
    assert got == {"zotero.bib": 3, "mendeley.bib": 3, "jabref.bib": 3, "scopus.ris": 4, "pubmed.nbib": 4,
                   "pubmed.xml": 3, "zotero.csv": 5}
    assert estimate_records([DATA / "openalex_works.json"]) is None  # one JSON document: no cheap count

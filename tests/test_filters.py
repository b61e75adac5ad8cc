"""Filters are applied inside both retrievers: no mode ever returns a paper outside them."""

from __future__ import annotations

import json

import pytest

from ingest.filters import Filters, where_of_metadata_filters
from rag.engine import Paperchat

TOPICS = ["graph neural networks for molecules", "speech synthesis with vocoders", "image segmentation models",
          "language model reasoning benchmarks", "reinforcement learning for robots"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Paperchat:
    rows = []
    for i in range(40):
        topic = TOPICS[i % len(TOPICS)]
        rows.append({"id": f"2{i % 4}01.{10000 + i}", "title": f"Study {i} of {topic}",
                     "abstract": f"We study {topic}. Variant {i} improves results on standard data.",
                     "categories": ["cs.LG", "cs.CL"] if i % 3 == 0 else (["cs.CV"] if i % 3 == 1 else ["stat.ML"]),
                     "update_date": f"{2020 + i % 4}-05-01"})
    f = tmp_path_factory.mktemp("filt") / "papers.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pc = Paperchat(home=tmp_path_factory.mktemp("filt_home"))
    assert pc.ingest([f]).added == 40
    return pc


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("query", TOPICS)
def test_year_and_category_filters(engine: Paperchat, mode: str, query: str) -> None:
    got = engine.retrieve(query, k=40, filters=Filters(year_from=2021, year_to=2022), mode=mode)
    assert got and all(s.year in (2021, 2022) for s in got)
    got = engine.retrieve(query, k=40, filters=Filters(categories=("cs.CV",)), mode=mode)
    assert got and all("cs.CV" in s.categories.split() for s in got)
    got = engine.retrieve(query, k=40, filters=Filters(categories=("cs.CV", "stat.ML"), year_from=2023), mode=mode)
    assert all(s.year == 2023 and set(s.categories.split()) & {"cs.CV", "stat.ML"} for s in got)


def test_paper_id_filter_restricts_answers(engine: Paperchat) -> None:
    ids = ("arxiv:2001.10000", "arxiv:2101.10001")
    ans = engine.ask("speech synthesis with vocoders", filters=Filters(paper_ids=ids))
    assert {s.paper_id for s in ans.sources} <= set(ids)
    assert {c.paper_id for c in ans.citations} <= set(ids)


def test_cli_filter_flags(engine: Paperchat, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    home = str(engine.settings.home)
    assert main(["ask", "image segmentation models", "--json", "--home", home, "--year-from", "2022",
                 "--category", "cs.CV", "--k", "10"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert all(s["year"] >= 2022 for s in d["sources"])


@pytest.mark.parametrize("f", [Filters(year_from=2022), Filters(year_to=2021), Filters(categories=("cs.LG",)),
                               Filters(categories=("cs.CL", "cs.CV"), year_from=2022),
                               Filters(paper_ids=("arxiv:2001.10000", "arxiv:2101.10001"))])
def test_both_filter_translations_select_the_same_chunks(engine: Paperchat, f: Filters) -> None:
    col = engine.store.collection
    mf = f.to_metadata_filters()
    assert mf is not None
    direct = sorted(col.get(where=f.where())["ids"])
    via_llama = sorted(col.get(where=where_of_metadata_filters(mf))["ids"])
    assert direct == via_llama and direct

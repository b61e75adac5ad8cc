"""`paperchat eval qa` end to end on a few seed questions (extractive backend, throwaway collection),
plus the dataset loaders, settings overrides, `eval compare` and the LLM judge with a fake client."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from eval.datasets_loaders import (PUBMEDQA, SEED_QA, QAItem, load_beir_claims, load_dataset, load_pubmedqa,
                                   load_qa_jsonl, resolve_gold_titles)
from eval.faithfulness import LLMJudge, make_judge, openai_complete
from eval.qa import parse_config
from rag.settings import Settings

SAMPLE_FILE = Path(__file__).resolve().parent.parent / "data" / "sample" / "daily_papers_sep3.txt"


def _seed_subset(tmp_path: Path) -> Path:
    """Two single-paper questions, one multi-paper question and one out-of-corpus question."""
    rows = [json.loads(line) for line in SEED_QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    pick = rows[:2] + [next(r for r in rows if r["kind"] == "multi"), next(r for r in rows if r["kind"] == "out_of_corpus")]
    path = tmp_path / "subset.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pick), encoding="utf-8")
    return path


def _small_corpus(tmp_path: Path, dataset: Path, others: int = 8) -> Path:
    """The gold papers of the dataset plus a few others from the sample, as JSONL (keeps the test fast)."""
    from ingest.readers.daily_papers import read_daily_papers

    gold = {t for line in dataset.read_text().splitlines() for t in json.loads(line)["gold_titles"]}
    papers = [it.paper for it in read_daily_papers(SAMPLE_FILE) if hasattr(it, "paper")]
    keep = [p for p in papers if p.title in gold] + [p for p in papers if p.title not in gold][:others]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in keep))
    return path


def test_eval_qa_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str], cache_dir: Path) -> None:
    from eval.cli import main

    out = tmp_path / "run"
    dataset = _seed_subset(tmp_path)
    corpus = _small_corpus(tmp_path, dataset)
    assert main(["qa", "--dataset", str(dataset), "--corpus", str(corpus), "--out", str(out), "--quiet",
                 "--config", "top_k=4"]) == 0
    printed = capsys.readouterr().out
    assert "hit@1" in printed and "wrote" in printed

    for name in ("report.json", "report.md", "rows.jsonl", "metrics.png", "latency.png", "dense.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["questions"] == 4 and len(report["dataset"]["sha256"]) == 64
    assert report["dataset"]["unresolved_gold_titles"] == []
    assert report["config"]["top_k"] == 4 and report["backend"] == "extractive"
    assert report["judge"]["llm"] is None
    assert report["versions"]["chromadb"] and report["versions"]["python"]
    assert report["index"]["mode"] == "throwaway collection" and report["index"]["papers"] == 13
    m = report["metrics"]
    assert set(m["by_kind"]) == {"single", "multi", "out_of_corpus"}
    assert m["answerable"]["n"] == 3 and m["all"]["n_out_of_corpus"] == 1
    for key in ("hit@1", "hit@10", "recall@k", "mrr", "citation_recall", "key_fact_hit", "token_f1",
                "faithfulness_lexical"):
        assert 0.0 <= m["answerable"][key] <= 1.0, key
    assert m["latency_ms"]["total"]["p50"] > 0
    assert m["best_dense"]["answerable"]["n"] == 3 and m["best_dense"]["out_of_corpus"]["n"] == 1

    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["single", "single", "multi", "out_of_corpus"]
    grok = rows[0]
    assert grok["question"].startswith("Which paper explains why grokking")
    assert grok["metrics"]["hit@1"] == 1.0 and grok["abstained"] is False and grok["cited_ids"]
    assert grok["metrics"]["faithfulness_lexical"] == 1.0  # the extractive answerer copies sentences
    assert len(rows[2]["gold_ids"]) >= 2
    ooc = rows[3]
    assert ooc["gold_ids"] == [] and ooc["metrics"]["hit@1"] is None and ooc["metrics"]["citation_precision"] is None
    md = (out / "report.md").read_text()
    assert "| recall@4 |" in md and "out_of_corpus" in md
    # the gate section reproduces the run's own abstentions at the default threshold, and cites the calibration
    gate = m["gate"]
    default = next(s for s in gate["threshold_sweep"] if abs(s["threshold"] - gate["min_evidence"]) < 1e-9)
    assert all("gate_evidence" in r for r in rows)
    assert default["correct_abstention"] == float(rows[3]["abstained"])
    assert default["false_abstention"] == sum(r["abstained"] for r in rows[:3]) / 3
    assert "## Relevance gate" in md and "Calibration on the relevance dev set" in md and "| **default** |" in md

    # the run used a throwaway home and the shared embedding cache: the user's home stays empty
    assert not (Path(os.environ["PAPERCHAT_HOME"]) / "chroma").exists()
    assert (cache_dir / "embeddings.sqlite").exists()

    # compare a run with itself: every delta is zero
    assert main(["compare", str(out), str(out / "report.json"), "--changed"]) == 0
    printed = capsys.readouterr().out
    assert "A: " in printed and "better" not in printed and "worse" not in printed
    assert main(["compare", str(out), str(out), "--json"]) == 0
    deltas = json.loads(capsys.readouterr().out)
    assert deltas and all(d["delta"] == 0 for d in deltas)


def test_compare_marks_direction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eval.cli import main

    a = {"dataset": {"name": "x", "sha256": "1"}, "metrics": {"answerable": {"hit@1": 0.5, "hit@1_n": 4},
                                                               "latency_ms": {"total": {"p50": 100.0}}}}
    b = {"dataset": {"name": "x", "sha256": "1"}, "metrics": {"answerable": {"hit@1": 0.75, "hit@1_n": 4},
                                                               "latency_ms": {"total": {"p50": 150.0}}}}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    hit = next(line for line in lines if line.startswith("answerable.hit@1 "))
    lat = next(line for line in lines if line.startswith("latency_ms.total.p50"))
    assert "+0.250" in hit and hit.endswith("better")
    assert lat.endswith("worse")
    assert not any(line.startswith("answerable.hit@1_n") for line in lines)
    with pytest.raises(FileNotFoundError):
        main(["compare", str(tmp_path), str(tmp_path / "b.json")])


def test_parse_config() -> None:
    assert parse_config(["top_k=8", "llm-model=qwen", '{"fusion": "score"}', "llm_base_url=none"]) == {
        "top_k": "8", "llm_model": "qwen", "fusion": "score", "llm_base_url": None}
    with pytest.raises(ValueError):
        parse_config(["not-a-setting"])
    with pytest.raises(ValueError):
        Settings(**parse_config(["no_such_field=1"]))  # typos are errors (extra="forbid")


def test_seed_loader_and_title_resolution(tmp_path: Path) -> None:
    ds = load_qa_jsonl(SEED_QA)
    assert len(ds.items) >= 40 and {it.kind for it in ds.items} == {"single", "multi", "out_of_corpus"}
    assert ds.corpus_paths and ds.corpus_paths[0].name == "sample"
    items = [QAItem("a", "q?", gold_titles=["Deep Networks Always Grok and Here is Why"]),
             QAItem("b", "q?", gold_titles=["deep networks always grok, and here is why!"]),  # loose match
             QAItem("c", "q?", gold_ids=["x1"], gold_titles=["Missing Paper"])]
    missing = resolve_gold_titles(items, {"t:1": "Deep Networks Always Grok and Here is Why", "t:2": "Other"})
    assert items[0].gold_ids == ["t:1"] and items[1].gold_ids == ["t:1"]
    assert items[2].gold_ids == ["x1"] and missing == ["Missing Paper"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "kind": "weird"}\n')
    with pytest.raises(ValueError, match="kind"):
        load_qa_jsonl(bad)


@pytest.mark.skipif(not PUBMEDQA.exists(), reason="shared PubMedQA data not present")
def test_pubmedqa_loader() -> None:
    ds = load_dataset("pubmedqa")
    assert len(ds.items) == 500 and len(ds.corpus_records) == 500 and not ds.corpus_paths
    it, rec = ds.items[0], ds.corpus_records[0]
    assert it.gold_ids == [f"pmid:{it.qid}"] and rec["id"] == f"pubmed:{it.qid}"  # the reader maps pubmed: to pmid:
    assert rec["title"] == f"PubMed {it.qid}" and len(rec["abstract"]) > 200
    assert it.answer and it.extra["final_decision"] in {"yes", "no", "maybe"}
    assert it.question.endswith("?")
    first = load_pubmedqa(title="first-sentence").corpus_records[0]["title"]
    assert first != rec["title"] and rec["abstract"].startswith(first)


def test_beir_claims_loader(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n1\t100\t1\n1\t2101.00001\t1\n3\t7\t0\n")
    with gzip.open(tmp_path / "queries.jsonl.gz", "wt") as fh:
        for qid, text in (("1", "Claim one."), ("2", "No qrels."), ("3", "Only zero relevance.")):
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (tmp_path / "corpus.jsonl").write_text('{"_id": "100", "title": "T", "text": "A"}\n')
    ds = load_beir_claims(tmp_path)
    assert ds.retrieval_only and [it.qid for it in ds.items] == ["1"]
    assert ds.items[0].gold_ids == ["100", "arxiv:2101.00001"]  # the ids the ingest pipeline assigns
    assert ds.corpus_paths == [tmp_path / "corpus.jsonl"]


class _FakeChat:
    """Stands in for openai.OpenAI: says 'yes' when the claim mentions grokking."""

    def __init__(self) -> None:
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))
        self.prompts: list[str] = []

    def create(self, **kw: object) -> object:
        prompt = kw["messages"][0]["content"]  # type: ignore[index]
        self.prompts.append(prompt)
        if "boom" in prompt:
            raise RuntimeError("server down")
        reply = "Yes." if "Claim: Grokking" in prompt else "No"
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=reply))])


def test_llm_judge_with_fake_client() -> None:
    fake = _FakeChat()
    judge = LLMJudge(openai_complete(fake, "m"), "fake")
    texts = {1: "Grokking is delayed generalization.", 2: "Other."}
    assert judge.faithfulness("Grokking is delayed [1]. Cats fly [2]. Uncited claim here.", texts) == pytest.approx(1 / 3)
    assert len(fake.prompts) == 2  # the uncited sentence is unsupported without asking
    assert "[1] Grokking is delayed generalization." in fake.prompts[0]
    assert judge.faithfulness("anything", texts, abstained=True) is None
    assert judge.faithfulness("boom [1].", texts) is None and judge.errors == 1  # failures are not verdicts


def test_make_judge_only_for_llm_backends() -> None:
    assert make_judge(Settings(llm="extractive")) is None
    assert make_judge(Settings(llm="gguf")) is None  # no server known
    judge = make_judge(Settings(llm="openai", llm_base_url="http://user:pw@127.0.0.1:9/v1", llm_model="tiny"))
    assert judge is not None and judge.name == "openai:tiny@http://127.0.0.1:9/v1"  # no credentials in reports


def test_make_judge_reuses_the_answerers_complete() -> None:
    calls: list[tuple[object, int]] = []

    class Answerer:  # duck-typed like OpenAIAnswerer / GGUFAnswerer
        name, model = "gguf", "smollm2"

        def base_url(self) -> str:
            return "http://127.0.0.1:8/v1"

        def complete(self, messages: object, max_tokens: int = 128) -> str:
            calls.append((messages, max_tokens))
            return "yes"

    judge = make_judge(Settings(llm="gguf"), Answerer())
    assert judge is not None and judge.name == "gguf:smollm2@http://127.0.0.1:8/v1"
    assert judge.faithfulness("Grokking is delayed [1].", {1: "Grokking is delayed."}) == 1.0
    assert calls and calls[0][1] == 4


def test_gate_distribution_sweeps_the_evidence_threshold() -> None:
    from eval.qa import _gate_distribution

    rows = [{"kind": "single", "gate_evidence": 0.70, "gate_standout": False},
            {"kind": "single", "gate_evidence": 0.50, "gate_standout": False},
            {"kind": "multi", "gate_evidence": 0.0, "gate_standout": True},  # passes by standing out, at any threshold
            {"kind": "out_of_corpus", "gate_evidence": 0.55, "gate_standout": False},
            {"kind": "single"}]  # abstained before the gate ran (e.g. an empty collection): not counted
    g = _gate_distribution(rows)
    assert g["answerable"]["n"] == 3 and g["answerable"]["standout"] == 1 and g["out_of_corpus"]["n"] == 1
    at = {s["threshold"]: s for s in g["threshold_sweep"]}
    assert at[0.45] == {"threshold": 0.45, "false_abstention": 0.0, "correct_abstention": 0.0}
    assert at[0.59]["false_abstention"] == round(1 / 3, 4) and at[0.59]["correct_abstention"] == 1.0
    assert at[0.71]["false_abstention"] == round(2 / 3, 4)

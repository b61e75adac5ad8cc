"""Chat keeps answering while an ingest runs in the same process: 4 chat threads during `pc.ingest()`.

Readers never take the writer's lock; before the Collection, every question waited for the whole ingest."""

from __future__ import annotations

from pathlib import Path

from eval.chat_during_ingest import chat_while, Phase
from ingest.collection import Collection
from rag.engine import Paperchat
from tests.conftest import SAMPLE
from tests.shared_model import embedding_model
from tests.test_durability import corpus, write_jsonl


def test_four_chats_answer_during_an_ingest(tmp_path: Path, cache_dir: Path) -> None:
    home = tmp_path / "home"
    pc = Paperchat.over(Collection(home, embed=embedding_model(cache_dir)), home=home)
    pc.ingest([SAMPLE])
    before = pc.count_papers()
    records = write_jsonl(tmp_path / "new.jsonl", corpus(150, seed=3))
    ingesting, phase = [True], Phase("during ingest")
    import threading

    def ingest() -> None:
        try:
            pc.ingest([records])
        finally:
            ingesting[0] = False

    writer = threading.Thread(target=ingest)
    writer.start()
    answered_while_writing = []

    def running() -> bool:
        if ingesting[0]:
            answered_while_writing.append(len(phase.latencies_ms))
        return ingesting[0]

    chat_while(pc, 4, running, phase)
    writer.join()
    assert phase.errors == []
    assert max(answered_while_writing) >= 4, "chats did not complete while the ingest was running"
    assert pc.count_papers() == before + 150  # and the ingest's papers are searchable once it is done
    assert pc.retrieve("study 149", k=5, mode="bm25")

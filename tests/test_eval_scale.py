"""eval.scale's kill stage feeds records that ingest must store as new papers (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

from eval.scale import kill_records
from ingest.dedup import title_hash


def test_kill_records_are_new_to_the_collection_and_to_each_other(tmp_path: Path) -> None:
    src, dst = tmp_path / "slice.jsonl", tmp_path / "kill-records.jsonl"
    rows = [{"id": "2503.11731", "title": "Impossible Videos", "abstract": "a"},  # too short for a title hash
            {"id": "2503.00001", "title": "Vision as LoRA", "abstract": "b"},
            {"id": "2503.00002", "title": "Industrial-Grade Sensor Simulation via Gaussian Splatting", "abstract": "c"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert kill_records(src, dst) == 3
    out = [json.loads(line) for line in dst.open()]
    hashes = [title_hash(r["title"]) for r in out]
    # every record is matched by nothing stored: a new id and a distinctive title of its own
    assert None not in hashes and len(set(hashes)) == 3
    assert not {title_hash(r["title"]) for r in rows} & set(hashes)
    assert not {r["id"] for r in rows} & {r["id"] for r in out}
    assert [r["abstract"] for r in out] == ["a", "b", "c"]

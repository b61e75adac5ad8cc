"""Read a BEIR folder: corpus.jsonl[.gz], queries.jsonl[.gz], qrels/<split>.tsv."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path


def _open(path: Path):  # type: ignore[no-untyped-def]
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def find(folder: Path, stem: str) -> Path:
    """`stem` or `stem.gz` inside folder."""
    for p in (folder / stem, folder / f"{stem}.gz"):
        if p.exists():
            return p
    raise FileNotFoundError(f"{folder}: no {stem} or {stem}.gz")


def load_qrels(folder: Path, split: str) -> dict[str, dict[str, int]]:
    """query id -> {corpus id: relevance} for a split."""
    out: dict[str, dict[str, int]] = {}
    path = folder / "qrels" / f"{split}.tsv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no qrels for split '{split}'")
    with open(path, encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t")
        for row in rows:
            if not row or row[0] == "query-id":
                continue
            out.setdefault(row[0], {})[row[1]] = int(row[2])
    return out


def load_queries(folder: Path, ids: set[str] | None = None) -> dict[str, str]:
    """query id -> text (only ids in `ids` when given)."""
    out = {}
    with _open(find(folder, "queries.jsonl")) as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                if ids is None or str(q["_id"]) in ids:
                    out[str(q["_id"])] = q["text"]
    return out

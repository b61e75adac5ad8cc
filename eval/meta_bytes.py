"""Bytes of metadata stored per chunk: what llama-index's node_to_metadata_dict wrote (with its `_node_content`
copy of the node) against the node's own metadata, which is what ingest/store.py stores now.

    python -m eval.meta_bytes data/sample ../shared/data/arxiv-10k.jsonl.gz   # second path: first 2,000 records
"""

from __future__ import annotations

import itertools
import json
import sys

from llama_index.core.vector_stores.utils import node_to_metadata_dict

from ingest.chunking import chunk_paper
from ingest.readers import Located, read_path


def measure(path: str, limit: int | None) -> str:
    before = after = text = chunks = 0
    items = (it for it in read_path(path) if isinstance(it, Located))
    for it in itertools.islice(items, limit):
        for node in chunk_paper(it.paper):
            full = node_to_metadata_dict(node, remove_text=True, flat_metadata=True)
            before += len(json.dumps(full).encode())
            after += len(json.dumps(dict(node.metadata)).encode())
            text += len(node.text.encode())
            chunks += 1
    return (f"{path}: {chunks} chunks; metadata bytes/chunk before {before / chunks:.0f}, "
            f"after {after / chunks:.0f}; chunk text {text / chunks:.0f}")


if __name__ == "__main__":
    print(measure(sys.argv[1], None))
    if len(sys.argv) > 2:
        print(measure(sys.argv[2], 2000))

"""One paper, whatever file it came from: match records by DOI, arXiv id, PMID, OpenAlex/S2 id or normalised
title, within an ingest and against what the collection already holds.

The first record of a paper is kept; a later one from another source counts as a duplicate, with a notice
saying which record was kept and why. An update that changes a stored paper's title gets a notice too (two
unrelated files that share bare ids would otherwise overwrite each other silently).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pathlib import Path

from ingest.readers.base import Located, Notice, source_prefix
from ingest.records import ID_KINDS, Paper, title_key

MIN_TITLE_CHARS = 24  # shorter titles ("Introduction", "Editorial") are too common to mean the same paper
MIN_TITLE_WORDS = 3
ID_FIELD = "id_{}"  # chunk metadata field of each known id kind
TITLE_FIELD = "title_key"


def title_hash(title: str) -> str | None:
    """A hash of the normalised title when it is distinctive enough to identify a paper, else None."""
    key = title_key(title)
    if len(key) < MIN_TITLE_CHARS or len(key.split()) < MIN_TITLE_WORDS:
        return None
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def dedup_metadata(paper: Paper) -> dict[str, str]:
    """What a chunk stores so later ingests can find this paper by id or title."""
    meta = {ID_FIELD.format(k): v for k, v in paper.extra.items() if k in ID_KINDS}
    th = title_hash(paper.title)
    if th:
        meta[TITLE_FIELD] = th
    return meta


def keys_of(ids: dict[str, str], title_h: str | None) -> list[tuple[str, str]]:
    """(kind, value) pairs a paper can be matched by."""
    out = [(k, v) for k, v in ids.items() if k in ID_KINDS]
    if title_h:
        out.append(("title", title_h))
    return out


def conflicting(a: dict[str, str], b: dict[str, str]) -> bool:
    """True when two records carry different ids of one kind: different papers, even with one title.

    A DOI pair where one is arXiv's (10.48550/...) is no conflict: the preprint and the journal version.
    """
    for kind in ID_KINDS:
        if kind in a and kind in b and a[kind] != b[kind]:
            if kind == "doi" and (a[kind].startswith("10.48550/") or b[kind].startswith("10.48550/")):
                continue
            return True
    return False


@dataclass
class _Known:
    paper_id: str
    ids: dict[str, str]
    where: str


@dataclass
class Deduper:
    """Remembers every paper of this ingest by its keys; `check_batch` also looks in the store."""

    by_key: dict[tuple[str, str], _Known] = field(default_factory=dict)

    def _match(self, paper: Paper) -> tuple[_Known, str] | None:
        for key in keys_of(paper.extra, title_hash(paper.title)):
            known = self.by_key.get(key)
            if known and known.paper_id != paper.paper_id and not conflicting(known.ids, paper.extra):
                return known, key[0]
        return None

    def _remember(self, paper: Paper, where: str) -> None:
        known = _Known(paper.paper_id, dict(paper.extra), where)
        for key in keys_of(paper.extra, title_hash(paper.title)):
            self.by_key.setdefault(key, known)

    def check_batch(self, batch: list[Located], store: Any) -> tuple[list[Located], list[Notice]]:
        """The records of a batch that are not another source's copy of a paper already seen or stored,
        and the notices (copies dropped, stored titles changed)."""
        stored = stored_records(store, batch)
        for rec in stored.values():
            for key in keys_of(rec.ids, rec.title_hash):
                self.by_key.setdefault(key, _Known(rec.paper_id, rec.ids, f"the collection ({rec.paper_id})"))
        keep: list[Located] = []
        notices: list[Notice] = []
        for it in batch:
            p = it.paper
            old = stored.get(p.paper_id)
            if old is not None:
                if old.title and title_key(old.title) != title_key(p.title):
                    notices.append(Notice(it.path, it.line, f"updates {p.paper_id}, whose title changes from "
                                          f"'{old.title[:80]}' to '{p.title[:80]}'"))
                keep.append(it)
                self._remember(p, f"{it.path}:{it.line}")
                continue
            legacy = stored.get(legacy_id(it) or "")
            if legacy is not None and title_key(legacy.title) == title_key(p.title):  # else: another file's "1"
                notices.append(Notice(it.path, it.line, f"same paper as {legacy.paper_id}, stored before bare ids "
                                      f"were namespaced by file name; kept that one, skipped this {p.paper_id}"))
                continue
            hit = self._match(p)
            if hit:
                known, kind = hit
                why = "the same title" if kind == "title" else f"the same {kind} {p.extra[kind]}"
                notices.append(Notice(it.path, it.line, f"same paper as {known.paper_id} from {known.where} "
                                      f"({why}); kept that one, skipped this {p.paper_id}"))
                continue
            keep.append(it)
            self._remember(p, f"{it.path}:{it.line}")
        return keep, notices


@dataclass
class _Stored:
    paper_id: str
    title: str
    ids: dict[str, str]
    title_hash: str | None


def legacy_id(it: Located) -> str | None:
    """The id a record had before bare ids were namespaced by file name ('papers:1' from papers.csv -> '1')."""
    prefix = source_prefix(Path(it.path))
    pid = it.paper.paper_id
    return pid.removeprefix(prefix) if prefix and pid.startswith(prefix) else None


def stored_records(store: Any, batch: list[Located]) -> dict[str, _Stored]:
    """Stored papers that share a paper id (or its pre-namespace form), a known id or a title hash with a
    batch (one query)."""
    pids = {it.paper.paper_id for it in batch} | {lid for it in batch if (lid := legacy_id(it))}
    clauses: list[dict[str, Any]] = [{"paper_id": {"$in": sorted(pids)}}]
    for kind in ID_KINDS:
        values = sorted({it.paper.extra[kind] for it in batch if kind in it.paper.extra})
        if values:
            clauses.append({ID_FIELD.format(kind): {"$in": values}})
    titles = sorted({h for it in batch if (h := title_hash(it.paper.title))})
    if titles:
        clauses.append({TITLE_FIELD: {"$in": titles}})
    where = clauses[0] if len(clauses) == 1 else {"$or": clauses}
    got = store.collection.get(where=where, include=["metadatas"])
    out: dict[str, _Stored] = {}
    for meta in got["metadatas"] or []:
        pid = str(meta["paper_id"])
        if pid not in out:
            ids = {k: str(meta[ID_FIELD.format(k)]) for k in ID_KINDS if meta.get(ID_FIELD.format(k))}
            th = meta.get(TITLE_FIELD) or title_hash(str(meta.get("title", "")))
            out[pid] = _Stored(pid, str(meta.get("title", "")), ids, str(th) if th else None)
    return out

"""PubMed's MEDLINE text format (`PMID- `, `TI  - `, `AB  - `, `FAU - `, `DP  - `; continuation lines
indented by six spaces; records separated by blank lines), streamed through the bounded line reader."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ingest.readers.base import Item, Text, finished_record, read_lines
from ingest.readers.textio import MAX_RECORD_BYTES
from ingest.records import Paper, make_paper, person

TAG = re.compile(r"^([A-Z][A-Z0-9]{0,3}) {0,3}- (.*)$")
START = re.compile(r"^PMID- ?\d+\s*$")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                        "dec"), start=1)}


def looks_like_medline(text: str) -> bool:
    """True when the first non-blank line is `PMID- <digits>`."""
    first = next((ln.strip("\ufeff \r") for ln in text.split("\n") if ln.strip()), "")
    return bool(START.match(first))


def _date(dp: str | None) -> str | None:
    """'2020 Jan 5' -> '2020-01-05'; '2019 Spring' -> '2019'."""
    if not dp:
        return None
    parts = dp.split()
    if not parts or not parts[0][:4].isdigit():
        return dp
    out = parts[0][:4]
    if len(parts) > 1 and (month := _MONTHS.get(parts[1][:3].lower())):
        out += f"-{month:02d}"
        if len(parts) > 2 and parts[2].isdigit():
            out += f"-{int(parts[2]):02d}"
    return out


def _id_of(values: list[str], kind: str) -> str | None:
    """'10.1000/x [doi]' from LID/AID values -> '10.1000/x'."""
    for v in values:
        if v.endswith(f"[{kind}]"):
            return v[: -len(kind) - 2].strip()
    return None


def paper_from_medline(fields: dict[str, list[str]], source: str) -> Paper:
    one = {k: " ".join(v) for k, v in fields.items() if k in ("PMID", "TI", "AB", "DP", "BTI")}
    authors = fields.get("FAU") or fields.get("AU") or []
    return make_paper(
        title=one.get("TI") or one.get("BTI"),
        abstract=one.get("AB"),
        ids={"pmid": one.get("PMID"), "doi": _id_of(fields.get("LID", []) + fields.get("AID", []), "doi")},
        authors=[person(a) for a in authors],
        date=_date(one.get("DP")),
        categories=[m.split("/")[0].strip("* ").replace(" ", "_") for m in fields.get("MH", [])][:10],
        source=source,
    )


def read_medline(path: Path) -> Iterator[Item]:
    """Every record of a MEDLINE (.nbib/.txt) file; a bad record is refused with its PMID line."""
    where = str(path)
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    start, size = 0, 0

    def build() -> Paper:
        if "PMID" not in fields:
            raise ValueError("MEDLINE record without a PMID line")
        try:
            return paper_from_medline(fields, where)
        except ValueError as exc:
            raise ValueError(f"PMID {' '.join(fields['PMID'])}: {exc}") from None

    def finish() -> Iterator[Item]:
        if fields:
            yield from finished_record(where, start, size, build)

    for line in read_lines(path):
        if not isinstance(line, Text):
            yield line
            continue
        text = line.text.lstrip("\ufeff")
        if not text.strip():
            yield from finish()
            fields, last, size = {}, None, 0
            continue
        size += len(text)
        if size > MAX_RECORD_BYTES:
            continue
        if text.startswith("      ") and last is not None:  # continuation of the previous field
            last[-1] += " " + text.strip()
            continue
        m = TAG.match(text)
        if not m:
            if not fields:
                start = line.lineno
            fields.setdefault("?", []).append(text)
            continue
        tag, value = m.group(1), m.group(2).strip()
        if tag == "PMID" and "PMID" in fields:  # a record not separated by a blank line
            yield from finish()
            fields, size = {}, len(text)
        if not fields:
            start = line.lineno
        last = fields.setdefault(tag, [])
        last.append(value)
    yield from finish()

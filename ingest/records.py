"""The paper record every reader produces, and the normalisation that makes ids stable."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass, field

ARXIV_ID = re.compile(r"^(?:arxiv:)?(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$", re.I)
DOI = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.I)
ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.I)
ARXIV_URL = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/([^?#]+?)(?:\.pdf)?/?$", re.I)
PMID = re.compile(r"^(?:pmid|pubmed):\s*(\d{1,9})$", re.I)
OPENALEX = re.compile(r"^(?:openalex:|https?://openalex\.org/)(W\d+)$", re.I)
S2 = re.compile(r"^s2:([0-9a-f]{40}|\d+)$", re.I)
# Kinds of id a paper can carry, best first: the first one present names the paper (its `paper_id`).
ID_KINDS = ("arxiv", "doi", "pmid", "openalex", "s2")
LINKS = {
    "arxiv": "https://arxiv.org/abs/{}",
    "doi": "https://doi.org/{}",
    "pmid": "https://pubmed.ncbi.nlm.nih.gov/{}/",
    "openalex": "https://openalex.org/{}",
    "s2": "https://www.semanticscholar.org/paper/{}",
}
_LATEX_BREAK = re.compile(r"\\\\|\\newline\b|\\par\b")
_WS = re.compile(r"\s+")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MAX_TITLE_CHARS = 1_000
MAX_ABSTRACT_CHARS = 20_000


def clean_text(text: str) -> str:
    """Normalise whitespace, LaTeX line breaks, HTML entities and control characters."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = _CTRL.sub(" ", text.replace("\ufeff", ""))
    text = _LATEX_BREAK.sub(" ", text)
    return _WS.sub(" ", text).strip()


def title_key(title: str) -> str:
    """Case- and punctuation-insensitive form of a title, for ids and matching.

    Latin-script titles keep their ASCII letters and digits (ids stay what they always were); titles with
    letters of other scripts (Chinese, Arabic, ...) keep every letter and digit, and a title with no letter
    or digit at all (only emoji) is its own key, so such titles never share one empty key.
    """
    text = clean_text(title).lower()
    key = re.sub(r"[^0-9a-z]+", " ", text).strip()
    if not key or _has_non_latin_letter(text):
        folded = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
        key = re.sub(r"[\W_]+", " ", folded).strip() or folded.strip()
    return key


def _has_non_latin_letter(text: str) -> bool:
    return any(ord(c) > 0x24F and c.isalpha() and not unicodedata.name(c, "").startswith("LATIN") for c in text)


def person(name: str) -> str:
    """'Smith, John' -> 'John Smith' (reference managers write authors last name first)."""
    parts = [p.strip() for p in name.split(",")]
    return " ".join(p for p in reversed(parts[:2]) if p) if len(parts) >= 2 else name.strip()


def arxiv_id(raw: str) -> str | None:
    """The bare arXiv id (no version) when `raw` is one, else None."""
    m = ARXIV_ID.match(raw.strip())
    return m.group(1) if m else None


def link_for(kind: str, value: str) -> str:
    """The best link for an id: arXiv abstract page, doi.org, PubMed, OpenAlex, Semantic Scholar."""
    if kind == "s2" and value.isdigit():  # a CorpusId
        return f"https://api.semanticscholar.org/CorpusID:{value}"
    return LINKS[kind].format(value)


def normalise_id(kind: str, value: str) -> str | None:
    """The canonical form of an id of a known kind (DOI lower-cased, arXiv without version), or None if invalid."""
    value = value.strip()
    if not value:
        return None
    if kind == "arxiv":
        m = ARXIV_URL.match(value)
        return arxiv_id(m.group(1) if m else value)
    if kind == "doi":
        m = DOI.match(value)
        return m.group(1).rstrip(".").lower() if m else None
    if kind == "pmid":
        m = PMID.match(value) or re.match(r"^https?://(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/"
                                         r"pubmed)/(\d+)/?$", value)
        return value if value.isdigit() else (m.group(1) if m else None)
    if kind == "openalex":
        m = OPENALEX.match(value) or re.match(r"^(W\d+)$", value, re.I)
        return m.group(1).upper() if m else None
    if kind == "s2":
        return value if re.fullmatch(r"[0-9a-f]{40}|\d+", value, re.I) else None
    return None


def classify_id(raw: str) -> tuple[str, str] | None:
    """(kind, canonical id) for a raw id that says what it is (an arXiv id, a DOI, `pmid:N`, an OpenAlex W-id)."""
    raw = raw.strip()
    if ax := arxiv_id(raw):
        return "arxiv", ax
    if m := ARXIV_URL.match(raw):
        if ax := arxiv_id(m.group(1)):
            return "arxiv", ax
    if m := DOI.match(raw):
        return "doi", m.group(1).rstrip(".").lower()
    if m := PMID.match(raw):
        return "pmid", m.group(1)
    if m := OPENALEX.match(raw):
        return "openalex", m.group(1).upper()
    if m := S2.match(raw):
        return "s2", m.group(1)
    return None


def known_ids(ids: dict[str, object] | None, raw_id: str = "") -> dict[str, str]:
    """Valid ids by kind, best first; an arXiv DOI (10.48550/arXiv.X) also gives the arXiv id."""
    out: dict[str, str] = {}
    for kind, value in (ids or {}).items():
        if kind in ID_KINDS and isinstance(value, (str, int)) and not isinstance(value, bool):
            norm = normalise_id(kind, str(value))
            if norm:
                out.setdefault(kind, norm)
    if raw_id and (got := classify_id(raw_id)):
        out.setdefault(got[0], got[1])
    if "doi" in out and "arxiv" not in out and (m := ARXIV_DOI.match(out["doi"])):
        if ax := arxiv_id(m.group(1)):
            out["arxiv"] = ax
    return {k: out[k] for k in ID_KINDS if k in out}


@dataclass(frozen=True)
class Paper:
    """One paper: what the index stores and what answers cite."""

    paper_id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    url: str | None = None
    date: str | None = None
    year: int | None = None
    categories: tuple[str, ...] = ()
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes the indexed content of this paper."""
        blob = "\x1f".join(
            [self.title, self.abstract, ";".join(self.authors), self.url or "",
             self.date or "", str(self.year or ""), ";".join(self.categories)]
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_paper(
    *,
    title: object,
    abstract: object,
    raw_id: object = None,
    authors: object = None,
    url: object = None,
    date: object = None,
    categories: object = None,
    source: str = "",
    id_prefix: str = "",
    ids: dict[str, object] | None = None,
) -> Paper:
    """Build a validated Paper from loosely typed fields; raises ValueError with the reason.

    The paper id is the best known id, namespaced (`arxiv:`, `doi:`, `pmid:`, `openalex:`, `s2:`; from `ids`
    or a raw id that says what it is); else `id_prefix` + the raw id; else `t:` + a hash of the title. The url
    is the given one, else the link of the best known id.
    """
    title_s = _as_text(title, "title")
    abstract_s = _as_text(abstract, "abstract")
    if not title_s:
        raise ValueError("missing title")
    if not abstract_s:
        raise ValueError("missing abstract")
    if len(title_s) > MAX_TITLE_CHARS:
        raise ValueError(f"title is {len(title_s)} characters (limit {MAX_TITLE_CHARS})")
    if len(abstract_s) > MAX_ABSTRACT_CHARS:
        raise ValueError(f"abstract is {len(abstract_s)} characters (limit {MAX_ABSTRACT_CHARS})")
    rid = _as_text(raw_id, "id")
    found = known_ids(ids, rid)
    url_s = _as_text(url, "url") or None
    if found:
        kind, value = next(iter(found.items()))
        pid = f"{kind}:{value}"
        url_s = url_s or link_for(kind, value)
    else:
        pid = f"{id_prefix}{rid}" if rid else "t:" + hashlib.sha256(title_key(title_s).encode()).hexdigest()[:16]
    date_s = _as_text(date, "date") or None
    year = _year_of(date_s)
    return Paper(
        paper_id=pid,
        title=title_s,
        abstract=abstract_s,
        authors=_as_list(authors, name="authors"),
        url=url_s,
        date=date_s,
        year=year,
        categories=_as_list(categories, split=" ", name="categories"),
        source=source,
        extra=found,
    )


def _as_text(value: object, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return clean_text(str(value))
    if not isinstance(value, str):
        raise ValueError(f"field '{name}' should be text, got {type(value).__name__}")
    return clean_text(value)


def _as_list(value: object, split: str = ",", name: str = "list") -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        sep = ";" if ";" in value else split
        parts = value.split(sep) if sep != " " else value.split()
        if split == "," and " and " in value and ";" not in value:
            parts = re.split(r",\s*|\s+and\s+", value)
        return tuple(p for p in (clean_text(x) for x in parts) if p)
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in value:
            if isinstance(item, (list, tuple)):  # arXiv snapshot authors_parsed: [last, first, suffix]
                item = " ".join(str(x) for x in reversed(item[:2]) if x)
            if isinstance(item, dict):
                item = item.get("name") or ""
            text = clean_text(str(item))
            if text:
                out.append(text)
        return tuple(out)
    raise ValueError(f"field '{name}' should be a list or text, got {type(value).__name__}")


def _year_of(date: str | None) -> int | None:
    if not date:
        return None
    m = re.search(r"\b(19|20)\d{2}\b", date)
    return int(m.group(0)) if m else None

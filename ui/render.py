"""HTML for the chat UI: answers as text plus our own citation links, and the sources panel.

Everything rendered goes through one allow-list sanitiser (`sanitize`): text is made inert (every character
that could start HTML, Markdown, LaTeX or an auto-link is an entity), and only the tags and attributes we
build survive: our `[n]` anchors (`#pc-src-<turn>-<n>`) and the paper links we build from ids. Nothing in
an abstract or an answer becomes an image, a heading, a formula or a link. The Chatbot shows messages
with Markdown and LaTeX rendering off (ui/app.py), so this HTML is all there is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

from rag.types import Answer, Claim, Evidence, Source

_CITE_GROUP = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_ANCHOR = re.compile(r"^#pc-src-\d+-\d+$")
_INERT = re.compile(r"[&<>\"'`!#$()*:\[\\\]_~|]")  # characters that start HTML, Markdown, LaTeX or a URL scheme
_ARXIV = re.compile(r"^arxiv:(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})$", re.I)
_DOI = re.compile(r"^doi:(10\.\d{4,9}/\S+)$", re.I)
PAPER_HOSTS = {"arxiv.org", "doi.org", "huggingface.co", "openreview.net", "aclanthology.org",
               "www.semanticscholar.org", "pubmed.ncbi.nlm.nih.gov", "www.ncbi.nlm.nih.gov",
               "www.biorxiv.org", "www.medrxiv.org", "proceedings.neurips.cc", "proceedings.mlr.press"}

EMPTY_PANEL = ('<div class="pc-sources" id="pc-sources-panel"><p class="pc-empty">Ask a question: the papers '
               "behind the answer appear here, with the supporting sentence highlighted.</p></div>")


def source_anchor(turn: int, n: int) -> str:
    """The element id of source `n` of answer `turn` in the sources panel."""
    return f"pc-src-{turn}-{n}"


def inert(text: str) -> str:
    """Text as HTML that no renderer turns into markup: HTML, Markdown, LaTeX and URL characters as entities."""
    return _INERT.sub(lambda m: f"&#{ord(m.group(0))};", text or "")


def text_html(text: str) -> str:
    """Plain text as inert HTML, line breaks kept (<br>)."""
    return "<br>".join(inert(line) for line in (text or "").split("\n"))


def paper_url(paper_id: str, url: str | None = None) -> str | None:
    """The link we show for a paper: built from its id (arXiv, DOI), or its https URL on a known paper site."""
    m = _ARXIV.match(paper_id or "")
    if m:
        return f"https://arxiv.org/abs/{m.group(1)}"
    m = _DOI.match(paper_id or "")
    if m:
        return "https://doi.org/" + quote(m.group(1), safe="/.-_()")
    if url:
        parts = urlsplit(url.strip())
        if parts.scheme == "https" and (parts.hostname or "").lower() in PAPER_HOSTS and not parts.username \
                and not re.search(r"[\s\"'<>]", url.strip()):
            return url.strip()
    return None


def safe_url(url: str | None) -> str | None:
    """Kept for callers: an https URL on a known paper site, else None (no javascript:, data:, other hosts)."""
    return paper_url("", url)


# --- the allow-list sanitiser -----------------------------------------------------------------
_TAGS = {"a", "span", "br", "p", "div", "mark", "em", "strong", "sup", "ul", "ol", "li", "h4", "blockquote"}
_VOID = {"br"}
_DROP = {"script", "style", "iframe", "object", "embed", "svg", "math", "template", "noscript", "textarea",
         "title", "head"}
_ATTRS = {"class", "id", "title", "role", "href", "target", "rel", "data-n", "data-turn", "data-claim"}
_NAME = re.compile(r"^[\w\- ]{1,200}$")


def _href_ok(href: str) -> bool:
    return bool(_ANCHOR.match(href)) or (paper_url("", href) == href)


class _Sanitizer(HTMLParser):
    def __init__(self, allow: set[str], strict: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.allow = allow
        self.text = inert if strict else (lambda t: html.escape(t, quote=False))
        self.out: list[str] = []
        self.open: list[str] = []
        self.drop = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self.drop += 1
            return
        if self.drop or tag not in self.allow:
            return
        kept = []
        for name, value in attrs:
            value = value or ""
            if name not in _ATTRS:
                continue
            if name == "href" and not _href_ok(value):
                continue
            if name in ("class", "id", "role", "data-n", "data-turn", "data-claim", "rel") and not _NAME.match(value):
                continue
            if name == "target" and value != "_blank":
                continue
            kept.append(f' {name}="{html.escape(value)}"')
        if tag == "a" and not any(k.startswith(" href=") for k in kept):
            self.open.append("")  # a link whose target is not ours: its text stays, the link goes
            return
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in _VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID and tag in self.allow and not self.drop:
            self.out.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self.drop = max(0, self.drop - 1)
            return
        if self.drop or tag in _VOID:
            return
        targets = {tag, ""} if tag == "a" else {tag}
        if not any(t in targets for t in self.open):
            return
        while self.open:  # close what is open up to the matching tag
            t = self.open.pop()
            if t:
                self.out.append(f"</{t}>")
            if t in targets:
                break

    def handle_data(self, data: str) -> None:
        if not self.drop:
            self.out.append(self.text(data))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{t}>" for t in reversed(self.open) if t)


ANSWER_TAGS = _TAGS - {"h4", "blockquote"}  # no headings inside the chat


def sanitize(markup: str, allow: Iterable[str] = ANSWER_TAGS, strict: bool = True) -> str:
    """`markup` with only allow-listed tags and attributes: links only to our anchors and paper links,
    everything else as text. The one path every chat message and panel goes through.

    `strict` (chat messages) also turns Markdown, LaTeX and URL-scheme characters into entities; panels
    shown by gr.HTML (no Markdown there) need only HTML escaping."""
    p = _Sanitizer(set(allow) & _TAGS, strict)
    p.feed(markup or "")
    return p.result()


def cite_link(turn: int, n: int) -> str:
    """Our citation marker `[n]`, linking to source n's card of answer `turn`."""
    return f'<a class="pc-cite" href="#{source_anchor(turn, n)}" title="Show source {n}">[{n}]</a>'


def _linked(text: str, turn: int, ok: set[int]) -> str:
    out, pos = [], 0
    for m in _CITE_GROUP.finditer(text or ""):
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        if not all(n in ok for n in nums):
            continue
        out.append(text_html(text[pos:m.start()]))
        out.append("".join(cite_link(turn, n) for n in nums))
        pos = m.end()
    out.append(text_html((text or "")[pos:]))
    return "".join(out)


def answer_html(text: str, turn: int, valid: Iterable[int], claims: Sequence[Claim] = ()) -> str:
    """Answer text made inert, with every `[n]` that names a source turned into a link to its card; each
    claim the sources do not support (rag/verify.py) dimmed and labelled "not found in the sources"."""
    ok = set(valid)
    out, pos = [], 0
    for c in claims:
        if c.supported or not c.text:
            continue
        i = (text or "").find(c.text, pos)
        if i < 0:
            continue
        out.append(_linked(text[pos:i], turn, ok))
        out.append(f'<span class="pc-unsupported" title="{NOT_FOUND}">{_linked(c.text, turn, ok)}</span> '
                   f'<em class="pc-not-found">({NOT_FOUND})</em>')
        pos = i + len(c.text)
    out.append(_linked((text or "")[pos:], turn, ok))
    return sanitize("".join(out))


def streaming_html(text: str) -> str:
    """A partial answer while it streams (inert text, no links yet: numbers change at the end)."""
    return sanitize(text_html(text))


def user_html(text: str) -> str:
    """The asker's own message, inert."""
    return sanitize(text_html(text))


def notice_html(message: str, kind: str = "warn") -> str:
    """A notice under an answer (inert text in a styled box)."""
    kind = kind if kind in ("warn", "error") else "warn"
    return sanitize(f'<div class="pc-notice pc-{kind}" role="status">⚠️ {text_html(message)}</div>')


def _spans(text: str, quote: str) -> list[tuple[int, int]]:
    quote = quote.strip()
    if not quote:
        return []
    i = text.find(quote)
    if i >= 0:
        return [(i, i + len(quote))]
    words = re.findall(r"\w+", quote)
    if not words:
        return []
    # whitespace, punctuation or case may differ between the stored abstract and the quote
    pattern = r"\W+".join(re.escape(w) for w in words)
    if re.search(r"[^\w\s]$", quote):
        pattern += r"[^\w\s]?"  # keep the quote's final punctuation inside the mark
    m = re.search(pattern, text, re.I)
    return [(m.start(), m.end())] if m else []


def highlight(text: str, quotes: Sequence[str]) -> str:
    """`text` escaped, with each quote found in it wrapped in <mark>."""
    spans = sorted(s for q in quotes for s in _spans(text, q))
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    out, pos = [], 0
    for a, b in merged:
        out.append(html.escape(text[pos:a]))
        out.append(f"<mark>{html.escape(text[a:b])}</mark>")
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _meta_line(s: Source) -> str:
    bits = [html.escape(s.authors) if s.authors else "authors unknown"]
    if s.year:
        bits.append(str(s.year))
    elif s.date:
        bits.append(html.escape(s.date))
    if s.categories:
        bits.append(html.escape(s.categories))
    bits.append(f"relevance {s.dense:.2f}")
    return " · ".join(bits)


def _title(s: Source) -> str:
    url = paper_url(s.paper_id, s.url)
    title = inert(s.title or s.paper_id)
    if url:
        return f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">{title}</a>'
    return title


def notices(ans: Answer) -> list[tuple[str, str]]:
    """(kind, message) banners for an answer: abstained, backend fallback or other notices."""
    out = []
    if ans.abstained:
        out.append(("warn", "No answer: the indexed papers do not seem to answer this question "
                            "(nothing retrieved was relevant enough, or the model declined)."))
    if ans.notice:
        kind = "error" if "failed" in ans.notice else "warn"
        out.append((kind, ans.notice))
    return out


def sources_html(ans: Answer, turn: int) -> str:
    """The sources panel for answer `turn`: notices, cited papers with highlighted quotes, then the rest."""
    parts = [f'<div class="pc-sources" id="pc-sources-panel" data-turn="{turn}">']
    for kind, msg in notices(ans):
        parts.append(f'<div class="pc-notice pc-{kind}" role="status">{html.escape(msg)}</div>')
    quotes: dict[int, list[str]] = {}
    for c in ans.citations:
        quotes.setdefault(c.n, []).append(c.quote)
    cited = [s for s in ans.sources if s.n in quotes]
    rest = [s for s in ans.sources if s.n not in quotes]
    if cited:
        parts.append(f'<h4 class="pc-h">Cited ({len(cited)})</h4>')
        for s in cited:
            parts.append(
                f'<div class="pc-card pc-cited" id="{source_anchor(turn, s.n)}" data-n="{s.n}">'
                f'<div class="pc-title"><span class="pc-n">[{s.n}]</span> {_title(s)}</div>'
                f'<div class="pc-meta">{_meta_line(s)}</div>'
                f'<p class="pc-abstract">{highlight(s.text, quotes[s.n])}</p></div>')
    if rest:
        label = "Retrieved, not cited" if cited else "Retrieved"
        parts.append(f'<h4 class="pc-h">{label} ({len(rest)})</h4><ul class="pc-uncited">')
        for s in rest:
            parts.append(f'<li class="pc-card pc-other" id="{source_anchor(turn, s.n)}" data-n="{s.n}">'
                         f'<div class="pc-title"><span class="pc-n">[{s.n}]</span> {_title(s)}</div>'
                         f'<div class="pc-meta">{_meta_line(s)}</div></li>')
        parts.append("</ul>")
    if not ans.sources:
        parts.append('<p class="pc-empty">No paper matched this question (check the filters).</p>')
    t = ans.timings_ms or {}
    if t:
        parts.append(f'<p class="pc-foot">{html.escape(ans.backend)} · retrieval {t.get("retrieve", 0):.0f} ms · '
                     f'total {t.get("total", 0):.0f} ms</p>')
    parts.append("</div>")
    return sanitize("".join(parts), PANEL_TAGS, strict=False)


PANEL_TAGS = _TAGS


def error_panel(message: str) -> str:
    """The sources panel when a turn failed."""
    return sanitize(f'<div class="pc-sources" id="pc-sources-panel"><div class="pc-notice pc-error" role="alert">'
                    f"{html.escape(message)}</div></div>", PANEL_TAGS, strict=False)


def stats_markdown(stats: dict[str, object]) -> str:
    """The collection summary shown above the papers table (not the server's data directory)."""
    return (f"**{stats.get('papers', 0)} papers** ({stats.get('chunks', 0)} chunks) · "
            f"embedding model `{stats.get('embedding_model', '?')}` · "
            f"Chroma: {'embedded' if stats.get('chroma') == 'embedded' else 'server'} · collection `{stats.get('collection', '?')}` · "
            f"answer backend: {stats.get('llm', '?')}")


def report_markdown(report: dict[str, object], names: dict[str, str]) -> str:
    """An ingest report (IngestReport.to_dict()) with staged temp paths replaced by the uploaded names."""

    def shown(s: str) -> str:
        for path, name in names.items():
            s = s.replace(path, name)
        return s

    rejected = [shown(str(r)) for r in report.get("rejected", [])]  # type: ignore[union-attr, attr-defined]
    warnings = [shown(str(w)) for w in report.get("warnings", [])]  # type: ignore[union-attr, attr-defined]
    lines = [f"**added {report.get('added', 0)}** · updated {report.get('updated', 0)} · "
             f"unchanged {report.get('unchanged', 0)} · duplicates {report.get('duplicates', 0)} · "
             f"rejected {len(rejected)} · " + (f"warnings {len(warnings)} · " if warnings else "")
             + f"collection now **{report.get('papers', 0)} papers** ({report.get('seconds', 0)} s)"]
    for title, rows in (("Rejected records (file:line: reason):", rejected),
                        ("Read with warnings (file:line: what happened):", warnings)):
        if rows:
            lines.append("")
            lines.append(title)
            lines.extend("- `" + r.replace("`", "'") + "`" for r in rows[:200])
            if len(rows) > 200:
                lines.append(f"- ... and {len(rows) - 200} more")
    return "\n".join(lines)


def evidence_html(ev: Evidence) -> str:
    """The evidence shown at once while an LLM writes: the best sentence of each source, with its [n]."""
    items = "".join(f'<li><span class="pc-ev-n">[{q.n}]</span> \u201c{text_html(q.sentence)}\u201d '
                    f"<em>{text_html(q.title)}</em></li>" for q in ev.quotes)
    return sanitize(f'<div class="pc-evidence"><p class="pc-ev-head">From the sources (the written answer '
                    f"follows):</p><ul>{items}</ul></div>")


NOT_FOUND = "not found in the sources"

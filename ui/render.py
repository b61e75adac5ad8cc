"""HTML for the chat UI: answers with linked `[n]` markers, and the sources panel.

Pure functions of rag's `Answer`; everything user- or model-supplied is escaped here, so the
Gradio components can show the result as-is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from rag.types import Answer, Source

_CITE_GROUP = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SAFE_URL = re.compile(r"^https?://[^\s\"'<>]+$", re.I)

EMPTY_PANEL = ('<div class="pc-sources" id="pc-sources-panel"><p class="pc-empty">Ask a question: the papers '
               "behind the answer appear here, with the supporting sentence highlighted.</p></div>")


def source_anchor(turn: int, n: int) -> str:
    """The element id of source `n` of answer `turn` in the sources panel."""
    return f"pc-src-{turn}-{n}"


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link, else None (no javascript:, data:, ...)."""
    return url if url and _SAFE_URL.match(url.strip()) else None


def answer_html(text: str, turn: int, valid: Iterable[int]) -> str:
    """Answer text escaped, with every `[n]` that names a source turned into a link to its card."""
    ok = set(valid)
    escaped = html.escape(text, quote=False)

    def link(m: re.Match[str]) -> str:
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        if not all(n in ok for n in nums):
            return m.group(0)
        return "".join(f'<a class="pc-cite" href="#{source_anchor(turn, n)}" title="Show source {n}">[{n}]</a>'
                       for n in nums)

    return _CITE_GROUP.sub(link, escaped)


def streaming_html(text: str) -> str:
    """A partial answer while it streams (escaped, no links yet: numbers change at the end)."""
    return html.escape(text, quote=False)


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
    url = safe_url(s.url)
    title = html.escape(s.title or s.paper_id)
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
    return "".join(parts)


def error_panel(message: str) -> str:
    """The sources panel when a turn failed."""
    return (f'<div class="pc-sources" id="pc-sources-panel"><div class="pc-notice pc-error" role="alert">'
            f"{html.escape(message)}</div></div>")


def stats_markdown(stats: dict[str, object]) -> str:
    """The collection summary shown above the papers table."""
    return (f"**{stats.get('papers', 0)} papers** ({stats.get('chunks', 0)} chunks) · "
            f"embedding model `{stats.get('embedding_model', '?')}` · data directory `{stats.get('home', '?')}` · "
            f"Chroma: {stats.get('chroma', '?')} · collection `{stats.get('collection', '?')}` · "
            f"answer backend: {stats.get('llm', '?')}")


def report_markdown(report: dict[str, object], names: dict[str, str]) -> str:
    """An ingest report (IngestReport.to_dict()) with staged temp paths replaced by the uploaded names."""

    def shown(s: str) -> str:
        for path, name in names.items():
            s = s.replace(path, name)
        return s

    rejected = [shown(str(r)) for r in report.get("rejected", [])]  # type: ignore[union-attr]
    lines = [f"**added {report.get('added', 0)}** · updated {report.get('updated', 0)} · "
             f"unchanged {report.get('unchanged', 0)} · duplicates {report.get('duplicates', 0)} · "
             f"rejected {len(rejected)} · collection now **{report.get('papers', 0)} papers** "
             f"({report.get('seconds', 0)} s)"]
    if rejected:
        lines.append("")
        lines.append("Rejected records (file:line: reason):")
        lines.extend("- `" + r.replace("`", "'") + "`" for r in rejected[:200])
        if len(rejected) > 200:
            lines.append(f"- ... and {len(rejected) - 200} more")
    return "\n".join(lines)

"""The Gradio chat UI: widgets wired to rag's Python API (Paperchat, ChatSession), nothing more.

`paperchat serve` calls `serve(engine, host=, port=, no_auth=)`; `build_app(engine)` gives the Blocks for tests.
"""

from __future__ import annotations

import html
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no analytics, no version check

import gradio as gr  # noqa: E402

from ingest.filters import Filters  # noqa: E402
from rag.chat import ChatSession  # noqa: E402
from rag.types import Answer, Evidence  # noqa: E402
from ui import render, uploads  # noqa: E402
from ui.auth import AUTH_ENV, AuthError, admin_users, checker, is_loopback, resolve_auth  # noqa: E402
from rag.answerers.openai_compat import safe_url  # noqa: E402
from ui.guard import RequestGuard, allowed_hosts  # noqa: E402

log = logging.getLogger("paperchat.ui")

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
CHAT_CONCURRENCY = 4  # chat turns served at once; the queue holds the rest
MAX_TURNS = 50  # turns a browser session keeps (messages, answers and the conversation memory)
TABLE_HEADERS = ["paper_id", "title", "authors", "year", "categories"]
PAGE = 50     # rows of the collection table sent to the browser at a time
PICKER = 20   # papers offered by the picker for what was typed

# The picker's search reads the typed text from the page, not from the key_up event: with
# trigger_mode="always_last" Gradio (6.31) re-runs a deferred call with the event data of the call that just
# ended, so gr.KeyUpData.input_value stays the first key typed while a search was running (found for issue 15).
PICKER_TYPED_JS = "(selected, _) => [selected, (document.querySelector('#pc-papers input') || {}).value || '']"

CSS = """
.pc-sources { font-size: 0.92rem; max-height: 80vh; overflow-y: auto; padding-right: 4px; }
.pc-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin: 6px 0;
           list-style: none; transition: box-shadow .2s; }
.pc-card.pc-active { border-color: var(--color-accent); box-shadow: 0 0 0 3px var(--color-accent-soft); }
.pc-title { font-weight: 600; }
.pc-n { color: var(--color-accent); }
.pc-meta { color: var(--body-text-color-subdued); font-size: 0.85em; margin: 2px 0 6px; }
.pc-abstract { line-height: 1.45; margin: 0; max-height: 8.8em; overflow-y: auto; }
.pc-active .pc-abstract { max-height: 15em; }
.pc-abstract mark { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 2px; }
.pc-notice { border-radius: 6px; padding: 8px 10px; margin-bottom: 8px; }
.pc-warn { background: #fef3c7; color: #78350f; }
.pc-error { background: #fee2e2; color: #7f1d1d; }
.pc-uncited { padding: 0; margin: 0; }
.pc-unsupported { opacity: 0.55; }
.pc-not-found { color: var(--body-text-color-subdued); font-size: 0.85em; }
.pc-evidence { color: var(--body-text-color-subdued); font-size: 0.92em; }
.pc-evidence ul { margin: 4px 0 8px; padding-left: 18px; }
.pc-h { margin: 10px 0 4px; }
.pc-foot, .pc-empty { color: var(--body-text-color-subdued); font-size: 0.85em; }
a.pc-cite { text-decoration: none; font-weight: 600; }
"""

# A click on a citation marker [n]: show its card in the sources panel. Cards of the answer on show are
# found directly; for an older answer, ask the server to render that answer's panel, then scroll to the card.
HEAD = """<script>
(function () {
  function activate(el) {
    document.querySelectorAll('.pc-card.pc-active').forEach(function (c) { c.classList.remove('pc-active'); });
    el.classList.add('pc-active');
    el.scrollIntoView({behavior: 'smooth', block: 'nearest'});
    var m = el.querySelector('mark'); if (m) m.scrollIntoView({block: 'nearest'});
  }
  document.addEventListener('click', function (ev) {
    var a = ev.target && ev.target.closest ? ev.target.closest('a.pc-cite, a[href^="#pc-src-"]') : null;
    if (!a) return;
    ev.preventDefault(); ev.stopPropagation();
    var id = (a.getAttribute('href') || '').replace(/^#/, '');
    var el = document.getElementById(id);
    if (el) { activate(el); return; }
    var box = document.querySelector('#pc-cite-request textarea, #pc-cite-request input');
    if (!box) return;
    box.value = id + '@' + Date.now();  // always a change, even for the same marker twice
    box.dispatchEvent(new Event('input', {bubbles: true}));
    var tries = 0, timer = setInterval(function () {
      var found = document.getElementById(id);
      if (found || ++tries > 60) { clearInterval(timer); if (found) activate(found); }
    }, 100);
  }, true);
})();
</script>"""


def theme() -> gr.themes.Base:
    """Gradio's Soft theme with system fonts only (the default themes load Google Fonts)."""
    return gr.themes.Soft(
        primary_hue="indigo", neutral_hue="slate",
        font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
              "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


@dataclass
class ChatState:
    """One browser session's conversation: the session (memory), the messages shown, one answer per turn."""

    session: ChatSession
    messages: list[dict[str, str]] = field(default_factory=list)
    answers: list[Answer | None] = field(default_factory=list)
    offset: int = 0  # turns dropped from the front (MAX_TURNS); turn t is answers[t - offset]

    def trim(self, max_turns: int = MAX_TURNS) -> None:
        """Keep the last `max_turns` turns (a turn is one user and one assistant message)."""
        while len(self.answers) > max_turns:
            self.answers.pop(0)
            self.offset += 1
            first = next((i for i, m in enumerate(self.messages[1:], 1) if m["role"] == "user"), len(self.messages))
            del self.messages[:first]


def _int(x: Any) -> int | None:
    """A year bound from a Number field; empty or 0 (what an emptied field sends once the controls have been
    opened in the browser) means no bound."""
    return int(x) if x not in (None, "") and int(x) != 0 else None


def _filters(year_from: Any, year_to: Any, categories: list[str] | None, papers: list[str] | None) -> Filters:
    return Filters(_int(year_from), _int(year_to), tuple(categories or ()), tuple(papers or ()))


@dataclass(frozen=True)
class SettingsAccess:
    """Who may change the answer backend: nobody unless the server runs with --allow-settings; then, with
    auth, only the admin users (`alice[admin]:pw` in PAPERCHAT_AUTH); without auth (loopback only), anyone."""

    allow: bool = False
    auth: bool = False
    admins: frozenset[str] = frozenset()

    def may_edit(self, user: str | None) -> bool:
        if not self.allow:
            return False
        return user in self.admins if self.auth else True


def _user(request: gr.Request | None) -> str | None:
    return getattr(request, "username", None) if request is not None else None


def table_page(engine: Any, query: str, offset: int) -> tuple[Any, str, int]:
    """Rows of one page of the paper table (PAGE rows from `offset`), a label saying which, the offset used."""
    query = (query or "").strip()
    total = engine.count_papers(query)
    offset = max(0, min(int(offset or 0), (total - 1) // PAGE * PAGE if total else 0))
    shown = engine.list_papers(query, limit=PAGE, offset=offset)
    rows = [[p["paper_id"], p["title"], p["authors"], p["year"] or "", p["categories"]] for p in shown]
    what = f" matching “{html.escape(query)}”" if query else ""
    label = f"Papers {offset + 1:,}–{offset + len(rows):,} of {total:,}{what}" if rows else f"No papers{what}."
    return rows or [[""] * len(TABLE_HEADERS)], label, offset


def picker_label(paper: dict[str, Any], typed: str = "") -> str:
    """A picker option: the title (cut at 90 characters unless `typed` matches past the cut) and the year."""
    title = str(paper["title"])
    if len(title) > 90 and typed.lower() in title[:90].lower():
        title = title[:90]
    return f"{title} ({paper['year'] or paper['paper_id']})"


def picker_choices(engine: Any, typed: str, selected: list[str] | None) -> list[tuple[str, str]]:
    """(label, paper_id) for the paper picker: the selected papers first, then up to PICKER papers whose title
    contains `typed` as typed. The dropdown shows only options whose label contains the typed text, so the
    server offers exactly those (a words-anywhere match would fill the PICKER slots with hidden options)."""
    typed = typed or ""
    out: dict[str, str] = {}
    for pid in dict.fromkeys(selected or []):
        hit = [p for p in engine.list_papers(pid, limit=5) if p["paper_id"] == pid]
        out[pid] = picker_label(hit[0]) if hit else pid
    for p in engine.find_titles(typed if typed.strip() else "", PICKER):
        out.setdefault(p["paper_id"], picker_label(p, typed))
    return [(name, pid) for pid, name in out.items()]


def build_app(engine: Any, access: SettingsAccess | None = None) -> gr.Blocks:
    """The Blocks app over a Paperchat engine (Settings read-only unless `access` allows)."""
    s = engine.settings
    access = access or SettingsAccess()
    max_chars = int(getattr(s, "max_question_chars", 2000))
    max_turns = int(getattr(s, "max_turns", MAX_TURNS))

    # --- reads of the collection: one page at a time, searched on the server ------------
    def collection_views(query: str = "") -> tuple[Any, ...]:
        rows, label, offset = table_page(engine, query, 0)
        examples = [[q] for q in engine.example_questions(4)]
        return (render.stats_markdown(engine.stats()), rows, label, offset, gr.update(choices=engine.categories()),
                gr.update(choices=picker_choices(engine, "", [])), gr.update(samples=examples))

    def search_papers(query: str) -> tuple[Any, str, int]:
        return table_page(engine, query, 0)

    def turn_page(query: str, offset: int, step: int) -> tuple[Any, str, int]:
        return table_page(engine, query, int(offset or 0) + step)

    def find_papers(selected: list[str] | None, typed: str) -> Any:
        return gr.update(choices=picker_choices(engine, typed, selected))

    # --- chat ------------------------------------------------------------------------
    def respond(message: str, state: ChatState | None, k: float, year_from: Any, year_to: Any,
                categories: list[str] | None, papers: list[str] | None):  # type: ignore[no-untyped-def]
        if state is None:
            state = ChatState(ChatSession(engine))
        message = (message or "").strip()
        if not message:
            yield list(state.messages), gr.skip(), state, ""
            return
        if len(message) > max_chars:  # the textbox stops at max_chars; API callers get this
            msg = f"Questions are limited to {max_chars} characters (this one has {len(message)})."
            yield list(state.messages), render.error_panel(msg), state, gr.skip()
            return
        state.session.k = int(k) if k else None
        state.session.filters = _filters(year_from, year_to, categories, papers)
        turn = state.offset + len(state.answers)
        state.messages = state.messages + [{"role": "user", "content": render.user_html(message)},
                                           {"role": "assistant", "content": "…"}]
        yield list(state.messages), gr.skip(), state, ""
        final: Answer | None = None
        buf, evidence = "", ""
        try:
            for ev in state.session.ask_stream(message):
                if isinstance(ev, Answer):
                    final = ev
                elif isinstance(ev, Evidence):  # shown at once while an LLM writes; the answer replaces it
                    evidence = render.evidence_html(ev)
                    state.messages[-1] = {"role": "assistant", "content": evidence}
                    yield list(state.messages), gr.skip(), state, ""
                else:
                    buf += ev
                    state.messages[-1] = {"role": "assistant", "content": evidence + render.streaming_html(buf)}
                    yield list(state.messages), gr.skip(), state, ""
        except Exception as exc:  # noqa: BLE001 - a failing backend must not take the app down
            log.exception("chat turn failed")
            state.answers.append(None)
            state.trim(max_turns)
            msg = f"Something went wrong answering this question ({type(exc).__name__}: {exc})."
            state.messages[-1] = {"role": "assistant", "content": render.notice_html(msg, "error")}
            yield list(state.messages), render.error_panel(msg), state, ""
            return
        assert final is not None
        state.answers.append(final)
        state.trim(max_turns)
        text = render.answer_html(final.answer, turn, [src.n for src in final.sources], final.claims)
        if final.notice:
            text += render.notice_html(final.notice)
        state.messages[-1] = {"role": "assistant", "content": text}
        yield list(state.messages), render.sources_html(final, turn), state, ""

    def show_turn(state: ChatState | None, turn: int) -> Any:
        if state is None or not 0 <= turn - state.offset < len(state.answers):
            return gr.skip()
        ans = state.answers[turn - state.offset]
        return render.sources_html(ans, turn) if ans else gr.skip()

    def on_cite_request(request: str, state: ChatState | None) -> Any:
        try:  # "pc-src-<turn>-<n>@<nonce>"
            turn = int((request or "").split("@")[0].split("-")[2])
        except (IndexError, ValueError):
            return gr.skip()
        return show_turn(state, turn)

    def on_select(state: ChatState | None, evt: gr.SelectData) -> Any:
        if state is None:
            return gr.skip()
        idx = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not isinstance(idx, int) or idx >= len(state.messages) or state.messages[idx]["role"] != "assistant":
            return gr.skip()
        turn = state.offset + sum(1 for m in state.messages[:idx] if m["role"] == "assistant")
        return show_turn(state, turn)

    def clear() -> tuple[Any, ...]:
        return [], render.EMPTY_PANEL, None

    # --- add papers -----------------------------------------------------------------
    def add_papers(files: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        if not files:
            return ("Choose one or more files first.", *collection_views())
        try:
            with tempfile.TemporaryDirectory(prefix="paperchat-upload-") as tmp:
                staged = uploads.stage(list(files), Path(tmp))
                parts = []
                if staged.files:
                    progress(0, desc="Reading, chunking and embedding")
                    report = engine.ingest(list(staged.files),
                                           on_progress=lambda n, _: progress((n, None), desc=f"{n} records read"))
                    parts.append(render.report_markdown(report.to_dict(), staged.files))
                if staged.refused:
                    parts.append("Files refused:\n" + "\n".join(f"- {html.escape(r)}" for r in staged.refused))
        finally:  # Gradio's temp copies, also when ingest failed; the staged ones went with the temporary directory
            uploads.discard(list(files))
        return ("\n\n".join(parts), *collection_views())

    # --- backend settings -------------------------------------------------------------
    def _gguf_path(text: str) -> str | None:
        current = engine.settings.llm_gguf
        if current is not None and text == current.name:  # the field shows the name only
            return str(current)
        return text or None

    def llm_fields(backend: str, base_url: str, model: str, api_key: str, gguf: str, timeout: float
                   ) -> dict[str, Any]:
        fields: dict[str, Any] = {"llm": backend, "llm_base_url": (base_url or "").strip() or None,
                                  "llm_model": (model or "").strip() or s.llm_model,
                                  "llm_gguf": _gguf_path((gguf or "").strip())}
        if timeout:
            fields["llm_timeout"] = float(timeout)
        if api_key:
            fields["llm_api_key"] = api_key
        return fields

    def test_connection(backend: str, base_url: str, model: str, api_key: str, gguf: str, timeout: float,
                        request: gr.Request) -> str:
        """ok or failed, never the reply's text. Without the right to edit, only the current backend is tested."""
        if access.may_edit(_user(request)):
            ok, msg = engine.check_llm(**llm_fields(backend, base_url, model, api_key, gguf, timeout))
            return "✅ ok" if ok else f"❌ failed: {html.escape(msg)}"  # the answerer's own safe message
        ok, _ = engine.check_llm()  # the operator's backend, as configured
        return "✅ ok: the current backend answers" if ok else "❌ failed: the current backend did not answer"

    def apply_settings(backend: str, base_url: str, model: str, api_key: str, gguf: str, timeout: float,
                       request: gr.Request) -> tuple[str, str]:
        if not access.may_edit(_user(request)):
            log.warning("refused a settings change from %r", _user(request))
            return ("❌ not applied: the answer backend is the operator's (start the server with --allow-settings "
                    "and sign in as an admin to change it)", render.stats_markdown(engine.stats()))
        fields = llm_fields(backend, base_url, model, api_key, gguf, timeout)
        ok, msg = engine.check_llm(**fields)  # never switch to a backend that cannot answer
        if not ok:
            return f"❌ not applied, the backend did not answer: {html.escape(msg)}", render.stats_markdown(engine.stats())
        try:
            engine.configure_llm(**fields)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the current backend stays
            return f"❌ not applied: {html.escape(str(exc))}", render.stats_markdown(engine.stats())
        return (f"✅ answers now come from **{engine.settings.llm}** (if it fails, the offline extractive "
                "answer is shown with a notice)", render.stats_markdown(engine.stats()))

    def settings_access(request: gr.Request) -> tuple[Any, ...]:
        """Per session: editable widgets for who may edit, read-only ones for everyone else."""
        edit = access.may_edit(_user(request))
        return (*(gr.update(interactive=edit) for _ in range(6)), gr.update(interactive=edit, visible=edit))

    # --- layout ---------------------------------------------------------------------------
    with gr.Blocks(title="paperchat", analytics_enabled=False, fill_width=True) as demo:
        state = gr.State(None)
        gr.Markdown("## paperchat · ask your papers, get cited answers")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(label="Conversation", height=520, elem_id="pc-chat",
                                             buttons=["copy"], feedback_options=None,
                                             # answers are our sanitised HTML (ui/render.py): no Markdown,
                                             # no LaTeX, no custom tags from anything an abstract says
                                             render_markdown=False, latex_delimiters=[], sanitize_html=True,
                                             allow_tags=False,
                                             placeholder="Ask about the indexed papers. Answers cite them as [n]; "
                                                         "click a marker to see its evidence.")
                        with gr.Row():
                            question = gr.Textbox(show_label=False, placeholder="Ask a question…", scale=5,
                                                  elem_id="pc-question", max_length=max_chars, submit_btn=False)
                            send = gr.Button("Ask", variant="primary", scale=1, elem_id="pc-send")
                        examples = gr.Dataset(components=[question], label="Example questions",
                                              samples=[[q] for q in engine.example_questions(4)],
                                              elem_id="pc-examples")
                        with gr.Accordion("Retrieval controls", open=False):
                            with gr.Row():
                                k = gr.Slider(1, 20, value=s.top_k, step=1, label="Papers to use (k)")
                                year_from = gr.Number(label="Year from", precision=0, value=None)
                                year_to = gr.Number(label="Year to", precision=0, value=None)
                            # choices are refreshed on load and after each ingest; values outside them
                            # (API clients) are allowed and simply match nothing
                            categories = gr.Dropdown(choices=[], multiselect=True, label="Categories",
                                                     info="keep papers in any of these", allow_custom_value=True)
                            papers = gr.Dropdown(choices=[], multiselect=True, label="Restrict to papers",
                                                 info="answer only from these papers; type part of a title to find one",
                                                 allow_custom_value=True, elem_id="pc-papers")
                            picker_typed = gr.Textbox(visible=False)  # filled by PICKER_TYPED_JS
                        clear_btn = gr.Button("New conversation", size="sm")
                    with gr.Column(scale=2):
                        sources = gr.HTML(render.EMPTY_PANEL, elem_id="pc-sources", label="Sources")
                cite_request = gr.Textbox(visible="hidden", elem_id="pc-cite-request")
            with gr.Tab("Add papers", id="add"):
                gr.Markdown(f"Upload BibTeX (`.bib`), RIS (`.ris`), Zotero's CSV export, PubMed (MEDLINE `.nbib`/`.txt` "
                            "or XML), OpenAlex or Semantic Scholar JSON, JSONL/JSON, CSV/TSV with a title and an "
                            "abstract column, arXiv metadata, a BEIR `corpus.jsonl` or a Daily Papers page (any "
                            f"of them gzipped, any encoding), up to {uploads.MAX_UPLOAD} each. "
                            "Re-adding the same papers changes nothing.")
                files = gr.File(file_count="multiple", file_types=uploads.FILE_TYPES, label="Paper files",
                                elem_id="pc-upload")
                add_btn = gr.Button("Add to collection", variant="primary", elem_id="pc-add")
                report = gr.Markdown(elem_id="pc-report")
            with gr.Tab("Collection", id="collection"):
                stats_md = gr.Markdown(elem_id="pc-stats")
                search = gr.Textbox(label="Search papers", placeholder="title, author, id or category",
                                    elem_id="pc-search")
                table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, wrap=True, elem_id="pc-table",
                                     max_height=560)
                with gr.Row():
                    prev_btn = gr.Button("← Previous", size="sm", elem_id="pc-prev", scale=0)
                    page_md = gr.Markdown(elem_id="pc-page")
                    next_btn = gr.Button("Next →", size="sm", elem_id="pc-next", scale=0)
                offset = gr.State(0)
            with gr.Tab("Settings", id="settings"):
                # read-only: the URL without user:password@ or query (admins editing see and keep the full URL)
                shown_url = (s.llm_base_url or "") if access.allow else (safe_url(s.llm_base_url) if s.llm_base_url else "")
                if access.allow:
                    gr.Markdown("Answer backend for everyone using this server" + (" (admins only)" if access.auth
                                else "") + ". A failing LLM never stops the app: answers fall back to the "
                                "offline extractive backend, with a notice.")
                else:
                    gr.Markdown("The answer backend is set by the operator (read-only here; `paperchat serve "
                                "--allow-settings` lets admins change it). \"Test connection\" checks the current "
                                "backend.", elem_id="pc-settings-readonly")
                with gr.Row():
                    backend = gr.Radio(["extractive", "openai", "gguf"], value=s.llm, label="Backend",
                                       interactive=access.allow)
                    timeout = gr.Number(value=s.llm_timeout, label="Timeout (s)", minimum=1, interactive=access.allow)
                base_url = gr.Textbox(value=shown_url, label="Base URL (OpenAI-compatible server)",
                                      elem_id="pc-base-url", interactive=access.allow,
                                      placeholder="http://127.0.0.1:8080/v1")
                model = gr.Textbox(value=s.llm_model, label="Model", interactive=access.allow)
                api_key = gr.Textbox(value="", type="password", label="API key (sent only to this base URL)",
                                     elem_id="pc-api-key", interactive=access.allow,
                                     placeholder=("(set)" if s.llm_api_key else "(none)") if access.allow else "")
                gguf = gr.Textbox(value=s.llm_gguf.name if s.llm_gguf else "", label="GGUF model file (gguf backend)",
                                  elem_id="pc-gguf", interactive=access.allow)
                with gr.Row():
                    test_btn = gr.Button("Test connection", elem_id="pc-test")
                    apply_btn = gr.Button("Apply", variant="primary", elem_id="pc-apply", interactive=access.allow,
                                          visible=access.allow)
                llm_status = gr.Markdown(elem_id="pc-llm-status")

        # --- events ------------------------------------------------------------------------
        chat_inputs = [question, state, k, year_from, year_to, categories, papers]
        chat_outputs = [chatbot, sources, state, question]
        send.click(respond, chat_inputs, chat_outputs, api_name="chat", concurrency_limit=CHAT_CONCURRENCY,
                   concurrency_id="chat")
        question.submit(respond, chat_inputs, chat_outputs, api_visibility="private",
                         concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
        examples.click(lambda row: row[0] if row else "", examples, question, api_visibility="private")
        clear_btn.click(clear, None, [chatbot, sources, state], api_visibility="private")
        chatbot.clear(clear, None, [chatbot, sources, state], api_visibility="private")
        chatbot.select(on_select, state, sources, api_visibility="private")
        cite_request.change(on_cite_request, [cite_request, state], sources, api_visibility="private")

        views = [stats_md, table, page_md, offset, categories, papers, examples]
        add_btn.click(add_papers, files, [report, *views], api_name="add_papers", concurrency_limit=1,
                      concurrency_id="ingest")
        page = [table, page_md, offset]
        search.change(search_papers, search, page, api_visibility="private", trigger_mode="always_last")
        prev_btn.click(lambda q, o: turn_page(q, o, -PAGE), [search, offset], page, api_visibility="private")
        next_btn.click(lambda q, o: turn_page(q, o, PAGE), [search, offset], page, api_visibility="private")
        papers.key_up(find_papers, [papers, picker_typed], papers, js=PICKER_TYPED_JS, api_visibility="private",
                      show_progress="hidden", trigger_mode="always_last")
        llm_inputs = [backend, base_url, model, api_key, gguf, timeout]
        test_btn.click(test_connection, llm_inputs, llm_status, api_visibility="private", concurrency_limit=2)
        apply_btn.click(apply_settings, llm_inputs, [llm_status, stats_md], api_visibility="private",
                        concurrency_limit=1)
        demo.load(collection_views, None, views, api_visibility="private")
        if access.allow and access.auth:
            demo.load(settings_access, None, [backend, timeout, base_url, model, api_key, gguf, apply_btn],
                      api_visibility="private")
    return demo


def serve(engine: Any, host: str = "127.0.0.1", port: int = 7860, no_auth: bool = False,
          allow_settings: bool = False) -> int:
    """Index the sample papers if the collection is empty, then serve the UI until interrupted.

    The answer backend is read-only in the UI unless `allow_settings` (then, with auth, for admins only;
    an open server may allow it only on a loopback bind)."""
    auth_value = os.environ.get(AUTH_ENV)
    try:
        pairs = resolve_auth(host, no_auth, auth_value)
        admins = admin_users(auth_value) if pairs else frozenset()
    except (AuthError, OSError) as exc:
        print(f"paperchat serve: {exc}", file=sys.stderr)
        return 2
    if not pairs and not is_loopback(host):
        print(f"paperchat serve: WARNING: serving on {host} without auth (--no-auth)", file=sys.stderr)
    if allow_settings and not pairs and not is_loopback(host):
        print(f"paperchat serve: refusing --allow-settings on {host} without auth: anyone could point the backend "
              f"at their own server; set {AUTH_ENV}=admin[admin]:password", file=sys.stderr)
        return 2
    if allow_settings and pairs and not admins:
        print(f"paperchat serve: --allow-settings: no admin in {AUTH_ENV} (mark one as user[admin]:password); "
              "settings stay read-only", file=sys.stderr)
    if engine.stats()["papers"] == 0:
        if SAMPLE_DIR.is_dir():
            print(f"paperchat serve: the collection is empty; indexing the sample papers in {SAMPLE_DIR}",
                  file=sys.stderr)
            print(engine.ingest([SAMPLE_DIR]).summary(), file=sys.stderr)
        else:
            print("paperchat serve: the collection is empty; add papers on the 'Add papers' tab", file=sys.stderr)
    demo = build_app(engine, SettingsAccess(allow=allow_settings, auth=bool(pairs), admins=admins))
    demo.queue(default_concurrency_limit=2, max_size=256)
    print(f"paperchat serve: http://{host}:{port}" + (" (login required)" if pairs else ""), file=sys.stderr,
          flush=True)
    from starlette.middleware import Middleware

    # Host header check (DNS rebinding) and failed-login rate limit, in front of every route
    guard = Middleware(RequestGuard, hosts=allowed_hosts(host))  # type: ignore[arg-type]
    demo.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                auth=checker(pairs) if pairs else None, auth_message="paperchat: sign in",
                max_file_size=uploads.MAX_UPLOAD, theme=theme(), css=CSS, head=HEAD, ssr_mode=False,
                pwa=False, mcp_server=False, enable_monitoring=False, footer_links=["api", "settings"],
                show_error=False, quiet=True, app_kwargs={"middleware": [guard]})
    return 0

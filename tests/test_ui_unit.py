"""The UI's small parts without a browser: auth rules, upload checks, HTML rendering, theme, and the app
served in-process over a fake engine (driven with gradio_client)."""

from __future__ import annotations

import html

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.settings import Settings
from rag.types import Answer, Citation, Source
from ui import render, uploads
from ui.auth import AuthError, checker, is_loopback, parse_credentials, resolve_auth

# --- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False), ("", False),
])
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_loopback_needs_no_auth_and_other_binds_do() -> None:
    assert resolve_auth("127.0.0.1", False, None) is None
    with pytest.raises(AuthError, match="PAPERCHAT_AUTH"):
        resolve_auth("0.0.0.0", False, None)
    with pytest.raises(AuthError):
        resolve_auth("0.0.0.0", False, "   ")
    assert resolve_auth("0.0.0.0", True, None) is None  # explicit --no-auth
    assert resolve_auth("0.0.0.0", False, "alice:s3cret:with:colons") == [("alice", "s3cret:with:colons")]
    assert resolve_auth("127.0.0.1", False, "bob:pw") == [("bob", "pw")]  # given credentials always apply


def test_credentials_file(tmp_path: Path) -> None:
    f = tmp_path / "users"
    f.write_text("# who may use paperchat\nalice:one\n\n bob : two\n", encoding="utf-8")
    assert parse_credentials(str(f)) == [("alice", "one"), ("bob", " two")]
    f.write_text("# nobody\n", encoding="utf-8")
    with pytest.raises(AuthError, match="no user:password"):
        parse_credentials(str(f))
    f.write_text("alice\n", encoding="utf-8")
    with pytest.raises(AuthError, match=":1: expected user:password"):
        parse_credentials(str(f))


@pytest.mark.parametrize("value", ["nocolon", ":pw", "user:", str(Path("/nonexistent/users"))])
def test_bad_credentials_are_refused(value: str) -> None:
    with pytest.raises(AuthError):
        parse_credentials(value)


def test_checker() -> None:
    check = checker([("alice", "one"), ("bob", "two")])
    assert check("alice", "one") and check("bob", "two")
    assert not check("alice", "two") and not check("carol", "one") and not check("alice", "")


def test_serve_refuses_an_open_network_bind(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from ui.app import serve

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"serve touched the engine ({name}) before checking auth")

    monkeypatch.delenv("PAPERCHAT_AUTH", raising=False)
    assert serve(Untouchable(), host="0.0.0.0", port=1) == 2
    assert "--no-auth" in capsys.readouterr().err


# --- uploads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,shown", [
    ("papers.jsonl", "papers.jsonl"), ("../../etc/passwd", "passwd"), ("C:\\x\\evil.csv", "evil.csv"),
    ("a;rm -rf ~.json", "a_rm -rf _.json"), ("", "upload"), ("x" * 200 + ".csv", "x" * 80),
])
def test_display_name(name: str, shown: str) -> None:
    assert uploads.display_name(name) == shown


def test_allowed_suffix() -> None:
    assert uploads.allowed_suffix("a.JSONL") == ".jsonl"
    assert uploads.allowed_suffix("a.csv.gz") == ".csv.gz"
    assert uploads.allowed_suffix("a.exe") is None and uploads.allowed_suffix("a.gz") is None


def test_stage_copies_good_files_under_safe_names_and_refuses_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good = src / "my papers.jsonl"
    good.write_text('{"title": "T", "abstract": "A"}\n')
    gz = src / "more.csv.gz"
    gz.write_bytes(gzip.compress(b"title,abstract\nT,A\n"))
    fake_gz = src / "fake.jsonl.gz"
    fake_gz.write_text("not gzip")
    binary = src / "blob.json"
    binary.write_bytes(b"\x00\x01\x02" * 10)
    exe = src / "tool.exe"
    exe.write_text("MZ")
    big = src / "big.csv"
    big.write_text("x" * 2000)
    utf16 = src / "refs.bib"
    utf16.write_bytes("@article{k, title={Café}, abstract={Naïve.}}\n".encode("utf-16"))
    staged = uploads.stage([str(p) for p in (good, gz, fake_gz, binary, exe, big, utf16)], tmp_path / "stage",
                           max_bytes=1000)
    assert sorted(staged.files.values()) == ["more.csv.gz", "my papers.jsonl", "refs.bib"]
    for path, shown in staged.files.items():  # the uploaded name (its bare ids' namespace), one directory each
        assert Path(path).parent.parent == tmp_path / "stage" and Path(path).name == shown
    assert Path(next(p for p, n in staged.files.items() if n == "my papers.jsonl")).read_text() == good.read_text()
    refused = "\n".join(staged.refused)
    for why in ("fake.jsonl.gz: not a gzip file", "blob.json: binary content", "tool.exe: unsupported file type",
                "big.csv: 0.0 MB is over"):
        assert why in refused


# --- rendering ---------------------------------------------------------------------------------

GROK = Source(n=1, paper_id="arxiv:2402.15555", title="Deep Networks Always Grok and Here is Why", score=0.03,
              text="Grokking, or delayed generalization, is a phenomenon.  It happens  long after training. <b>x</b>",
              url="https://arxiv.org/abs/2402.15555", authors="A. Humayun, R. Balestriero", year=2024,
              categories="cs.LG", dense=0.71)
OTHER = Source(n=2, paper_id="t:1", title="Pointer <Networks>", score=0.02, text="Ptr-Net.", url="javascript:alert(1)",
               dense=0.41)


def _answer(**kw: Any) -> Answer:
    base: dict[str, Any] = dict(question="q", answer="Grokking is delayed generalization [1].", abstained=False,
                                backend="extractive", sources=[GROK, OTHER], timings_ms={"retrieve": 12, "total": 20},
                                citations=[Citation(1, GROK.paper_id, GROK.title, GROK.url,
                                                    "It happens long after training.")])
    base.update(kw)
    return Answer(**base)


def test_answer_html_links_valid_markers_and_escapes() -> None:
    out = render.answer_html("See [1], [2, 3] and [9]. <script>x</script>", turn=4, valid=[1, 2, 3])
    assert '<a class="pc-cite" href="#pc-src-4-1"' in out
    assert 'href="#pc-src-4-2"' in out and 'href="#pc-src-4-3"' in out
    assert "[9]" in html.unescape(out) and "pc-src-4-9" not in out  # no such source: stays text
    assert "<script>" not in out and "<script>x</script>" in html.unescape(out)  # shown as text


@pytest.mark.parametrize("text,quotes,expected", [
    ("A b. C d.", ["C d."], "A b. <mark>C d.</mark>"),
    ("A  b\nc. D.", ["A b c."], "<mark>A  b\nc.</mark> D."),  # whitespace differs
    ("A b. C d.", ["nowhere"], "A b. C d."),
    ("x <y> z", ["<y>"], "x <mark>&lt;y&gt;</mark> z"),
    ("one two three", ["one two", "two three"], "<mark>one two three</mark>"),  # overlaps merge
    ("abc", [""], "abc"),
])
def test_highlight(text: str, quotes: list[str], expected: str) -> None:
    assert render.highlight(text, quotes) == expected


def test_sources_panel_lists_cited_then_uncited_with_highlight() -> None:
    out = render.sources_html(_answer(), turn=2)
    assert 'data-turn="2"' in out and 'id="pc-src-2-1"' in out and 'id="pc-src-2-2"' in out
    cited, rest = out.split("Retrieved, not cited")
    assert "Deep Networks Always Grok" in cited and "<mark>It happens  long after training.</mark>" in cited
    assert "A. Humayun, R. Balestriero · 2024 · cs.LG" in cited
    assert '<a href="https://arxiv.org/abs/2402.15555" target="_blank" rel="noopener noreferrer">' in cited
    assert "Pointer &lt;Networks&gt;" in rest and "javascript:" not in out  # unsafe link dropped
    assert "&lt;b&gt;x&lt;/b&gt;" in cited
    assert "pc-notice" not in out


def test_sources_panel_notices() -> None:
    abstained = render.sources_html(_answer(abstained=True, citations=[], answer="nothing"), 0)
    assert "pc-warn" in abstained and "No answer" in abstained and "Retrieved (2)" in abstained
    fell_back = render.sources_html(_answer(notice="The openai backend failed (timeout); showing the offline "
                                                   "extractive answer instead."), 0)
    assert "pc-error" in fell_back and "openai backend failed" in fell_back
    empty = render.sources_html(_answer(sources=[], citations=[], abstained=True), 0)
    assert "No paper matched" in empty


def test_stage_refuses_a_gzip_that_expands_too_far(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b" " * (5 << 20)))  # 5 MB of spaces in ~5 KB
    ok = tmp_path / "ok.jsonl.gz"
    ok.write_bytes(gzip.compress(b'{"title": "T", "abstract": "A"}\n'))
    staged = uploads.stage([str(bomb), str(ok)], tmp_path / "stage", max_expanded=4 << 20)
    assert list(staged.files.values()) == ["ok.jsonl.gz"]
    assert staged.refused == ["bomb.jsonl.gz: expands to more than 4 MB (the limit for uploads)"]


def test_discard_deletes_only_gradio_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    up = tmp_path / "gradio" / "abc123" / "papers.jsonl"
    up.parent.mkdir(parents=True)
    up.write_text("{}")
    mine = tmp_path / "elsewhere.jsonl"
    mine.write_text("{}")
    uploads.discard([str(up), str(mine)])
    assert not up.exists() and not up.parent.exists() and mine.exists()


def test_report_markdown_lists_warnings() -> None:
    rep = {"added": 1, "papers": 1, "rejected": [], "warnings": ["/tmp/x/000/refs.bib: not UTF-8: read as cp1252 "
                                                                 "(detected by charset-normalizer)"]}
    md = render.report_markdown(rep, {"/tmp/x/000/refs.bib": "refs.bib"})
    assert "warnings 1" in md and "refs.bib: not UTF-8: read as cp1252" in md and "/tmp/x" not in md


def test_report_markdown_shows_uploaded_names_not_staged_paths() -> None:
    rep = {"added": 1, "updated": 0, "unchanged": 2, "duplicates": 0, "papers": 66, "seconds": 0.5,
           "rejected": ["/tmp/x/upload-000.jsonl:2: malformed JSON (`bad`)"]}
    md = render.report_markdown(rep, {"/tmp/x/upload-000.jsonl": "my papers.jsonl"})
    assert "**added 1**" in md and "**66 papers**" in md
    assert "my papers.jsonl:2: malformed JSON" in md and "upload-000" not in md and "(`bad`)" not in md


def test_theme_uses_system_fonts_only() -> None:
    import gradio as gr

    from ui.app import theme

    t = theme()
    fonts = [*t._font, *t._font_mono]  # noqa: SLF001 - what the theme would load
    assert not any(isinstance(f, (gr.themes.GoogleFont, gr.themes.LocalFont)) for f in fonts)
    assert "googleapis" not in t._get_theme_css() and not getattr(t, "_stylesheets", [])  # noqa: SLF001


# --- the app over a fake engine, through gradio_client ----------------------------------------------


class FakeEngine:
    """Just enough of Paperchat for the UI; `fail=True` makes every answer raise."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.fail = False
        self.asked: list[tuple[str, Any, Any]] = []

    def answerer(self) -> Any:
        return object()

    def ask_stream(self, question: str, k: Any = None, filters: Any = None) -> Iterator[Any]:
        self.asked.append((question, k, filters))
        if self.fail:
            raise RuntimeError("model server exploded")
        yield "Grokking is delayed "
        yield "generalization [1]."
        yield _answer()

    def list_papers(self, query: str | None = "", limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        rows = [{"paper_id": GROK.paper_id, "title": GROK.title, "authors": GROK.authors, "year": 2024,
                 "date": "", "categories": "cs.LG", "url": GROK.url}]
        rows = [r for r in rows if (query or "").lower() in r["title"].lower()]
        return rows[offset: None if limit is None else offset + limit]

    def count_papers(self, query: str | None = None) -> int:
        return len(self.list_papers(query))

    def find_titles(self, text: str, limit: int) -> list[dict[str, Any]]:
        return self.list_papers(text, limit)

    def categories(self) -> list[str]:
        return ["cs.LG"]

    def example_questions(self, n: int = 3) -> list[str]:
        return [f'What does the paper "{GROK.title}" show?']

    def stats(self) -> dict[str, Any]:
        return {"papers": 1, "chunks": 1, "embedding_model": "m", "home": "/h", "chroma": "embedded",
                "collection": "papers", "llm": "extractive"}

    def check_llm(self, **kw: Any) -> tuple[bool, str]:
        return False, "nope"


@pytest.fixture
def served(network_guard: Any) -> Iterator[tuple[Any, FakeEngine]]:
    from gradio_client import Client

    from ui.app import build_app

    engine = FakeEngine()
    demo = build_app(engine)
    demo.queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False,
                share=False)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False), engine
    finally:
        demo.close()
    assert network_guard.outside() == []


def test_chat_endpoint_streams_and_renders(served: tuple[Any, FakeEngine]) -> None:
    client, engine = served
    chat, panel, box = client.predict("Why do networks grok?", 3, 2020, None, ["cs.LG"], [], api_name="/chat")
    final = chat[-1]["content"]
    text = final if isinstance(final, str) else " ".join(str(c.get("text", c)) for c in final)
    assert 'href="#pc-src-0-1"' in text and "<mark>" in panel and box == ""
    question, k, filters = engine.asked[-1]
    assert question == "Why do networks grok?" and k == 3
    assert filters.year_from == 2020 and filters.categories == ("cs.LG",)


def test_a_failing_engine_shows_an_error_and_the_app_keeps_serving(served: tuple[Any, FakeEngine]) -> None:
    client, engine = served
    engine.fail = True
    chat, panel, _ = client.predict("Why?", 5, None, None, [], [], api_name="/chat")
    assert "model server exploded" in str(chat[-1]["content"]) and "pc-error" in panel
    engine.fail = False
    chat, panel, _ = client.predict("Why?", 5, None, None, [], [], api_name="/chat")
    assert "<mark>" in panel


def test_unsupported_claims_are_dimmed_and_labelled_and_evidence_is_inert() -> None:
    from rag.types import Claim, Evidence, Quote

    claims = [Claim("Grokking is late.", [1], 0.9, True), Claim("The moon is <b>cheese</b>.", [], 0.1, False)]
    out = render.answer_html("Grokking is late [1]. The moon is <b>cheese</b>.", 0, [1], claims)
    assert '<span class="pc-unsupported" title="not found in the sources">The moon is &#60;b&#62;cheese' in out
    assert "&#40;not found in the sources&#41;" in out and 'href="#pc-src-0-1"' in out and "<b>" not in out
    ev = render.evidence_html(Evidence([Quote(1, "T <script>x</script>", "A [2] <img src=x> $x$.")]))
    assert "<script" not in ev and "<img" not in ev and "&#91;2&#93;" in ev and ev.startswith('<div class="pc-evidence">')


# --- the collection table and the paper picker at 75k papers --------------------------------------


class BigCollection:
    """75,000 papers behind list_papers/count_papers; records every page size asked for."""

    N = 75_000

    def __init__(self) -> None:
        self.limits: list[int | None] = []

    def _row(self, i: int) -> dict[str, Any]:
        return {"paper_id": f"arxiv:2401.{i:05d}", "title": f"Paper number {i:05d} on topic {i % 97}",
                "authors": "A. Author", "year": 2024, "date": "", "categories": "cs.LG", "url": None}

    def _ids(self, query: str | None) -> range | list[int]:
        q = (query or "").strip().lower()
        if not q:
            return range(self.N)
        return [i for i in range(self.N) if all(w in f"arxiv:2401.{i:05d} paper number {i:05d} on topic {i % 97}"
                                                for w in q.split())]

    def count_papers(self, query: str | None = None) -> int:
        return len(self._ids(query))

    def list_papers(self, query: str | None = "", limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        self.limits.append(limit)
        ids = self._ids(query)
        return [self._row(i) for i in ids[offset: None if limit is None else offset + limit]]

    def find_titles(self, text: str, limit: int) -> list[dict[str, Any]]:
        self.limits.append(limit)
        rows = (self._row(i) for i in range(self.N))
        return [r for r in rows if text.lower() in r["title"].lower()][:limit]


def test_collection_table_pages_on_the_server() -> None:
    from ui.app import PAGE, table_page

    big = BigCollection()
    rows, label, offset = table_page(big, "", 0)
    assert len(rows) == PAGE and offset == 0 and label == f"Papers 1–{PAGE} of 75,000"
    rows, label, offset = table_page(big, "", 74_990)  # past the last full page: the last page
    assert offset == 74_950 and len(rows) == 50 and label == "Papers 74,951–75,000 of 75,000"
    rows, label, _ = table_page(big, "number 01234", 0)
    assert [r[0] for r in rows] == ["arxiv:2401.01234"] and "of 1 matching" in label
    rows, label, _ = table_page(big, "no such paper", 0)
    assert label.startswith("No papers") and rows == [[""] * 5]
    assert None not in big.limits and max(x for x in big.limits if x is not None) <= PAGE  # never the whole table


def test_paper_picker_searches_as_you_type_and_keeps_the_selection() -> None:
    from ui.app import PICKER, picker_choices

    big = BigCollection()
    got = picker_choices(big, "Topic 5", ["arxiv:2401.00007"])
    assert got[0] == ("Paper number 00007 on topic 7 (2024)", "arxiv:2401.00007")  # the selection stays first
    # every offered paper is one the dropdown shows: its label contains the typed text (the dropdown's filter)
    assert len(got) == 1 + PICKER and all("topic 5" in name.lower() for name, _ in got[1:])
    assert None not in big.limits and max(x for x in big.limits if x is not None) <= PICKER
    assert picker_choices(big, "", None)[0] == ("Paper number 00000 on topic 0 (2024)", "arxiv:2401.00000")


def test_picker_label_keeps_what_was_typed_in_a_long_title() -> None:
    from ui.app import picker_label

    paper: dict[str, Any] = {"paper_id": "arxiv:1", "year": 2025, "title": "A" * 85 + " long title ending in Gaussian Splatting"}
    assert picker_label(paper) == paper["title"][:90] + " (2025)"
    assert picker_label(paper, "AAAA long") == paper["title"][:90] + " (2025)"
    assert picker_label(paper, "gaussian splat") == paper["title"] + " (2025)"  # past the cut: the whole title


def test_the_picker_searches_the_text_on_the_page_not_the_key_up_event() -> None:
    """Gradio 6.31 re-runs a deferred always_last call with the event data of the call that ended, so the
    picker's search must take the typed text from the page (js) and the event data must not be its input."""
    from ui.app import PICKER_TYPED_JS, build_app

    deps = [d for d in build_app(FakeEngine()).get_config_file()["dependencies"]
            if any(t[1] == "key_up" for t in d["targets"])]
    assert len(deps) == 1 and deps[0]["js"] == PICKER_TYPED_JS and deps[0]["trigger_mode"] == "always_last"
    assert "#pc-papers input" in PICKER_TYPED_JS and len(deps[0]["inputs"]) == 2


def test_year_fields_left_empty_or_zero_are_no_bound() -> None:
    from ingest.filters import Filters
    from ui.app import _filters

    assert _filters(0, 0, None, ["p1"]) == Filters(None, None, (), ("p1",))  # an opened, untouched Number sends 0
    assert _filters(2020, None, ["cs.LG"], None) == Filters(2020, None, ("cs.LG",), ())

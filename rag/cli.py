"""The `paperchat` command line: ingest, ask, chat, stats, doctor, serve, eval."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SETTING_FLAGS = {  # flag -> Settings field
    "--home": "home", "--collection": "collection", "--chroma-url": "chroma_url",
    "--llm": "llm", "--llm-base-url": "llm_base_url", "--llm-model": "llm_model", "--llm-gguf": "llm_gguf",
    "--llm-timeout": "llm_timeout", "--llm-temperature": "llm_temperature", "--llm-max-tokens": "llm_max_tokens",
    "--llm-context": "llm_context", "--llm-retries": "llm_retries",
    "--fusion": "fusion", "--min-relevance": "min_relevance",
    "--embed-base-url": "embed_base_url", "--embed-model": "embed_model",
}


def _common(p: argparse.ArgumentParser) -> None:
    for flag, field in SETTING_FLAGS.items():
        p.add_argument(flag, dest=f"set_{field}", default=None, help=f"setting {field} (env PAPERCHAT_{field.upper()})")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=None, help="papers to use (default PAPERCHAT_TOP_K)")
    p.add_argument("--year-from", type=int)
    p.add_argument("--year-to", type=int)
    p.add_argument("--category", action="append", default=[], help="keep papers in this category (repeatable)")
    p.add_argument("--paper", action="append", default=[], help="ask only these paper ids (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="paperchat", description="Ask questions of a collection of paper abstracts.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ingest", help="index files or directories of papers")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    _common(p)
    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question", nargs="?")
    p.add_argument("--questions", type=Path, help="file with one question per line (writes JSONL)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--stream", action="store_true")
    _filters(p)
    _common(p)
    p = sub.add_parser("chat", help="interactive chat in the terminal")
    _filters(p)
    _common(p)
    p = sub.add_parser("stats", help="where the index lives and what it holds")
    p.add_argument("--json", action="store_true")
    _common(p)
    p = sub.add_parser("doctor", help="check Chroma and BM25 agree; repair BM25 from Chroma")
    p.add_argument("--no-repair", action="store_true", help="only check; exit 1 when anything disagrees")
    _common(p)
    p = sub.add_parser("serve", help="serve the chat UI (indexes the sample collection if empty)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--no-auth", action="store_true", help="allow a non-loopback bind without auth")
    p.add_argument("--allow-settings", action="store_true",
                   help="let admins (PAPERCHAT_AUTH=name[admin]:password) change the answer backend in the UI")
    _common(p)
    p = sub.add_parser("eval", help="offline evaluation (retrieval, qa, compare)")
    p.add_argument("eval_args", nargs=argparse.REMAINDER)
    return ap


def _engine(args: argparse.Namespace) -> Any:
    from rag.engine import Paperchat

    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("set_") and v is not None}
    return Paperchat(**overrides)


def _filters_of(args: argparse.Namespace) -> Any:
    from ingest.lexical import Filters

    return Filters(args.year_from, args.year_to, tuple(args.category), tuple(args.paper))


def format_answer(ans: Any) -> str:
    """Answer text, then the numbered reference list."""
    lines = [ans.answer, "", format_refs(ans)]
    if ans.notice:
        lines.insert(0, f"[notice] {ans.notice}\n")
    return "\n".join(lines).rstrip()


def format_refs(ans: Any) -> str:
    """The numbered reference list of an answer, one cited paper per line."""
    return "\n".join(f"[{c.n}] {c.title}" + (f" <{c.url}>" if c.url else f" ({c.paper_id})") for c in ans.citations)


def print_stream(events: Any) -> Any:
    """Print an answer's text as it arrives, then its references; returns the final Answer.

    The live text carries the backend's own [n]; when the final numbering differs (markers renumbered
    or dropped), the final text is printed again so the references match what is shown last.
    """
    from rag.types import Answer

    final, streamed = None, []
    for ev in events:
        if isinstance(ev, Answer):
            final = ev
        else:
            streamed.append(ev)
            print(ev, end="", flush=True)
    print()
    if final is None:
        return None
    live = "".join(streamed)
    if final.answer.strip() not in live:
        print(f"\n(with final citation numbers)\n{final.answer}")
    if final.notice and final.notice not in live:
        print(f"\n[notice] {final.notice}")
    if final.citations:
        print("\n" + format_refs(final))
    return final


def cmd_ask(args: argparse.Namespace) -> int:
    pc = _engine(args)
    filters = _filters_of(args)
    if args.questions:
        for line in args.questions.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out = pc.ask(line, args.k, filters).to_dict()
                except ValueError as exc:  # e.g. a line over max_question_chars: reported, the rest still asked
                    out = {"question": line[:200], "error": str(exc)}
                print(json.dumps(out, ensure_ascii=False), flush=True)
        return 0
    if not args.question:
        print("paperchat ask: give a question or --questions FILE", file=sys.stderr)
        return 2
    if args.stream and not args.json:
        print_stream(pc.ask_stream(args.question, args.k, filters))
        return 0
    ans = pc.ask(args.question, args.k, filters)
    print(json.dumps(ans.to_dict(), ensure_ascii=False, indent=1) if args.json else format_answer(ans))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    pc = _engine(args)
    missing = [p for p in args.paths if not Path(p).exists()]
    report = pc.ingest(args.paths, progress=not args.quiet)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for r in report.rejected:
        print(f"rejected: {r}", file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.summary())
    nothing = report.added + report.updated + report.unchanged + report.duplicates == 0
    return 1 if missing or nothing else 0


def cmd_stats(args: argparse.Namespace) -> int:
    st = _engine(args).stats()
    print(json.dumps(st, indent=1) if args.json else "\n".join(f"{k:16} {v}" for k, v in st.items()))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check that Chroma and BM25 agree; rebuild BM25 from Chroma (the source of truth) when they do not."""
    from ingest.lexical import LexicalIndex
    from ingest.pipeline import check_collection, sync_lexical

    pc = _engine(args)
    s = pc.settings
    name = s.collection if not s.chroma_url else f"{s.collection}@server"  # as Paperchat.lexical names it
    lex = LexicalIndex(s.home / "bm25" / name)
    h = check_collection(pc.store, lex)
    print(f"chroma: {h.chroma_papers} papers, {h.chroma_chunks} chunks; bm25: {h.bm25_papers} papers, "
          f"{h.bm25_chunks} chunks")
    for p in h.problems:
        print(f"problem: {p}")
    if h.problems and not args.no_repair:
        sync_lexical(pc.store, lex)
        h = check_collection(pc.store, lex)
        print("repaired: BM25 rebuilt from Chroma" + ("" if not h.problems else "; still: " + "; ".join(h.problems)))
    if h.incomplete:
        print(f"problem: {len(h.incomplete)} papers have chunks from an interrupted update "
              f"({', '.join(h.incomplete[:5])}); re-ingest their files to repair")
    print(f"ok: {h.chroma_papers} papers, {h.chroma_chunks} chunks" if h.ok else "not ok")
    return 0 if h.ok else 1


def cmd_chat(args: argparse.Namespace) -> int:
    from rag.chat import ChatSession

    session = ChatSession(_engine(args), k=args.k, filters=_filters_of(args))
    print("paperchat chat: ask about your papers (empty line or Ctrl-D to quit)")
    while True:
        try:
            q = input("> ").strip()
        except EOFError:
            break
        if not q:
            break
        print_stream(session.ask_stream(q))
        print()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "eval":
            from eval.cli import main as eval_main

            return eval_main(args.eval_args)
        if args.cmd == "serve":
            from ui.app import serve

            return serve(_engine(args), host=args.host, port=args.port, no_auth=args.no_auth,
                         allow_settings=args.allow_settings)
        return {"ask": cmd_ask, "ingest": cmd_ingest, "stats": cmd_stats, "doctor": cmd_doctor,
                "chat": cmd_chat}[args.cmd](args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"paperchat: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

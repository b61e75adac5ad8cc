"""The `paperchat` command line: ingest, ask, chat, stats, doctor; plus plugin commands (serve, eval).

The core imports no face: `serve` (ui) and `eval` (eval) register themselves in the entry-point group
`paperchat.commands` (pyproject.toml) and are loaded only when invoked, the way simonw/llm finds plugins.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

PLUGIN_GROUP = "paperchat.commands"
# Used only when no distribution declares the group (running from a source tree that was never installed).
FALLBACK_PLUGINS = {"serve": "ui.cli:main", "eval": "eval.cli:main"}

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


CORE_COMMANDS = ("ingest", "ask", "chat", "stats", "doctor")


def build_parser(plugins: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; `plugins` (default: the installed ones) adds their subcommands."""
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
    for name, target in (plugin_commands() if plugins is None else plugins).items():
        p = sub.add_parser(name, help=f"(plugin {target}; `paperchat {name} --help` for its options)", add_help=False)
        p.add_argument("plugin_args", nargs=argparse.REMAINDER)
    return ap


def plugin_commands() -> dict[str, str]:
    """Subcommand name -> "module:function(argv) -> int", from installed entry points (else the fallback)."""
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=PLUGIN_GROUP)}
    return found or dict(FALLBACK_PLUGINS)


def run_plugin(target: str, argv: list[str]) -> int:
    module, _, func = target.partition(":")
    return int(getattr(importlib.import_module(module), func or "main")(argv))


def add_setting_flags(p: argparse.ArgumentParser) -> None:
    """The settings flags every command takes (--home, --llm, ...); for plugin commands."""
    _common(p)


def engine_from_args(args: argparse.Namespace) -> Any:
    """A Paperchat from the settings flags of `args` (for plugin commands)."""
    return _engine(args)


def _engine(args: argparse.Namespace) -> Any:
    from rag.engine import Paperchat

    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("set_") and v is not None}
    return Paperchat(**overrides)


def _filters_of(args: argparse.Namespace) -> Any:
    from ingest.filters import Filters

    return Filters(args.year_from, args.year_to, tuple(args.category), tuple(args.paper))


NOT_FOUND = "(not found in the sources)"


def display_text(ans: Any, color: bool = False) -> str:
    """The answer text with each unsupported claim dimmed (on a terminal) and labelled as not found."""
    text = ans.answer
    for c in getattr(ans, "claims", []):
        if not c.supported and c.text and c.text in text:
            shown = f"\033[2m{c.text}\033[0m" if color else c.text
            text = text.replace(c.text, f"{shown} {NOT_FOUND}", 1)
    return text


def _tty() -> bool:
    return sys.stdout.isatty()


def format_answer(ans: Any, color: bool = False) -> str:
    """Answer text (unsupported claims marked), then the numbered reference list (or, abstained, the closest papers)."""
    lines = [display_text(ans, color), "", format_refs(ans) or format_closest(ans)]
    if ans.notice:
        lines.insert(0, f"[notice] {ans.notice}\n")
    return "\n".join(lines).rstrip()


def format_closest(ans: Any, n: int = 3) -> str:
    """For an abstained answer, the papers retrieved closest, and how to ask one of them anyway."""
    if not ans.abstained or not ans.sources:
        return ""
    rows = [f"  {s.title} (--paper {s.paper_id})" for s in ans.sources[:n]]
    return "Closest papers (not close enough to answer from; add --paper ID to ask one anyway):\n" + "\n".join(rows)


def format_refs(ans: Any) -> str:
    """The numbered reference list of an answer, one cited paper per line."""
    return "\n".join(f"[{c.n}] {c.title}" + (f" <{c.url}>" if c.url else f" ({c.paper_id})") for c in ans.citations)


def print_stream(events: Any) -> Any:
    """Print an answer's text as it arrives, then its references; returns the final Answer.

    The live text carries the backend's own [n]; when the final numbering differs (markers renumbered
    or dropped), the final text is printed again so the references match what is shown last.
    """
    from rag.types import Answer, Evidence

    final, streamed = None, []
    for ev in events:
        if isinstance(ev, Evidence):
            if ev.quotes:  # shown at once, while the model reads and writes
                print("Evidence (the answer follows):\n" + ev.text() + "\n", flush=True)
        elif isinstance(ev, Answer):
            final = ev
        else:
            streamed.append(ev)
            print(ev, end="", flush=True)
    print()
    if final is None:
        return None
    live = "".join(streamed)
    if any(not c.supported for c in final.claims):
        print(f"\n(checked against the sources)\n{display_text(final, _tty())}")
    elif final.answer.strip() not in live:
        print(f"\n(with final citation numbers)\n{final.answer}")
    if final.notice and final.notice not in live:
        print(f"\n[notice] {final.notice}")
    if final.citations or final.abstained and final.sources:
        print("\n" + (format_refs(final) or format_closest(final)))
    return final


def cmd_ask(args: argparse.Namespace) -> int:
    pc = _engine(args)
    filters = _filters_of(args)
    if args.questions:
        for line in args.questions.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out = pc.ask(line, args.k, filters).to_dict()
                except ValueError as exc:  # a bad question is reported on its line; the rest are still asked
                    out = {"question": line[:200], "error": str(exc)}
                print(json.dumps(out, ensure_ascii=False), flush=True)
        return 0
    if not args.question:
        print("paperchat ask: give a question or --questions FILE", file=sys.stderr)
        return 2
    if args.question.strip() and pc.count_papers() == 0:  # (an empty question is reported as such first)
        print(f"paperchat: {pc.empty_message()}", file=sys.stderr)
        return 1
    if args.stream and not args.json:
        print_stream(pc.ask_stream(args.question, args.k, filters))
        return 0
    ans = pc.ask(args.question, args.k, filters)
    print(json.dumps(ans.to_dict(), ensure_ascii=False, indent=1) if args.json else format_answer(ans, _tty()))
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
    """Check that Chroma and the lexical index agree; rebuild the lexical index from Chroma when they do not."""
    pc = _engine(args)
    h = pc.health()
    print(f"{pc.collection.location()}")
    print(f"chroma: {h.chroma_papers} papers, {h.chroma_chunks} chunks; lexical: {h.lexical_papers} papers, "
          f"{h.lexical_chunks} chunks")
    for p in h.problems:
        print(f"problem: {p}")
    for n in h.notes:
        print(f"note: {n}")
    if h.problems and not args.no_repair and pc.collection.exists():
        h = pc.repair()
        print("repaired: lexical index brought in line with Chroma" + ("" if not h.problems else "; still: " + "; ".join(h.problems)))
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
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # a core command needs no entry-point scan (~35 ms of CPU per scan; `paperchat ask` is started often)
        plugins = {} if argv and argv[0] in CORE_COMMANDS else plugin_commands()
        if argv and argv[0] in plugins:
            return run_plugin(plugins[argv[0]], argv[1:])
        args = build_parser(plugins).parse_args(argv)
        return {"ask": cmd_ask, "ingest": cmd_ingest, "stats": cmd_stats, "doctor": cmd_doctor,
                "chat": cmd_chat}[args.cmd](args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"paperchat: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

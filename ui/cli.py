"""`paperchat serve`: a plugin command (entry point `paperchat.commands`), so the core never imports the UI."""

from __future__ import annotations

import argparse

from rag.cli import add_setting_flags, engine_from_args


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="paperchat serve",
                                description="serve the chat UI (indexes the sample collection if empty)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--no-auth", action="store_true", help="allow a non-loopback bind without auth")
    p.add_argument("--allow-settings", action="store_true",
                   help="let admins (PAPERCHAT_AUTH=name[admin]:password) change the answer backend in the UI")
    add_setting_flags(p)
    args = p.parse_args(argv)
    from ui.app import serve

    return int(serve(engine_from_args(args), host=args.host, port=args.port, no_auth=args.no_auth,
                     allow_settings=args.allow_settings))

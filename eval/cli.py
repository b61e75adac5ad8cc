"""`paperchat eval ...`: each subcommand lives in its own module with add_arguments() and run()."""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS = {  # name -> module with add_arguments(parser) and run(args) -> int
    "retrieval": "eval.retrieval",
    "qa": "eval.qa",
    "compare": "eval.compare",
}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="paperchat eval")
    sub = ap.add_subparsers(dest="sub", required=True)
    for name, mod in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue  # a subcommand whose module is not installed
        p = sub.add_parser(name)
        p.set_defaults(_module=mod)
        module.add_arguments(p)
    args = ap.parse_args(argv)
    return int(importlib.import_module(args._module).run(args))

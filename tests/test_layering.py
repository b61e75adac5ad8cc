"""The core imports no face: nothing under ingest/ imports rag, ui or eval; nothing under rag/ imports ui or eval.

Checked with the standard library's `ast` over every import statement, including ones inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

FORBIDDEN = {"ingest": {"rag", "ui", "eval"}, "rag": {"ui", "eval"}}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_core_imports_no_face(package: str) -> None:
    bad = [f"{p.relative_to(ROOT)}:{line}: imports {mod}"
           for p in sorted((ROOT / package).rglob("*.py"))
           for line, mod in imported_packages(p) if mod in FORBIDDEN[package]]
    assert bad == []


def test_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from ui.app import serve\n    import eval.cli\n")
    assert imported_packages(f) == [(2, "ui"), (3, "eval")]

"""Misleading-error fixes: unknown PAPERCHAT_* variables, unvalidated overrides, a missing or empty collection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.cli import main
from rag.engine import Paperchat
from rag.settings import Settings, check_env, known_env


def test_unknown_env_var_is_an_error_naming_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERCHAT_TOPK", "3")
    with pytest.raises(ValueError, match="unknown environment variable PAPERCHAT_TOPK; valid: .*PAPERCHAT_TOP_K"):
        Settings()


@pytest.mark.parametrize("var", ["PAPERCHAT_AUTH", "PAPERCHAT_TEST_SEED", "PAPERCHAT_TOP_K", "PAPERCHAT_LLM_GGUF"])
def test_known_and_exempt_env_vars_pass(var: str) -> None:
    check_env({var: "x"})
    assert "PAPERCHAT_HOME" in known_env()


def test_cli_reports_unknown_env_var(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PAPERCHAT_HOEM", "/tmp/x")
    assert main(["stats"]) == 2
    assert "unknown environment variable PAPERCHAT_HOEM" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [{"top_k": 0}, {"fusion": "bogus"}, {"llm": "gpt"}, {"no_such_field": 1}])
def test_overrides_are_validated(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Paperchat(home=tmp_path, **bad)
    with pytest.raises(ValueError):
        Paperchat(Settings(home=tmp_path), **bad)


def test_overrides_keep_the_implied_backend(tmp_path: Path) -> None:
    pc = Paperchat(Settings(home=tmp_path, llm_base_url="http://127.0.0.1:9/v1"), top_k=3)
    assert (pc.settings.llm, pc.settings.top_k) == ("openai", 3)


def test_missing_collection_is_named_and_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The relative default home, used from another directory, says where it looked and creates nothing."""
    monkeypatch.delenv("PAPERCHAT_HOME")
    monkeypatch.chdir(tmp_path)
    ans = Paperchat().ask("What is grokking?")
    where = str(tmp_path / ".paperchat")
    assert ans.abstained and where in ans.answer and "does not exist" in ans.answer
    assert main(["ask", "What is grokking?"]) == 1
    assert where in capsys.readouterr().err
    assert main(["stats", "--json"]) == 0
    assert not (tmp_path / ".paperchat").exists(), "a reader must not create an empty index"
    assert os.listdir(tmp_path) == []


def test_empty_collection_says_so(tmp_path: Path) -> None:
    pc = Paperchat(home=tmp_path / "h")
    pc.ingest([])  # creates the (empty) collection
    ans = pc.ask("What is grokking?")
    assert ans.abstained and "is empty" in ans.answer and str((tmp_path / "h").resolve()) in ans.answer

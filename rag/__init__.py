"""paperchat's query engine and public Python API.

    from rag import Paperchat
    pc = Paperchat()                      # embedded index under ./.paperchat (PAPERCHAT_HOME)
    pc.ingest(["data/sample"])
    ans = pc.ask("Why does grokking happen?")
    print(ans.answer, ans.citations)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Paperchat", "Answer", "Citation", "Source", "Settings", "Filters"]

if TYPE_CHECKING:
    from ingest.filters import Filters
    from rag.engine import Paperchat
    from rag.settings import Settings
    from rag.types import Answer, Citation, Source


def __getattr__(name: str) -> Any:  # lazy: `import rag` stays cheap for the CLI
    if name == "Paperchat":
        from rag.engine import Paperchat
        return Paperchat
    if name in ("Answer", "Citation", "Source"):
        import rag.types as t
        return getattr(t, name)
    if name == "Settings":
        from rag.settings import Settings
        return Settings
    if name == "Filters":
        from ingest.filters import Filters
        return Filters
    raise AttributeError(name)

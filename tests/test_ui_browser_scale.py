"""The UI over a big collection in a real browser (issue 15): skipped unless PAPERCHAT_TEST_BIG_HOME names one.

    PAPERCHAT_TEST_BIG_HOME=/tmp/scale75/home PAPERCHAT_TEST_BIG_CACHE=/tmp/scale75/cache \\
    PAPERCHAT_TEST_BIG_TITLE="..." python -m pytest -q -s tests/test_ui_browser_scale.py

Opens the collection tab, pages, searches the table for a title, picks that paper by typing in the picker,
asks a question restricted to it and gets an answer citing only it; each step is timed and written to
test-artifacts/ui-scale-timings.json. The title's paper needs real vectors (the relevance gate reads the
dense cosine): with `eval.scale --vectors recycled`, one of the add100 stage's papers (" (new)"), with a title
short enough (under 90 characters with " (new)") that its picker option differs from its original's.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, Served, ask, need_chromium, open_page, page_search_pick_ask

pytestmark = pytest.mark.slow

BIG_HOME = os.environ.get("PAPERCHAT_TEST_BIG_HOME", "")


def pick_title(home: Path) -> str:
    """The paper to look for: PAPERCHAT_TEST_BIG_TITLE, else the middle paper of the title-sorted table."""
    from ingest.collection import Collection

    col = Collection(home)
    return os.environ.get("PAPERCHAT_TEST_BIG_TITLE") or str(col.list_papers("", limit=1, offset=col.count_papers() // 2)[0]["title"])


@pytest.mark.skipif(not BIG_HOME, reason="PAPERCHAT_TEST_BIG_HOME does not name a big collection")
def test_big_collection_pages_searches_and_restricts_a_question(browser: Any, tmp_path: Path, cache_dir: Path) -> None:
    need_chromium()
    home = Path(BIG_HOME)
    from ingest.collection import Collection

    total = Collection(home).count_papers()
    title = pick_title(home)
    words = [w for w in title.replace("(", " ").replace(")", " ").split() if len(w) > 3]
    typed = " ".join(title.split()[:3])  # the dropdown shows options whose label contains what was typed
    cache = os.environ.get("PAPERCHAT_TEST_BIG_CACHE") or str(cache_dir)
    t = time.perf_counter()
    served = Served(tmp_path, cache_dir, [], extra_env={"PAPERCHAT_HOME": str(home), "PAPERCHAT_CACHE_DIR": cache})
    times = {"serve_up_s": round(time.perf_counter() - t, 2)}
    try:
        t = time.perf_counter()
        page = open_page(browser, served)
        times["page_load_s"] = round(time.perf_counter() - t, 2)
        times.update(page_search_pick_ask(page, total, " ".join(words[:4]), title, typed,
                                          f"What does the paper {title} show?", 0, shot="ui-scale-picker"))
        t = time.perf_counter()  # the first answer paid the server's cold start (Chroma, query model): a second one
        ask(page, f"Which method does {title} propose?", 1)
        times["restricted_answer_again_s"] = round(time.perf_counter() - t, 2)
        page.context.close()
    finally:
        served.stop("serve-scale.log")
    out = {"papers": total, "title": title, "seconds": times}
    (ARTIFACTS / "ui-scale-timings.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nUI at {total:,} papers: {times}")

"""Structured output: a JSON schema that makes every answer sentence carry citation numbers from the valid set.

    {"sentences": [{"text": "Grokking is delayed generalization.", "cites": [1]}, ...]}

`cites` is an array of at least one integer from an `enum` of the numbers of the sources the model was shown,
so a server that enforces the schema (llama.cpp `json_schema`, OpenAI structured outputs, vLLM guided
decoding, Ollama `format`; all take OpenAI's `response_format`) cannot produce an uncited sentence or a
number that names no source. The stream is turned back into ordinary answer text ("... [1].") as it
arrives, so callers see the same text deltas as in free-text mode.

A server that rejects `response_format` is asked again in free text (once), and remembered (per base URL)
so later questions go straight to free text. A server that ignores it and answers in prose is passed through.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rag.verify import with_markers

MAX_SENTENCES = 5
_rejected: set[str] = set()  # base URLs whose server rejected response_format


def remember_rejected(base_url: str | None) -> None:
    _rejected.add(base_url or "openai")


def is_rejected(base_url: str | None) -> bool:
    return (base_url or "openai") in _rejected


def answer_schema(valid: list[int], max_sentences: int = MAX_SENTENCES) -> dict[str, Any]:
    """The JSON schema of a cited answer whose citation numbers come from `valid`."""
    return {
        "type": "object",
        "properties": {"sentences": {
            "type": "array", "minItems": 1, "maxItems": max_sentences,
            "items": {"type": "object",
                      "properties": {"text": {"type": "string"},
                                     "cites": {"type": "array", "minItems": 1, "maxItems": 3,
                                               "items": {"type": "integer", "enum": sorted(set(valid))}}},
                      "required": ["text", "cites"], "additionalProperties": False}}},
        "required": ["sentences"], "additionalProperties": False,
    }


def response_format(valid: list[int]) -> dict[str, Any]:
    """OpenAI's `response_format` for the schema (also understood by llama.cpp, vLLM and Ollama)."""
    return {"type": "json_schema", "json_schema": {"name": "cited_answer", "strict": True, "schema": answer_schema(valid)}}


def as_json(answer_text: str) -> str:
    """A free-text answer with `[n]` markers written as the schema's JSON (for the prompt's worked example)."""
    from rag.verify import split_claims

    items, pending = [], ""
    for text, nums, _ in split_claims(answer_text):
        if not nums:  # "Yes." joins the sentence after it: every object must cite
            pending = f"{pending} {text}".strip()
            continue
        items.append({"text": f"{pending} {text}".strip(), "cites": nums})
        pending = ""
    return json.dumps({"sentences": items})


SYSTEM_SUFFIX = """
Reply in JSON: {"sentences": [{"text": "<one sentence>", "cites": [<source numbers>]}]}, one object per \
sentence, each citing the numbers of the sources that state it."""

_ITEM = re.compile(r'\{\s*"text"\s*:\s*"((?:[^"\\]|\\.)*)("?)\s*(?:,\s*"cites"\s*:\s*\[([^\]]*)(\]?))?')


def _decode(partial: str) -> str:
    """A JSON string body decoded, tolerating an escape sequence cut at the end."""
    for cut in range(0, 7):
        try:
            return str(json.loads('"' + partial[: len(partial) - cut] + '"'))
        except json.JSONDecodeError:
            continue
    return ""


def _nums(group: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", group or "")]


def render(buf: str, final: bool = False) -> str:
    """Answer text for the (possibly partial) JSON in `buf`: each sentence with its `[n]` before its final
    punctuation. While a sentence's citations have not arrived, its trailing punctuation is held back, so
    the rendering of a growing buffer only ever grows."""
    out: list[str] = []
    for m in _ITEM.finditer(buf):
        text = " ".join(_decode(m.group(1)).split())
        closed = m.group(4) == "]"
        if closed or final:
            out.append(with_markers(text, _nums(m.group(3))))
        else:
            out.append(text.rstrip(".!?:; "))
            break  # nothing after an unfinished sentence
    return " ".join(x for x in out if x)


class StreamRenderer:
    """Turns streamed JSON deltas into answer-text deltas (prose is passed through unchanged)."""

    def __init__(self) -> None:
        self.buf = ""
        self.sent = ""
        self.prose: bool | None = None

    def feed(self, delta: str) -> str:
        self.buf += delta
        if self.prose is None:
            head = self.buf.lstrip()
            if not head:
                return ""
            self.prose = not head.startswith("{")
        if self.prose:
            self.sent += delta
            return delta
        return self._advance(render(self.buf))

    def finish(self) -> str:
        """The rest of the text once the stream ended (a cut-off sentence is kept with what it has)."""
        if self.prose:
            return ""
        return self._advance(render(self.buf, final=True))

    def _advance(self, text: str) -> str:
        if text.startswith(self.sent):
            new, self.sent = text[len(self.sent):], text
            return new
        return ""

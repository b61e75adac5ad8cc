"""Answerers: question + numbered sources in, text with `[n]` markers out (streamed as deltas)."""

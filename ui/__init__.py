"""The Gradio chat UI: a thin face over rag's Python API."""

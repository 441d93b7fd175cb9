# swapwizard: the two commands of the README's quick start, and their set-up.
#   make wizard [WS=path]   create the environment if needed, then open the wizard
#   make test               create the environment if needed, then run the whole test suite
#   make test-fast          the tests that start no process and train nothing (pytest -m "not slow")
#   make docs               serve the documentation site (mkdocs) at http://127.0.0.1:8000
#   make docs-build         build it as CI does (--strict: a broken link fails)
#   make browser            install Debian's Chromium for the browser test (root; CI does this)
#
# TORCH picks the PyTorch build. The default is the CPU build this kind of machine keeps on disk;
# on a GPU server choose a CUDA build, for example:
#   make wizard TORCH=torch TORCH_INDEX=<the PyTorch CUDA wheel index for your CUDA version>
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
WS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.swapwizard-installed

.PHONY: wizard test test-fast lint docs docs-build browser env clean-env

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

wizard: $(STAMP)
	$(BIN)/swapwizard $(WS)

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

docs-build: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .site

# Debian's own Chromium (no browser download at test time); tests/tui/test_browser_page.py skips without it.
browser:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

lint: $(STAMP)
	$(BIN)/ruff check engine tui tests
	$(BIN)/lint-imports

clean-env:
	rm -rf $(VENV)

# swapwizard: the two commands of the README's quick start, and their set-up.
#   make wizard [WS=path]   create the environment if needed, then open the wizard
#   make test               create the environment if needed, then run the whole test suite
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

.PHONY: wizard test lint env clean-env

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

lint: $(STAMP)
	$(BIN)/ruff check engine tui tests
	$(BIN)/lint-imports

clean-env:
	rm -rf $(VENV)

# The two README commands, `make demo` and `make test`, install everything they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# This machine's pip config names local wheel folders that may be absent; hide only that noise.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: demo test test-fast lint format schema bench clean install

install: $(STAMP)

# Reinstall only when the dependency list changes; the package itself is editable.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing rtml and its dependencies into $(VENV) (first run takes a few minutes)..."
	@$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | $(QUIET_PIP)
	@touch $(STAMP)

# Train and promote the demo models, then serve them on 127.0.0.1:8000 until Ctrl-C.
demo: $(STAMP)
	$(BIN)/rtml demo
	$(BIN)/rtml serve --example

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not integration" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache

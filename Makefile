# The two commands of the README, and the set-up they share.
#   make book   execute the notebooks whose executed copy is missing or stale, render the HTML
#   make test   the whole test suite (smoke profile)
#   make test-colab   the Colab install in a fresh venv (minutes; not part of make test)
# Both create .venv and install into it on first use (and again when the pins change).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The offline data mirror beside the repository, when there is one (CI, this project's machines).
SHARED_DATA := $(abspath ../shared/data)
export NB_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: book test test-colab venv lint freeze clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# ALL=1 re-executes every notebook; PROFILE=cpu|gpu forces a profile (default: auto).
book: venv
	$(BIN)/python -m helpers.run $(if $(ALL),--all) $(if $(PROFILE),--profile $(PROFILE))
	$(BIN)/python -m helpers.book
	@echo "open _build/html/index.html"

test: venv
	NB_PROFILE=smoke $(BIN)/python -m pytest $(PYTEST_ARGS)

# The Colab path: a fresh venv with Colab's packages, the install cell, one section (minutes).
test-colab: venv
	NB_PROFILE=smoke $(BIN)/python -m pytest -m colab tests/test_colab_install.py $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests notebooks

# After upgrading a package in .venv: write the exact pins back to requirements.txt.
freeze: venv
	{ sed -n '/^#/p' requirements.txt; $(BIN)/python -m pip freeze --exclude-editable \
	  | sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/'; } > requirements.tmp
	mv requirements.tmp requirements.txt

clean:
	rm -rf _build .cache

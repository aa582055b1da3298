# moqwk developer tasks. `make help` lists them.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-k pareto -x"
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint typecheck bench clean distclean

help:
	@echo "make venv       create $(VENV) and pip install -e .[dev] (again when pyproject.toml changes)"
	@echo "make test       pytest; starts a throwaway PostgreSQL unless MOQWK_TEST_POSTGRES_URL is set"
	@echo "make demo       run moqwk demo"
	@echo "make lint       ruff check moqwk tests benchmarks"
	@echo "make typecheck  mypy moqwk, then mypy --explicit-package-bases benchmarks"
	@echo "make bench      run each benchmarks/*.py"
	@echo "make clean      remove caches and build output (keeps $(VENV); distclean removes it too)"

venv: $(STAMP)

# Re-installs only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@

demo: venv
	$(BIN)/moqwk demo

# Exit code is pytest's. scripts/with-pg stops the server even when tests fail.
test: venv
	bash scripts/with-pg $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check moqwk tests benchmarks

# benchmarks/ has no __init__.py: without --explicit-package-bases mypy finds whole_pipeline.py
# both as "whole_pipeline" and as "benchmarks.whole_pipeline" (their imports of each other).
typecheck: venv
	$(BIN)/mypy moqwk
	$(BIN)/mypy --explicit-package-bases benchmarks

# Runs benchmarks/*.py one at a time (files starting with _ are helpers); stops at the first failure.
bench: venv
	@found=0; for f in benchmarks/*.py; do \
	    case "$${f##*/}" in _*) continue ;; esac; \
	    [ -f "$$f" ] || continue; \
	    found=1; echo "== $$f"; \
	    $(BIN)/python "$$f" || exit $$?; \
	done; \
	[ $$found = 1 ] || echo "no benchmarks in benchmarks/"

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

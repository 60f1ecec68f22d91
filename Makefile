# One entry point for every check, locally and in CI (.ci/run calls `make check` and `make test`).
# `make demo` and `make test` bootstrap themselves: they create .venv and install the project whenever it
# is missing or pyproject.toml has changed since the last install. The demo needs only the runtime
# dependencies; tests, checks and benchmarks add the development and benchmark extras.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
RUN    := $(VENV)/.installed-run
DEV    := $(VENV)/.installed-dev

.PHONY: demo test check bench fmt clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "chargeflow needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

$(RUN): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $(RUN)

$(DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@touch $(DEV) $(RUN)

demo: $(RUN)
	$(VENV)/bin/chargeflow demo

test: $(DEV)
	$(PY) -m pytest

check: $(DEV)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(DEV)
	$(VENV)/bin/chargeflow bench allocate --evs 1000 --strategy all
	$(VENV)/bin/chargeflow bench allocate --evs 2000 --strategy all

fmt: $(DEV)
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/ruff check --fix src tests

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache

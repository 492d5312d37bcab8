# Osiris developer entry points. `make test` works on a fresh machine: it builds .venv itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-sqlite test-postgresql demo bench lint fmt venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The whole suite on the embedded engine (SQLite), then the server's suites again on a real,
# throwaway PostgreSQL (tests/conftest.py: --db-engine). Both must pass.
PG_SUITES ?= tests/server tests/security

test: test-sqlite test-postgresql

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-postgresql: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --db-engine=postgresql $(PG_SUITES)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

demo: $(STAMP)
	$(BIN)/osiris demo

clean:
	rm -rf $(VENV) build *.egg-info

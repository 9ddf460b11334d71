# The two commands a newcomer needs: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck bench drills drills-short demo migrate clean

$(BIN)/dutyline: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("dutyline needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(BIN)/dutyline

## make run: install, migrate, load the Beijing units and the demo, serve on http://$(HOST):$(PORT) with the simulator on
run: $(BIN)/dutyline
	$(BIN)/dutyline demo
	DUTYLINE_SIMULATOR=on $(BIN)/dutyline serve --host $(HOST) --port $(PORT)

## make test: the whole suite (SQLite by default; set TEST_DATABASE_URL for PostgreSQL)
test: $(BIN)/dutyline
	$(BIN)/python -m pytest -q

lint: $(BIN)/dutyline
	$(BIN)/ruff check $(wildcard app tests bench drills)
	$(BIN)/ruff format --check $(wildcard app tests bench drills)

# Strict mypy over the app and its tests, benchmarks and drills (bench/ and drills/ are scripts, not packages).
typecheck: $(BIN)/dutyline
	$(BIN)/mypy --explicit-package-bases $(wildcard app tests bench drills)

migrate: $(BIN)/dutyline
	$(BIN)/dutyline migrate

demo: $(BIN)/dutyline
	$(BIN)/dutyline demo

bench: $(BIN)/dutyline
	@for b in $(wildcard bench/bench_*.py); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## make drills: the reliability drills on the local PostgreSQL (docs/reliability.md); DRILLS_DATABASE_URL to change it
drills: $(BIN)/dutyline
	$(BIN)/python drills/drills.py

## make drills-short: the small versions of the same drills (a few minutes; what CI runs)
drills-short: $(BIN)/dutyline
	$(BIN)/python drills/drills.py --short

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache *.egg-info

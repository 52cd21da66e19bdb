# `make run` and `make test` each build .venv on first use (only python3 is needed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
CONFIG ?= config.example.toml

.PHONY: run test lint format worker bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot serve --config $(CONFIG)

worker: $(STAMP)
	$(BIN)/python -m bot worker --config $(CONFIG)

test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(BENCH_STAMP): $(STAMP) setup.cfg
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Every scenario on SQLite (and PostgreSQL when reachable), short runs: a few minutes.
# Longer, steadier numbers: make bench BENCH_ARGS="--duration 10 --warmup 2 --rounds 5"
BENCH_ARGS ?= --duration 3 --warmup 1 --rounds 3

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data/*.db* *.egg-info

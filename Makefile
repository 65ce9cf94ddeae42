# Nimbus: `make run` starts the platform, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench bench-quick engine

install:
	@scripts/install.sh

run: install
	$(BIN)/nimbus serve

test:
	@scripts/test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m bench

bench-quick: install
	$(BIN)/python -m bench --quick

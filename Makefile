# Nimbus: `make run` starts the platform, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench bench-quick engine

install:
	@scripts/install.sh

# Native functions use the engine `make engine` started, when there is one.
LOCAL_ENGINE := $(CURDIR)/.cache/docker/docker.sock

run: install
	$(if $(wildcard $(LOCAL_ENGINE)),DOCKER_HOST=$${DOCKER_HOST:-unix://$(LOCAL_ENGINE)}) \
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

# A local Docker engine for native functions (own network namespace, no registry)
# and the runtime image; prints DOCKER_HOST=…  `scripts/engine.sh stop` stops it.
engine: install
	@scripts/engine.sh start

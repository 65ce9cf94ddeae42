# Nimbus: `make run` starts the platform, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench bench-quick engine image image-full soak

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

# The server image (Containerfile) on the local engine, with no registry: a debootstrap
# base, a wheelhouse and the runtimes built here (scripts/image/offline.sh; cached).
# With a network, `docker build -f Containerfile -t nimbus:latest .` builds the same image.
image: install
	@scripts/engine.sh start >/dev/null
	@DOCKER_HOST=$$(scripts/engine.sh env | cut -d= -f2-) scripts/image/offline.sh

# The same with the C, Go and Rust toolchains baked in (nimbus:full).
image-full: install
	@scripts/engine.sh start >/dev/null
	@DOCKER_HOST=$$(scripts/engine.sh env | cut -d= -f2-) scripts/image/offline.sh --full

soak: install  ## 10 minutes at 80 % of the measured maximum: nothing fails, workers do not grow
	NIMBUS_SOAK_SECONDS=600 .venv/bin/pytest -q -p no:cacheprovider tests/e2e/test_soak.py

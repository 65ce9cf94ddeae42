#!/usr/bin/env bash
# Build the shared Python runtime once per machine (idempotent: a second run
# with nothing changed returns at once). See scripts/runtimes/python_runtime.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python scripts/runtimes/python_runtime.py "$@"

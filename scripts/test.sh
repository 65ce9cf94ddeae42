#!/usr/bin/env bash
# `make test`: install everything, then lint and run the whole suite, timing each phase.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -a phases=()
phase() {
    local name=$1; shift
    local start=$SECONDS status=0
    echo "==> $name"
    "$@" || status=$?
    phases+=("$(printf '%-10s %5ds%s' "$name" $((SECONDS - start)) "$( ((status)) && echo "  FAILED ($status)")")")
    return "$status"
}
report() {
    echo "==> phase timings"
    printf '    %s\n' "${phases[@]}"
}
trap report EXIT

phase install scripts/install.sh
phase lint bash -c '.venv/bin/ruff check . && .venv/bin/ruff format --check .'
# pytest exits 5 when it collects no tests: that fails this script too.
phase pytest .venv/bin/pytest -p no:cacheprovider --durations=15 "$@"

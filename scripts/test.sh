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
# The local Docker engine native functions run in: started before pytest (a
# missing engine fails the run, never skips tests) and stopped at exit when
# this script started it.
engine_started=0
cleanup() {
    report
    if ((engine_started)); then scripts/engine.sh stop; fi
}
trap cleanup EXIT

phase install scripts/install.sh
phase browser scripts/browser.sh
scripts/engine.sh status || engine_started=1
phase engine scripts/engine.sh start
export "$(scripts/engine.sh env)"
phase lint bash -c '.venv/bin/ruff check . && .venv/bin/ruff format --check .'
# pytest exits 5 when it collects no tests: that fails this script too.
phase pytest .venv/bin/pytest -p no:cacheprovider --durations=15 "$@"

#!/usr/bin/env bash
# Idempotent set-up shared by `make run` and `make test`: a repo-local virtual
# environment with the server and dev extras, and the few Debian packages the
# tests and benchmarks use. A second run with nothing changed takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.installed
want=$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)

if [[ ! -x $VENV/bin/python ]]; then
    echo "==> creating virtual environment in $VENV"
    python3 -m venv "$VENV"
fi
if [[ ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then
    echo "==> installing Python dependencies (server + dev extras)"
    "$VENV/bin/pip" install --progress-bar on -e '.[server,dev]'
    echo "$want" > "$STAMP"
fi

# Debian packages: wrk (benchmark load generator); bubblewrap (the build jail); docker.io, busybox-static, gcc,
# libc6-dev, iproute2 (native functions: the local engine of `make engine`, its
# runtime image, the static test binaries); debootstrap (the base of `make image`).
installed() {
    if command -v dpkg-query >/dev/null; then
        dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q "ok installed"
    else
        command -v "$1" >/dev/null 2>&1
    fi
}
missing=()
for pkg in wrk bubblewrap docker.io busybox-static gcc libc6-dev iproute2 debootstrap; do
    installed "$pkg" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "==> installing Debian packages: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    else
        echo "warning: missing ${missing[*]}; install them with your package manager" >&2
    fi
fi

# The sandbox's native lanes (sandbox/_native/lane.c): guarded guest calls without a
# Python thread's GIL hand-offs. Without a C compiler the sandbox uses Python threads.
if command -v cc >/dev/null; then
    scripts/native-lanes.sh || echo "warning: native lanes not built; Python threads serve" >&2
fi

# Compiled languages (C, Go, Rust): each toolchain installed by its
# scripts/toolchains/<language>.sh under .cache/toolchains, and its compiler
# cache warmed (~3-5 min the first time; a second run takes a second).
"$VENV/bin/python" -m compiler install-toolchains

# Python functions: the shared runtime component and its stdlib, built and
# precompiled once per machine under .cache/runtimes (~2-3 min the first time).
scripts/runtimes/python.sh
# JavaScript functions: componentize-js and esbuild from npm, and the shared
# SpiderMonkey runtime component built and precompiled once (~2-4 min the first time).
scripts/runtimes/javascript.sh
# The web console: npm packages and an esbuild bundle into console/static (~5 s the first time).
scripts/console.sh
# What tests/deploy validates deploy/ with: Compose v2, promtool and nginx, into .cache/bin (~10 s once).
scripts/deploy-tools.sh

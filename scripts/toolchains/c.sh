#!/usr/bin/env bash
# Installs the C toolchain: zig, whose `zig cc` is clang with wasi-libc for
# wasm32-wasi, from PyPI's `ziglang` wheel. See _pip.sh for the layout and
# usage; the build stage runs this lazily on the first C build, and
# `make install` runs it up front.
set -euo pipefail
NAME=zig
VERSION=0.17.1
PACKAGE=ziglang
CHECK="ziglang/zig version"
source "$(dirname "$0")/_pip.sh"

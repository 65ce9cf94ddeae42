#!/usr/bin/env bash
# Chromium for the console's browser tests (tests/console), driven by Playwright through
# Debian's /usr/bin/chromium: Playwright's own browser download cannot work offline.
# Only `make test` needs it. Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "==> installing Debian's chromium (browser tests of the web console)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
else
    echo "error: chromium is missing; install it with your package manager" >&2
    exit 1
fi

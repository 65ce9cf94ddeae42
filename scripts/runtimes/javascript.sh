#!/usr/bin/env bash
# Install the JavaScript runtime's npm packages (componentize-js, esbuild) and
# build the shared JavaScript runtime once per machine. Idempotent: a second
# run with nothing changed returns at once. See runtimes/javascript/build.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=runtimes/javascript
STAMP=$DIR/node_modules/.nimbus-installed
want=$(sha256sum "$DIR/package-lock.json" | cut -c1-16)

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm (Node.js ≥ 18) is needed for the JavaScript runtime" >&2
    exit 1
fi
if [[ ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then
    echo "==> installing the JavaScript runtime's npm packages (componentize-js, esbuild)"
    # NOTE: --ignore-scripts: no package's install script runs; esbuild's binary
    # comes from its platform package, which needs none. `npm install` with the
    # lockfile rather than `npm ci`: npm 11 here refuses `ci` for lockfiles that
    # lack other platforms' optional packages (some are not on the registry).
    (cd "$DIR" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$want" > "$STAMP"
fi
exec .venv/bin/python "$DIR/build.py" "$@"

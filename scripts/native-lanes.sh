#!/usr/bin/env bash
# Build the sandbox's native lanes: sandbox/_native/lane.c → liblane.so.
#
#   scripts/native-lanes.sh [OUT]       OUT: default sandbox/_native/liblane.so
#
# Guarded guest calls then run on native threads, without a Python thread's GIL
# hand-offs (sandbox/_lanes.py); without the library the sandbox uses Python threads.
# Rebuilt only when lane.c is newer than OUT. Needs a C compiler (`cc`). Used by
# scripts/install.sh, and by the image build for the image's venv (scripts/image/).
set -euo pipefail
cd "$(dirname "$0")/.."
source=sandbox/_native/lane.c
out=${1:-sandbox/_native/liblane.so}
if [[ -f $out && ! $source -nt $out ]]; then
    exit 0
fi
echo "==> building $out" >&2
cc -O2 -Wall -shared -fPIC -pthread -o "$out.tmp" "$source"
mv "$out.tmp" "$out"

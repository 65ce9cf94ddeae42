#!/usr/bin/env bash
# Build the sandbox's native helpers: sandbox/_native/{lane,module,logs}.c → liblane.so.
#
#   scripts/native-lanes.sh [OUT]       OUT: default sandbox/_native/liblane.so
#
# Guarded guest calls then run on native threads, without a Python thread's GIL
# hand-offs (sandbox/_lanes.py), and a command module's run and fd_write need no Python
# (sandbox/_module.py), nor a component's log (sandbox/_logs.py); without the library
# the sandbox does all three in Python.
# Rebuilt only when a source is newer than OUT. Needs a C compiler (`cc`). Used by
# scripts/install.sh, and by the image build for the image's venv (scripts/image/).
set -euo pipefail
cd "$(dirname "$0")/.."
sources=(sandbox/_native/lane.c sandbox/_native/module.c sandbox/_native/logs.c)
out=${1:-sandbox/_native/liblane.so}
stale=0
for source in "${sources[@]}"; do
    [[ -f $out && ! $source -nt $out ]] || stale=1
done
if [[ $stale == 0 ]]; then
    exit 0
fi
echo "==> building $out" >&2
cc -O2 -Wall -shared -fPIC -pthread -o "$out.tmp" "${sources[@]}"
mv "$out.tmp" "$out"

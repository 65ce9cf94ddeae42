#!/bin/sh
# Build examples/native/hello: a static x86-64 Linux binary (gcc; Debian's build-essential).
set -eu
here=$(dirname "$0")
gcc -O2 -static -o "$here/hello" "$here/hello.c"
echo "$here/hello"

#!/usr/bin/env bash
# Build the server image with no registry reachable from the engine (`make image`).
#
#   scripts/image/offline.sh [--full]      prints the image's name: nimbus:latest (nimbus:full)
#
# The Containerfile as a user builds it, with what the engine cannot fetch made
# on the host: the base (scripts/image/base.sh: debootstrap + docker import),
# a wheelhouse (`pip wheel` of the server and its dependencies, installed in the
# image with `pip install --no-index`), the shared runtimes this machine built
# (scripts/runtimes/*.sh), the sandbox's native lanes compiled here (this host's
# Debian release is the base's) and, with --full, its C/Go/Rust toolchains. They ride
# in the build context under .image/, which scripts/image/builder.sh uses
# instead of building them again.
#
# Cached: the image is labelled with a hash of its inputs (every file of the
# checkout git does not ignore, the runtimes, the base, the toolchains) and
# left alone while that matches (~1 s); the dependency wheelhouse is kept under
# .cache/image/ keyed on pyproject.toml (older ones are deleted after a build).
# Needs: DOCKER_HOST (scripts/engine.sh env), the runtimes built (make install), cc.
set -euo pipefail
cd "$(dirname "$0")/../.."

toolchains=()
IMAGE=nimbus:latest
if [[ ${1:-} == --full ]]; then
    toolchains=(c go rust)
    IMAGE=nimbus:full
fi
CACHE=.cache/image
PY=.venv/bin/python
started=$SECONDS
say() { echo "==> [image $((SECONDS - started))s] $*" >&2; }

base=$(scripts/image/base.sh "${toolchains[@]}")
mapfile -t runtime_files < <("$PY" scripts/image/runtime_files.py)
toolchain_dirs=()
for language in "${toolchains[@]}"; do
    dir=$(TOOLCHAINS_DIR=.cache/toolchains bash "scripts/toolchains/$language.sh" --print-dir)
    [[ -f $dir/.nimbus-installed ]] || { echo "error: $dir is not installed (make install)" >&2; exit 1; }
    toolchain_dirs+=("$dir")
done

# Sources: what the image is built from (not tests/, bench/, docs/), as git sees them
# (tracked, plus new files it does not ignore), as they are on disk.
SOURCES=(Containerfile .dockerignore pyproject.toml README.md store compiler sandbox gateway
         console cli wit scripts runtimes examples)
mapfile -t sources < <(git ls-files -co --exclude-standard -- "${SOURCES[@]}" \
    | while read -r f; do [[ -f $f ]] && echo "$f"; done)
inputs=$( {
    printf '%s\n' "${sources[@]}" | xargs -d '\n' sha256sum
    echo "$base ${toolchains[*]} ${toolchain_dirs[*]}"
    printf '%s\n' "${runtime_files[@]}"
    cat console/static/BUILT 2>/dev/null || echo "no console"
    "$PY" -c 'import sys; print(sys.version)'
} | sha256sum | cut -c1-16)

if [[ $(docker image inspect --format '{{index .Config.Labels "nimbus.inputs"}}' "$IMAGE" \
        2>/dev/null) == "$inputs" ]]; then
    say "$IMAGE is up to date ($inputs)"
    echo "$IMAGE"
    exit 0
fi

mkdir -p "$CACHE"
ctx=$(mktemp -d "$CACHE/.context-XXXXXX")
trap 'rm -rf "$ctx"' EXIT
printf '%s\n' "${sources[@]}" | tar -cf - -T - | tar -C "$ctx" -xf -

wheel_key=$(cat pyproject.toml | sha256sum | cut -c1-16)
deps=$CACHE/wheelhouse-$wheel_key
if [[ ! -d $deps ]]; then
    say "wheelhouse: pip wheel of the server's dependencies (once per pyproject.toml)"
    "$PY" -m pip wheel --quiet --progress-bar off --wheel-dir "$deps.partial" "$ctx[server,image]"
    rm -f "$deps.partial"/nimbus-*.whl
    mv "$deps.partial" "$deps"
fi
say "wheelhouse: the nimbus wheel of this checkout"
mkdir -p "$ctx/.image/wheelhouse" "$ctx/console"
cp -a console/static "$ctx/console/static"  # package data, built by scripts/console.sh
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$ctx/.image/wheelhouse" "$ctx"
rm -rf "$ctx/build" "$ctx"/*.egg-info "$ctx/console/static"
cp -al "$deps"/. "$ctx/.image/wheelhouse/"

say "runtimes: ${runtime_files[*]:0:2}"
"$PY" scripts/image/runtime_files.py "$ctx/.image/runtimes"
cp -al runtimes/javascript/node_modules/@esbuild "$ctx/.image/esbuild"
scripts/native-lanes.sh "$ctx/.image/liblane.so"
if (( ${#toolchains[@]} )); then
    say "toolchains: ${toolchain_dirs[*]}"
    mkdir -p "$ctx/.image/toolchains"
    cp -al "${toolchain_dirs[@]}" .cache/toolchains/caches "$ctx/.image/toolchains/"
fi

say "docker build -f Containerfile (base $base; context $(du -sh "$ctx" | cut -f1))"
# NOTE(image): the engine has no BuildKit client here (no buildx): the classic builder.
if ! DOCKER_BUILDKIT=0 docker build --file Containerfile \
        --build-arg "BASE=$base" --build-arg "TOOLCHAINS=${toolchains[*]}" \
        --label "nimbus.inputs=$inputs" --tag "$IMAGE" "$ctx" > "$CACHE/build.log" 2>&1; then
    tail -30 "$CACHE/build.log" >&2
    echo "error: docker build failed; the whole log is $CACHE/build.log" >&2
    exit 1
fi
docker image prune --force --filter "label=nimbus.inputs" >/dev/null  # earlier builds, untagged
# Wheelhouses of other pyproject.toml versions (~120 MB each; the checkouts sharing this
# .cache rebuild theirs when needed), and half-made ones an hour old (not a build running now).
find "$CACHE" -mindepth 1 -maxdepth 1 -name 'wheelhouse-*' ! -name "wheelhouse-$wheel_key" \
    \( ! -name '*.partial' -o -mmin +60 \) -exec rm -rf {} +
say "$IMAGE built: $(docker image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec)"
echo "$IMAGE"

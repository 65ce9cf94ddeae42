#!/usr/bin/env bash
# The offline build's base image: Debian bookworm made with debootstrap and `docker import`ed.
#
#   scripts/image/base.sh [TOOLCHAINS...]     prints the image's name (nimbus-base:<inputs>)
#
# The local engine reaches no registry, so the Containerfile's usual base
# (python:3.11-slim-bookworm) cannot be pulled. This one is a minimal bookworm
# root filesystem with Debian's python3 (3.11) and python3-venv, plus the
# packages scripts/image/system-packages.sh lists for TOOLCHAINS, so the
# Containerfile's own apt step finds nothing missing. debootstrap fetches from
# Debian's archive (DEBIAN_MIRROR, default: debootstrap's own) on the host.
#
# Cached: the image is labelled with a hash of its inputs (this script, the
# package list, the suite) and left alone while that matches; the root
# filesystem tarball is kept under .cache/image/ so a fresh engine re-imports
# it in seconds instead of bootstrapping again (~2 min).
# Needs: root, debootstrap, DOCKER_HOST (scripts/engine.sh env).
set -euo pipefail
cd "$(dirname "$0")/../.."

SUITE=bookworm
mapfile -t extra < <(scripts/image/system-packages.sh --list "$@")
packages=(python3 python3-venv "${extra[@]}")
# RECIPE names how the root filesystem is made: bump it when the debootstrap or
# clean-up steps below change (edits elsewhere in this script need no rebuild).
RECIPE=2
inputs=$( { echo "$RECIPE $SUITE"; printf '%s\n' "${packages[@]}"; } | sha256sum | cut -c1-16)
IMAGE=nimbus-base:$inputs
CACHE=.cache/image
TARBALL=$CACHE/base-$inputs.tar

say() { echo "==> $*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE"
    exit 0
fi
started=$SECONDS
mkdir -p "$CACHE"
if [[ ! -f $TARBALL ]]; then
    # debootstrap lives in /usr/sbin, which a non-login shell's PATH may leave out.
    PATH=$PATH:/usr/sbin:/sbin
    if ! command -v debootstrap >/dev/null; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            say "installing debootstrap"
            apt-get update -q >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
        else
            echo "error: debootstrap is missing; install it (Debian: apt-get install debootstrap)" >&2
            exit 1
        fi
    fi
    work=$(mktemp -d "$CACHE/.base-XXXXXX")
    trap 'rm -rf "$work"' EXIT
    say "base image: debootstrap $SUITE with ${packages[*]} (~2-3 min, once)"
    include=$(IFS=,; echo "${packages[*]}")
    debootstrap --variant=minbase --include="$include" "$SUITE" "$work/root" \
        ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} > "$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # What an image never needs: downloaded .debs, package lists, docs, manuals, locales.
    rm -rf "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/cache/apt/*.bin \
        "$work"/root/var/lib/apt/lists/* "$work"/root/usr/share/{doc,man,info,locale}/* \
        "$work"/root/tmp/* "$work"/root/var/log/*
    tar -C "$work/root" --numeric-owner -cf "$TARBALL.partial" .
    mv "$TARBALL.partial" "$TARBALL"
    # Bases made from other inputs are never used again: keep only this one.
    find "$CACHE" -maxdepth 1 -name 'base-*.tar*' ! -name "base-$inputs.tar" -delete
fi
say "base image: importing $(du -h "$TARBALL" | cut -f1) as $IMAGE"
docker import --change 'CMD ["/bin/bash"]' --change "LABEL nimbus.inputs=$inputs" \
    "$TARBALL" "$IMAGE" >/dev/null
say "base image $IMAGE ready in $((SECONDS - started)) s"
echo "$IMAGE"

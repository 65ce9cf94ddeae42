#!/usr/bin/env bash
# The local Docker engine that runs native functions (`make engine`).
#
#   scripts/engine.sh start    install if needed, start (or reuse) the engine, build the
#                              runtime image, print DOCKER_HOST=…
#   scripts/engine.sh stop     stop the engine this script started (by its pidfile's PID)
#   scripts/engine.sh status   exit 0 when the engine answers
#   scripts/engine.sh env      print DOCKER_HOST=… only
#
# dockerd runs in its own network namespace (`unshare -n`: it can reach no
# network, so no registry, and opens no port), with no bridge, no iptables
# rules and no forwarding; it is reached only through a unix socket. Its
# socket, data, exec root, pidfile and log all live under $NIMBUS_ENGINE_DIR
# (default .cache/docker). The storage driver is overlay2, or vfs where
# overlay2 does not start.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${NIMBUS_ENGINE_DIR:-} ]]; then
    # NOTE(engine): unix socket paths (dockerd's, containerd's under the exec
    # root) must stay under 108 bytes; a clone in a deep folder keeps its
    # engine under /tmp, reached through the .cache/docker symlink.
    if [[ ! -e .cache/docker && $(realpath -m .cache/docker | wc -c) -gt 48 ]]; then
        short=/tmp/nimbus-engine-$(realpath -m . | sha256sum | cut -c1-8)
        mkdir -p .cache "$short"
        ln -sfn "$short" .cache/docker
    elif [[ -L .cache/docker && ! -e .cache/docker ]]; then
        mkdir -p "$(readlink .cache/docker)"  # its /tmp folder went with a reboot
    fi
fi
ENGINE_DIR=$(realpath -m "${NIMBUS_ENGINE_DIR:-.cache/docker}")
SOCK=$ENGINE_DIR/docker.sock
PIDFILE=$ENGINE_DIR/dockerd.pid
LOG=$ENGINE_DIR/dockerd.log
export DOCKER_HOST=unix://$SOCK

say() { echo "==> $*" >&2; }

answers() {
    [[ -S $SOCK ]] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

engine_pid() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_engine() {
    command -v dockerd >/dev/null && command -v unshare >/dev/null && command -v ip >/dev/null \
        && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "error: dockerd is missing; install docker.io (Debian) or Docker Engine" >&2
        exit 1
    fi
    say "installing the Docker engine (docker.io)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io util-linux iproute2
}

launch() {  # $1: storage driver
    local driver=$1
    mkdir -p "$ENGINE_DIR/data" "$ENGINE_DIR/exec"
    chmod 700 "$ENGINE_DIR"
    rm -f "$SOCK" "$PIDFILE"
    # NOTE(engine): `unshare -n` gives dockerd (and the containerd it starts) a
    # network namespace with only a loopback device: containers get network
    # mode none anyway, and nothing the engine does can reach out or listen.
    setsid unshare -n sh -c 'ip link set lo up; exec "$@"' sh \
        dockerd \
        --host="unix://$SOCK" \
        --data-root="$ENGINE_DIR/data" \
        --exec-root="$ENGINE_DIR/exec" \
        --pidfile="$PIDFILE" \
        --storage-driver="$driver" \
        --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --bridge=none \
        --userland-proxy=false \
        --log-level=warn \
        </dev/null >>"$LOG" 2>&1 &
    local waited=0
    until answers; do
        if ! kill -0 $! 2>/dev/null; then
            return 1
        fi
        sleep 0.2
        waited=$((waited + 1))
        if ((waited > 150)); then  # 30 s
            echo "error: dockerd did not answer within 30 s; see $LOG" >&2
            stop_engine
            return 1
        fi
    done
}

start_engine() {
    if answers; then
        say "engine already running (pid $(engine_pid || echo '?'), $SOCK)"
        return 0
    fi
    if pid=$(engine_pid); then
        say "a dockerd (pid $pid) holds $PIDFILE but does not answer; stopping it"
        stop_engine
    fi
    install_engine
    local started=$SECONDS
    say "starting dockerd in its own network namespace ($ENGINE_DIR)"
    if ! launch overlay2; then
        say "overlay2 did not start (see $LOG); trying vfs"
        launch vfs || { echo "error: dockerd did not start; see $LOG" >&2; exit 1; }
    fi
    say "engine up in $((SECONDS - started)) s: $(docker info --format '{{.ServerVersion}}, {{.Driver}}')"
}

stop_engine() {
    local pid
    if ! pid=$(engine_pid); then
        say "no engine running from $ENGINE_DIR"
        return 0
    fi
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; return 0; }
        sleep 0.2
    done
    say "dockerd (pid $pid) did not stop within 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
}

case ${1:-start} in
    start)
        start_engine
        scripts/runtime-image.sh
        echo "DOCKER_HOST=$DOCKER_HOST"
        ;;
    stop) stop_engine ;;
    status) answers ;;
    env) echo "DOCKER_HOST=$DOCKER_HOST" ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac

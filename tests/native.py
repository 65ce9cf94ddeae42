"""Native test functions (C, built with `gcc -static`) and the local Docker engine for tests.

The engine is the one `make engine` runs (scripts/engine.sh, idempotent):
`scripts/test.sh` starts it and exports DOCKER_HOST; a test run without
DOCKER_HOST starts it here. An engine that cannot start fails the tests —
never a skip.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINE_SCRIPT = REPO / "scripts" / "engine.sh"

_PRELUDE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0; char *buf = malloc(cap); ssize_t r;
    while ((r = read(0, buf + n, cap - n)) > 0) {
        n += (size_t)r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    *len = n; return buf;
}
"""

SOURCES: dict[str, str] = {
    # stdin → stdout: the event comes back as the result.
    "echo": r"""
int main(void) { size_t n; char *b = read_stdin(&n); fwrite(b, 1, n, stdout); return 0; }
""",
    # argv[0], the environment (NIMBUS_CONTEXT apart), the user and the working
    # directory, as JSON.
    "introspect": r"""
extern char **environ;
int main(int argc, char **argv) {
    size_t n; read_stdin(&n);
    char cwd[256]; if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
    const char *context = getenv("NIMBUS_CONTEXT");
    printf("{\"argv0\":\"%s\",\"argc\":%d,\"uid\":%d,\"cwd\":\"%s\",\"context\":%s,\"env\":[",
           argv[0], argc, (int)getuid(), cwd, context ? context : "null");
    int first = 1;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "NIMBUS_CONTEXT=", 15) == 0) continue;
        printf("%s\"%s\"", first ? "" : ",", *e);
        first = 0;
    }
    printf("]}");
    return 0;
}
""",
    # The handler glue's way to fail: a log line, then the error record on stderr.
    "reporter": r"""
int main(void) {
    fprintf(stderr, "before the error\n");
    fprintf(stderr, "\n\x1e{\"type\":\"ValueError\",\"message\":\"bad input\","
                    "\"stack\":[\"handler.c:3\"]}\n");
    return 1;
}
""",
    # A function error: a log line and exit status 3.
    "fail": r"""
int main(void) { fprintf(stderr, "something broke\n"); printf("partial"); return 3; }
""",
    # Text that is not JSON.
    "text": r"""int main(void) { printf("plain words"); return 0; }""",
    "segfault": r"""int main(void) { volatile int *p = 0; return *p; }""",
    "fork_bomb": r"""int main(void) { for (;;) fork(); }""",
    "memory_bomb": r"""
int main(void) {
    for (;;) { char *p = malloc(1 << 20); if (!p) { fprintf(stderr, "malloc failed\n"); return 9; }
               memset(p, 1, 1 << 20); }
}
""",
    "spin": r"""int main(void) { for (;;) {} }""",
    "sleepy": r"""int main(void) { fprintf(stderr, "going to sleep\n"); fflush(stderr);
                                   sleep(60); printf("{}"); return 0; }""",
    # Tries to write where it must not: the root, its own binary, /etc.
    "write_root": r"""
int main(void) {
    const char *paths[] = {"/hacked", "/function", "/etc/passwd", "/usr/bin/hacked"};
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        int fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) { fprintf(stderr, "%s: %s\n", paths[i], strerror(errno)); failures++; }
        else close(fd);
    }
    if (failures == 4) { fprintf(stderr, "no write outside /tmp\n"); return 1; }
    printf("{\"wrote\":%d}", 4 - failures);
    return 0;
}
""",
    # Opens a TCP connection (and tries loopback too).
    "tcp": r"""
#include <arpa/inet.h>
#include <sys/socket.h>
int try(const char *ip, int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) { fprintf(stderr, "socket: %s\n", strerror(errno)); return -1; }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    if (r != 0) fprintf(stderr, "connect %s:%d: %s\n", ip, port, strerror(errno));
    close(s); return r;
}
int main(void) {
    int outside = try("1.1.1.1", 80), loopback = try("127.0.0.1", 8080);
    if (outside == 0 || loopback == 0) { printf("{\"connected\":true}"); return 0; }
    return 2;
}
""",
    # 8 MB of output: over the 6 MB result cap.
    "flood": r"""
int main(void) { static char b[1 << 16]; memset(b, 'x', sizeof b);
                 for (int i = 0; i < 128; i++) fwrite(b, 1, sizeof b, stdout); return 0; }
""",
    # 3 MB of log and a small result: the log is cut at 1 MB with a note.
    "chatty": r"""
int main(void) { static char b[1 << 16]; memset(b, 'l', sizeof b);
                 for (int i = 0; i < 48; i++) fwrite(b, 1, sizeof b, stderr);
                 printf("{\"ok\":true}"); return 0; }
""",
    # Leaves a process behind, a file in /tmp, in /dev/shm and in /dev/mqueue (the engine's
    # writable mounts) and System V IPC objects; says whether it found any from an
    # earlier call.
    "leftovers": r"""
#include <dirent.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
static int had(const char *path) {
    int found = access(path, F_OK) == 0, fd = open(path, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0) close(fd);
    return found;
}
int main(void) {
    int others = 0; DIR *d = opendir("/proc"); struct dirent *e;
    while ((e = readdir(d))) {
        int pid = atoi(e->d_name); if (pid > 1 && pid != getpid()) others++;
    }
    closedir(d);
    int had_file = had("/tmp/marker"), had_shm = had("/dev/shm/marker");
    int had_mqueue = had("/dev/mqueue/marker");
    int had_sysv = shmget(0x4e494d42, 0, 0) >= 0 || semget(0x4e494d43, 0, 0) >= 0
                   || msgget(0x4e494d44, 0) >= 0;
    shmget(0x4e494d42, 4096, IPC_CREAT | 0600); semget(0x4e494d43, 1, IPC_CREAT | 0600);
    msgget(0x4e494d44, IPC_CREAT | 0600);
    if (fork() == 0) { setsid(); close(1); close(2); sleep(600); _exit(0); }
    printf("{\"other_processes\":%d,\"had_file\":%s,\"had_shm\":%s,\"had_mqueue\":%s,"
           "\"had_sysv\":%s}", others, had_file ? "true" : "false", had_shm ? "true" : "false",
           had_mqueue ? "true" : "false", had_sysv ? "true" : "false");
    return 0;
}
""",
    # Tries to take the agent down, gain privileges or leave the container's limits.
    "escape": r"""
#include <signal.h>
#include <sys/ptrace.h>
int main(void) {
    int kill_agent = kill(1, SIGKILL), setuid_root = setuid(0);
    long trace = ptrace(PTRACE_ATTACH, 1, 0, 0);
    int trace_errno = errno;
    int environ_fd = open("/proc/1/environ", O_RDONLY);
    char status[4096] = {0}; int fd = open("/proc/self/status", O_RDONLY);
    read(fd, status, sizeof status - 1); close(fd);
    char *cap = strstr(status, "CapEff:");
    char capeff[32] = "?"; if (cap) sscanf(cap, "CapEff: %31s", capeff);
    printf("{\"kill_agent\":%d,\"setuid_root\":%d,\"ptrace\":%ld,\"ptrace_errno\":%d,"
           "\"agent_environ_readable\":%s,\"capeff\":\"%s\"}",
           kill_agent, setuid_root, trace, trace_errno, environ_fd >= 0 ? "true" : "false", capeff);
    return 0;
}
""",
}

# A C program linked dynamically against glibc: the runtime image has glibc.
DYNAMIC = {"dynamic_echo": SOURCES["echo"]}


def build(name: str, out_dir: Path, *, static: bool = True) -> Path:
    """Compile `SOURCES[name]` (or `DYNAMIC[name]`) with gcc; cached by source hash."""
    source = _PRELUDE + (SOURCES.get(name) or DYNAMIC[name])
    digest = hashlib.sha256(f"{static}\n{source}".encode()).hexdigest()[:12]
    out = out_dir / f"{name}-{digest}"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / f"{name}-{digest}.c"
    src.write_text(source)
    cmd = ["gcc", "-O2", "-w", *(["-static"] if static else []), "-o", str(out), str(src)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return out


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def engine_host() -> str:
    """DOCKER_HOST of a running local engine (with the runtime image), starting it if needed."""
    if os.environ.get("DOCKER_HOST"):
        # The engine is shared by checkouts: make its runtime image this checkout's agent
        # (idempotent, ~0.2 s when it is; another checkout may have rebuilt it from theirs).
        subprocess.run(
            [str(REPO / "scripts" / "runtime-image.sh")],
            capture_output=True,
            timeout=300,
            cwd=REPO,
            check=True,
        )
        return os.environ["DOCKER_HOST"]
    out = subprocess.run(
        [str(ENGINE_SCRIPT), "start"], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/engine.sh start failed:\n{out.stderr[-3000:]}")
    line = [x for x in out.stdout.splitlines() if x.startswith("DOCKER_HOST=")][-1]
    return line.split("=", 1)[1]

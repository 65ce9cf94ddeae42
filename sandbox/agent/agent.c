/*
 * nimbus-agent: PID 1 of a native function's warm container.
 *
 * The gateway worker listens on a unix socket in a directory bind-mounted
 * read-only at /run/nimbus; the agent connects once at start, says hello
 * with the token it was given, receives the function's argv[0] and
 * environment, then serves calls one at a time over that one connection:
 *
 *   host  -> agent  'C' u32 len, argv0 NUL (KEY=VALUE NUL)*        once
 *   host  -> agent  'Q' u32 timeout_ms u32 out_limit u32 log_limit
 *                       u32 context_len u32 event_len,
 *                       context JSON, event bytes                 per call
 *   agent -> host   'O' u32 len, stdout bytes | 'E' u32 len, stderr bytes
 *                   ... then 'R' u32 status i32 code u32 duration_us
 *                       u32 flags u32 log_dropped                 per call
 *
 * Integers are little-endian. Each call runs /function in a new session,
 * with stdin/stdout/stderr on pipes, cwd /tmp and exactly the function's
 * environment plus NIMBUS_CONTEXT (the call's context JSON, as WASM commands
 * get it; it wins over a function variable of that name), at nice 10. When it ends (or at the deadline, or when its stdout
 * passes out_limit) every other process in the container is killed and reaped and
 * /tmp is emptied, so the next call starts clean. A closed connection ends
 * the agent, and with it the container.
 *
 * The agent runs as the same unprivileged user as the function, with no
 * capabilities; PR_SET_DUMPABLE 0 keeps the function from ptracing it or
 * reading its /proc files, and as PID 1 it ignores signals it has no handler
 * for. Built with `gcc -static` by scripts/runtime-image.sh.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Keep in step with sandbox/_docker_agent.py AGENT_VERSION. */
#define NIMBUS_AGENT_VERSION "2"

#define SOCKET_PATH "/run/nimbus/host.sock"
#define FUNCTION_PATH "/function"
#define WORK_DIR "/tmp"
#define CHUNK 65536
#define CONTEXT_VAR "NIMBUS_CONTEXT="
#define MAX_CONTEXT (1u << 20)

enum { ST_EXITED = 0, ST_SIGNALED = 1, ST_TIMEOUT = 2, ST_TOO_LARGE = 3, ST_MEMORY = 4,
       ST_SPAWN_FAILED = 5 };
enum { FL_DIRTY = 1 }; /* leftovers could not be cleaned: retire this container */

static int host = -1;
static char **fn_argv;
static char **fn_envp;  /* the function's variables, then one slot for NIMBUS_CONTEXT */
static size_t fn_envc;
static char buf[CHUNK];

static void die(const char *what) {
    /* Nobody reads the agent's stderr (the container has no log driver); the
     * host sees the closed connection. */
    perror(what);
    _exit(1);
}

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; p[2] = (v >> 16) & 0xff; p[3] = (v >> 24) & 0xff;
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("write to host");
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Read exactly len bytes from the host; a closed connection ends the agent. */
static void read_all(void *data, size_t len) {
    char *p = data;
    while (len > 0) {
        ssize_t n = read(host, p, len);
        if (n == 0) _exit(0);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("read from host");
        }
        p += n;
        len -= (size_t)n;
    }
}

static void send_frame(char type, const void *data, uint32_t len) {
    unsigned char head[5];
    head[0] = (unsigned char)type;
    put_u32(head + 1, len);
    write_all(host, head, 5);
    if (len) write_all(host, data, len);
}

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The memory cgroup's OOM-kill counter (v2 memory.events, v1 memory.oom_control). */
static long oom_kills(void) {
    static const char *files[] = {"/sys/fs/cgroup/memory.events",
                                  "/sys/fs/cgroup/memory/memory.oom_control", NULL};
    for (int i = 0; files[i]; i++) {
        FILE *f = fopen(files[i], "re");
        if (!f) continue;
        char line[128];
        long n = -1;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "oom_kill %ld", &n) == 1) break;
        }
        fclose(f);
        if (n >= 0) return n;
    }
    return -1;
}

static void set_nonblock(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Kill every process in the container but this one, and reap them all. */
static int kill_and_reap(void) {
    double until = now_sec() + 2.0;
    for (;;) {
        kill(-1, SIGKILL);
        for (;;) {
            pid_t p = waitpid(-1, NULL, WNOHANG);
            if (p > 0) continue;
            if (p < 0 && errno == ECHILD) return 0; /* nobody left */
            break;
        }
        if (now_sec() > until) return -1;
        usleep(1000);
    }
}

/* Empty a directory the function could write to; 0 when it is empty again. */
static int empty_dir(int dirfd) {
    DIR *d = fdopendir(dirfd);
    if (!d) { close(dirfd); return -1; }
    int failed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (unlinkat(dirfd, e->d_name, 0) == 0) continue;
        /* A directory (perhaps made unreadable by its owner, who is us). */
        fchmodat(dirfd, e->d_name, 0700, 0);
        int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || empty_dir(sub) != 0) failed = 1;
        if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) != 0) failed = 1;
    }
    closedir(d);
    return failed ? -1 : 0;
}

/* Remove every System V IPC object of one kind: /proc/sysvipc/<kind> lists them, the
 * id in the second column. The function made them as our user, so we may. */
static int remove_sysv(const char *kind) {
    char path[64];
    snprintf(path, sizeof path, "/proc/sysvipc/%s", kind);
    FILE *f = fopen(path, "re");
    if (!f) return errno == ENOENT ? 0 : -1;
    char line[512];
    int failed = 0;
    if (!fgets(line, sizeof line, f)) { fclose(f); return 0; } /* the header */
    while (fgets(line, sizeof line, f)) {
        long key;
        int id;
        if (sscanf(line, "%ld %d", &key, &id) != 2) continue;
        int r = kind[1] == 'h' ? shmctl(id, IPC_RMID, NULL)
              : kind[1] == 'e' ? semctl(id, 0, IPC_RMID)
                               : msgctl(id, IPC_RMID, NULL);
        if (r != 0 && errno != EINVAL && errno != EIDRM) failed = 1;
    }
    fclose(f);
    return failed ? -1 : 0;
}

/* NOTE(security): every place a call can leave something for the next call: /tmp, and
 * the engine's own writable mounts (/dev/shm, POSIX message queues in /dev/mqueue) and
 * the container's System V IPC objects, which a call found again before (a file in
 * /dev/shm written by one caller's call was there for the next caller's). */
static const char *const LEFT_BEHIND[] = {WORK_DIR, "/dev/shm", "/dev/mqueue"};

static int clean_workdir(void) {
    int failed = 0;
    for (size_t i = 0; i < sizeof LEFT_BEHIND / sizeof *LEFT_BEHIND; i++) {
        int fd = open(LEFT_BEHIND[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            if (errno != ENOENT || i == 0) failed = 1; /* /tmp must be there */
            continue;
        }
        if (empty_dir(fd) != 0) failed = 1;
    }
    if (remove_sysv("shm") || remove_sysv("sem") || remove_sysv("msg")) failed = 1;
    return failed ? -1 : 0;
}

static pid_t spawn(int in_fd, int out_fd, int err_fd) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* The child: a new session, the pipes as stdio, default signals, the
     * function's environment only, first in line for the OOM killer. */
    setsid();
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    /* NOTE(native): below the agent's priority, so that a CPU-hungry function
     * (a fork bomb: pids_limit spinning processes) cannot delay the agent's
     * wake-up at the deadline by hundreds of milliseconds. */
    setpriority(PRIO_PROCESS, 0, 10);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (adj >= 0) {
        (void)!write(adj, "1000", 4);
        close(adj);
    }
    if (chdir(WORK_DIR) != 0) (void)!chdir("/");
    execve(FUNCTION_PATH, fn_argv, fn_envp);
    int err = errno;
    dprintf(2, "nimbus: cannot start the function binary: %s%s\n", strerror(err),
            err == ENOENT ? " (a dynamically linked binary whose loader or libraries are"
                            " not in the runtime image; link it statically)" : "");
    _exit(127);
}

static void serve_call(int sigfd, uint32_t timeout_ms, uint32_t out_limit, uint32_t log_limit,
                       uint32_t event_left) {
    int in[2], out[2], err[2];
    uint32_t status = ST_EXITED, flags = 0, log_dropped = 0, out_sent = 0, log_sent = 0;
    int32_t code = 0;

    long oom_before = oom_kills();
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) die("pipe");
    double started = now_sec(), deadline = started + timeout_ms / 1000.0, ended = 0;
    pid_t pid = spawn(in[0], out[1], err[1]);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        int e = errno;
        close(in[1]);
        close(out[0]);
        close(err[0]);
        while (event_left > 0) { /* the event is still on its way: drop it */
            uint32_t n = event_left < CHUNK ? event_left : CHUNK;
            read_all(buf, n);
            event_left -= n;
        }
        int len = snprintf(buf, sizeof buf, "nimbus: cannot start the function: %s\n",
                           strerror(e));
        send_frame('E', buf, (uint32_t)len);
        status = ST_SPAWN_FAILED;
        code = e;
        goto report;
    }
    set_nonblock(in[1]);
    set_nonblock(out[0]);
    set_nonblock(err[0]);

    /* Event bytes read from the host but not yet taken by the child. */
    char *pending = malloc(CHUNK);
    size_t pend_off = 0, pend_len = 0;
    int in_open = 1, out_open = 1, err_open = 1, child_done = 0, killed = 0;
    int child_status = 0;

    while (out_open || err_open || !child_done || event_left > 0) {
        if (!child_done && !killed && now_sec() >= deadline) {
            kill(-1, SIGKILL);
            killed = 1;
            status = ST_TIMEOUT;
        }
        if (child_done && !killed) {
            /* The function ended: anything it left running goes now, so the
             * pipes reach end-of-file once what is in them has been read. */
            kill(-1, SIGKILL);
            killed = 1;
        }
        struct pollfd fds[5];
        int nfds = 0, i_host = -1, i_in = -1, i_out = -1, i_err = -1;
        fds[nfds++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        if (event_left > 0 && pend_len == 0) {
            i_host = nfds;
            fds[nfds++] = (struct pollfd){.fd = host, .events = POLLIN};
        }
        if (in_open && pend_len > 0) {
            i_in = nfds;
            fds[nfds++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
        }
        if (out_open) {
            i_out = nfds;
            fds[nfds++] = (struct pollfd){.fd = out[0], .events = POLLIN};
        }
        if (err_open) {
            i_err = nfds;
            fds[nfds++] = (struct pollfd){.fd = err[0], .events = POLLIN};
        }
        int wait_ms = -1;
        if (!killed) {
            double left = deadline - now_sec();
            wait_ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
        } else if (child_done) {
            wait_ms = 2000; /* only dead processes' pipes left to drain */
        }
        int ready = poll(fds, (nfds_t)nfds, wait_ms);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        if (ready == 0 && killed && child_done) {
            /* Something holds a pipe open and did not die: give up on it. */
            flags |= FL_DIRTY;
            break;
        }
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) == sizeof si) {}
            for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, WNOHANG);
                if (p <= 0) break;
                if (p == pid) {
                    child_done = 1;
                    child_status = st;
                    ended = now_sec();
                }
            }
        }
        if (i_host >= 0 && (fds[i_host].revents & (POLLIN | POLLHUP | POLLERR))) {
            uint32_t want = event_left < CHUNK ? event_left : CHUNK;
            ssize_t n = read(host, pending, want);
            if (n == 0) _exit(0);
            if (n < 0 && errno != EINTR && errno != EAGAIN) die("read event");
            if (n > 0) {
                event_left -= (uint32_t)n;
                if (in_open) {
                    pend_off = 0;
                    pend_len = (size_t)n;
                }
                if (event_left == 0 && in_open && pend_len == 0) {
                    close(in[1]);
                    in_open = 0;
                }
            }
        }
        if (i_in >= 0 && (fds[i_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in[1], pending + pend_off, pend_len);
            if (n > 0) {
                pend_off += (size_t)n;
                pend_len -= (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                /* The function closed its stdin: drop the rest of the event. */
                close(in[1]);
                in_open = 0;
                pend_len = 0;
            }
            if (in_open && pend_len == 0 && event_left == 0) {
                close(in[1]);
                in_open = 0;
            }
        }
        if (i_out >= 0 && (fds[i_out].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(out[0], buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                close(out[0]);
                out_open = 0;
            } else if (n > 0) {
                uint32_t room = out_limit + 1 - out_sent; /* one byte over says "too large" */
                uint32_t take = (uint32_t)n < room ? (uint32_t)n : room;
                if (take) send_frame('O', buf, take);
                out_sent += take;
                if (out_sent > out_limit) {
                    if (!killed) {
                        kill(-1, SIGKILL);
                        killed = 1;
                    }
                    if (status == ST_EXITED) status = ST_TOO_LARGE;
                    close(out[0]);
                    out_open = 0;
                }
            }
        }
        if (i_err >= 0 && (fds[i_err].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(err[0], buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                close(err[0]);
                err_open = 0;
            } else if (n > 0) {
                uint32_t room = log_limit - log_sent;
                uint32_t take = (uint32_t)n < room ? (uint32_t)n : room;
                if (take) send_frame('E', buf, take);
                log_sent += take;
                log_dropped += (uint32_t)n - take;
            }
        }
        if (killed && !child_done) {
            /* The deadline or the output cap killed it: its status follows at once. */
            int st;
            if (waitpid(pid, &st, 0) == pid) {
                child_done = 1;
                child_status = st;
                ended = now_sec();
            }
        }
    }
    if (in_open) close(in[1]);
    if (out_open) close(out[0]);
    if (err_open) close(err[0]);
    free(pending);

    if (status == ST_EXITED) {
        if (WIFEXITED(child_status)) {
            code = WEXITSTATUS(child_status);
        } else if (WIFSIGNALED(child_status)) {
            code = WTERMSIG(child_status);
            status = ST_SIGNALED;
            long oom_after = oom_kills();
            if (code == SIGKILL && oom_after > oom_before && oom_before >= 0) status = ST_MEMORY;
        }
    } else if (status == ST_TIMEOUT || status == ST_TOO_LARGE) {
        long oom_after = oom_kills();
        if (status == ST_TIMEOUT && oom_after > oom_before && oom_before >= 0) status = ST_MEMORY;
    }
report:
    if (ended == 0) ended = now_sec();
    if (kill_and_reap() != 0) flags |= FL_DIRTY;
    if (clean_workdir() != 0) flags |= FL_DIRTY;
    {
        unsigned char r[20];
        uint32_t duration_us = (uint32_t)((ended - started) * 1e6);
        put_u32(r, status);
        put_u32(r + 4, (uint32_t)code);
        put_u32(r + 8, duration_us);
        put_u32(r + 12, flags);
        put_u32(r + 16, log_dropped);
        send_frame('R', r, sizeof r);
    }
}

/* Split the config frame (argv0 NUL KEY=VALUE NUL ...) into argv and envp. */
static void configure(char *data, uint32_t len) {
    size_t count = 0;
    for (uint32_t i = 0; i < len; i++) if (data[i] == '\0') count++;
    if (count == 0) die("empty config");
    fn_argv = calloc(2, sizeof(char *));
    fn_envp = calloc(count + 1, sizeof(char *));
    char *p = data, *end = data + len;
    fn_argv[0] = p;
    p += strlen(p) + 1;
    size_t n = 0;
    while (p < end) {
        if (strncmp(p, CONTEXT_VAR, strlen(CONTEXT_VAR)) != 0) fn_envp[n++] = p;
        p += strlen(p) + 1;
    }
    fn_envc = n;
    fn_envp[n] = NULL;
}

int main(void) {
    prctl(PR_SET_DUMPABLE, 0);
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) die("signalfd");

    const char *token = getenv("NIMBUS_AGENT_TOKEN");
    if (!token) token = "";

    host = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (host < 0) die("socket");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, SOCKET_PATH, sizeof addr.sun_path - 1);
    if (connect(host, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect " SOCKET_PATH);

    char hello[256];
    int len = snprintf(hello, sizeof hello, "nimbus-agent " NIMBUS_AGENT_VERSION " %s oom=%d",
                       token, oom_kills() >= 0);
    send_frame('H', hello, (uint32_t)len);

    unsigned char head[5];
    read_all(head, 5);
    if (head[0] != 'C') die("expected config");
    uint32_t clen = get_u32(head + 1);
    if (clen > (1u << 20)) die("config too large");
    char *config = malloc(clen + 1);
    read_all(config, clen);
    config[clen] = '\0';
    configure(config, clen);

    for (;;) {
        unsigned char req[21];
        read_all(req, 21);
        if (req[0] != 'Q') die("expected a call");
        uint32_t context_len = get_u32(req + 13);
        if (context_len > MAX_CONTEXT) die("context too large");
        size_t prefix = strlen(CONTEXT_VAR);
        char *context = malloc(prefix + context_len + 1);
        memcpy(context, CONTEXT_VAR, prefix);
        read_all(context + prefix, context_len);
        context[prefix + context_len] = '\0';
        fn_envp[fn_envc] = context;
        fn_envp[fn_envc + 1] = NULL;
        serve_call(sigfd, get_u32(req + 1), get_u32(req + 5), get_u32(req + 9),
                   get_u32(req + 17));
        fn_envp[fn_envc] = NULL;
        free(context);
    }
}

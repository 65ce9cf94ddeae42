/* A component's log: a pipe its stdout and stderr write to, drained by one thread.
 *
 * wasmtime writes a component's `wasi:cli/stdout` and `stderr` to a file it opens by
 * path, synchronously and in full (`OutputFile`, `write_all`). The path is the write end
 * of a pipe (`/proc/self/fd/N`); a drainer thread, one per process, empties every log's
 * pipe as bytes arrive: the first `cap` bytes are kept in the order written, the rest is
 * read and dropped (counted), as a command module's log is (`nimbus_fd_write` in
 * module.c). So every write of the guest succeeds and a log flood never costs more than
 * the cap of memory: the guest goes on to return its result, as on Lambda.
 *
 * NOTE(sandbox): the file was a memfd sealed at the cap, and a write past the seal
 * failed (EPERM; EIO in the guest: Python's `print` raised "OSError: [Errno 29]"). A
 * custom output stream (`wasi_config_set_stdout_custom`) lets writes succeed but goes
 * through wasmtime's 8 KiB async buffer: writes come back short, and the runtime's
 * unbuffered Python streams lost the rest of any line longer than that.
 *
 * `nimbus_log_take` drains the pipe itself before it reads: a write the guest finished
 * is in the log when its call returns. Writes only wait while the drainer catches up.
 * PERF(sandbox): no Python and no GIL on the drainer's side; a call that logs nothing
 * costs a pipe and its epoll registration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct nimbus_log {
    pthread_mutex_t m;
    int rfd;       /* the pipe's read end (non-blocking); -1 once closed */
    uint8_t *data; /* cap bytes, allocated at the first byte */
    uint64_t cap, len, dropped;
    struct nimbus_log *next_dead;
} nimbus_log_t;

/* The drainer: one thread, its epoll set, and the logs closed since its last round
 * (it frees them after a round: an event it already holds may name one). */
static struct {
    pthread_mutex_t m;
    int started; /* 1: running, -1: failed to start */
    int epfd, wake;
    nimbus_log_t *dead;
    unsigned dead_count;
} D = {PTHREAD_MUTEX_INITIALIZER, 0, -1, -1, NULL, 0};

/* PERF(sandbox): a closed log's buffer is freed at once; its struct waits for the
 * drainer's next round, which a close forces only every this many (a wake-up per
 * close cost ~5 us of CPU per instance). */
enum { WAKE_AFTER_DEAD = 64 };

/* Read what the pipe holds now. Holding log->m. Returns 0 at end of file (every
 * writer gone) or on an error, 1 when the pipe is merely empty. */
static int drain_locked(nimbus_log_t *log) {
    uint8_t scratch[16384];
    for (;;) {
        uint8_t *into = scratch;
        size_t room = sizeof scratch;
        if (log->len < log->cap && (log->data || (log->data = malloc(log->cap)))) {
            into = log->data + log->len;
            room = log->cap - log->len;
        }
        ssize_t n = read(log->rfd, into, room);
        if (n > 0) {
            if (into == scratch)
                log->dropped += (uint64_t)n;
            else
                log->len += (uint64_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n < 0 && errno == EAGAIN;
        }
    }
}

static void *drainer(void *arg) {
    (void)arg;
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(D.epfd, events, 64, -1);
        for (int i = 0; i < n; i++) {
            nimbus_log_t *log = events[i].data.ptr;
            if (!log) { /* woken to free the dead */
                uint64_t count;
                (void)!read(D.wake, &count, sizeof count);
                continue;
            }
            pthread_mutex_lock(&log->m);
            if (log->rfd >= 0 && !drain_locked(log))
                epoll_ctl(D.epfd, EPOLL_CTL_DEL, log->rfd, NULL); /* no writer left */
            pthread_mutex_unlock(&log->m);
        }
        pthread_mutex_lock(&D.m);
        nimbus_log_t *dead = D.dead;
        D.dead = NULL;
        D.dead_count = 0;
        pthread_mutex_unlock(&D.m);
        while (dead) {
            nimbus_log_t *next = dead->next_dead;
            pthread_mutex_destroy(&dead->m);
            free(dead);
            dead = next;
        }
    }
    return NULL;
}

/* A forked child has no drainer thread, and its epoll fd is its parent's set. */
static void forget_drainer(void) {
    pthread_mutex_init(&D.m, NULL);
    if (D.epfd >= 0) close(D.epfd);
    if (D.wake >= 0) close(D.wake);
    D.started = 0;
    D.epfd = D.wake = -1;
    D.dead = NULL; /* the parent's to free */
    D.dead_count = 0;
}

static int start_drainer_locked(void) {
    static int at_fork = 0;
    if (!at_fork) at_fork = !pthread_atfork(NULL, NULL, forget_drainer);
    D.epfd = epoll_create1(EPOLL_CLOEXEC);
    D.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old; /* signals stay with the process's own threads */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int ok = D.epfd >= 0 && D.wake >= 0 && !epoll_ctl(D.epfd, EPOLL_CTL_ADD, D.wake, &ev) &&
             !pthread_create(&thread, &attr, drainer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return ok ? 1 : -1;
}

/* A new log; `*write_fd` is the pipe's write end, for the streams to open by path.
 * NULL (errno set) when there is no pipe or no drainer. */
nimbus_log_t *nimbus_log_new(uint64_t cap, int *write_fd) {
    pthread_mutex_lock(&D.m);
    if (!D.started) D.started = start_drainer_locked();
    int started = D.started;
    pthread_mutex_unlock(&D.m);
    if (started < 0) {
        errno = EAGAIN;
        return NULL;
    }
    nimbus_log_t *log = calloc(1, sizeof *log);
    int fds[2];
    if (!log || pipe2(fds, O_CLOEXEC)) {
        free(log);
        return NULL;
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&log->m, NULL);
    log->rfd = fds[0];
    log->cap = cap;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = log};
    if (epoll_ctl(D.epfd, EPOLL_CTL_ADD, log->rfd, &ev)) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        pthread_mutex_destroy(&log->m);
        free(log);
        errno = saved;
        return NULL;
    }
    *write_fd = fds[1];
    return log;
}

/* The log so far: its length (`*data` points at the bytes, stable until the log is
 * closed) and the bytes dropped past the cap, after draining what the pipe holds. */
uint64_t nimbus_log_take(nimbus_log_t *log, const uint8_t **data, uint64_t *dropped) {
    pthread_mutex_lock(&log->m);
    if (log->rfd >= 0) drain_locked(log);
    uint64_t len = log->len;
    *data = log->data;
    *dropped = log->dropped;
    pthread_mutex_unlock(&log->m);
    return len;
}

/* After the streams' writers are gone (the store closed): the drainer frees the rest. */
void nimbus_log_close(nimbus_log_t *log) {
    pthread_mutex_lock(&log->m);
    if (log->rfd >= 0) {
        epoll_ctl(D.epfd, EPOLL_CTL_DEL, log->rfd, NULL);
        close(log->rfd);
        log->rfd = -1;
    }
    free(log->data);
    log->data = NULL;
    pthread_mutex_unlock(&log->m);
    pthread_mutex_lock(&D.m);
    log->next_dead = D.dead;
    D.dead = log;
    int wake = ++D.dead_count == WAKE_AFTER_DEAD;
    pthread_mutex_unlock(&D.m);
    if (wake) {
        uint64_t one = 1;
        (void)!write(D.wake, &one, sizeof one);
    }
}

/* A guest call on a native thread, waited for with a timeout, no Python on its side.
 *
 * PERF(sandbox): a guarded Python thread costs every call two GIL acquisitions
 * on the guest side (on waking, after the C call) and one for the caller: under
 * load each waits behind the worker's other threads (~22 context switches per
 * reused call instead of ~8 inline). A lane's thread runs only the C call, so
 * the caller releases the GIL once, as for an inline call. Built by
 * scripts/install.sh; sandbox/_lanes.py falls back to Python threads without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef void *(*call6_t)(void *, void *, void *, size_t, void *, size_t);

enum { IDLE, POSTED, FINISHED };

typedef struct {
    pthread_mutex_t m;
    pthread_cond_t go, done; /* `done` waits on CLOCK_MONOTONIC */
    int state;
    call6_t fn;
    void *a0, *a1, *a2, *a4;
    size_t a3, a5;
    void *ret;
} lane_t;

static void *serve(void *arg) {
    lane_t *l = arg;
    pthread_mutex_lock(&l->m);
    for (;;) {
        while (l->state != POSTED) pthread_cond_wait(&l->go, &l->m);
        pthread_mutex_unlock(&l->m);
        void *ret = l->fn(l->a0, l->a1, l->a2, l->a3, l->a4, l->a5);
        pthread_mutex_lock(&l->m);
        l->ret = ret;
        l->state = FINISHED;
        pthread_cond_signal(&l->done);
    }
    return NULL;
}

lane_t *nimbus_lane_new(void) {
    lane_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&l->m, NULL);
    pthread_cond_init(&l->go, NULL);
    pthread_cond_init(&l->done, &attr);
    pthread_condattr_destroy(&attr);
    pthread_t thread;
    pthread_attr_t tattr;
    pthread_attr_init(&tattr);
    pthread_attr_setdetachstate(&tattr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&tattr, 8u << 20); /* wasmtime runs the guest on it */
    int rc = pthread_create(&thread, &tattr, serve, l);
    pthread_attr_destroy(&tattr);
    if (rc != 0) {
        free(l);
        return NULL;
    }
    return l;
}

/* 0: the call returned, its result in *out. 1: not within timeout_ns; the lane is
 * still in the call (stuck) until nimbus_lane_finished says otherwise. */
int nimbus_lane_call(lane_t *l, call6_t fn, void *a0, void *a1, void *a2, size_t a3, void *a4,
                     size_t a5, int64_t timeout_ns, void **out) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ns / 1000000000;
    deadline.tv_nsec += timeout_ns % 1000000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&l->m);
    l->fn = fn;
    l->a0 = a0, l->a1 = a1, l->a2 = a2, l->a3 = a3, l->a4 = a4, l->a5 = a5;
    l->state = POSTED;
    pthread_cond_signal(&l->go);
    while (l->state != FINISHED) {
        if (pthread_cond_timedwait(&l->done, &l->m, &deadline) == ETIMEDOUT &&
            l->state != FINISHED) {
            pthread_mutex_unlock(&l->m);
            return 1;
        }
    }
    *out = l->ret;
    l->state = IDLE;
    pthread_mutex_unlock(&l->m);
    return 0;
}

/* A stuck lane's call has returned (its result in *out): the lane is idle again. */
int nimbus_lane_finished(lane_t *l, void **out) {
    pthread_mutex_lock(&l->m);
    int finished = l->state == FINISHED;
    if (finished) {
        *out = l->ret;
        l->state = IDLE;
    }
    pthread_mutex_unlock(&l->m);
    return finished;
}

/* A command module's run in one C call, and its fd_write without Python.
 *
 * PERF(sandbox): a module runs on the caller's thread (sandbox/_module.py). Through
 * ctypes that was two GIL releases per call (instantiate, then `_start`), a Python
 * callback for every fd_write (the GIL taken back inside the guest's call, ~10 us of
 * Python for an echo's one write) and ~15 more ctypes calls to set up and drop the
 * store (~17 of a call's ~22 us were Python and ctypes, 4 us wasmtime). Under load each
 * GIL acquisition waits behind the worker's other threads. Here the whole invocation is
 * one call that releases the GIL once, and fd_write is C: the guest's output goes to
 * buffers in the store's data (`nimbus_io_t`), capped exactly as `_wasi.GuestIO` caps
 * them.
 *
 * wasmtime's functions and struct layout come from wasmtime-py at `nimbus_module_init`
 * (no headers here; the library is the one wasmtime-py loaded).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    void *(*instantiate)(void *pre, void *context, void *instance, void **trap);
    int (*instance_export_get)(void *context, void *instance, const char *name, size_t len,
                               void *item);
    void *(*call_unchecked)(void *context, void *func, void *args, size_t nargs, void **trap);
    int (*caller_export_get)(void *caller, const char *name, size_t len, void *item);
    void *(*caller_context)(void *caller);
    uint8_t *(*memory_data)(void *context, void *memory);
    size_t (*memory_data_size)(void *context, void *memory);
    void *(*get_data)(void *context);
    void *(*trap_new)(const char *message, size_t len);
    void *(*store_new)(void *engine, void *data, void (*finalizer)(void *));
    void *(*store_context)(void *store);
    void (*store_limiter)(void *store, int64_t memory_size, int64_t table_elements,
                          int64_t instances, int64_t tables, int64_t memories);
    void (*store_delete)(void *store);
    void (*set_epoch_deadline)(void *context, uint64_t ticks);
    void *(*wasi_config_new)(void);
    int (*wasi_config_set_argv)(void *config, size_t argc, char **argv);
    int (*wasi_config_set_env)(void *config, size_t envc, char **names, char **values);
    void (*wasi_config_set_stdin_bytes)(void *config, void *bytes);
    void (*wasi_config_delete)(void *config);
    void (*byte_vec_new)(void *out, size_t size, const uint8_t *data);
    void *(*set_wasi)(void *context, void *config);
    size_t extern_size; /* sizeof(wasmtime_extern_t) */
    size_t extern_of;   /* offsetof(wasmtime_extern_t, of); `kind` is its first byte */
    uint8_t kind_func, kind_memory;
} nimbus_wasmtime_t;

/* One invocation's output (the store's data). Mirrored by sandbox/_module.py. */
typedef struct {
    uint32_t result_fd; /* 1, or 3 for handler glue that declares the channel */
    uint32_t too_large; /* the result passed result_limit: the guest was stopped */
    uint64_t result_limit, log_limit;
    uint8_t *out;
    uint64_t out_len, out_cap;
    uint8_t *err;
    uint64_t err_len, err_cap, err_dropped;
} nimbus_io_t;

enum { SUCCESS = 0, EBADF_ = 8, EFAULT_ = 21 };
enum { MAX_IOVS = 1024, MAX_EXTERN = 64 };

/* A wasmtime_extern_t's bytes, aligned as its 64-bit fields need. */
typedef union {
    uint8_t bytes[MAX_EXTERN];
    uint64_t align;
} extern_buf;

static nimbus_wasmtime_t W;

int nimbus_module_init(const nimbus_wasmtime_t *w) {
    if (w->extern_size > MAX_EXTERN || w->extern_of >= w->extern_size) return 0;
    W = *w;
    return 1;
}

static int append(uint8_t **buf, uint64_t *len, uint64_t *cap, const uint8_t *data, uint64_t n) {
    if (n == 0) return 1;
    if (*len + n > *cap) {
        uint64_t want = *cap ? *cap : 4096;
        while (want < *len + n) want *= 2;
        uint8_t *grown = realloc(*buf, want);
        if (!grown) return 0;
        *buf = grown, *cap = want;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return 1;
}

static void *trap(const char *message) { return W.trap_new(message, strlen(message)); }

static uint32_t u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* wasi_snapshot_preview1.fd_write (fd, iovs, iovs_len, nwritten) -> errno, wasmtime's
 * unchecked ABI: the four i32 arguments in, the errno out in args[0]. The same rules
 * as `_wasi._fd_write`: fds 1, 2 and the result channel only (else EBADF), every
 * pointer and length inside the guest's memory before anything is written (else
 * EFAULT), the result past its limit stops the guest (a trap), the log keeps its first
 * `log_limit` bytes and counts the rest. */
void *nimbus_fd_write(void *env, void *caller, void *args_and_results, size_t n) {
    (void)env, (void)n;
    int32_t *args = args_and_results; /* wasmtime_val_raw_t: 16 bytes, i32 first */
    uint32_t fd = (uint32_t)args[0], iovs = (uint32_t)args[4], count = (uint32_t)args[8],
             written_ptr = (uint32_t)args[12];
    void *context = W.caller_context(caller);
    nimbus_io_t *io = W.get_data(context);
    if (!io) return trap("nimbus: host call outside an invocation");
    if (fd != 1 && fd != 2 && fd != io->result_fd) {
        args[0] = EBADF_;
        return NULL;
    }
    extern_buf buf;
    uint8_t *item = buf.bytes;
    if (!W.caller_export_get(caller, "memory", 6, item) || item[0] != W.kind_memory) {
        args[0] = EFAULT_;
        return NULL;
    }
    uint8_t *base = W.memory_data(context, item + W.extern_of);
    uint64_t size = W.memory_data_size(context, item + W.extern_of);
    if (!base || !size || (uint64_t)written_ptr + 4 > size || count > MAX_IOVS ||
        (uint64_t)iovs + 8ull * count > size) {
        args[0] = EFAULT_;
        return NULL;
    }
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *vec = base + iovs + 8ull * i;
        if ((uint64_t)u32_at(vec) + u32_at(vec + 4) > size) {
            args[0] = EFAULT_;
            return NULL;
        }
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *vec = base + iovs + 8ull * i;
        uint64_t pointer = u32_at(vec), length = u32_at(vec + 4);
        if (total + length > UINT32_MAX) break; /* a short write: nwritten says how much */
        if (fd == io->result_fd) {
            if (io->out_len + length > io->result_limit) {
                io->too_large = 1;
                return trap("nimbus: result too large");
            }
            if (!append(&io->out, &io->out_len, &io->out_cap, base + pointer, length))
                return trap("nimbus: host error");
        } else {
            uint64_t room = io->log_limit > io->err_len ? io->log_limit - io->err_len : 0;
            uint64_t keep = length < room ? length : room;
            if (keep && !append(&io->err, &io->err_len, &io->err_cap, base + pointer, keep))
                return trap("nimbus: host error");
            io->err_dropped += length - keep;
        }
        total += length;
    }
    uint8_t *out = base + written_ptr;
    out[0] = total, out[1] = total >> 8, out[2] = total >> 16, out[3] = total >> 24;
    args[0] = SUCCESS;
    return NULL;
}

/* One invocation of a command module, set up, run and torn down in one call (the
 * caller releases the GIL once): the store (its data `io`, its limits and epoch
 * deadline), the WASI context (argv, environment, the event as stdin), instantiation,
 * `_start`, the memory's size if it failed, the store dropped. As `_module.run_module`
 * does it step by step in Python without the helper. */
typedef struct {
    void *engine, *pre;
    int64_t memory_bytes, table_elements, tables;
    uint64_t deadline_ticks;
    size_t argc;
    char **argv;
    size_t envc;
    char **env_names, **env_values;
    const uint8_t *event;
    size_t event_len;
    /* out */
    void *trap;           /* wasm_trap_t *, the caller's to free */
    int32_t stage;        /* -1 WASI refused argv/env, -2 the WASI context failed (the
                             error returned), then as run_start's */
    uint64_t memory_size; /* the guest's memory after a failed call, or 0 */
} nimbus_call_t;

static void *run_start(void *pre, void *context, void *instance, void **trap_out, int *stage);

void *nimbus_module_invoke(nimbus_call_t *c, nimbus_io_t *io) {
    struct { size_t size; uint8_t *data; } stdin_vec;
    uint64_t instance[4] = {0}; /* wasmtime_instance_t: 16 bytes */
    c->trap = NULL;
    c->memory_size = 0;
    void *store = W.store_new(c->engine, io, NULL);
    void *context = W.store_context(store);
    W.store_limiter(store, c->memory_bytes, c->table_elements, 1, c->tables, 1);
    W.set_epoch_deadline(context, c->deadline_ticks);
    void *config = W.wasi_config_new();
    if (!W.wasi_config_set_argv(config, c->argc, c->argv) ||
        !W.wasi_config_set_env(config, c->envc, c->env_names, c->env_values)) {
        W.wasi_config_delete(config);
        W.store_delete(store);
        c->stage = -1;
        return NULL;
    }
    W.byte_vec_new(&stdin_vec, c->event_len, c->event);
    W.wasi_config_set_stdin_bytes(config, &stdin_vec);
    void *error = W.set_wasi(context, config); /* takes the config */
    if (error) {
        W.store_delete(store);
        c->stage = -2;
        return error;
    }
    int stage;
    error = run_start(c->pre, context, instance, &c->trap, &stage);
    c->stage = stage;
    if (stage == 2 && (error || c->trap)) {
        extern_buf buf;
        uint8_t *item = buf.bytes;
        if (W.instance_export_get(context, instance, "memory", 6, item) &&
            item[0] == W.kind_memory)
            c->memory_size = W.memory_data_size(context, item + W.extern_of);
    }
    W.store_delete(store);
    return error;
}

/* Instantiate `pre` and call its `_start`. Returns wasmtime's error, if any; *stage says
 * how far it got: 0 instantiation failed (error or *trap), 1 no `_start` function,
 * 2 `_start` was called. */
static void *run_start(void *pre, void *context, void *instance, void **trap_out,
                       int *stage) {
    *stage = 0;
    void *error = W.instantiate(pre, context, instance, trap_out);
    if (error || *trap_out) return error;
    *stage = 1;
    extern_buf buf;
    uint8_t *item = buf.bytes;
    if (!W.instance_export_get(context, instance, "_start", 6, item) || item[0] != W.kind_func)
        return NULL;
    *stage = 2;
    return W.call_unchecked(context, item + W.extern_of, NULL, 0, trap_out);
}

void nimbus_io_free(nimbus_io_t *io) {
    free(io->out);
    free(io->err);
    io->out = io->err = NULL;
    io->out_len = io->out_cap = io->err_len = io->err_cap = 0;
}

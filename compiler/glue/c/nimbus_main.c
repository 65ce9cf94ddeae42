/* Nimbus C handler glue: the WASI command around a handler-form function.
 *
 * Reads the event JSON from stdin and the context JSON from NIMBUS_CONTEXT
 * (set by the sandbox on every call), calls NIMBUS_HANDLER (the user's
 * `handler`), writes its result to the platform's result channel. A NULL
 * result is a function error: nimbus.c reports it on stderr as the sandbox's
 * error record and the command exits 1.
 *
 * The handler's own printf output is its log, as on Lambda: it can never
 * corrupt the result. In WASM the result goes to fd 3, which the sandbox
 * opens for a module exporting `nimbus_result_fd3` (sandbox/_wasi.py), and
 * fd 1 joins the log. A native build keeps a copy of the real stdout for the
 * result and points fd 1 at stderr.
 */
#include "nimbus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void nimbus__report_error(const char *fallback_message);

#ifdef __wasi__
__attribute__((export_name("nimbus_result_fd3"))) void nimbus_result_fd3(void) {}

static int nimbus_open_result_channel(void) { return 3; }
#else
static int nimbus_open_result_channel(void) {
    int result_fd = dup(STDOUT_FILENO);
    if (result_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) return STDOUT_FILENO;
    return result_fd;
}
#endif

static int nimbus_write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static char *nimbus_read_stdin(void) {
    nimbus_buf in = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) nimbus_buf_append(&in, chunk, n);
    return nimbus_buf_finish(&in);
}

int main(void) {
    int result_fd = nimbus_open_result_channel();
    char *event = nimbus_read_stdin();
    const char *trimmed = event + strspn(event, " \t\r\n");
    const char *context = getenv("NIMBUS_CONTEXT");
    char *result = NIMBUS_HANDLER(*trimmed ? event : "{}", context ? context : "{}");
    free(event);
    if (!result) {
        nimbus__report_error("handler returned NULL without calling nimbus_set_error");
        return 1;
    }
    fflush(stdout); /* the handler's prints, into the log before the result ends the call */
    int written = nimbus_write_all(result_fd, result, strlen(result));
    free(result);
    if (written != 0) {
        nimbus__report_error("cannot write the result");
        return 1;
    }
    return 0;
}

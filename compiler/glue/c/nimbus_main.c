/* Nimbus C handler glue: the WASI command around a handler-form function.
 *
 * Reads the event JSON from stdin and the context JSON from NIMBUS_CONTEXT
 * (set by the sandbox on every call), calls NIMBUS_HANDLER (the user's
 * `handler`), writes its result to stdout. A NULL result is a function
 * error: nimbus.c reports it on stderr as the sandbox's error record and the
 * command exits 1.
 */
#include "nimbus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nimbus__report_error(const char *fallback_message);

static char *nimbus_read_stdin(void) {
    nimbus_buf in = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) nimbus_buf_append(&in, chunk, n);
    return nimbus_buf_finish(&in);
}

int main(void) {
    char *event = nimbus_read_stdin();
    const char *trimmed = event + strspn(event, " \t\r\n");
    const char *context = getenv("NIMBUS_CONTEXT");
    char *result = NIMBUS_HANDLER(*trimmed ? event : "{}", context ? context : "{}");
    free(event);
    if (!result) {
        nimbus__report_error("handler returned NULL without calling nimbus_set_error");
        return 1;
    }
    fputs(result, stdout);
    free(result);
    return 0;
}

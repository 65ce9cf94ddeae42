/* A native function (runtime "native"): a Linux program in the program form.
 * The event arrives on stdin, the result goes to stdout, stderr is the log.
 * Build: sh examples/native/build.sh (a static binary runs in any image). */
#include <stdio.h>

int main(int argc, char **argv) {
    char event[4096];
    size_t n = fread(event, 1, sizeof event - 1, stdin);
    event[n] = '\0';
    fprintf(stderr, "%s got %zu bytes\n", argv[0], n);
    printf("{\"native\": true, \"event\": %s}\n", n ? event : "{}");
    return 0;
}

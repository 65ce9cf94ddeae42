// Hello, C: the handler form. Nimbus compiles every file with nimbus.h
// included, so nimbus_set_error and the JSON helpers need no #include.
// Create with runtime "c"; invoke with {"name": "Ada"}.
#include <stdio.h>
#include <stdlib.h>

char *handler(const char *event_json, const char *context_json) {
    nimbus_json *event = nimbus_json_parse(event_json);
    nimbus_json *context = nimbus_json_parse(context_json);
    const char *name = nimbus_json_string(nimbus_json_get(event, "name"), "world");
    fprintf(stderr, "greeting %s\n", name);  // stderr is the function's log

    nimbus_buf message = {0};
    nimbus_buf_printf(&message, "Hello, %s!", name);
    char *text = nimbus_buf_finish(&message);

    nimbus_buf out = {0};
    nimbus_buf_puts(&out, "{\"message\":");
    nimbus_buf_json_string(&out, text);  // quoted and escaped
    nimbus_buf_puts(&out, ",\"function\":");
    nimbus_buf_json(&out, nimbus_json_get(context, "function_name"));
    nimbus_buf_puts(&out, "}");

    free(text);
    nimbus_json_free(event);
    nimbus_json_free(context);
    return nimbus_buf_finish(&out);  // malloc'd: Nimbus frees it
}

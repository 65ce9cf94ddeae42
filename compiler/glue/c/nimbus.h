/* Nimbus C functions: errors, and a small JSON reader and writer.
 *
 * Handler form: define
 *
 *     char *handler(const char *event_json, const char *context_json);
 *
 * returning a malloc'd JSON string (Nimbus frees it), or NULL after
 * nimbus_set_error("...") to fail the invocation with that message. This
 * header is included in every file of a handler-form function; a program
 * form may #include "nimbus.h" to use the JSON helpers.
 *
 * context_json holds function_name, version, invocation_id, deadline_ms,
 * memory_limit_mb and the caller's X-Nimbus-Context keys.
 *
 * In handler form printf and fprintf(stderr, ...) both go to the invocation's
 * log and the result travels on a channel of its own; a program's result is
 * its stdout.
 */
#ifndef NIMBUS_H
#define NIMBUS_H

#include <stdarg.h>
#include <stddef.h>

#ifdef NIMBUS_HANDLER
char *NIMBUS_HANDLER(const char *event_json, const char *context_json);
#endif

/* -- errors ---------------------------------------------------------------
 * printf-style; the error's type is "Error" (or `type`), its stack the
 * file, line and function that set it. The last call wins. */
#define nimbus_set_error(...) \
    nimbus_set_error_at(__FILE__, __LINE__, __func__, "Error", __VA_ARGS__)
#define nimbus_set_error_type(type, ...) \
    nimbus_set_error_at(__FILE__, __LINE__, __func__, (type), __VA_ARGS__)

void nimbus_set_error_at(const char *file, int line, const char *func, const char *type,
                         const char *format, ...) __attribute__((format(printf, 5, 6)));

/* -- reading JSON ---------------------------------------------------------
 * nimbus_json_parse returns a tree (free it with nimbus_json_free) or NULL
 * for text that is not JSON. Accessors accept NULL and answer "missing". */
typedef enum {
    NIMBUS_JSON_MISSING = 0,
    NIMBUS_JSON_NULL,
    NIMBUS_JSON_BOOL,
    NIMBUS_JSON_NUMBER,
    NIMBUS_JSON_STRING,
    NIMBUS_JSON_ARRAY,
    NIMBUS_JSON_OBJECT,
} nimbus_json_type;

typedef struct nimbus_json nimbus_json;

nimbus_json *nimbus_json_parse(const char *text);
void nimbus_json_free(nimbus_json *value);

nimbus_json_type nimbus_json_kind(const nimbus_json *value);
/* An object's member by key, or NULL. */
const nimbus_json *nimbus_json_get(const nimbus_json *object, const char *key);
/* Number of elements (array) or members (object); 0 for anything else. */
size_t nimbus_json_len(const nimbus_json *value);
/* The i-th element of an array or member value of an object, or NULL. */
const nimbus_json *nimbus_json_at(const nimbus_json *value, size_t i);
/* The i-th member's key of an object, or NULL. */
const char *nimbus_json_key_at(const nimbus_json *object, size_t i);
double nimbus_json_number(const nimbus_json *value, double fallback);
const char *nimbus_json_string(const nimbus_json *value, const char *fallback);
int nimbus_json_bool(const nimbus_json *value, int fallback);

/* -- writing JSON ---------------------------------------------------------
 * A growing buffer: start with `nimbus_buf out = {0};`, append, and return
 * nimbus_buf_finish(&out) from the handler (a malloc'd string). */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} nimbus_buf;

void nimbus_buf_append(nimbus_buf *buf, const char *text, size_t len);
void nimbus_buf_puts(nimbus_buf *buf, const char *text);
void nimbus_buf_printf(nimbus_buf *buf, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* `text` as a quoted, escaped JSON string. */
void nimbus_buf_json_string(nimbus_buf *buf, const char *text);
/* A number as JSON (integers without a fraction; NaN and infinities as null). */
void nimbus_buf_json_number(nimbus_buf *buf, double value);
/* A parsed value written back as compact JSON. */
void nimbus_buf_json(nimbus_buf *buf, const nimbus_json *value);
char *nimbus_buf_finish(nimbus_buf *buf);

#endif

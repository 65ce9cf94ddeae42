/* Nimbus C glue library: errors, JSON reader and writer (see nimbus.h). */
#include "nimbus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIMBUS_MESSAGE_MAX 65536
#define NIMBUS_DEPTH_MAX 512

/* -- errors ---------------------------------------------------------------- */

static struct {
    int set;
    char type[128];
    char message[NIMBUS_MESSAGE_MAX];
    char where[512];
} nimbus_error;

void nimbus_set_error_at(const char *file, int line, const char *func, const char *type,
                         const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(nimbus_error.message, sizeof nimbus_error.message, format, args);
    va_end(args);
    snprintf(nimbus_error.type, sizeof nimbus_error.type, "%s", type ? type : "Error");
    snprintf(nimbus_error.where, sizeof nimbus_error.where, "at %s (%s:%d)", func, file, line);
    nimbus_error.set = 1;
}

/* The function-error record for the sandbox: one last line on stderr, an
 * ASCII record separator (0x1e) and a JSON object {type, message, stack}. */
void nimbus__report_error(const char *fallback_message) {
    nimbus_buf out = {0};
    nimbus_buf_puts(&out, "\n\x1e{\"type\":");
    nimbus_buf_json_string(&out, nimbus_error.set ? nimbus_error.type : "Error");
    nimbus_buf_puts(&out, ",\"message\":");
    nimbus_buf_json_string(&out, nimbus_error.set ? nimbus_error.message : fallback_message);
    nimbus_buf_puts(&out, ",\"stack\":[");
    if (nimbus_error.set) nimbus_buf_json_string(&out, nimbus_error.where);
    nimbus_buf_puts(&out, "]}\n");
    fflush(stdout);
    fflush(stderr);
    fwrite(out.data, 1, out.len, stderr);
    fflush(stderr);
    free(out.data);
}

/* -- writing JSON ---------------------------------------------------------- */

void nimbus_buf_append(nimbus_buf *buf, const char *text, size_t len) {
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < buf->len + len + 1) cap *= 2;
        char *data = realloc(buf->data, cap);
        if (!data) abort();
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, text, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void nimbus_buf_puts(nimbus_buf *buf, const char *text) {
    nimbus_buf_append(buf, text, strlen(text));
}

void nimbus_buf_printf(nimbus_buf *buf, const char *format, ...) {
    char small[256];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        nimbus_buf_append(buf, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) abort();
    va_start(args, format);
    vsnprintf(big, (size_t)n + 1, format, args);
    va_end(args);
    nimbus_buf_append(buf, big, (size_t)n);
    free(big);
}

void nimbus_buf_json_string(nimbus_buf *buf, const char *text) {
    nimbus_buf_append(buf, "\"", 1);
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    const unsigned char *run = p;
    for (; *p; p++) {
        const char *escape = NULL;
        char code[8];
        switch (*p) {
            case '"': escape = "\\\""; break;
            case '\\': escape = "\\\\"; break;
            case '\n': escape = "\\n"; break;
            case '\r': escape = "\\r"; break;
            case '\t': escape = "\\t"; break;
            case '\b': escape = "\\b"; break;
            case '\f': escape = "\\f"; break;
            default:
                if (*p < 0x20) {
                    snprintf(code, sizeof code, "\\u%04x", *p);
                    escape = code;
                }
        }
        if (escape) {
            nimbus_buf_append(buf, (const char *)run, (size_t)(p - run));
            nimbus_buf_puts(buf, escape);
            run = p + 1;
        }
    }
    nimbus_buf_append(buf, (const char *)run, (size_t)(p - run));
    nimbus_buf_append(buf, "\"", 1);
}

void nimbus_buf_json_number(nimbus_buf *buf, double value) {
    if (!isfinite(value)) {
        nimbus_buf_puts(buf, "null");
    } else if (value == (double)(long long)value && fabs(value) < 1e15) {
        nimbus_buf_printf(buf, "%lld", (long long)value);
    } else {
        /* the shortest text that reads back as the same double: 16.65, not 16.649999999999999 */
        char text[32];
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(text, sizeof text, "%.*g", digits, value);
            if (strtod(text, NULL) == value) break;
        }
        nimbus_buf_puts(buf, text);
    }
}

char *nimbus_buf_finish(nimbus_buf *buf) {
    if (!buf->data) nimbus_buf_append(buf, "", 0);
    char *data = buf->data;
    buf->data = NULL;
    buf->len = buf->cap = 0;
    return data;
}

/* -- reading JSON ---------------------------------------------------------- */

struct nimbus_json {
    nimbus_json_type type;
    int boolean;
    double number;
    char *string;        /* strings */
    nimbus_json **items; /* array elements, object member values */
    char **keys;         /* object member keys */
    size_t len;
    size_t cap;
};

typedef struct {
    const char *p;
    int depth;
} nimbus_parser;

static nimbus_json *nimbus_parse_value(nimbus_parser *ps);

static void nimbus_skip_space(nimbus_parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static nimbus_json *nimbus_new(nimbus_json_type type) {
    nimbus_json *value = calloc(1, sizeof *value);
    if (!value) abort();
    value->type = type;
    return value;
}

static int nimbus_hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static void nimbus_put_utf8(nimbus_buf *buf, unsigned cp) {
    char s[4];
    size_t n;
    if (cp < 0x80) { s[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        s[0] = (char)(0xE0 | (cp >> 12)); s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        s[0] = (char)(0xF0 | (cp >> 18)); s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        s[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); s[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    nimbus_buf_append(buf, s, n);
}

/* A JSON string at ps->p (on the opening quote), decoded; NULL if malformed. */
static char *nimbus_parse_string(nimbus_parser *ps) {
    nimbus_buf out = {0};
    ps->p++;
    for (;;) {
        const char *run = ps->p;
        while (*ps->p && *ps->p != '"' && *ps->p != '\\' && (unsigned char)*ps->p >= 0x20) ps->p++;
        nimbus_buf_append(&out, run, (size_t)(ps->p - run));
        if (*ps->p == '"') {
            ps->p++;
            return nimbus_buf_finish(&out);
        }
        if (*ps->p != '\\') break; /* end of text or a control character */
        char c = ps->p[1];
        ps->p += 2;
        switch (c) {
            case '"': nimbus_buf_append(&out, "\"", 1); break;
            case '\\': nimbus_buf_append(&out, "\\", 1); break;
            case '/': nimbus_buf_append(&out, "/", 1); break;
            case 'b': nimbus_buf_append(&out, "\b", 1); break;
            case 'f': nimbus_buf_append(&out, "\f", 1); break;
            case 'n': nimbus_buf_append(&out, "\n", 1); break;
            case 'r': nimbus_buf_append(&out, "\r", 1); break;
            case 't': nimbus_buf_append(&out, "\t", 1); break;
            case 'u': {
                unsigned cp, low;
                if (!nimbus_hex4(ps->p, &cp)) goto fail;
                ps->p += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && ps->p[0] == '\\' && ps->p[1] == 'u' &&
                    nimbus_hex4(ps->p + 2, &low) && low >= 0xDC00 && low < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    ps->p += 6;
                }
                nimbus_put_utf8(&out, cp);
                break;
            }
            default: goto fail;
        }
    }
fail:
    free(out.data);
    return NULL;
}

static void nimbus_push(nimbus_json *list, nimbus_json *item, char *key) {
    if (list->len == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 4;
        nimbus_json **items = realloc(list->items, cap * sizeof *items);
        if (!items) abort();
        list->items = items;
        if (list->type == NIMBUS_JSON_OBJECT) {
            char **keys = realloc(list->keys, cap * sizeof *keys);
            if (!keys) abort();
            list->keys = keys;
        }
        list->cap = cap;
    }
    list->items[list->len] = item;
    if (list->type == NIMBUS_JSON_OBJECT) list->keys[list->len] = key;
    list->len++;
}

static nimbus_json *nimbus_parse_list(nimbus_parser *ps, int object) {
    nimbus_json *list = nimbus_new(object ? NIMBUS_JSON_OBJECT : NIMBUS_JSON_ARRAY);
    char close = object ? '}' : ']';
    if (++ps->depth > NIMBUS_DEPTH_MAX) goto fail;
    ps->p++;
    nimbus_skip_space(ps);
    if (*ps->p == close) {
        ps->p++;
        ps->depth--;
        return list;
    }
    for (;;) {
        char *key = NULL;
        nimbus_skip_space(ps);
        if (object) {
            if (*ps->p != '"' || !(key = nimbus_parse_string(ps))) goto fail;
            nimbus_skip_space(ps);
            if (*ps->p != ':') { free(key); goto fail; }
            ps->p++;
        }
        nimbus_json *item = nimbus_parse_value(ps);
        if (!item) { free(key); goto fail; }
        nimbus_push(list, item, key);
        nimbus_skip_space(ps);
        if (*ps->p == ',') { ps->p++; continue; }
        if (*ps->p == close) { ps->p++; ps->depth--; return list; }
        goto fail;
    }
fail:
    nimbus_json_free(list);
    return NULL;
}

static nimbus_json *nimbus_parse_value(nimbus_parser *ps) {
    nimbus_skip_space(ps);
    const char *p = ps->p;
    if (*p == '{' || *p == '[') return nimbus_parse_list(ps, *p == '{');
    if (*p == '"') {
        char *s = nimbus_parse_string(ps);
        if (!s) return NULL;
        nimbus_json *value = nimbus_new(NIMBUS_JSON_STRING);
        value->string = s;
        return value;
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        nimbus_json *value = nimbus_new(NIMBUS_JSON_BOOL);
        value->boolean = *p == 't';
        ps->p += value->boolean ? 4 : 5;
        return value;
    }
    if (strncmp(p, "null", 4) == 0) {
        ps->p += 4;
        return nimbus_new(NIMBUS_JSON_NULL);
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        char *end;
        double number = strtod(p, &end);
        if (end == p) return NULL;
        nimbus_json *value = nimbus_new(NIMBUS_JSON_NUMBER);
        value->number = number;
        ps->p = end;
        return value;
    }
    return NULL;
}

nimbus_json *nimbus_json_parse(const char *text) {
    if (!text) return NULL;
    nimbus_parser ps = {text, 0};
    nimbus_json *value = nimbus_parse_value(&ps);
    if (!value) return NULL;
    nimbus_skip_space(&ps);
    if (*ps.p) {
        nimbus_json_free(value);
        return NULL;
    }
    return value;
}

void nimbus_json_free(nimbus_json *value) {
    if (!value) return;
    for (size_t i = 0; i < value->len; i++) {
        nimbus_json_free(value->items[i]);
        if (value->keys) free(value->keys[i]);
    }
    free(value->items);
    free(value->keys);
    free(value->string);
    free(value);
}

nimbus_json_type nimbus_json_kind(const nimbus_json *value) {
    return value ? value->type : NIMBUS_JSON_MISSING;
}

const nimbus_json *nimbus_json_get(const nimbus_json *object, const char *key) {
    if (!object || object->type != NIMBUS_JSON_OBJECT || !key) return NULL;
    for (size_t i = 0; i < object->len; i++) {
        if (strcmp(object->keys[i], key) == 0) return object->items[i];
    }
    return NULL;
}

size_t nimbus_json_len(const nimbus_json *value) {
    if (!value || (value->type != NIMBUS_JSON_ARRAY && value->type != NIMBUS_JSON_OBJECT)) return 0;
    return value->len;
}

const nimbus_json *nimbus_json_at(const nimbus_json *value, size_t i) {
    return i < nimbus_json_len(value) ? value->items[i] : NULL;
}

const char *nimbus_json_key_at(const nimbus_json *object, size_t i) {
    if (!object || object->type != NIMBUS_JSON_OBJECT || i >= object->len) return NULL;
    return object->keys[i];
}

double nimbus_json_number(const nimbus_json *value, double fallback) {
    return value && value->type == NIMBUS_JSON_NUMBER ? value->number : fallback;
}

const char *nimbus_json_string(const nimbus_json *value, const char *fallback) {
    return value && value->type == NIMBUS_JSON_STRING ? value->string : fallback;
}

int nimbus_json_bool(const nimbus_json *value, int fallback) {
    return value && value->type == NIMBUS_JSON_BOOL ? value->boolean : fallback;
}

void nimbus_buf_json(nimbus_buf *buf, const nimbus_json *value) {
    switch (nimbus_json_kind(value)) {
        case NIMBUS_JSON_MISSING:
        case NIMBUS_JSON_NULL: nimbus_buf_puts(buf, "null"); break;
        case NIMBUS_JSON_BOOL: nimbus_buf_puts(buf, value->boolean ? "true" : "false"); break;
        case NIMBUS_JSON_NUMBER: nimbus_buf_json_number(buf, value->number); break;
        case NIMBUS_JSON_STRING: nimbus_buf_json_string(buf, value->string); break;
        case NIMBUS_JSON_ARRAY:
        case NIMBUS_JSON_OBJECT: {
            int object = value->type == NIMBUS_JSON_OBJECT;
            nimbus_buf_puts(buf, object ? "{" : "[");
            for (size_t i = 0; i < value->len; i++) {
                if (i) nimbus_buf_puts(buf, ",");
                if (object) {
                    nimbus_buf_json_string(buf, value->keys[i]);
                    nimbus_buf_puts(buf, ":");
                }
                nimbus_buf_json(buf, value->items[i]);
            }
            nimbus_buf_puts(buf, object ? "}" : "]");
            break;
        }
    }
}

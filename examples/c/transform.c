// An order summary: validates an order event and prices it.
//
//   {"order_id": "A-1001", "customer": {"email": "ADA@Example.com"}, "currency": "EUR",
//    "items": [{"sku": "BK-1", "price": 4.5, "qty": 3}, ...],
//    "coupon": {"code": "SAVE10", "percent": 10}}
// → {"order_id", "customer" (the email, lower case), "currency", "lines": [{"sku", "amount"}],
//    "item_count", "subtotal", "discount", "total"}
//
// Amounts are computed in cents. An invalid order fails the invocation with
// a ValidationError naming the field (nimbus_set_error_type + return NULL).
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static long long cents(double amount) { return llround(amount * 100.0); }

static void put_cents(nimbus_buf *out, long long value) {
    nimbus_buf_json_number(out, (double)value / 100.0);
}

static char *fail(nimbus_json *event, const char *message) {
    nimbus_json_free(event);
    nimbus_set_error_type("ValidationError", "%s", message);
    return NULL;
}

char *handler(const char *event_json, const char *context_json) {
    (void)context_json;
    nimbus_json *event = nimbus_json_parse(event_json);
    const char *order_id = nimbus_json_string(nimbus_json_get(event, "order_id"), NULL);
    if (!order_id) return fail(event, "order_id must be a string");
    const nimbus_json *items = nimbus_json_get(event, "items");
    if (nimbus_json_kind(items) != NIMBUS_JSON_ARRAY || nimbus_json_len(items) == 0)
        return fail(event, "items must be a non-empty array");

    const char *email = nimbus_json_string(
        nimbus_json_get(nimbus_json_get(event, "customer"), "email"), "");
    char *customer = strdup(email);
    for (char *c = customer; *c; c++) *c = (char)tolower((unsigned char)*c);

    nimbus_buf out = {0};
    nimbus_buf_puts(&out, "{\"order_id\":");
    nimbus_buf_json_string(&out, order_id);
    nimbus_buf_puts(&out, ",\"customer\":");
    nimbus_buf_json_string(&out, customer);
    free(customer);
    nimbus_buf_puts(&out, ",\"currency\":");
    nimbus_buf_json_string(&out, nimbus_json_string(nimbus_json_get(event, "currency"), "EUR"));
    nimbus_buf_puts(&out, ",\"lines\":[");

    long long subtotal = 0, count = 0;
    for (size_t i = 0; i < nimbus_json_len(items); i++) {
        const nimbus_json *item = nimbus_json_at(items, i);
        const char *sku = nimbus_json_string(nimbus_json_get(item, "sku"), NULL);
        double qty = nimbus_json_number(nimbus_json_get(item, "qty"), 0);
        double price = nimbus_json_number(nimbus_json_get(item, "price"), -1);
        if (!sku || qty <= 0 || qty != floor(qty) || price < 0) {
            free(out.data);
            nimbus_json_free(event);
            nimbus_set_error_type("ValidationError",
                                  "items[%zu] needs a sku, a whole positive qty and a price", i);
            return NULL;
        }
        long long amount = cents(price) * (long long)qty;
        subtotal += amount;
        count += (long long)qty;
        nimbus_buf_puts(&out, i ? ",{\"sku\":" : "{\"sku\":");
        nimbus_buf_json_string(&out, sku);
        nimbus_buf_puts(&out, ",\"amount\":");
        put_cents(&out, amount);
        nimbus_buf_puts(&out, "}");
    }

    double percent = nimbus_json_number(nimbus_json_get(nimbus_json_get(event, "coupon"), "percent"), 0);
    long long discount = llround((double)subtotal * percent / 100.0);
    nimbus_buf_printf(&out, "],\"item_count\":%lld,\"subtotal\":", count);
    put_cents(&out, subtotal);
    nimbus_buf_puts(&out, ",\"discount\":");
    put_cents(&out, discount);
    nimbus_buf_puts(&out, ",\"total\":");
    put_cents(&out, subtotal - discount);
    nimbus_buf_puts(&out, "}");
    nimbus_json_free(event);
    return nimbus_buf_finish(&out);
}

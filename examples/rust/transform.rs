// An order summary: validates an order event and prices it (the same
// function as examples/c/transform.c and examples/go/transform.go).
//
//   {"order_id": "A-1001", "customer": {"email": "ADA@Example.com"}, "currency": "EUR",
//    "items": [{"sku": "BK-1", "price": 4.5, "qty": 3}, ...],
//    "coupon": {"code": "SAVE10", "percent": 10}}
// → {"order_id", "customer" (the email, lower case), "currency", "lines": [{"sku", "amount"}],
//    "item_count", "subtotal", "discount", "total"}
//
// The handler takes and returns its own serde types: any `Deserialize` event
// and `Serialize` result work, not only `serde_json::Value`. Amounts are
// computed in cents. An invalid order returns `Err(ValidationError)`: the
// invocation fails with type "ValidationError" and its message.
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Order {
    order_id: Option<String>,
    #[serde(default)]
    customer: Customer,
    currency: Option<String>,
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    coupon: Coupon,
}

#[derive(Deserialize, Default)]
struct Customer {
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
struct Item {
    sku: Option<String>,
    price: Option<f64>,
    #[serde(default)]
    qty: f64,
}

#[derive(Deserialize, Default)]
struct Coupon {
    #[serde(default)]
    percent: f64,
}

#[derive(Serialize)]
struct Line {
    sku: String,
    amount: f64,
}

#[derive(Serialize)]
struct Summary {
    order_id: String,
    customer: String,
    currency: String,
    lines: Vec<Line>,
    item_count: i64,
    subtotal: f64,
    discount: f64,
    total: f64,
}

#[derive(Debug)]
struct ValidationError(String);

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

fn amount(cents: i64) -> f64 {
    cents as f64 / 100.0
}

fn handler(order: Order, _context: &Context) -> Result<Summary, ValidationError> {
    let order_id = order
        .order_id
        .ok_or_else(|| ValidationError("order_id must be a string".into()))?;
    if order.items.is_empty() {
        return Err(ValidationError("items must be a non-empty array".into()));
    }
    let mut lines = Vec::with_capacity(order.items.len());
    let (mut subtotal, mut count) = (0i64, 0i64);
    for (i, item) in order.items.into_iter().enumerate() {
        let (sku, price) = match (item.sku, item.price) {
            (Some(sku), Some(price)) if item.qty > 0.0 && item.qty.fract() == 0.0 && price >= 0.0 => {
                (sku, price)
            }
            _ => {
                return Err(ValidationError(format!(
                    "items[{i}] needs a sku, a whole positive qty and a price"
                )))
            }
        };
        let line = cents(price) * item.qty as i64;
        subtotal += line;
        count += item.qty as i64;
        lines.push(Line { sku, amount: amount(line) });
    }
    let discount = (subtotal as f64 * order.coupon.percent / 100.0).round() as i64;
    Ok(Summary {
        order_id,
        customer: order.customer.email.to_lowercase(),
        currency: order.currency.unwrap_or_else(|| "EUR".into()),
        lines,
        item_count: count,
        subtotal: amount(subtotal),
        discount: amount(discount),
        total: amount(subtotal - discount),
    })
}

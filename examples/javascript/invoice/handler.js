// An invoice summary: ES module handler, a CommonJS helper, an npm dependency.
import dayjs from "dayjs";
import { formatMoney, lineTotal } from "./lib/money.js";

export async function main(event, context) {
  const { customer = "anonymous", items, currency = "EUR", terms_days: terms = 30 } = event;
  if (!Array.isArray(items) || items.length === 0) {
    throw new TypeError("event.items must be a non-empty array of {sku, qty, unit_price}");
  }
  const issued = dayjs(event.issued ?? "2024-01-31");
  console.log(`invoice for ${customer}: ${items.length} line(s), issued ${issued.format("YYYY-MM-DD")}`);
  const total = items.reduce((sum, item) => sum + lineTotal(item), 0);
  const query = new URLSearchParams({ customer, total: String(total) });
  return {
    customer,
    lines: items.length,
    total: formatMoney(total, currency),
    issued: issued.format("YYYY-MM-DD"),
    due: issued.add(terms, "day").format("YYYY-MM-DD"),
    pay_url: `https://pay.example.com/?${query}`,
    function: context.function_name,
  };
}

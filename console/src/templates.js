// Templates come from examples/ (read at build time); the sample events are the ones their
// comments document.
const ORDER = {
  order_id: "A-1001",
  customer: { email: "ADA@Example.com" },
  currency: "EUR",
  items: [{ sku: "BK-1", price: 4.5, qty: 3 }, { sku: "PEN-2", price: 1.25, qty: 2 }],
  coupon: { code: "SAVE10", percent: 10 },
};
export const SAMPLE_EVENTS = {
  hello: { name: "Ada" },
  transform: ORDER,
  wordstats: { text: "the quick brown fox jumps over the lazy dog and the fox naps" },
  invoice: { customer: "Ada", items: [{ sku: "BK-1", qty: 2, unit_price: 12.5 }], currency: "EUR" },
};

let loaded;
/** {runtime: [{name, files, settings}]} */
export const loadTemplates = () => (loaded ||= import("virtual:templates").then((m) => m.default));

// Amounts are integer cents; CommonJS, imported by the ES module handler.
function lineTotal({ sku, qty, unit_price: unitPrice }) {
  if (!Number.isInteger(qty) || qty <= 0) {
    throw new RangeError(`line ${sku}: qty must be a positive integer, not ${qty}`);
  }
  return qty * Math.round(unitPrice * 100);
}

function formatMoney(cents, currency) {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")} ${currency}`;
}

module.exports = { lineTotal, formatMoney };

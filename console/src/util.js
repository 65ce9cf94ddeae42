// Small formatting helpers shared by the pages.
export const fmtMs = (ms) =>
  ms === null || ms === undefined ? "—" : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 1000 ? `${ms.toFixed(ms < 10 ? 2 : 1)} ms` : `${(ms / 1000).toFixed(2)} s`;

export const fmtBytes = (n) =>
  n === null || n === undefined ? "—" : n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KB` : `${(n / (1 << 20)).toFixed(1)} MB`;

export function fmtAgo(ts) {
  if (!ts) return "—";
  const s = (Date.now() - new Date(ts).getTime()) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ts).toLocaleDateString();
}

export const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2));

export function errorText(err) {
  if (!err) return "";
  // A validation error's message already reads "field: problem; …": repeat no detail it holds.
  const details = Array.isArray(err.details)
    ? err.details.map((d) => (d.field ? `${d.field}: ${d.message}` : d.message || JSON.stringify(d)))
      .filter((text) => !String(err.message).includes(text)).join("; ")
    : "";
  return `${err.code ? err.code + ": " : ""}${err.message}${details ? ` (${details})` : ""}`;
}

/** Remembered per browser: saved test events, theme, page size. */
export const remember = {
  get(key, fallback) {
    try { const v = localStorage.getItem(`nimbus.${key}`); return v === null ? fallback : JSON.parse(v); }
    catch { return fallback; }
  },
  set(key, value) { localStorage.setItem(`nimbus.${key}`, JSON.stringify(value)); },
};

export async function copyText(text) {
  try { await navigator.clipboard.writeText(text); return true; } catch { return false; }
}

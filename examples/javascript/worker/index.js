// A Cloudflare Workers module, as `npm create cloudflare` starts one: Nimbus serves
// `export default { fetch }` unchanged through the function's webhook URL.
//
//   GET  /api/greet?name=Ada   → JSON, CORS headers for ALLOWED_ORIGIN (an env var)
//   OPTIONS /api/...           → the CORS preflight
//   POST /api/orders           → 201 with a Location header, or 422 naming the field
//   GET  /pixel.png            → a binary reply (a 1×1 PNG)
//   GET  /docs                 → a redirect (relative: it stays behind the webhook URL)
//
// Differences from Cloudflare: `env` holds the function's env vars only (no KV, D1 or
// R2 bindings), there is no `request.cf`, and functions have no network.

const PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

function cors(env) {
  return {
    "access-control-allow-origin": env.ALLOWED_ORIGIN || "*",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": "content-type",
    "access-control-max-age": "600",
  };
}

function json(value, status, headers) {
  return Response.json(value, { status, headers });
}

async function createOrder(request, env) {
  const order = await request.json().catch(() => null);
  if (!order || typeof order.sku !== "string") return json({ error: "sku must be a string" }, 422, cors(env));
  if (!Number.isInteger(order.quantity) || order.quantity < 1) {
    return json({ error: "quantity must be a positive integer" }, 422, cors(env));
  }
  const id = crypto.randomUUID();
  return json({ id, ...order }, 201, { ...cors(env), location: `/api/orders/${id}` });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (request.method === "OPTIONS") return new Response(null, { status: 204, headers: cors(env) });
    if (url.pathname === "/api/greet") {
      return json({ hello: url.searchParams.get("name") || "world" }, 200, cors(env));
    }
    if (url.pathname === "/api/orders" && request.method === "POST") return createOrder(request, env);
    if (url.pathname === "/pixel.png") {
      const bytes = Uint8Array.from(atob(PIXEL), (c) => c.charCodeAt(0));
      return new Response(bytes, { headers: { "content-type": "image/png", "cache-control": "max-age=86400" } });
    }
    if (url.pathname === "/docs") {
      // Relative to the page: behind a webhook URL the caller asked for
      // /webhook/KEY/docs, while request.url holds only the path after the key
      // (and https unless X-Forwarded-Proto says otherwise), so a redirect built
      // from url.origin would leave the function.
      return new Response(null, { status: 302, headers: { location: "api/greet" } });
    }
    return json({ error: `no route for ${request.method} ${url.pathname}` }, 404);
  },
};

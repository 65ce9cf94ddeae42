// Cloudflare Workers' module syntax on Nimbus: `export default { fetch(request, env, ctx) }`.
// The build bundles this file in front of a module that has a default export and no
// `main`. Each call turns the event into a Request (a webhook's Lambda function-URL
// payload as the HTTP request it was; any other event, from the API, async, a
// schedule or a workflow, as a JSON POST) and the Response back into the
// {statusCode, headers, cookies, body, isBase64Encoded} a webhook answers with. A
// schedule whose event is {"type": "scheduled", "cron": "…"} calls `scheduled` instead,
// as a Cron Trigger does.
import worker from "USER_MODULE";

// Bodies of these types come back as text; anything else, or anything encoded
// (gzip), as base64.
const TEXT = /^(text\/|application\/(json|javascript|xml|x-www-form-urlencoded)\b|[^;]*\+(json|xml)\b)/i;

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function toRequest(event, context) {
  const http = event && event.requestContext && event.requestContext.http;
  if (!http) {
    return new Request(`https://${context.function_name}.invalid/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
  }
  const headers = new Headers(event.headers || {});
  if (event.cookies && event.cookies.length) headers.set("cookie", event.cookies.join("; "));
  const scheme = headers.get("x-forwarded-proto") || "https";
  const host = headers.get("host") || `${context.function_name}.invalid`;
  const query = event.rawQueryString ? `?${event.rawQueryString}` : "";
  const method = http.method || "GET";
  let body;
  if (event.body && method !== "GET" && method !== "HEAD") {
    body = event.isBase64Encoded ? fromBase64(event.body) : event.body;
  }
  const url = `${scheme}://${host}${event.rawPath || "/"}${query}`;
  return new Request(url, { method, headers, body });
}

async function fromResponse(response) {
  if (!(response instanceof Response)) {
    throw new TypeError(`the Worker's fetch() must return a Response, not ${typeof response}`);
  }
  // A network error has no HTTP reply to send: a function error (502 on the webhook), as
  // Deno's serve refuses one; a Worker that means "failed" throws or answers a 5xx.
  if (response.type === "error") {
    throw new TypeError("the Worker's fetch() returned Response.error(), a network error, which has no HTTP reply");
  }
  const headers = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const text = !headers["content-encoding"] && (!bytes.length || TEXT.test(headers["content-type"] || ""));
  const reply = {
    statusCode: response.status,
    headers,
    body: text ? new TextDecoder().decode(bytes) : toBase64(bytes),
    isBase64Encoded: !text,
  };
  const cookies = response.headers.getSetCookie();
  if (cookies.length) reply.cookies = cookies;
  return reply;
}

// A Cron Trigger's call: a schedule whose event is {"type": "scheduled", "cron": "…"}.
function isScheduled(event) {
  return Boolean(event && event.type === "scheduled" && !event.requestContext && worker &&
    typeof worker.scheduled === "function");
}

export async function main(event, context) {
  const pending = [];
  const ctx = {
    // Workers run these after the reply; here the call waits for them (within its timeout).
    waitUntil(promise) {
      pending.push(Promise.resolve(promise).catch((error) => console.error("waitUntil:", error)));
    },
    passThroughOnException() {},
  };
  const env = { ...process.env };
  let reply = null;
  if (isScheduled(event)) {
    const controller = { type: "scheduled", cron: String(event.cron || ""), scheduledTime: Date.now(), noRetry() {} };
    await worker.scheduled(controller, env, ctx);
  } else {
    if (!worker || typeof worker.fetch !== "function") {
      throw new TypeError("the module's default export has no fetch(request, env, ctx) method");
    }
    reply = await fromResponse(await worker.fetch(toRequest(event, context), env, ctx));
  }
  await Promise.all(pending);
  return reply;
}

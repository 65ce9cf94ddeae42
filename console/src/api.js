// The public REST API, with the key the user entered (kept for this tab only).
const KEY = "nimbus.apiKey";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || String(status);
    this.details = error.details;
    this.body = body;
  }
}

const listeners = new Set();
export const onUnauthorized = (fn) => (listeners.add(fn), () => listeners.delete(fn));

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (key) => sessionStorage.setItem(KEY, key);
export const clearKey = () => sessionStorage.removeItem(KEY);

function headers(extra = {}) {
  return { Authorization: `Bearer ${getKey() || ""}`, ...extra };
}

async function parse(resp) {
  const type = resp.headers.get("content-type") || "";
  if (resp.status === 204) return null;
  if (type.includes("json")) return resp.json();
  return resp.text();
}

/** fetch + JSON, throwing ApiError; a 401 tells every listener (the shell shows its screen). */
export async function request(method, path, { body, query, raw, headers: extra } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const init = { method, headers: headers(extra) };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(url, init);
  if (resp.status === 401) listeners.forEach((fn) => fn());
  if (raw) return resp;
  const data = await parse(resp);
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export const api = {
  get: (path, query) => request("GET", path, { query }),
  post: (path, body, query) => request("POST", path, { body, query }),
  put: (path, body, query) => request("PUT", path, { body, query }),
  del: (path) => request("DELETE", path),
};

export const fn = (ref) => `/api/v1/functions/${encodeURIComponent(ref)}`;

/** Is the key good? true / false (401) — other failures throw. */
export async function checkKey(key) {
  const resp = await fetch("/api/v1/functions?limit=1", { headers: { Authorization: `Bearer ${key}` } });
  if (resp.status === 401) return false;
  if (!resp.ok) throw new ApiError(resp.status, await parse(resp));
  return true;
}

/** multipart upload with progress (fetch cannot report upload progress; XHR can). */
export function upload(method, path, metadata, file, onProgress, query = {}) {
  return new Promise((resolve, reject) => {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const form = new FormData();
    form.append("metadata", new Blob([JSON.stringify(metadata)], { type: "application/json" }));
    form.append("artifact", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("Authorization", `Bearer ${getKey() || ""}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = xhr.responseText; }
      if (xhr.status === 401) listeners.forEach((fn) => fn());
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    };
    xhr.onerror = () => reject(new ApiError(0, { error: { message: "network error" } }));
    xhr.send(form);
  });
}

/** Invoke and keep what the console shows: status, headers, body, timing. */
export async function invoke(ref, event, { async = false, version } = {}) {
  const path = `${fn(ref)}/${async ? "async" : "invoke"}`;
  const started = performance.now();
  const resp = await request("POST", path, {
    body: event,
    raw: true,
    query: { version },
    headers: { "X-Nimbus-Log-Type": "Tail" },
  });
  const body = await parse(resp);
  const h = (name) => resp.headers.get(name);
  const tail = h("X-Nimbus-Log-Tail");
  return {
    ok: resp.ok,
    status: resp.status,
    body,
    invocationId: h("X-Nimbus-Invocation-Id") || (body && body.invocation_id),
    durationMs: h("X-Nimbus-Duration-Ms") ? Number(h("X-Nimbus-Duration-Ms")) : null,
    roundTripMs: performance.now() - started,
    coldStart: h("X-Nimbus-Cold-Start") === "true",
    version: h("X-Nimbus-Version"),
    functionError: h("X-Nimbus-Function-Error") === "true",
    logTail: tail === null ? null : decodeBase64(tail),
  };
}

function decodeBase64(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

let routes;
/**
 * Does the server have this route? Read from its OpenAPI document once, so the console uses
 * newer APIs (stats, invocations, versions, runtimes…) where they exist without probing for 404s.
 * `path` is written with `{}` for parameters: "/api/v1/functions/{}/stats".
 */
export async function hasRoute(path) {
  routes ||= fetch("/openapi.json").then(
    (r) => (r.ok ? r.json() : { paths: {} }),
    () => ({ paths: {} }),
  ).then((doc) => new Set(Object.keys(doc.paths || {}).map((p) => p.replace(/\{[^}]*\}/g, "{}"))));
  return (await routes).has(path);
}

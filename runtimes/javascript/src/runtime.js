// Nimbus's shared JavaScript runtime. This file runs INSIDE WebAssembly
// (SpiderMonkey, embedded by StarlingMonkey through componentize-js); the host
// never runs it. scripts/runtimes/javascript.sh turns it into one component
// exporting the `runtime` world of wit/handler.wit, shared by every JavaScript
// function (docs/decisions/0005-javascript-engine.md says why SpiderMonkey).
//
// - check(source, handler): the build's validation. Parses the bundle with this
//   engine's own parser (a syntax error names the user's file and line) and runs
//   none of it.
// - load(source, handler, context): evaluates the bundle in a CommonJS wrapper
//   (its top level runs) ahead of the first call: a pre-warmed instance.
// - run(source, handler, event, context): loads the bundle unless this instance
//   already has (`source` may then be ""), calls the handler (sync or async),
//   returns its result as JSON. An instance serves one function, never another;
//   with opt-in reuse its module state survives between calls, as in Lambda.
//
// `source` is what the build stored: the function bundled by esbuild as one
// CommonJS script, ending in an inline source map (`//# sourceMappingURL=data:`)
// that maps stack lines back to the user's files. `handler` is "file.export"
// ("handler.main"); the build already bundled from that file.
//
// What runs at module level here is in the snapshot every instance starts
// from: keep it free of anything that must differ per invocation (randomness,
// time, the environment).

import { getEnvironment } from "wasi:cli/environment@0.2.12";

const REVISION = 6; // bump when this file changes what functions see: a new runtime_version
const BUNDLE_URL = "nimbus-bundle.js"; // the name the engine gives the bundle's frames
// The bundle is evaluated inside this wrapper. It shares the bundle's first line,
// so line N of the bundle is line N for the engine (only line 1's columns shift).
const WRAPPER = "(function (exports, require, module, __filename, __dirname) {";
const MAX_STACK_LINES = 60;
// NOTE(runtime): wasmtime's epoch deadline cannot interrupt a WASI host call,
// and the engine's event loop waits for timers in one (wasi:io/poll), so a
// `setTimeout(f, 3600e3)` would hold the host's thread for an hour after the
// caller got its 504. A timer due after the invocation's deadline fires just
// after the deadline instead and spins; the epoch deadline (already passed)
// stops the spin at once.
const PAST_DEADLINE_MS = 20;
// The host's warm-up of the `run` export on a pre-warmed instance (sandbox/_component.py):
// a handler no function can have (a handler needs a dot).
const WARM_UP = "nimbus-warm-up";
const echo = (event) => event;

// Taken before the function's code runs: it may replace the globals it sees.
const jsonStringify = JSON.stringify;
const jsonParse = JSON.parse;
const realSetTimeout = globalThis.setTimeout;
const realSetInterval = globalThis.setInterval;
const realClearTimeout = globalThis.clearTimeout;
const realClearInterval = globalThis.clearInterval;

// -- per-invocation state ------------------------------------------------------

const state = {
  source: "", // the bundle being run (its source map names errors' lines)
  file: "handler.js",
  deadline: Infinity,
  timers: new Set(),
  intervals: new Set(),
  onIdle: null, // the stuck-promise check, run once no timer is left
  watchdogs: new Set(),
  uncaught: null, // fails the invocation with an error thrown in a timer callback
};

// An error thrown by a timer's callback fails the invocation, as an uncaught
// exception fails a Node process (and would otherwise abort the engine's loop).
function guarded(callback, args) {
  try {
    if (typeof callback === "function") callback(...args);
  } catch (error) {
    if (state.uncaught) state.uncaught(error);
  }
}

// No timer or interval pending: only microtasks could still settle the handler's
// promise, and they have all run by the time a 0 ms timer fires.
function idleSoon() {
  if (state.onIdle && state.timers.size === 0 && state.intervals.size === 0) {
    const check = state.onIdle;
    state.onIdle = null;
    const id = realSetTimeout(() => {
      state.watchdogs.delete(id);
      check();
    }, 0);
    state.watchdogs.add(id);
  }
}

function spinUntilStopped() {
  for (;;) {
    // the epoch deadline has passed: wasmtime stops this loop
  }
}

function boundedDelay(delay) {
  const ms = Number(delay) || 0;
  const left = state.deadline - Date.now();
  return ms < left ? { ms, late: false } : { ms: Math.max(left, 0) + PAST_DEADLINE_MS, late: true };
}

function setTimeout(callback, delay, ...args) {
  const { ms, late } = boundedDelay(delay);
  const id = realSetTimeout(
    (...a) => {
      state.timers.delete(id);
      if (late) spinUntilStopped();
      guarded(callback, a);
      idleSoon();
    },
    ms,
    ...args,
  );
  state.timers.add(id);
  return id;
}

function setInterval(callback, delay, ...args) {
  const { ms, late } = boundedDelay(delay);
  const id = realSetInterval(
    (...a) => {
      if (late || Date.now() > state.deadline) spinUntilStopped();
      guarded(callback, a);
    },
    ms,
    ...args,
  );
  state.intervals.add(id);
  return id;
}

function clearTimeout(id) {
  state.timers.delete(id);
  realClearTimeout(id);
  idleSoon();
}

function clearInterval(id) {
  state.intervals.delete(id);
  realClearInterval(id);
  idleSoon();
}

function clearAllTimers() {
  // The result is in: like Lambda, nothing left pending runs after it.
  for (const id of state.timers) realClearTimeout(id);
  for (const id of state.intervals) realClearInterval(id);
  for (const id of state.watchdogs) realClearTimeout(id);
  state.timers.clear();
  state.intervals.clear();
  state.watchdogs.clear();
  state.onIdle = null;
  state.uncaught = null;
}

// Rejects if `promise` is still pending once nothing is left that could settle
// it (no timers, no microtasks), or when a timer's callback throws. NOTE(runtime): without this the engine's event
// loop runs dry and aborts the whole instance with a trap.
function stuck(promise) {
  return new Promise((_, reject) => {
    state.uncaught = reject;
    let settled = false;
    const done = () => {
      settled = true;
    };
    promise.then(done, done);
    state.onIdle = () => {
      if (settled) return;
      if (state.timers.size || state.intervals.size) {
        state.onIdle = stuckCheck; // look again when the last timer is gone
        return;
      }
      reject(new Error("the handler's promise never settled, and nothing (no timer) is left that could settle it"));
    };
    const stuckCheck = state.onIdle;
    idleSoon();
  });
}

// NOTE(runtime): the component imports no wasi:http (DESIGN.md: no network), so the
// engine's own fetch would abort the instance; it rejects like a refused connection.
async function fetch() {
  throw new TypeError("fetch failed: functions have no network access");
}

Object.assign(globalThis, { setTimeout, setInterval, clearTimeout, clearInterval, fetch });

// -- body streams ------------------------------------------------------------
// NOTE(runtime): the engine's Blob.stream() (and so a Response or Request with a
// Blob or FormData body) reads in tasks of the engine's event loop that this file
// cannot see: the stuck-promise check found no timer and failed the handler
// mid-read. Blob streams are plain JS streams here, read from the blob's bytes by
// promise jobs only.
const BLOB_CHUNK = 65536;
const EngineBlob = globalThis.Blob;
const blobArrayBuffer = EngineBlob.prototype.arrayBuffer;

function blobStream() {
  const blob = this;
  let bytes = null;
  let offset = 0;
  return new ReadableStream({
    async pull(controller) {
      if (bytes === null) bytes = new Uint8Array(await blobArrayBuffer.call(blob));
      const end = Math.min(offset + BLOB_CHUNK, bytes.length);
      if (end > offset) controller.enqueue(bytes.slice(offset, end));
      offset = end;
      if (offset >= bytes.length) controller.close();
    },
  });
}

// A FormData body as its multipart/form-data bytes, in a Blob: the engine's own
// encoding is read in the same unseen tasks.
function multipart(form) {
  const random = crypto.getRandomValues(new Uint8Array(12));
  const boundary = `----nimbus-${[...random].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  const quoted = (text) => text.replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");
  const parts = [];
  for (const [name, value] of form) {
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="${quoted(name)}"`;
    if (typeof value === "string") {
      parts.push(`${head}\r\n\r\n`, value, "\r\n");
    } else {
      const type = value.type || "application/octet-stream";
      parts.push(`${head}; filename="${quoted(value.name ?? "blob")}"\r\nContent-Type: ${type}\r\n\r\n`, value, "\r\n");
    }
  }
  parts.push(`--${boundary}--\r\n`);
  return new EngineBlob(parts, { type: `multipart/form-data; boundary=${boundary}` });
}

// A Blob (or FormData) body becomes a Blob stream, with the Blob's type as its
// Content-Type (the engine's own rule for Blob bodies).
function withBlobBody(Engine, bodyFirst) {
  function Wrapped(...args) {
    if (!new.target) return Engine(...args); // the engine's TypeError
    const [first, init] = args;
    let body = bodyFirst ? first : init?.body;
    if (body instanceof FormData) body = multipart(body);
    if (body instanceof EngineBlob) {
      const stream = blobStream.call(body);
      const changed = bodyFirst ? { ...init } : { ...init, body: stream, duplex: "half" };
      const given = init?.headers ?? (!bodyFirst && first instanceof Engine ? first.headers : undefined);
      const headers = new Headers(given);
      if (body.type && !headers.has("content-type")) {
        headers.set("content-type", body.type);
        changed.headers = headers;
      }
      args = bodyFirst ? [stream, changed] : [first, changed];
    }
    return Reflect.construct(Engine, args, new.target === Wrapped ? Engine : new.target);
  }
  Object.defineProperty(Wrapped, "name", { value: Engine.name });
  Object.defineProperty(Wrapped, "length", { value: Engine.length });
  Wrapped.prototype = Engine.prototype;
  Object.setPrototypeOf(Wrapped, Engine);
  Object.defineProperty(Engine.prototype, "constructor", { value: Wrapped, writable: true, configurable: true });
  return Wrapped;
}

// `for await (const chunk of stream)` and `stream.values()`, as in Node and browsers.
async function* streamValues({ preventCancel = false } = {}) {
  const reader = this.getReader();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!finished && !preventCancel) await reader.cancel();
    reader.releaseLock();
  }
}

function installBodyStreams() {
  Object.defineProperty(EngineBlob.prototype, "stream", { value: blobStream, writable: true, configurable: true });
  const proto = ReadableStream.prototype;
  if (!proto[Symbol.asyncIterator]) {
    for (const key of ["values", Symbol.asyncIterator]) {
      Object.defineProperty(proto, key, { value: streamValues, writable: true, configurable: true });
    }
  }
  installFormData(globalThis.Request.prototype);
  installFormData(globalThis.Response.prototype);
  installResponseClone(globalThis.Response);
  installBytes(globalThis.Request.prototype);
  installBytes(globalThis.Response.prototype); // after clone: its arrayBuffer reads the holder
  installResponseError(globalThis.Response);
  globalThis.Response = withBlobBody(globalThis.Response, true);
  globalThis.Request = withBlobBody(globalThis.Request, false);
  for (const Stream of [TextDecoderStream, TextEncoderStream]) {
    Object.defineProperty(globalThis, Stream.name, { value: Stream, writable: true, configurable: true });
  }
}

// -- formData() ----------------------------------------------------------------
// NOTE(runtime): the engine's own formData() gave a file part's bytes back as their
// decimal values joined ("xyz" read "120121122"). Both body types are parsed here.

function indexOfBytes(bytes, needle, from) {
  const first = needle[0];
  for (let at = bytes.indexOf(first, from); at >= 0; at = bytes.indexOf(first, at + 1)) {
    if (at + needle.length > bytes.length) return -1;
    let i = 1;
    while (i < needle.length && bytes[at + i] === needle[i]) i++;
    if (i === needle.length) return at;
  }
  return -1;
}

// `type/subtype; key=value; key="quoted value"` → { type, params } (keys lowercased).
function parseHeaderValue(text) {
  const [head, ...rest] = splitParams(text);
  const params = new Map();
  for (const part of rest) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"')) {
      // a quoted string: browsers write `"` as %22 (kept as it is), curl as \"
      const end = value.length > 1 && value.endsWith('"') ? -1 : undefined;
      value = value.slice(1, end).replace(/\\(["\\])/g, "$1");
    }
    if (!params.has(key)) params.set(key, value);
  }
  return { type: head.trim().toLowerCase(), params };
}

// Splits at semicolons outside quoted strings.
function splitParams(text) {
  const parts = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted && ch === "\\" && i + 1 < text.length) {
      current += ch + text[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === ";" && !quoted) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

// RFC 5987's `filename*=UTF-8''na%C3%AFve.txt`.
function extendedValue(value) {
  const found = /^([^']*)'[^']*'(.*)$/.exec(value);
  if (!found) return null;
  try {
    return /^utf-8$/i.test(found[1]) ? decodeURIComponent(found[2]) : unescape(found[2]);
  } catch {
    return null;
  }
}

const formError = () => new TypeError("formData(): the body is not valid multipart/form-data");

function parseMultipart(bytes, boundary) {
  const utf8 = new TextDecoder();
  const delimiter = new TextEncoder().encode(`--${boundary}`);
  const form = new FormData();
  // The first delimiter opens the body or a line (a preamble before it is skipped).
  let at = 0;
  if (indexOfBytes(bytes, delimiter, 0) !== 0) {
    const found = indexOfBytes(bytes, new TextEncoder().encode(`\r\n--${boundary}`), 0);
    if (found < 0) throw formError();
    at = found + 2;
  }
  const next = new TextEncoder().encode(`\r\n--${boundary}`);
  for (;;) {
    at += delimiter.length;
    if (bytes[at] === 45 && bytes[at + 1] === 45) return form; // "--": the last part was read
    while (bytes[at] === 32 || bytes[at] === 9) at++; // transport padding
    if (bytes[at] !== 13 || bytes[at + 1] !== 10) throw formError();
    at += 2;
    const headEnd = indexOfBytes(bytes, new Uint8Array([13, 10, 13, 10]), at - 2);
    if (headEnd < 0) throw formError();
    let name = null;
    let filename = null;
    let type = null;
    for (const line of utf8.decode(bytes.subarray(at, headEnd)).split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const header = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (header === "content-disposition") {
        const { type: kind, params } = parseHeaderValue(value);
        if (kind !== "form-data" || !params.has("name")) throw formError();
        name = params.get("name");
        if (params.has("filename*")) filename = extendedValue(params.get("filename*"));
        if (filename === null && params.has("filename")) filename = params.get("filename");
      } else if (header === "content-type") {
        type = value;
      }
    }
    if (name === null) throw formError();
    const start = headEnd + 4;
    const end = indexOfBytes(bytes, next, start);
    if (end < 0) throw formError();
    const content = bytes.slice(start, end);
    if (filename === null) form.append(name, utf8.decode(content));
    else form.append(name, new File([content], filename, { type: type ?? "text/plain" }));
    at = end + 2;
  }
}

async function formData() {
  const { type, params } = parseHeaderValue(this.headers.get("content-type") ?? "");
  if (type === "multipart/form-data") {
    const boundary = params.get("boundary");
    if (!boundary) throw new TypeError("formData(): the multipart/form-data Content-Type has no boundary");
    return parseMultipart(new Uint8Array(await this.arrayBuffer()), boundary);
  }
  if (type === "application/x-www-form-urlencoded") {
    const form = new FormData();
    for (const [name, value] of new URLSearchParams(await this.text())) form.append(name, value);
    return form;
  }
  throw new TypeError(
    "formData(): the body's Content-Type is neither multipart/form-data nor application/x-www-form-urlencoded",
  );
}

function installFormData(proto) {
  Object.defineProperty(proto, "formData", { value: formData, writable: true, configurable: true });
}

// -- Response.clone() ----------------------------------------------------------
// The engine has Request.prototype.clone but no Response.prototype.clone. A clone
// tees the body: the clone reads one branch and the original the other, through an
// engine Response holding that branch (its "body holder"), which the original's
// body, bodyUsed and reading methods use from then on.
const bodyHolders = new WeakMap();
const holderOf = (response) => bodyHolders.get(response) ?? response;

function installResponseClone(EngineResponse) {
  const proto = EngineResponse.prototype;
  for (const key of ["arrayBuffer", "blob", "json", "text"]) {
    const own = proto[key];
    Object.defineProperty(proto, key, {
      value: {
        [key]() {
          return own.call(holderOf(this));
        },
      }[key],
      writable: true,
      configurable: true,
    });
  }
  for (const key of ["body", "bodyUsed"]) {
    const { get, enumerable } = Object.getOwnPropertyDescriptor(proto, key);
    Object.defineProperty(proto, key, {
      get: { [key]() { return get.call(holderOf(this)); } }[key],
      enumerable,
      configurable: true,
    });
  }
  function clone() {
    if (!(this instanceof EngineResponse)) throw new TypeError("Response.clone: 'this' is not a Response");
    if (networkErrors.has(this)) return responseError(EngineResponse);
    const holder = holderOf(this);
    const body = holder.body;
    if (holder.bodyUsed || body?.locked) {
      throw new TypeError("Response.clone: the body has already been read");
    }
    const init = { status: this.status, statusText: this.statusText, headers: this.headers };
    if (body === null) return new EngineResponse(null, init);
    const [mine, theirs] = body.tee();
    bodyHolders.set(this, new EngineResponse(mine, init));
    return new EngineResponse(theirs, init);
  }
  Object.defineProperty(proto, "clone", { value: clone, writable: true, configurable: true });
}

// -- bytes(), Response.error() ---------------------------------------------------

// `body.bytes()`: the body as a Uint8Array (Fetch, 2024), which the engine's Request
// and Response lack (its Blob has one). The brand check is the engine's arrayBuffer's.
function installBytes(proto) {
  if (proto.bytes) return;
  const arrayBuffer = proto.arrayBuffer;
  const bytes = {
    async bytes() {
      return new Uint8Array(await arrayBuffer.call(this));
    },
  }.bytes;
  Object.defineProperty(proto, "bytes", { value: bytes, writable: true, configurable: true });
}

// `Response.error()`: a network error (type "error", status 0, no body, headers that
// refuse changes). The engine has none, and its constructor refuses status 0, so it is
// an empty engine Response whose own getters say so. The Workers adapter
// (compiler/glue/javascript) refuses one as a Worker's reply.
const networkErrors = new WeakSet();

function immutable(method) {
  return () => {
    throw new TypeError(`Headers.${method}: the headers of Response.error() are immutable`);
  };
}

function responseError(EngineResponse) {
  const response = new EngineResponse(null);
  const fixed = { type: "error", status: 0, statusText: "", ok: false };
  for (const [key, value] of Object.entries(fixed)) {
    Object.defineProperty(response, key, { get: () => value });
  }
  const headers = response.headers;
  for (const method of ["append", "delete", "set"]) {
    Object.defineProperty(headers, method, { value: immutable(method) });
  }
  Object.defineProperty(response, "headers", { get: () => headers });
  networkErrors.add(response);
  return response;
}

function installResponseError(EngineResponse) {
  if (EngineResponse.error) return;
  const error = { error: () => responseError(EngineResponse) }.error;
  Object.defineProperty(EngineResponse, "error", { value: error, writable: true, configurable: true });
}

// -- TextDecoderStream, TextEncoderStream ---------------------------------------

function isBufferSource(chunk) {
  return chunk instanceof ArrayBuffer || ArrayBuffer.isView(chunk);
}

// The readable and writable sides of a TransformStream, as the encoding streams are.
class TransformPair {
  #transform;
  constructor(transformer) {
    this.#transform = new TransformStream(transformer);
  }
  get readable() {
    return this.#transform.readable;
  }
  get writable() {
    return this.#transform.writable;
  }
}

class TextDecoderStream extends TransformPair {
  #decoder;
  constructor(label = "utf-8", options = {}) {
    const decoder = new TextDecoder(label, options);
    super({
      transform(chunk, controller) {
        if (!isBufferSource(chunk)) throw new TypeError("TextDecoderStream: a chunk must be an ArrayBuffer or a view of one");
        const text = decoder.decode(chunk, { stream: true });
        if (text) controller.enqueue(text);
      },
      flush(controller) {
        const text = decoder.decode();
        if (text) controller.enqueue(text);
      },
    });
    this.#decoder = decoder;
  }
  get encoding() {
    return this.#decoder.encoding;
  }
  get fatal() {
    return this.#decoder.fatal;
  }
  get ignoreBOM() {
    return this.#decoder.ignoreBOM;
  }
  get [Symbol.toStringTag]() {
    return "TextDecoderStream";
  }
}

class TextEncoderStream extends TransformPair {
  constructor() {
    const encoder = new TextEncoder();
    let pending = ""; // a high surrogate whose low half may start the next chunk
    super({
      transform(chunk, controller) {
        let text = pending + String(chunk);
        pending = "";
        const last = text.charCodeAt(text.length - 1);
        if (last >= 0xd800 && last <= 0xdbff) {
          pending = text[text.length - 1];
          text = text.slice(0, -1);
        }
        if (text) controller.enqueue(encoder.encode(text));
      },
      flush(controller) {
        if (pending) controller.enqueue(encoder.encode("\ufffd"));
      },
    });
  }
  get encoding() {
    return "utf-8";
  }
  get [Symbol.toStringTag]() {
    return "TextEncoderStream";
  }
}

installBodyStreams();

// -- Node-flavoured globals ----------------------------------------------------

function makeProcess(context) {
  const env = {};
  for (const [key, value] of getEnvironment()) env[key] = value;
  return {
    env,
    argv: ["nimbus", context.function_name || "function"],
    platform: "wasi",
    arch: "wasm32",
    pid: 1,
    exitCode: undefined,
    cwd: () => "/",
    nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)),
    hrtime: Object.assign(
      (prev) => {
        const ns = BigInt(Math.round(performance.now() * 1e6));
        const s = Number(ns / 1000000000n);
        const n = Number(ns % 1000000000n);
        if (!prev) return [s, n];
        let ds = s - prev[0];
        let dn = n - prev[1];
        if (dn < 0) { ds -= 1; dn += 1e9; }
        return [ds, dn];
      },
      { bigint: () => BigInt(Math.round(performance.now() * 1e6)) },
    ),
    memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0 }),
    exit(code) {
      throw new Error(`process.exit(${code ?? ""}) is not supported in functions: return or throw`);
    },
  };
}

function requireUnavailable(name) {
  const error = new Error(
    `Cannot find module '${name}': Node's built-in modules are not available in Nimbus ` +
      "functions (npm packages from package.json are bundled at deploy time)",
  );
  error.code = "MODULE_NOT_FOUND";
  throw error;
}

// -- source maps ---------------------------------------------------------------

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_VALUES = new Map([...B64].map((ch, i) => [ch, i]));
const MAP_PREFIX = "//# sourceMappingURL=data:application/json;base64,";

// Decoded lazily, only when an error has to be reported.
function sourceMap(source) {
  const at = source.lastIndexOf(MAP_PREFIX);
  if (at < 0) return null;
  try {
    const encoded = source.slice(at + MAP_PREFIX.length).trim();
    const map = jsonParse(new TextDecoder().decode(Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0))));
    return {
      sources: map.sources || [],
      names: new Set(map.names || []),
      lines: decodeMappings(map.mappings || ""),
    };
  } catch {
    return null;
  }
}

// One array per generated line of [generated column, source, line, column] (0-based).
function decodeMappings(mappings) {
  const lines = [];
  let source = 0;
  let line = 0;
  let column = 0;
  for (const text of mappings.split(";")) {
    const segments = [];
    let genColumn = 0;
    for (const segment of text.split(",")) {
      if (!segment) continue;
      const values = decodeVlq(segment);
      genColumn += values[0];
      if (values.length >= 4) {
        source += values[1];
        line += values[2];
        column += values[3];
        segments.push([genColumn, source, line, column]);
      }
    }
    lines.push(segments);
  }
  return lines;
}

function decodeVlq(segment) {
  const values = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = B64_VALUES.get(ch);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
    } else {
      values.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return values;
}

// (engine line, engine column), both 1-based, in the wrapped bundle → the user's
// { file, line, column } (1-based), or null for code only the bundler wrote.
function originalPosition(map, line, column) {
  if (line === 1) column -= WRAPPER.length;
  if (!map) return { file: null, line, column };
  const segments = map.lines[line - 1];
  if (!segments || segments.length === 0) return null;
  let found = null;
  for (const segment of segments) {
    if (segment[0] > column - 1) break;
    found = segment;
  }
  found = found || segments[0];
  return { file: map.sources[found[1]], line: found[2] + 1, column: found[3] + 1 };
}

// esbuild renames clashing names in the bundle (`lineTotal` → `lineTotal2`) and
// lists the original names in the map: show the user's name.
function originalName(map, name) {
  const renamed = /^(.*[^\d])\d+$/.exec(name);
  return renamed && map && !map.names.has(name) && map.names.has(renamed[1]) ? renamed[1] : name;
}

// -- errors --------------------------------------------------------------------

const FRAME = /^(async\*)?(.*)@(.*):(\d+):(\d+)$/;

// SpiderMonkey's "fn@file:line:col" frames → Node's "    at fn (file:line:col)",
// keeping only the function's own frames (the bundle's), mapped to the user's files.
function userStack(error, source, fallbackFile) {
  const raw = typeof error?.stack === "string" ? error.stack : "";
  let map;
  const frames = [];
  for (const text of raw.split("\n")) {
    const match = FRAME.exec(text);
    if (!match || match[3] !== BUNDLE_URL) continue;
    if (map === undefined) map = sourceMap(source);
    const where = originalPosition(map, Number(match[4]), Number(match[5]));
    if (!where) continue;
    const file = where.file || fallbackFile;
    const name = match[2] ? `${match[1] ? "async " : ""}${originalName(map, match[2])}` : "";
    const place = `${file}:${where.line}:${where.column}`;
    frames.push(name ? `    at ${name} (${place})` : `    at ${place}`);
    if (frames.length >= MAX_STACK_LINES) break;
  }
  return frames;
}

function errorInfo(error, source, fallbackFile) {
  if (error instanceof Error || (error && typeof error === "object" && "message" in error)) {
    const type = String(error.name || error.constructor?.name || "Error");
    const message = String(error.message ?? "");
    const frames = userStack(error, source, fallbackFile);
    return { type, message, stack: [`${type}: ${message}`, ...frames].join("\n") };
  }
  // `throw "text"` and other non-errors: the value is the message.
  let message;
  try {
    message = typeof error === "string" ? error : jsonStringify(error) ?? String(error);
  } catch {
    message = String(error);
  }
  return { type: "Error", message, stack: "" };
}

// A syntax error found while parsing the bundle, at the user's line.
function syntaxErrorInfo(error, source, fallbackFile) {
  const line = Number(error.lineNumber);
  const column = Number(error.columnNumber);
  // Only the bundle is parsed here, so the position is the bundle's whatever file the
  // engine names (the caller's: the bundle's sourceURL comment comes last).
  const where = line > 0 ? originalPosition(sourceMap(source), line, column + 1) : null;
  const place = where ? `${where.file || fallbackFile}:${where.line}:${where.column}` : fallbackFile;
  return { type: "SyntaxError", message: `${place}: ${error.message}`, stack: "" };
}

// console.log(error) prints the error with the user's lines, as Node does.
for (const level of ["log", "info", "warn", "error", "debug", "trace"]) {
  const write = typeof console[level] === "function" ? console[level].bind(console) : null;
  if (write) {
    console[level] = (...args) =>
      write(...args.map((arg) => (arg instanceof Error ? errorInfo(arg, state.source, state.file).stack : arg)));
  }
}

// -- loading -------------------------------------------------------------------

function splitHandler(handler) {
  const dot = handler.lastIndexOf(".");
  if (dot <= 0 || dot === handler.length - 1) {
    throw new TypeError(`handler ${jsonStringify(handler)} must look like 'file.export'`);
  }
  const module = handler.slice(0, dot);
  return { file: /\.[cm]?js$/.test(module) ? module : `${module}.js`, name: handler.slice(dot + 1) };
}

// Parses the bundle into a function of the CommonJS module variables; runs none of it.
function compile(source, file) {
  try {
    return (0, eval)(`${WRAPPER}${source}\n})\n//# sourceURL=${BUNDLE_URL}`);
  } catch (error) {
    if (error instanceof SyntaxError) throw { info: syntaxErrorInfo(error, source, file) };
    throw error;
  }
}

function evaluate(source, file) {
  const factory = compile(source, file);
  const module = { exports: {}, id: file, filename: `/${file}`, loaded: false };
  factory.call(module.exports, module.exports, requireUnavailable, module, `/${file}`, "/");
  module.loaded = true;
  return module.exports;
}

// -- the exports ---------------------------------------------------------------

function fail(error, source, file) {
  // componentize-js turns a thrown value into the result's `err` case.
  throw error && error.info ? error.info : errorInfo(error, source, file);
}

export function check(source, handler) {
  let file;
  try {
    ({ file } = splitHandler(handler));
    compile(source, file);
  } catch (error) {
    fail(error, source, file || "handler.js");
  }
  return jsonStringify({ engine: "SpiderMonkey (StarlingMonkey)", runtime_revision: REVISION });
}

function encodeResult(value) {
  let text;
  try {
    text = jsonStringify(value === undefined ? null : value);
  } catch (error) {
    throw notJSON(error, value);
  }
  if (text === undefined) return "null"; // a function or a symbol
  return text;
}

// The engine's "BigInt value can't be serialized in JSON" or "cyclic object value"
// said as the handler's: what in its return value is not JSON (`result.items[2]:
// BigInt`), its stack the handler's. Only the failure path walks the value; an error a
// toJSON method throws is the user's own and stays as it is.
function notJSON(error, value) {
  let found = null;
  try {
    found = firstNotJSON(value, "", "result", []);
  } catch {
    // a toJSON that throws, or a value too deep to walk
  }
  if (found === null) return error;
  const message = `the handler's return value could not be encoded as JSON: ${found} (${error?.message ?? error})`;
  const at = serving ? `    at ${serving.name} (${definedAt(serving) ?? serving.file})` : null;
  return { info: { type: "TypeError", message, stack: [`TypeError: ${message}`, ...(at ? [at] : [])].join("\n") } };
}

// Where the handler's function starts in the user's files (`handler.js:3:8`), as the
// Python runtime names the handler's `def` line: the engine keeps each function's
// source text (toString), found once in the bundle and mapped like a stack frame. The
// `return` itself is not knowable here (the value arrives after the handler's frame is
// gone). Null for a function whose text is not in the bundle exactly once (a bound
// function, or two with the same text).
function definedAt({ fn, source, file }) {
  let text;
  try {
    text = Function.prototype.toString.call(fn);
  } catch {
    return null;
  }
  const at = source.indexOf(text);
  if (at < 0 || source.indexOf(text, at + 1) >= 0) return null;
  const lineStart = source.lastIndexOf("\n", at) + 1;
  let line = 1;
  for (let i = source.indexOf("\n"); i >= 0 && i < at; i = source.indexOf("\n", i + 1)) line++;
  const column = at - lineStart + 1 + (line === 1 ? WRAPPER.length : 0); // as the engine counts
  const where = originalPosition(sourceMap(source), line, column);
  return where ? `${where.file || file}:${where.line}:${where.column}` : null;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

// Where `value` holds what JSON.stringify refuses (a BigInt, a cycle), walked as
// JSON.stringify walks it (toJSON, then own enumerable keys): a description, or null.
function firstNotJSON(value, key, path, ancestors) {
  if (value !== null && (typeof value === "object" || typeof value === "bigint") && typeof value.toJSON === "function") {
    value = value.toJSON(key);
  }
  if (typeof value === "bigint" || value instanceof BigInt) return `${path}: BigInt`;
  if (value === null || typeof value !== "object") return null;
  const seen = ancestors.find((pair) => pair[0] === value);
  if (seen) return `${path}: a circular reference to ${seen[1]}`;
  ancestors.push([value, path]);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = firstNotJSON(value[i], String(i), `${path}[${i}]`, ancestors);
      if (found !== null) return found;
    }
  } else {
    for (const name of Object.keys(value)) {
      const where = IDENTIFIER.test(name) ? `${path}.${name}` : `${path}[${jsonStringify(name)}]`;
      const found = firstNotJSON(value[name], name, where, ancestors);
      if (found !== null) return found;
    }
  }
  ancestors.pop();
  return null;
}

// `main(event, context)`, sync or async, or Lambda's `main(event, context, callback)`:
// what the handler returned, or a promise of its result.
function call(fn, event, ctx) {
  if (fn.length < 3) return fn(event, ctx);
  return new Promise((resolve, reject) => {
    const done = (error, value) => (error ? reject(error) : resolve(value));
    const returned = fn(event, ctx, done);
    if (returned && typeof returned.then === "function") returned.then(resolve, reject);
  });
}

function isThenable(value) {
  return value !== null && (typeof value === "object" || typeof value === "function") && typeof value.then === "function";
}

// The handler's result once its promise settles (or it is stuck).
async function settle(returned) {
  const pending = Promise.resolve(returned);
  return await Promise.race([pending, stuck(pending)]);
}

// The one function this instance serves: { source, handler, file, fn }, fn once
// its bundle has been evaluated (by `load`, or by the first `run`).
let serving = null;

function loadFunction(source, handler, ctx) {
  if (serving === null) {
    if (!source) throw new TypeError("no source given and none loaded");
    const parts = splitHandler(handler);
    serving = { source, handler, file: parts.file, name: parts.name, fn: null };
    state.source = source;
    state.file = parts.file;
    globalThis.process = makeProcess(ctx);
  } else if ((source && source !== serving.source) || handler !== serving.handler) {
    throw new Error("this instance already serves another function");
  }
  if (serving.fn === null) {
    const exported = evaluate(serving.source, serving.file);
    const name = serving.name;
    // `exports.main`, or `export default { main }` (its object is `exports.default`)
    const fn = exported?.[name] ?? exported?.default?.[name] ?? (name === "default" ? exported : undefined);
    if (typeof fn !== "function") {
      throw new TypeError(`${serving.file} does not export a function named '${name}' (the handler is '${handler}')`);
    }
    serving.fn = fn;
  }
  return serving.fn;
}

function begin(context) {
  const ctx = jsonParse(context);
  state.deadline = Number(ctx.deadline_ms) || Infinity;
  ctx.getRemainingTimeInMillis = () => Math.max(0, state.deadline - Date.now());
  return ctx;
}

// A pre-warmed instance: the bundle evaluated off the request path, so `run` only
// calls the handler. Timers its top level starts are cleared, as after a `run`.
export async function load(source, handler, context) {
  try {
    const ctx = begin(context);
    loadFunction(source, handler, ctx);
    // PERF(runtime): the engine compiles a function on its first call; take the path
    // every `run` takes once now, with a platform no-op in place of the handler.
    encodeResult(await settle(call(() => null, jsonParse("{}"), ctx)));
    encodeResult(await settle(call(async () => null, jsonParse("{}"), ctx)));
  } catch (error) {
    fail(error, source || serving?.source || "", serving?.file || "handler.js");
  } finally {
    clearAllTimers();
  }
}

export async function run(source, handler, event, context) {
  try {
    const ctx = begin(context);
    // PERF(runtime): the engine compiles this export's glue and this function on their
    // first call: the host takes this path once ahead of the caller (WARM_UP), with
    // platform data and `echo` in place of the handler. Nothing of the function is
    // read or called then: no user code runs.
    const fn = handler === WARM_UP ? echo : loadFunction(source, handler, ctx);
    const returned = call(fn, jsonParse(event), ctx);
    // PERF(runtime): a plain value needs no promise machinery, nor the stuck check's
    // timer (a host call into the event loop).
    if (!isThenable(returned)) return encodeResult(returned);
    return encodeResult(await settle(returned));
  } catch (error) {
    fail(error, source || serving?.source || "", serving?.file || "handler.js");
  } finally {
    clearAllTimers();
  }
}

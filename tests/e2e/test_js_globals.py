"""The globals a JavaScript function can use: the published list, checked through a real server.

Each entry is an expression a function evaluates; a supported one must be
true, an unsupported one documents what is missing (and must stay missing or
be moved to the supported list). The runtime is SpiderMonkey without ICU,
embedded by StarlingMonkey (docs/decisions/0005-javascript-engine.md).
"""

# ruff: noqa: E501 - a table of JavaScript expressions reads best one per line

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from compiler.runtimes import javascript as js
from tests.e2e.server import REPO, NimbusProcess

pytestmark = pytest.mark.timeout(900)

SUPPORTED: dict[str, str] = {
    # the language
    "JSON": "JSON.parse(JSON.stringify({ a: [1, 'é'] })).a[1] === 'é'",
    "Date": "new Date('2024-02-29T12:00:00Z').toISOString() === '2024-02-29T12:00:00.000Z'",
    "Date (UTC time zone)": "new Date(0).getTimezoneOffset() === 0",
    "Math": "Math.hypot(3, 4) === 5 && Math.random() < 1",
    "RegExp named groups": "/(?<y>\\d{4})-(?<m>\\d\\d)/.exec('2024-05').groups.m === '05'",
    "RegExp lookbehind, sticky, dotAll": "/(?<=\\$)\\d+/.test('$4') && /a/y.test('a') && /a.b/s.test('a\\nb')",
    "BigInt": "(2n ** 64n).toString() === '18446744073709551616'",
    "Map, Set and Set methods": "new Set([1, 2]).union(new Set([3])).size === 3 && new Map([[1, 2]]).get(1) === 2",
    "Array ES2023": "[3, 1, 2].toSorted().join() === '1,2,3' && [1, 2].findLast((x) => x < 2) === 1",
    "Object.groupBy": "Object.keys(Object.groupBy([1, 2, 3], (x) => (x % 2 ? 'odd' : 'even'))).length === 2",
    "iterator helpers": "[1, 2].values().map((x) => x * 2).toArray().join() === '2,4'",
    "Promise.withResolvers": "typeof Promise.withResolvers === 'function'",
    "WeakRef, FinalizationRegistry": "typeof WeakRef === 'function' && typeof FinalizationRegistry === 'function'",
    "Proxy, Reflect": "new Proxy({}, { get: () => 7 }).x === 7 && Reflect.has({ a: 1 }, 'a')",
    "typed arrays": "new Float64Array([1.5])[0] === 1.5 && new DataView(new ArrayBuffer(4)).byteLength === 4",
    "eval, Function": "new Function('a', 'return a * 2')(21) === 42",
    "Error cause": "new Error('x', { cause: 1 }).cause === 1",
    # Web APIs
    "TextEncoder": "new TextEncoder().encode('hé').length === 3",
    "TextDecoder": "new TextDecoder().decode(new Uint8Array([104, 195, 169])) === 'hé'",
    "URL": "new URL('/p?q=1#h', 'https://x.org').searchParams.get('q') === '1'",
    "URLSearchParams": "new URLSearchParams({ a: '1 2', b: 'é' }).toString() === 'a=1+2&b=%C3%A9'",
    "atob, btoa": "atob(btoa('hi')) === 'hi'",
    "structuredClone": "structuredClone({ m: new Map([[1, 2]]) }).m.get(1) === 2",
    "queueMicrotask": "typeof queueMicrotask === 'function'",
    "setTimeout, clearTimeout": "typeof setTimeout === 'function' && typeof clearTimeout === 'function'",
    "setInterval, clearInterval": "typeof setInterval === 'function' && typeof clearInterval === 'function'",
    "crypto.getRandomValues": "crypto.getRandomValues(new Uint8Array(8)).length === 8",
    "crypto.randomUUID": "/^[0-9a-f-]{36}$/.test(crypto.randomUUID())",
    "crypto.subtle": "typeof crypto.subtle.digest === 'function'",
    "performance.now": "typeof performance.now() === 'number'",
    "console": "['log', 'info', 'warn', 'error', 'debug'].every((m) => typeof console[m] === 'function')",
    "Blob": "new Blob(['ab']).size === 2",
    "Headers, Request, Response": "new Headers({ a: '1' }).get('a') === '1' && typeof Response === 'function' && typeof Request === 'function'",
    "Response.error, Response.json, Response.redirect": "Response.error().type === 'error' && Response.error().status === 0 && Response.json({ a: 1 }, { status: 201 }).status === 201 && Response.redirect('https://x.org/', 307).headers.get('location') === 'https://x.org/'",
    "AbortController": "!new AbortController().signal.aborted",
    "EventTarget, Event": "typeof EventTarget === 'function' && typeof Event === 'function'",
    "ReadableStream": "typeof ReadableStream === 'function'",
    "CompressionStream": "typeof CompressionStream === 'function'",
    # Node flavour
    "process.env": "process.env.GREETING === 'hello'",
    "process.argv, nextTick, hrtime": "Array.isArray(process.argv) && typeof process.nextTick === 'function' && process.hrtime().length === 2",
    "module, exports, require": "typeof module === 'object' && typeof exports === 'object' && typeof require === 'function'",
}  # fmt: skip

# Async ones, awaited by the function.
SUPPORTED_ASYNC: dict[str, str] = {
    "setTimeout in async code": "await new Promise((r) => setTimeout(() => r(true), 5))",
    "setTimeout arguments": "(await new Promise((r) => setTimeout((a, b) => r(a + b), 1, 2, 3))) === 5",
    "crypto.subtle.digest": "new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc')))[0] === 0xba",
    "Response.json": "(await new Response('{\"x\":1}').json()).x === 1",
    "bytes() of a Response, Request and Blob": "(await new Response('hé').bytes()).length === 3 && (await new Request('http://x/', { method: 'POST', body: 'ab' }).bytes())[1] === 98 && (await new Blob(['a']).bytes()) instanceof Uint8Array",
    "Blob.stream() read to its end": "await (async () => { const r = new Blob(['ab', 'cd']).stream().getReader(); let n = 0; for (;;) { const { value, done } = await r.read(); if (done) return n === 4; n += value.length; } })()",
    "for await over a body stream": "await (async () => { let n = 0; for await (const c of new Response(new Blob(['hé'])).body) n += c.length; return n === 3; })()",
    "a Blob body (Request, Response)": "(await new Request('http://x/', { method: 'POST', body: new Blob(['xyz']) }).text()) === 'xyz' && (await new Response(new Blob([new Uint8Array([1, 2])])).arrayBuffer()).byteLength === 2",
    "formData() of a multipart body (file parts' bytes)": "await (await new Response('--b\\r\\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\\r\\n\\r\\nxyz\\r\\n--b--\\r\\n', { headers: { 'content-type': 'multipart/form-data; boundary=b' } }).formData()).get('f').text() === 'xyz'",
    "Response.clone (both copies readable)": "await (async () => { const r = new Response('ab'); const c = r.clone(); return (await c.text()) + (await r.text()) === 'abab'; })()",
    "TextDecoderStream, TextEncoderStream": "(await new Response(new Blob(['h', new Uint8Array([0xc3]), new Uint8Array([0xa9])]).stream().pipeThrough(new TextDecoderStream()).pipeThrough(new TextEncoderStream())).text()) === 'hé'",
}  # fmt: skip

# What Node users might reach for and will not find; each expression is true today.
NOT_SUPPORTED: dict[str, str] = {
    "Intl (no ICU in this SpiderMonkey build)": "typeof Intl === 'undefined'",
    "String.prototype.normalize (no ICU)": "typeof ''.normalize === 'undefined'",
    "RegExp \\p{…} property escapes (no ICU)": "(() => { try { new RegExp('\\\\p{L}', 'u'); return false; } catch { return true; } })()",
    "Buffer (use Uint8Array, TextEncoder, atob/btoa)": "typeof Buffer === 'undefined'",
    "Node built-in modules (require('fs') throws)": "(() => { try { require('fs'); return false; } catch (e) { return e.code === 'MODULE_NOT_FOUND'; } })()",
    "network (fetch rejects)": "typeof fetch === 'function'",
    "SharedArrayBuffer, WebAssembly": "typeof SharedArrayBuffer === 'undefined' && typeof WebAssembly === 'undefined'",
}  # fmt: skip


def function_source() -> str:
    entries = [
        f"  [{json.dumps(n)}, () => {e}]," for n, e in {**SUPPORTED, **NOT_SUPPORTED}.items()
    ]
    waits = [f"  [{json.dumps(n)}, async () => {e}]," for n, e in SUPPORTED_ASYNC.items()]
    return (
        "const checks = [\n" + "\n".join(entries) + "\n];\n"
        "const asyncChecks = [\n" + "\n".join(waits) + "\n];\n"
        "export async function main() {\n"
        "  const out = {};\n"
        "  for (const [name, check] of [...checks, ...asyncChecks]) {\n"
        "    try { out[name] = await check(); } catch (e) { out[name] = `threw ${e}`; }\n"
        "  }\n"
        "  try { await fetch('http://127.0.0.1:9/'); out.fetched = true; }\n"
        "  catch (e) { out.fetched = String(e); }\n"
        "  return out;\n"
        "}\n"
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Iterator[dict]:
    if js.installed() is None:
        subprocess.run([str(REPO / "scripts" / "runtimes" / "javascript.sh")], check=True)
    proc = NimbusProcess(tmp_path_factory.mktemp("js-globals") / "data")
    proc.start()
    try:
        with proc.client() as api:
            body = {"name": "js-globals", "runtime": "javascript", "env_vars": {"GREETING": "hello"},
                    "files": {"handler.js": function_source()}}  # fmt: skip
            fn = api.post("/api/v1/functions?wait=true", json=body).json()
            assert fn["status"] == "active", fn
            resp = api.post("/api/v1/functions/js-globals/invoke", json={})
            assert resp.status_code == 200, resp.text
            yield resp.json()
    finally:
        proc.stop()


@pytest.mark.parametrize("name", [*SUPPORTED, *SUPPORTED_ASYNC])
def test_supported(results, name):
    assert results[name] is True, f"{name}: {results[name]}"


@pytest.mark.parametrize("name", list(NOT_SUPPORTED))
def test_not_supported(results, name):
    assert results[name] is True, f"{name} is no longer missing: move it to SUPPORTED"


def test_fetch_rejects_without_network(results):
    assert results["fetched"] == "TypeError: fetch failed: functions have no network access"

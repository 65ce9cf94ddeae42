"""JavaScript functions end to end on the shared runtime: a real server on the local store."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from compiler.runtimes import javascript as js
from tests.e2e.server import REPO, NimbusProcess

EXAMPLE = REPO / "examples" / "javascript" / "invoice"
# The runtime is built by make install; building it here when missing takes minutes.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[NimbusProcess]:
    if js.installed() is None:
        subprocess.run([str(REPO / "scripts" / "runtimes" / "javascript.sh")], check=True)
    proc = NimbusProcess(tmp_path_factory.mktemp("js-local") / "data")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api(server) -> Iterator[httpx.Client]:
    with server.client() as client:
        # The first JavaScript build on a fresh store stores the runtime component
        # (12 MB) and its precompiled form (37 MB) once; later deploys store the bundle.
        deployed(client, "js-warmup", "exports.main = () => 1;")
        yield client


def create(api: httpx.Client, name: str, files, **extra) -> httpx.Response:
    """`files`: a map of path → text, or one source text sent as `code` (handler.js)."""
    source = {"code": files} if isinstance(files, str) else {"files": files}
    body = {"name": name, "runtime": "javascript", **source, **extra}
    return api.post("/api/v1/functions?wait=true", json=body)


def deployed(api: httpx.Client, name: str, files, **extra) -> dict:
    resp = create(api, name, files, **extra)
    assert resp.status_code == 201, resp.text
    fn = resp.json()
    assert fn["status"] == "active", fn
    return fn


def invoke(api: httpx.Client, name: str, event=None) -> httpx.Response:
    return api.post(f"/api/v1/functions/{name}/invoke", json=event if event is not None else {})


def build_log(api: httpx.Client, name: str) -> str:
    return api.get(f"/api/v1/functions/{name}/build").json()["log"]


def poll(fetch, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fetch()
        if found:
            return found
        time.sleep(0.1)
    return fetch()


def test_example_with_an_npm_dependency(api):
    files = {
        str(p.relative_to(EXAMPLE)): p.read_text()
        for p in EXAMPLE.rglob("*")
        if p.is_file() and p.name != "function.json"
    }
    settings = json.loads((EXAMPLE / "function.json").read_text())
    started = time.monotonic()
    fn = deployed(api, "invoice", files, **{k: v for k, v in settings.items() if k != "runtime"})
    ready_sec = time.monotonic() - started
    print(f"\ncreate -> ready with an npm dependency: {ready_sec:.2f}s")
    assert fn["runtime_version"].startswith("SpiderMonkey"), fn
    assert ready_sec < 30, f"create -> ready took {ready_sec:.2f}s"
    log = build_log(api, "invoice")
    assert "resolved dayjs@1.11." in log, log
    event = {
        "customer": "ACME",
        "issued": "2024-01-31",
        "items": [
            {"sku": "a", "qty": 2, "unit_price": 9.99},
            {"sku": "b", "qty": 1, "unit_price": 5},
        ],
    }
    resp = invoke(api, "invoice", event)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "customer": "ACME",
        "lines": 2,
        "total": "24.98 EUR",
        "issued": "2024-01-31",
        "due": "2024-03-01",
        "pay_url": "https://pay.example.com/?customer=ACME&total=2498",
        "function": "invoice",
    }
    # A throw in the CommonJS helper: the stack names the user's files and lines.
    bad = invoke(api, "invoice", {"items": [{"sku": "x", "qty": 0, "unit_price": 1}]})
    assert bad.status_code == 500, bad.text
    error = bad.json()["error"]
    assert (error["type"], error["message"]) == (
        "RangeError",
        "line x: qty must be a positive integer, not 0",
    )
    assert error["stack"][1] == "    at lineTotal (lib/money.js:4:11)", error["stack"]
    assert any("handler.js:12:" in line for line in error["stack"]), error["stack"]


def test_packages_with_a_node_build_run_their_web_build(api):
    """uuid, nanoid and fflate ship a Node build (requiring "crypto", "worker_threads")
    beside a browser one; the engine is a web one, so the web build is bundled, as
    Cloudflare's wrangler picks it. NODE_ENV stays the function's own variable."""
    source = (
        'import { v4 } from "uuid";\n'
        'import { nanoid } from "nanoid";\n'
        'import { gzipSync, gunzipSync, strToU8, strFromU8 } from "fflate";\n'
        "export function main() {\n"
        '  const zipped = gzipSync(strToU8("hello ".repeat(100)));\n'
        "  return { id: v4(), short: nanoid(), zipped: zipped.length,\n"
        "    back: strFromU8(gunzipSync(zipped)).length, env: process.env.NODE_ENV };\n"
        "}\n"
    )
    deps = {"uuid": "9.0.1", "nanoid": "5.0.9", "fflate": "0.8.2"}
    files = {"handler.js": source, "package.json": json.dumps({"dependencies": deps})}
    deployed(api, "web-builds", files, env_vars={"NODE_ENV": "production"})
    resp = invoke(api, "web-builds")
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert len(out["id"]) == 36 and out["id"][14] == "4" and len(out["short"]) == 21
    assert out["zipped"] < 100 and out["back"] == 600
    assert out["env"] == "production"


WORKER = """\
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/old") return Response.redirect(`${url.origin}/new`, 301);
    if (url.pathname === "/gone") return Response.error();
    if (url.pathname === "/bytes") {
      const body = (await request.bytes()).reverse();
      return new Response(body, { headers: { "content-type": "application/octet-stream" } });
    }
    ctx.waitUntil(Promise.resolve().then(() => console.log("after the reply")));
    const headers = new Headers({ "content-type": "application/json" });
    headers.append("set-cookie", "a=1; Path=/");
    headers.append("set-cookie", "b=2; Path=/");
    return new Response(JSON.stringify({
      method: request.method, path: url.pathname, name: url.searchParams.get("name"),
      cookie: request.headers.get("cookie"), greeting: env.GREETING,
      body: request.method === "POST" ? await request.json() : null,
    }), { status: 201, headers });
  },
  async scheduled(controller, env, ctx) {
    console.log(`cron ${controller.cron} at ${typeof controller.scheduledTime}, ${env.GREETING}`);
  },
};
"""


def test_a_cloudflare_workers_module_serves_its_webhook_unchanged(api):
    """`export default { fetch(request, env, ctx) }` as Workers run it: the webhook's
    request as a Request, env vars in `env`, the Response as the HTTP reply."""
    fn = deployed(api, "cf-worker", WORKER, env_vars={"GREETING": "hi"})
    url = fn["webhook_url"]
    resp = httpx.get(url + "/hello?name=Ada", headers={"Cookie": "s=1; t=2"})
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"method": "GET", "path": "/hello", "name": "Ada",
                           "cookie": "s=1; t=2", "greeting": "hi", "body": None}  # fmt: skip
    scope = "/webhook/" + url.split("/webhook/", 1)[1] + "/"  # cookies stay on this webhook
    assert resp.headers.get_list("set-cookie") == [f"a=1; Path={scope}", f"b=2; Path={scope}"]
    resp = httpx.post(url + "/orders", json={"sku": "A1"})
    assert resp.json()["body"] == {"sku": "A1"} and resp.json()["method"] == "POST"
    resp = httpx.get(url + "/old", follow_redirects=False)
    assert resp.status_code == 301 and resp.headers["location"].endswith("/new")
    resp = httpx.post(url + "/bytes", content=bytes(range(256)))
    assert resp.content == bytes(reversed(range(256)))
    assert resp.headers["content-type"] == "application/octet-stream"
    # A network error has no HTTP reply: a function error, which an anonymous caller sees
    # as a 502 (the API's caller as a 500 saying why, test_js_runtime.py).
    resp = httpx.get(url + "/gone")
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "function_error"
    # An API call's event arrives as a JSON POST; the reply is the webhook's shape.
    reply = invoke(api, "cf-worker", {"sku": "B2"}).json()
    assert reply["statusCode"] == 201 and '"body":{"sku":"B2"}' in reply["body"]
    # A Cron Trigger: a schedule whose event says so calls scheduled().
    tick = {"type": "scheduled", "cron": "*/5 * * * *"}
    body = {"expression": "rate(1 second)", "event": tick}
    schedule = api.post("/api/v1/functions/cf-worker/schedules", json=body).json()

    def ticked():
        entries = api.get("/api/v1/functions/cf-worker/logs").json()["entries"]
        return [e["line"] for e in entries if e["line"].startswith("cron ")]

    lines = poll(ticked, timeout=15)
    api.delete(f"/api/v1/functions/cf-worker/schedules/{schedule['id']}")
    assert lines and lines[0] == "cron */5 * * * * at number, hi", lines


def test_deploy_without_dependencies_is_fast(api):
    times = []
    for i in range(3):
        started = time.monotonic()
        deployed(api, f"js-fast-{i}", f"export const main = (e) => ({{ n: e.n, i: {i} }});")
        times.append(time.monotonic() - started)
    print(f"\ncreate -> ready without dependencies: {', '.join(f'{t:.2f}s' for t in times)}")
    assert min(times) < 2.0, times
    assert invoke(api, "js-fast-2", {"n": 5}).json() == {"n": 5, "i": 2}


RESULT = "{ n: event.n * 2, name: context.function_name }"


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("js-esm", f"export function main(event, context) {{\n  return {RESULT};\n}}\n"),
        (
            "js-esm-async",
            f"export async function main(event, context) {{\n  return {RESULT};\n}}\n",
        ),
        ("js-cjs", f"exports.main = (event, context) => ({RESULT});\n"),
        ("js-cjs-object", f"module.exports = {{ main: async (event, context) => ({RESULT}) }};\n"),
    ],
)
def test_esm_and_commonjs_handlers(api, name, source):
    deployed(api, name, source)
    resp = invoke(api, name, {"n": 21})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"n": 42, "name": name}


def test_async_handler_with_settimeout_and_console_in_the_logs(api):
    source = (
        "export async function main(event) {\n"
        "  const began = Date.now();\n"
        "  await new Promise((resolve) => setTimeout(resolve, 100));\n"
        "  console.log('waited for', event.who);\n"
        "  console.error('a warning line');\n"
        "  return { waited: Date.now() - began >= 100, env: process.env.STAGE };\n"
        "}\n"
    )
    deployed(api, "js-async", source, env_vars={"STAGE": "test"})
    resp = invoke(api, "js-async", {"who": "the timer"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"waited": True, "env": "test"}
    inv = resp.headers["X-Nimbus-Invocation-Id"]

    def lines():
        entries = api.get("/api/v1/functions/js-async/logs", params={"invocation_id": inv})
        return {e["line"] for e in entries.json()["entries"] if e["stream"] != "platform"}

    found = poll(lambda: {"waited for the timer", "a warning line"} <= lines())
    assert found, lines()


def test_syntax_error_fails_the_build_naming_the_line(api):
    resp = create(
        api, "js-syntax", "exports.main = (e) => {\n  const x = 1;\n  return x +* 2;\n};\n"
    )
    assert resp.status_code == 201
    fn = resp.json()
    assert fn["status"] == "failed"
    error = fn["latest_build"]["error"]
    assert "handler.js:3:" in error, error


def test_syntax_only_the_engine_refuses_fails_the_build_naming_the_line(api):
    # esbuild parses \p{…}; SpiderMonkey without ICU does not: the runtime's check catches it.
    resp = create(api, "js-regex", "// letters\n\nexports.main = (e) => /\\p{L}/u.test(e.s);\n")
    fn = resp.json()
    assert fn["status"] == "failed", fn
    assert "handler.js:3:" in fn["latest_build"]["error"], fn["latest_build"]["error"]


def test_throw_is_a_function_error_with_the_users_stack(api):
    source = (
        "function check(event) {\n"
        "  if (!event.name) {\n"
        "    throw new TypeError('name is required');\n"
        "  }\n"
        "}\n"
        "\n"
        "export async function main(event) {\n"
        "  check(event);\n"
        "  return 'ok';\n"
        "}\n"
    )
    deployed(api, "js-throw", source)
    resp = invoke(api, "js-throw", {})
    assert resp.status_code == 500, resp.text
    assert resp.headers["X-Nimbus-Function-Error"] == "true"
    error = resp.json()["error"]
    assert error["code"] == "function_error"
    assert (error["type"], error["message"]) == ("TypeError", "name is required")
    assert error["stack"][:3] == [
        "TypeError: name is required",
        "    at check (handler.js:3:11)",
        "    at main (handler.js:8:3)",
    ]


def test_two_invocations_get_different_random_numbers(api):
    deployed(api, "js-random", "exports.main = () => [Math.random(), crypto.randomUUID()];")
    values = [tuple(invoke(api, "js-random").json()) for _ in range(3)]
    assert len({v[0] for v in values}) == 3 and len({v[1] for v in values}) == 3


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("js-loop", "exports.main = () => { for (;;) {} };"),
        ("js-timer", "exports.main = () => new Promise((r) => setTimeout(r, 60000));"),
    ],
)
def test_loop_and_pending_timer_answer_504_at_the_deadline(api, name, source):
    deployed(api, name, source, timeout_sec=2)
    started = time.monotonic()
    resp = invoke(api, name)
    elapsed = time.monotonic() - started
    assert resp.status_code == 504, resp.text
    assert resp.json()["error"]["code"] == "timeout"
    assert 1.9 <= elapsed < 4, elapsed
    assert invoke(api, "js-random").status_code == 200  # the worker still serves


def test_memory_hog_is_memory_limit_exceeded(api):
    source = "exports.main = () => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); };"
    deployed(api, "js-hog", source, memory_mb=48, timeout_sec=20)
    resp = invoke(api, "js-hog")
    assert resp.status_code == 500, resp.text
    assert resp.json()["error"]["code"] == "memory_limit_exceeded"


def test_functions_never_see_each_others_state(api):
    meddler = (
        "globalThis.planted = 'secret';\n"
        "Array.prototype.includes = () => true;\n"
        "let count = 0;\n"
        "exports.main = () => ++count;\n"
    )
    deployed(api, "js-meddler", meddler)
    victim = "exports.main = () => [typeof planted, [1].includes(2), typeof process.env.X];"
    deployed(api, "js-victim", victim)
    for _ in range(2):
        assert invoke(api, "js-meddler").json() == 1  # a fresh instance every time
        assert invoke(api, "js-victim").json() == ["undefined", False, "undefined"]


def test_cold_and_warm_invoke_latency(api):
    deployed(api, "js-echo", "exports.main = (e) => e;")
    walls, durations, colds = [], [], []
    for i in range(30):
        started = time.perf_counter()
        resp = invoke(api, "js-echo", {"i": i})
        walls.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200 and resp.json() == {"i": i}
        durations.append(float(resp.headers["X-Nimbus-Duration-Ms"]))
        colds.append(resp.headers["X-Nimbus-Cold-Start"] == "true")
    warm = [d for d, cold in zip(durations, colds, strict=True) if not cold]
    print(
        f"\njs echo: first call {walls[0]:.1f} ms wall ({durations[0]:.2f} ms in the sandbox, "
        f"cold={colds[0]}); warm p50 {statistics.median(walls[1:]):.1f} ms wall, "
        f"{statistics.median(warm):.2f} ms in the sandbox (fresh instance each)"
    )
    assert statistics.median(warm) < 50


def test_runtime_aliases_build_on_the_same_runtime(api):
    fn = deployed(api, "js-alias", "exports.main = () => process.argv.length;", runtime="node20")
    assert fn["runtime"] == "javascript"
    assert fn["runtime_version"].startswith("SpiderMonkey"), fn
    assert invoke(api, "js-alias").json() == 2

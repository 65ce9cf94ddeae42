"""Native functions through a real `nimbus serve` and a real Docker engine.

Static binaries built with gcc from tests/native.py; the engine is the one
`make engine` runs (a failure, not a skip, when it cannot start). Every
hostile binary ends with the status DESIGN.md gives its failure, while a
WASM function on the same server keeps answering.
"""

from __future__ import annotations

import base64
import threading
import time

import docker
import httpx
import pytest

from tests import native
from tests.e2e import wasm as w
from tests.e2e.server import NimbusProcess

BIN_CACHE = native.REPO / ".cache" / "native-tests"

# name → (program, extra fields)
FUNCTIONS = {
    "echo": ("echo", {}),
    "intro": ("introspect", {"env_vars": {"GREETING": "hi"}}),
    "fail": ("fail", {}),
    "forkbomb": ("fork_bomb", {"timeout_sec": 2}),
    "membomb": ("memory_bomb", {"memory_mb": 32}),
    "spin": ("spin", {"timeout_sec": 1}),
    "sleepy": ("sleepy", {"timeout_sec": 1}),
    "writer": ("write_root", {}),
    "tcp": ("tcp", {}),
    "flood": ("flood", {}),
}


@pytest.fixture(scope="module")
def docker_host() -> str:
    return native.engine_host()


@pytest.fixture(scope="module")
def nserver(tmp_path_factory, docker_host) -> NimbusProcess:
    proc = NimbusProcess(
        tmp_path_factory.mktemp("native-srv") / "data", {"DOCKER_HOST": docker_host}
    )
    proc.start()
    yield proc
    proc.stop()


def deploy(api: httpx.Client, name: str, program: str, **extra) -> dict:
    binary = native.build(program, BIN_CACHE)
    body = {"name": name, "runtime": "native", "artifact_base64": native.b64(binary), **extra}
    resp = api.post("/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "active", resp.json()
    return resp.json()


@pytest.fixture(scope="module")
def fns(nserver) -> dict[str, dict]:
    with nserver.client() as api:
        out = {f"nat-{k}": deploy(api, f"nat-{k}", p, **x) for k, (p, x) in FUNCTIONS.items()}
        body = {
            "name": "nat-wasm-echo",
            "runtime": "wasm",
            "artifact_base64": w.b64(w.wat(w.ECHO_WAT)),
        }
        assert api.post("/api/v1/functions?wait=true", json=body).status_code == 201
    return out


@pytest.fixture
def napi(nserver):
    with nserver.client() as client:
        yield client


def invoke(api: httpx.Client, name: str, body=None, **kw) -> httpx.Response:
    return api.post(f"/api/v1/functions/nat-{name}/invoke", json=body, **kw)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code, resp.text
    return resp.json()["error"]


# -- the happy path -----------------------------------------------------------------


def test_static_binary_result_and_headers(napi, fns):
    fn = fns["nat-echo"]
    assert fn["runtime"] == "native" and fn["runtime_version"] == "native x86-64, static"
    resp = invoke(napi, "echo", {"a": [1, 2, 3]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"a": [1, 2, 3]}
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["X-Nimbus-Invocation-Id"].startswith("inv_")
    assert float(resp.headers["X-Nimbus-Duration-Ms"]) > 0
    assert resp.headers["X-Nimbus-Version"] == "1"
    colds = [invoke(napi, "echo", {}).headers["X-Nimbus-Cold-Start"] for _ in range(10)]
    assert colds[-4:] == ["false"] * 4  # warm containers serve the rest


def test_argv0_and_environment(napi, fns):
    seen = invoke(napi, "intro", {}, headers={"X-Nimbus-Context": '{"tenant": "t1"}'}).json()
    assert seen["argv0"] == "nat-intro" and seen["env"] == ["GREETING=hi"]
    assert seen["uid"] == 65534
    assert seen["context"]["tenant"] == "t1" and seen["context"]["function_name"] == "nat-intro"
    assert seen["context"]["invocation_id"].startswith("inv_")


def test_function_error_with_exit_code_and_logs(napi, fns):
    resp = invoke(napi, "fail", {})
    error = assert_error(resp, 500, "function_error")
    assert resp.headers["X-Nimbus-Function-Error"] == "true"
    assert error["exit_code"] == 3 and error["type"] == "ExitError"
    invocation_id = resp.headers["X-Nimbus-Invocation-Id"]
    deadline = time.monotonic() + 15
    lines: list[str] = []
    while time.monotonic() < deadline and not lines:
        entries = napi.get(
            "/api/v1/functions/nat-fail/logs", params={"invocation_id": invocation_id}
        ).json()["entries"]
        lines = [e["line"] for e in entries if e["stream"] == "stderr"]
        time.sleep(0.2)
    assert "something broke" in lines


def test_async_and_webhook(napi, fns):
    accepted = napi.post("/api/v1/functions/nat-echo/async", json={"later": True})
    assert accepted.status_code == 202, accepted.text
    invocation_id = accepted.json()["invocation_id"]
    deadline = time.monotonic() + 30
    while True:
        record = napi.get(f"/api/v1/invocations/{invocation_id}").json()
        if record["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, record
        time.sleep(0.1)
    assert record["status"] == "succeeded" and record["result"] == {"later": True}

    hook = httpx.post(fns["nat-echo"]["webhook_url"] + "/hello?x=1", content=b"payload")
    assert hook.status_code == 200, hook.text
    event = hook.json()  # the echo returns the Lambda-shaped event it was given
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    assert event["rawPath"].endswith("/hello") and body == b"payload"


def test_multipart_upload_and_bad_binaries(napi):
    binary = native.build("echo", BIN_CACHE).read_bytes()
    files = {
        "artifact": ("echo", binary, "application/octet-stream"),
        "metadata": (None, '{"name": "nat-multipart", "runtime": "native"}', "application/json"),
    }
    resp = napi.post("/api/v1/functions?wait=true", files=files)
    assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text
    assert invoke(napi, "multipart", {"m": 1}).json() == {"m": 1}

    for name, data in (("nat-script", b"#!/bin/sh\necho hi\n"), ("nat-wasm", w.wat(w.ECHO_WAT))):
        body = {"name": name, "runtime": "native", "artifact_base64": w.b64(data)}
        fn = napi.post("/api/v1/functions?wait=true", json=body).json()
        assert fn["status"] == "failed", fn
        assert "not an ELF executable" in fn["latest_build"]["error"]


C_HANDLER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *handler(const char *event_json, const char *context_json) {
    if (strstr(event_json, "\"fail\"")) {
        nimbus_set_error("asked to fail");
        return NULL;
    }
    size_t n = strlen(event_json) + strlen(context_json) + 32;
    char *out = malloc(n);
    snprintf(out, n, "{\"event\":%s,\"context\":%s}", event_json, context_json);
    return out;
}
"""


def test_c_function_with_target_native(napi, fns):
    body = {"name": "nat-c", "runtime": "c", "code": C_HANDLER, "target": "native"}
    resp = napi.post("/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201, resp.text
    fn = resp.json()
    assert fn["status"] == "active", napi.get("/api/v1/functions/nat-c/build").json()
    assert fn["runtime_version"] == "c (gcc, native x86-64, static)"
    result = invoke(napi, "c", {"x": [1, 2]})
    assert result.status_code == 200, result.text
    assert result.json()["event"] == {"x": [1, 2]}
    assert result.json()["context"]["function_name"] == "nat-c"
    error = assert_error(invoke(napi, "c", {"fail": True}), 500, "function_error")
    assert error["message"] == "asked to fail" and error["type"] == "Error"
    assert error["stack"] and "handler.c" in error["stack"][0]


GO_HANDLER = """\
import (
	"errors"
	"fmt"
)

func handler(event interface{}, context map[string]string) (interface{}, error) {
	fmt.Println("to the log")
	if event.(map[string]interface{})["fail"] == true {
		return nil, errors.New("asked to fail")
	}
	return map[string]interface{}{"event": event, "name": context["function_name"]}, nil
}
"""


def test_go_function_with_target_native(napi, fns):
    body = {"name": "nat-go", "runtime": "go", "code": GO_HANDLER, "target": "native"}
    resp = napi.post("/api/v1/functions?wait=true", json=body, timeout=600)
    assert resp.status_code == 201, resp.text
    fn = resp.json()
    assert fn["status"] == "active", napi.get("/api/v1/functions/nat-go/build").json()
    assert fn["runtime_version"].endswith("(native x86-64, static)")
    result = invoke(napi, "go", {"x": [1, 2]})
    assert result.status_code == 200, result.text
    assert result.json() == {"event": {"x": [1, 2]}, "name": "nat-go"}
    error = assert_error(invoke(napi, "go", {"fail": True}), 500, "function_error")
    assert error["message"] == "asked to fail"


# -- hostile binaries ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, status, code",
    [
        ("forkbomb", 504, "timeout"),
        ("membomb", 500, "memory_limit_exceeded"),
        ("spin", 504, "timeout"),
        ("sleepy", 504, "timeout"),
        ("flood", 502, "result_too_large"),
    ],
)
def test_hostile_binary_is_contained(nserver, napi, fns, name, status, code):
    """Each is contained with its error while a WASM and a native function keep answering."""
    slow: list[str] = []
    stop, warm = threading.Event(), threading.Event()

    def others():
        with nserver.client() as api:
            # Warm on this connection's own worker first: a cold start is not what
            # this bound is about (the other worker may never have run nat-echo).
            for fn in ("nat-wasm-echo", "nat-echo"):
                resp = api.post(f"/api/v1/functions/{fn}/invoke", json={"ok": 1})
                if resp.status_code != 200:
                    slow.append(f"{fn} warm-up: {resp.status_code}")
            warm.set()
            while not stop.is_set():
                for fn in ("nat-wasm-echo", "nat-echo"):
                    started = time.monotonic()
                    resp = api.post(f"/api/v1/functions/{fn}/invoke", json={"ok": 1})
                    took = time.monotonic() - started
                    if resp.status_code != 200 or resp.json() != {"ok": 1} or took > 1.5:
                        cold = resp.headers.get("X-Nimbus-Cold-Start")
                        slow.append(f"{fn}: {resp.status_code} in {took:.2f}s (cold {cold})")
                time.sleep(0.05)

    thread = threading.Thread(target=others)
    thread.start()
    try:
        assert warm.wait(60), "the neighbours did not warm up"
        started = time.monotonic()
        resp = invoke(napi, name, {})
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
    assert_error(resp, status, code)
    if status == 504:
        timeout = FUNCTIONS[name][1]["timeout_sec"]
        assert took < timeout + 2.5, took  # the cold start of its container included
    assert slow == []


def test_writing_to_root_is_a_function_error(napi, fns):
    resp = invoke(napi, "writer", {})
    error = assert_error(resp, 500, "function_error")
    assert error["exit_code"] == 1


def test_tcp_connection_fails_and_network_mode_is_none(napi, fns, docker_host):
    resp = invoke(napi, "tcp", {})
    error = assert_error(resp, 500, "function_error")
    assert error["exit_code"] == 2
    client = docker.DockerClient(base_url=docker_host)
    try:
        found = client.containers.list(filters={"label": f"nimbus.function={fns['nat-tcp']['id']}"})
        assert found, "the function's warm container should be running"
        for container in found:
            assert container.attrs["HostConfig"]["NetworkMode"] == "none"
    finally:
        client.close()


# -- no engine -----------------------------------------------------------------------


def test_no_engine_is_503_while_wasm_works(make_server, tmp_path):
    server = make_server({"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}).start()
    with server.client() as api:
        deploy(api, "nat-orphan", "echo")  # building needs no engine
        body = {"name": "wasm-ok", "runtime": "wasm", "artifact_base64": w.b64(w.wat(w.ECHO_WAT))}
        assert api.post("/api/v1/functions?wait=true", json=body).status_code == 201
        resp = api.post("/api/v1/functions/nat-orphan/invoke", json={})
        assert_error(resp, 503, "engine_unavailable")
        ok = api.post("/api/v1/functions/wasm-ok/invoke", json={"w": 1})
        assert ok.status_code == 200 and ok.json() == {"w": 1}


def test_an_engine_outage_is_retried_by_async_invocations(make_server, tmp_path):
    # engine_unavailable is an outage of the platform, not the function's failure: an
    # async invocation meeting it is tried again (up to ASYNC_MAX_ATTEMPTS), not failed
    # on the first attempt.
    server = make_server(
        {
            "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
            "ASYNC_MAX_ATTEMPTS": "3",
            "ASYNC_RETRY_BASE_SEC": "0.1",
            "ASYNC_POLL_SEC": "0.1",
        }
    ).start()
    with server.client() as api:
        deploy(api, "nat-outage", "echo")
        accepted = api.post("/api/v1/functions/nat-outage/async", json={})
        assert accepted.status_code == 202, accepted.text
        url = f"/api/v1/invocations/{accepted.json()['invocation_id']}"
        deadline = time.monotonic() + 60
        record = api.get(url).json()
        while record["status"] not in ("succeeded", "failed", "timed_out"):
            assert time.monotonic() < deadline, record
            time.sleep(0.2)
            record = api.get(url).json()
        assert record["status"] == "failed"
        assert record["attempts"] == 3
        assert record["error"]["code"] == "platform_error"

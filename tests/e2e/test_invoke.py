"""Sync invoke through a real gunicorn server: results, headers and every failure status."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e import wasm as w


@pytest.fixture(scope="module")
def deployed(server):
    """name → function, deployed once for the module."""
    specs = {
        "echo": (w.ECHO_WAT, {"env_vars": {"GREETING": "hi"}}),
        "fail": (w.FAIL_WAT, {}),
        "spin": (w.SPIN_WAT, {"timeout_sec": 1}),
        "sleepy": (w.SLEEP_WAT, {"timeout_sec": 1}),
        "hog": (w.MEMORY_BOMB_WAT, {"memory_mb": 16}),
        "flood": (w.FLOOD_WAT, {}),
        "text": (w.TEXT_WAT, {}),
    }
    out = {}
    with server.client() as api:
        for name, (source, extra) in specs.items():
            body = {"name": f"inv-{name}", "runtime": "wasm",
                    "artifact_base64": w.b64(w.wat(source)), **extra}  # fmt: skip
            resp = api.post("/api/v1/functions?wait=true", json=body)
            assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text
            out[name] = resp.json()
    return out


def invoke(api: httpx.Client, name: str, body=None, **kw) -> httpx.Response:
    return api.post(f"/api/v1/functions/inv-{name}/invoke", json=body, **kw)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code, resp.text
    return resp.json()["error"]


def test_result_and_headers(api, deployed):
    resp = invoke(api, "echo", {"a": [1, 2, 3]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"a": [1, 2, 3]}
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["X-Nimbus-Invocation-Id"].startswith("inv_")
    assert float(resp.headers["X-Nimbus-Duration-Ms"]) > 0
    assert resp.headers["X-Nimbus-Cold-Start"] in ("true", "false")
    assert resp.headers["X-Nimbus-Version"] == "1"


def test_cold_start_only_on_first_load_per_worker(api, deployed):
    colds = [invoke(api, "echo", {}).headers["X-Nimbus-Cold-Start"] for _ in range(12)]
    assert colds.count("true") <= 2  # at most once per gunicorn worker
    assert colds[-4:] == ["false"] * 4


def test_by_id_and_empty_body(api, deployed):
    fid = deployed["echo"]["id"]
    resp = api.post(f"/api/v1/functions/{fid}/invoke")
    assert resp.status_code == 200 and resp.json() == {}


def test_text_output_is_text_plain(api, deployed):
    resp = invoke(api, "text", {})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "plain words"


def test_function_error_is_500_with_exit_code(api, deployed):
    resp = invoke(api, "fail", {})
    error = assert_error(resp, 500, "function_error")
    assert resp.headers["X-Nimbus-Function-Error"] == "true"
    assert error["exit_code"] == 3
    assert "something broke" in (error["message"] + "".join(error["stack"]))


def test_timeout_is_504_at_the_deadline(api, deployed):
    for name in ("spin", "sleepy"):
        started = time.monotonic()
        assert_error(invoke(api, name, {}), 504, "timeout")
        assert time.monotonic() - started < 5  # deadline 1 s, with generous slack
    assert invoke(api, "echo", {"after": "timeout"}).json() == {"after": "timeout"}


def test_memory_hog_is_memory_limit_exceeded(api, deployed):
    assert_error(invoke(api, "hog", {}), 500, "memory_limit_exceeded")
    assert invoke(api, "echo", {"ok": 1}).json() == {"ok": 1}


def test_huge_result_is_502(api, deployed):
    assert_error(invoke(api, "flood", {}), 502, "result_too_large")


@pytest.mark.parametrize("name", ["spin", "hog", "flood"])
def test_a_call_stopped_by_its_limits_says_which_version_ran_and_how_long(api, deployed, name):
    # as a function error does: the version that ran, its duration, whether it started cold
    resp = invoke(api, name, {})
    assert resp.status_code in (500, 502, 504) and "X-Nimbus-Function-Error" not in resp.headers
    assert resp.headers["X-Nimbus-Version"] == "1", resp.headers
    assert float(resp.headers["X-Nimbus-Duration-Ms"]) > 0
    assert resp.headers["X-Nimbus-Cold-Start"] in ("true", "false")


def test_bad_events(api, deployed):
    url = "/api/v1/functions/inv-echo/invoke"
    resp = api.post(url, content=b"{nope", headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "invalid_json")
    resp = api.post(url, content=b"x", headers={"Content-Type": "text/plain"})
    assert_error(resp, 415, "unsupported_media_type")
    big = b'"' + b"a" * (6 * 1024 * 1024) + b'"'
    resp = api.post(url, content=big, headers={"Content-Type": "application/json"})
    assert_error(resp, 413, "too_large")
    resp = invoke(api, "echo", {}, headers={"X-Nimbus-Context": "[1]"})
    assert_error(resp, 400, "bad_request")


def test_version_parameter(api, deployed, server):
    resp = api.put("/api/v1/functions/inv-text?wait=true", json={"timeout_sec": 3})
    assert resp.json()["active_version"] == 2
    assert invoke(api, "text", {}, params={"version": 1}).headers["X-Nimbus-Version"] == "1"
    assert invoke(api, "text", {}).headers["X-Nimbus-Version"] == "2"
    assert_error(invoke(api, "text", {}, params={"version": 9}), 404, "not_found")


def test_unservable_functions_are_409(api, deployed, name):
    api.put("/api/v1/functions/inv-text", json={"status": "offline"})
    time.sleep(1.1)  # the invoke path's stated staleness
    assert_error(invoke(api, "text", {}), 409, "offline")
    api.put("/api/v1/functions/inv-text", json={"status": "active"})
    body = {"name": name, "runtime": "wasm", "artifact_base64": w.b64(b"junk")}
    api.post("/api/v1/functions?wait=true", json=body)
    assert_error(api.post(f"/api/v1/functions/{name}/invoke", json={}), 409, "build_failed")
    assert_error(api.post("/api/v1/functions/nope-nope/invoke", json={}), 404, "not_found")


def test_unknown_function_and_auth(server, deployed):
    resp = httpx.post(f"{server.url}/api/v1/functions/inv-echo/invoke", json={})
    assert resp.status_code == 401


def test_overload_is_429_never_a_hang(server, deployed):
    # 2 workers × (10 running + 5 queued) slots; 3× that many slow callers at once
    with ThreadPoolExecutor(90) as pool, server.client(timeout=30) as api:
        started = time.monotonic()
        statuses = list(pool.map(lambda _: invoke(api, "sleepy", {}).status_code, range(90)))
    assert time.monotonic() - started < 25
    assert set(statuses) <= {429, 504}, statuses
    assert statuses.count(429) > 0 and statuses.count(504) > 0
    with server.client() as api:
        assert invoke(api, "echo", {"still": "serving"}).json() == {"still": "serving"}

"""The Falcon app in-process (falcon.testing): middleware, error mapping, build loop."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from falcon import testing

import compiler
from compiler._sources import handler_name
from gateway.api.app import create_app
from gateway.platform import Platform
from gateway.settings import Settings
from store.readiness import READY_KEY
from tests.e2e.wasm import b64, hello_module
from tests.gateway.conftest import KEY


def test_request_id_is_echoed_or_made(client):
    assert (
        client.simulate_get("/health", headers={"X-Request-Id": "abc"}).headers["X-Request-Id"]
        == "abc"
    )
    first, second = (client.simulate_get("/health").headers["X-Request-Id"] for _ in range(2))
    assert first.startswith("req_") and first != second


@pytest.mark.parametrize("enabled", [False, True])
def test_access_log_is_one_line_per_request_when_enabled(platform, caplog, enabled):
    platform.settings.access_log = enabled
    client = testing.TestClient(create_app(platform, KEY))
    with caplog.at_level("INFO", logger="nimbus.access"):
        client.simulate_get("/health", headers={"X-Request-Id": "rid-1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "nimbus.access"]
    if enabled:
        assert len(lines) == 1 and re.fullmatch(r"GET /health 200 [\d.]+ms rid=rid-1", lines[0])
    else:
        assert lines == []


def test_worker_start_preloads_every_shared_runtime(platform):
    """Python's and JavaScript's runtimes are loaded at worker start, not on a first call."""
    wanted = len(compiler.runtime_components())
    assert wanted == 2  # both runtimes are installed by `make install`
    deadline = time.monotonic() + 30
    while platform.sandbox.stats()["cached_artifacts"] < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert platform.sandbox.stats()["cached_artifacts"] == wanted


def test_bearer_scheme_is_required(client):
    resp = client.simulate_get("/api/v1/functions", headers={"Authorization": KEY})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_route_and_method_use_the_error_body(client):
    resp = client.simulate_get("/api/v1/nothing-here")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "not_found"
    resp = client.simulate_patch("/api/v1/functions")
    assert resp.status_code == 405 and resp.json["error"]["code"] == "method_not_allowed"


def test_validation_error_lists_every_bad_field(client):
    resp = client.simulate_post(
        "/api/v1/functions", json={"name": "UPPER", "runtime": "cobol", "code": "x"}
    )
    assert resp.status_code == 422
    fields = {d["field"] for d in resp.json["error"]["details"]}
    assert fields == {"name", "runtime"}


def test_an_unknown_field_names_what_to_send_instead(client):
    """It said only pydantic's "Extra inputs are not permitted", even for a typo."""
    body = {"name": "typo", "runtime": "python", "code": "x", "memroy_mb": 256, "zzz": 1}
    resp = client.simulate_post("/api/v1/functions", json=body)
    assert resp.status_code == 422
    said = {d["field"]: d["message"] for d in resp.json["error"]["details"]}
    assert said["memroy_mb"] == "unknown field; did you mean memory_mb?"
    assert said["zzz"].startswith("unknown field; this body takes ")
    assert "memory_mb" in said["zzz"] and "timeout_sec" in said["zzz"]
    assert "memroy_mb: unknown field; did you mean memory_mb?" in resp.json["error"]["message"]
    schedule = {"expression": "rate(1 minute)", "tiemzone": "UTC"}
    resp = client.simulate_post("/api/v1/functions/typo/schedules", json=schedule)
    assert resp.json["error"]["details"] == [
        {"field": "tiemzone", "message": "unknown field; did you mean timezone?"}
    ]


@pytest.mark.parametrize(
    "name",
    ["a\x00b.c", "a\nb.c", "-o.c", "@opts.c", "sub/-x.c", "..\\x.c", "a" * 300 + ".c",
     ".nimbus/x.c", "handler.c/x.c"],
)  # fmt: skip
def test_a_file_name_a_build_cannot_use_is_refused_at_once(client, name):
    """Such names were stored as a version, then failed its build (an internal error
    naming the server's build folder for a long name or a file that is also a folder)."""
    body = {"name": "named", "runtime": "c", "files": {"handler.c": "int x;", name: ""}}
    resp = client.simulate_post("/api/v1/functions", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json["error"]["details"][0]["field"] == "files"
    assert client.simulate_get("/api/v1/functions/named").status_code == 404


def test_a_trailing_newline_is_no_part_of_a_name(client):
    """`$` also matches before a final newline: 'hello\\n' passed as a DNS label, an env
    var name, an alias; so did a handler's function name."""
    body = {"name": "hello\n", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    resp = client.simulate_post("/api/v1/functions", json=body)
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "name"
    body = {**body, "name": "hello", "env_vars": {"TOKEN\n": "x"}}
    resp = client.simulate_post("/api/v1/functions", json=body)
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "env_vars"
    del body["env_vars"]
    created = client.simulate_post("/api/v1/functions", json=body, params={"wait": "true"})
    assert created.json["status"] == "active"
    assert client.simulate_get("/api/v1/functions/hello%0A").status_code == 404
    resp = client.simulate_post(
        "/api/v1/functions/hello/aliases", json={"name": "prod\n", "version": 1}
    )
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "name"
    with pytest.raises(compiler.BuildFailed):
        handler_name("handler.main\n")  # the glue the builder writes calls this name


def test_an_env_var_value_cannot_hold_a_nul(client):
    body = {"name": "nul", "runtime": "wasm", "artifact_base64": b64(hello_module()),
            "env_vars": {"TOKEN": "x\u0000y"}}  # fmt: skip
    resp = client.simulate_post("/api/v1/functions", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json["error"]["details"][0]["field"] == "env_vars"


def test_a_form_or_target_the_runtime_lacks_is_refused(client):
    """`"form": "program"` on a Python function was stored and ignored (201, then served
    as a handler); the target's message read "only go and c and native"."""
    body = {"name": "pyprog", "runtime": "python", "code": "def main(e):\n    return e\n"}
    resp = client.simulate_post("/api/v1/functions", json={**body, "form": "program"})
    assert resp.status_code == 422, resp.text
    assert resp.json["error"]["details"] == [
        {"field": "form", "message": "a python function takes only the handler form"}
    ]
    resp = client.simulate_post("/api/v1/functions", json={**body, "form": "handler"})
    assert resp.status_code == 201, resp.text
    resp = client.simulate_put("/api/v1/functions/pyprog", json={"form": "program"})
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "form"
    resp = client.simulate_put("/api/v1/functions/pyprog", json={"target": "native"})
    assert resp.json["error"]["details"][0]["message"] == (
        "only go, c and native build to (or take) a native binary"
    )


def test_an_offline_function_says_how_to_serve_it_again(client):
    """It said "function x is offline" and no more: not what turns it back on."""
    body = {"name": "off", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    made = client.simulate_post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert made.json["status"] == "active", made.text
    client.simulate_put("/api/v1/functions/off", json={"status": "offline"})
    resp = client.simulate_post("/api/v1/functions/off/invoke", json={})
    assert resp.status_code == 409 and resp.json["error"]["code"] == "offline"
    message = resp.json["error"]["message"]
    assert message.startswith("function off is offline (switched off by a user); ")
    assert 'PUT {"status": "active"}' in message and "nimbus update off --status active" in message
    client.simulate_put("/api/v1/functions/off", json={"status": "active"})
    assert client.simulate_post("/api/v1/functions/off/invoke", json={}).status_code == 200


def test_a_worker_reads_its_own_status_switch_at_once(client):
    """The invoke path's record cache served the status from before this worker's own
    PUT for up to 1 s: about 1 in 3 calls right after `--status active` was 409 offline."""
    body = {"name": "flip", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    made = client.simulate_post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert made.json["status"] == "active", made.text
    seen = []
    for _ in range(20):
        for status in ("offline", "active"):
            put = client.simulate_put("/api/v1/functions/flip", json={"status": status})
            assert put.status_code == 200, put.text
            call = client.simulate_post("/api/v1/functions/flip/invoke", json={})
            seen.append((status, call.status_code))
    assert seen == [(s, e) for _ in range(20) for s, e in (("offline", 409), ("active", 200))]


def test_a_caller_context_nested_too_deep_is_400(client):
    """orjson reads 1,024 levels but writes 254: the context handed to the guest failed
    to serialize, a 500 on every such call."""
    code = "def main(event, context):\n    return {'ok': True}\n"
    body = {"name": "ctx", "runtime": "python", "code": code}
    made = client.simulate_post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert made.json["status"] == "active", made.text
    deep = '{"a":' + "[" * 300 + "]" * 300 + "}"
    resp = client.simulate_post("/api/v1/functions/ctx/invoke", json={},
                                headers={"X-Nimbus-Context": deep})  # fmt: skip
    assert resp.status_code == 400 and resp.json["error"]["code"] == "bad_request", resp.text
    ok = client.simulate_post("/api/v1/functions/ctx/invoke", json={},
                              headers={"X-Nimbus-Context": '{"a": [[1]]}'})  # fmt: skip
    assert ok.status_code == 200, ok.text


def test_create_and_wait_in_process(client):
    body = {"name": "inproc", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    resp = client.simulate_post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert resp.status_code == 201
    assert resp.headers["Location"] == f"/api/v1/functions/{resp.json['id']}"
    assert resp.headers["X-Nimbus-Version"] == "1"
    assert resp.json["status"] == "active"


@pytest.fixture
def unstarted(tmp_path):
    """A client of a platform not started: no background job writes into its folder while a
    test takes the store away."""
    platform = Platform.open(Settings(data_dir=tmp_path, nimbus_api_key=KEY))
    try:
        yield testing.TestClient(create_app(platform, KEY))
    finally:
        platform.stop()


def test_ready_reports_an_unreachable_store(unstarted, tmp_path, caplog):
    client = unstarted
    assert client.simulate_get("/ready").status_code == 200
    shutil.rmtree(tmp_path / "objects")
    with caplog.at_level("INFO", logger="nimbus.ready"):
        for _ in range(5):  # a kubelet's probes: the log says it once, not per probe
            resp = client.simulate_get("/ready")
            assert resp.status_code == 503 and resp.json["status"] == "unavailable"
        (tmp_path / "objects").mkdir()
        assert client.simulate_get("/ready").status_code == 200
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in said] == ["WARNING", "INFO"], said
    assert said[0][1].startswith("/ready: store folder ") and "is missing" in said[0][1]
    assert said[1][1].startswith("/ready: the store answers again (5 steps failed"), said


def test_ready_reads_an_object_back_not_only_asks_the_store(unstarted, tmp_path, caplog):
    # A store that answers (its folder is there) but cannot serve the object /ready reads:
    # a folder where the object was, so that it can be neither read nor written again.
    client = unstarted
    assert client.simulate_get("/ready").status_code == 200
    ready = tmp_path / "objects" / READY_KEY
    ready.unlink()
    (ready / "in-the-way").mkdir(parents=True)
    with caplog.at_level("INFO", logger="nimbus.ready"):
        for _ in range(3):
            resp = client.simulate_get("/ready")
            assert resp.status_code == 503, resp.text
            assert resp.json == {"status": "unavailable", "store": "unreachable"}
        shutil.rmtree(ready)
        assert client.simulate_get("/ready").json == {"status": "ready"}
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in said] == ["WARNING", "INFO"], said
    assert said[0][1].startswith(f"/ready: the local store cannot serve {READY_KEY}"), said


def test_wait_true_callers_beyond_the_cap_get_429_before_anything_is_written(platform):
    platform.settings.max_build_waiters = 0
    client = testing.TestClient(
        create_app(platform, KEY), headers={"Authorization": f"Bearer {KEY}"}
    )
    body = {"name": "waiter", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    resp = client.simulate_post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "5"
    assert client.simulate_get("/api/v1/functions/waiter").status_code == 404
    assert client.simulate_post("/api/v1/functions", json=body).status_code == 201  # no wait: fine


def test_access_log_leaves_webhook_keys_out(platform, caplog):
    platform.settings.access_log = True
    client = testing.TestClient(create_app(platform, KEY))
    with caplog.at_level("INFO", logger="nimbus.access"):
        client.simulate_get("/webhook/s3cr3t-key-abc/orders/1", query_string="x=1")
        client.simulate_post("/webhook/s3cr3t-key-abc")
    lines = [r.getMessage() for r in caplog.records if r.name == "nimbus.access"]
    assert len(lines) == 2 and not any("s3cr3t" in line for line in lines)
    assert lines[0].startswith("GET /webhook/<key>/orders/1?x=1 404")


def test_an_internal_error_logs_the_request_id_its_answer_gives(
    platform, client, caplog, monkeypatch
):
    """A user reports "internal error (request id req_…)": the operator greps the log for
    that id. The log line named the method and path only."""

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(platform.functions, "list", broken)
    with caplog.at_level("ERROR", logger="nimbus.errors"):
        resp = client.simulate_get("/api/v1/functions", headers={"X-Request-Id": "rid-42"})
    assert resp.status_code == 500 and "request id rid-42" in resp.json["error"]["message"]
    [record] = [r for r in caplog.records if r.name == "nimbus.errors"]
    assert "rid=rid-42" in record.getMessage() and record.exc_info


def test_a_function_still_building_says_which_version_and_what_to_do(client, platform):
    """409 not_ready said only "function gonew is still building"."""
    body = {"name": "older", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    made = client.simulate_post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert made.json["status"] == "active", made.text
    platform.builds.stop()  # what is deployed from now on stays queued
    assert client.simulate_put("/api/v1/functions/older", json={"memory_mb": 64}).status_code == 200
    created = client.simulate_post("/api/v1/functions", json={**body, "name": "gonew"})
    assert created.status_code == 201, created.text
    resp = client.simulate_post("/api/v1/functions/gonew/invoke", json={})
    assert resp.status_code == 409 and resp.json["error"]["code"] == "not_ready"
    assert resp.headers["Retry-After"] == "1"
    assert resp.json["error"]["message"] == (
        "function gonew is still building: v1 is queued and no version serves yet; call again "
        "after Retry-After, or see the build: `nimbus build gonew` "
        "(GET /api/v1/functions/gonew/build)"
    )
    resp = client.simulate_post("/api/v1/functions/older/invoke", params={"version": "2"})
    assert resp.status_code == 409 and resp.headers["Retry-After"] == "1"
    assert resp.json["error"]["message"] == (
        "function older is still building: v2 is queued; call again after Retry-After, or see "
        "the build: `nimbus build older` (GET /api/v1/functions/older/build)"
    )


def test_a_requirement_that_is_not_pep_508_is_refused_at_once(client):
    """It was a 201 and then a failed build."""
    body = {"name": "reqs", "runtime": "python", "code": "def main(e):\n    return e\n"}
    resp = client.simulate_post(
        "/api/v1/functions", json={**body, "requirements": ["six", "not a valid req !!"]}
    )
    assert resp.status_code == 422, resp.text
    [detail] = resp.json["error"]["details"]
    assert detail["field"] == "requirements"
    assert detail["message"].startswith("requirement 'not a valid req !!' is not PEP 508: ")
    assert client.simulate_get("/api/v1/functions/reqs").status_code == 404
    made = client.simulate_post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert made.json["status"] == "active", made.text
    url = {"requirements": ["pkg @ https://example.invalid/pkg.whl"]}
    resp = client.simulate_put("/api/v1/functions/reqs", json=url)
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "requirements"
    assert "only packages from the index, not URLs" in resp.json["error"]["message"]
    assert client.simulate_get("/api/v1/functions/reqs").json["latest_version"] == 1


def test_a_handler_on_a_binary_function_is_refused(client):
    """`"handler": "x.y"` on a wasm function was accepted and meant nothing."""
    body = {"name": "bin", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    resp = client.simulate_post("/api/v1/functions", json={**body, "handler": "x.y"})
    assert resp.status_code == 422, resp.text
    [detail] = resp.json["error"]["details"]
    assert detail == {
        "field": "handler",
        "message": "a wasm function takes no handler: its binary is called as it is (a "
        "handler names a function in the source of go, rust, c, python, javascript)",
    }
    made = client.simulate_post("/api/v1/functions", params={"wait": "true"}, json=body)
    assert made.json["status"] == "active", made.text
    resp = client.simulate_put("/api/v1/functions/bin", json={"handler": "x.y"})
    assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == "handler"
    assert client.simulate_get("/api/v1/functions/bin").json["latest_version"] == 1


def test_valid_json_that_is_not_an_object_is_422_on_every_json_body_route(client):
    """`POST /api/v1/functions` with `[1,2]` was 400 bad_request; DESIGN: malformed JSON is
    400, valid JSON that does not fit is 422 naming the field (here the body)."""
    paths = client.simulate_get("/openapi.json", headers={"Authorization": ""}).json["paths"]

    def object_body(op: dict) -> bool:
        content = op.get("requestBody", {}).get("content", {})
        return "$ref" in content.get("application/json", {}).get("schema", {})

    routes = [
        (method, path)
        for path, item in paths.items()
        for method, op in item.items()
        if method != "parameters" and object_body(op)
    ]
    assert len(routes) > 15, routes
    seen = {}
    for method, path in routes:
        url = re.sub(r"\{[^}]+\}", "x", path.replace("{version}", "1"))
        for body in (b"[1, 2]", b'"text"', b"null"):
            resp = client.simulate_request(
                method.upper(), url, body=body, headers={"Content-Type": "application/json"}
            )
            seen[(method, path, body)] = (resp.status_code, resp.json["error"].get("details"))
    kinds = {b"[1, 2]": "an array", b'"text"': "a string", b"null": "null"}
    assert seen == {
        key: (422, [{"field": "body", "message": f"must be a JSON object, not {kinds[key[2]]}"}])
        for key in seen
    }
    resp = client.simulate_post(
        "/api/v1/functions", body=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_json"

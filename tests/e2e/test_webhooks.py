"""Webhooks: Lambda function-URL events in, shaped responses out, no API key, no stacks."""

from __future__ import annotations

import base64
import time

import httpx
import orjson
import pytest

from tests.e2e import wasm as w

LAMBDA_REPLY = {
    "statusCode": 201,
    "headers": {"X-Custom": "yes", "Content-Type": "text/html"},
    "body": "<b>created</b>",
    "cookies": ["a=1; Path=/", "b=2"],
}


@pytest.fixture(scope="module")
def hooks(server):
    out = {}
    with server.client() as api:
        for name, wat in {
            "echo": w.ECHO_WAT,
            "lambda": w.constant_wat(orjson.dumps(LAMBDA_REPLY)),
            "jsonbody": w.constant_wat(b'{"statusCode": 200, "body": {"n": 1}}'),
            "binary": w.constant_wat(orjson.dumps({"statusCode": 200, "isBase64Encoded": True,
                "body": base64.b64encode(b"\x00\xffPNG").decode(),
                "headers": {"content-type": "image/png"}})),
            "fail": w.FAIL_WAT,
            # AWS's Node.js blueprints write the status as a string; API Gateway takes it
            "strstatus": w.constant_wat(
                b'{"statusCode": "201", "body": "created", "headers": {"x-n": 3, "x-b": true}}'
            ),
        }.items():  # fmt: skip
            body = {"name": f"hook-{name}", "runtime": "wasm", "artifact_base64": w.b64(w.wat(wat))}
            fn = api.post("/api/v1/functions?wait=true", json=body).json()
            assert fn["status"] == "active", fn
            out[name] = fn["webhook_url"]
    return out


def test_event_is_lambda_function_url_shaped(hooks):
    resp = httpx.post(
        hooks["echo"] + "/orders/42?x=1&x=2&y=",
        content=b'{"item": "tea"}',
        headers={"Content-Type": "application/json", "X-Thing": "t", "Cookie": "s=1; t=2"},
    )
    assert resp.status_code == 200, resp.text
    event = resp.json()
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/orders/42"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["headers"]["x-thing"] == "t"
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/orders/42"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["body"] == '{"item": "tea"}' and event["isBase64Encoded"] is False
    assert resp.headers["X-Nimbus-Invocation-Id"].startswith("inv_")


def test_raw_path_is_the_path_as_sent(hooks):
    """rawPath keeps the caller's percent-encoding (an encoded slash is not a
    separator); requestContext.http.path is decoded, as API Gateway's are."""
    event = httpx.get(hooks["echo"] + "/files/a%2Fb%20c.txt?k=%2B1").json()
    assert event["rawPath"] == "/files/a%2Fb%20c.txt"
    assert event["requestContext"]["http"]["path"] == "/files/a/b c.txt"
    assert event["rawQueryString"] == "k=%2B1" and event["queryStringParameters"] == {"k": "+1"}
    assert httpx.get(hooks["echo"]).json()["rawPath"] == "/"


def test_binary_body_arrives_base64(hooks):
    payload = bytes(range(256))
    resp = httpx.put(hooks["echo"], content=payload,
                     headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    event = resp.json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
    assert event["rawPath"] == "/"
    assert event["requestContext"]["http"]["method"] == "PUT"


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH", "OPTIONS"])
def test_every_method_reaches_the_function(hooks, method):
    resp = httpx.request(method, hooks["echo"] + "/p")
    assert resp.status_code == 200
    assert resp.json()["requestContext"]["http"]["method"] == method


def test_result_shapes_the_response(hooks):
    resp = httpx.get(hooks["lambda"])
    assert resp.status_code == 201
    assert resp.headers["x-custom"] == "yes"
    assert resp.headers["content-type"] == "text/html"
    assert resp.text == "<b>created</b>"
    key = hooks["lambda"].split("/webhook/", 1)[1]  # cookies stay on this webhook
    assert resp.headers.get_list("set-cookie") == [f"a=1; Path=/webhook/{key}/",
                                                   f"b=2; Path=/webhook/{key}/"]  # fmt: skip
    resp = httpx.get(hooks["jsonbody"])
    assert resp.json() == {"n": 1} and resp.headers["content-type"] == "application/json"
    resp = httpx.get(hooks["binary"])
    assert resp.content == b"\x00\xffPNG" and resp.headers["content-type"] == "image/png"
    resp = httpx.get(hooks["strstatus"])
    assert resp.status_code == 201 and resp.text == "created"
    assert (resp.headers["x-n"], resp.headers["x-b"]) == ("3", "true")  # as JSON writes them


def test_function_error_gives_anonymous_callers_a_bare_502(hooks):
    resp = httpx.post(hooks["fail"], json={})
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "function_error"
    assert error["invocation_id"] == resp.headers["X-Nimbus-Invocation-Id"]
    assert "stack" not in error and "something broke" not in resp.text
    assert "exit" not in resp.text


def test_every_answer_is_sandboxed_through_the_server(server, hooks):
    """Through gunicorn too: the page, the function's failure, an unknown key's 404."""
    for resp in (httpx.get(hooks["lambda"]), httpx.post(hooks["fail"], json={}),
                 httpx.get(server.url + "/webhook/" + "x" * 32)):  # fmt: skip
        assert resp.headers["content-security-policy"].startswith("sandbox allow-scripts")
        assert "allow-same-origin" not in resp.headers["content-security-policy"]
        assert resp.headers["x-content-type-options"] == "nosniff"


def test_rotate_and_disable(server, hooks):
    old = hooks["lambda"]
    with server.client() as api:
        fn = api.post("/api/v1/functions/hook-lambda/webhook/rotate").json()
        assert fn["webhook_url"] != old
        assert httpx.get(fn["webhook_url"]).status_code == 201  # at once
        time.sleep(1.1)  # the old key may serve for the stated staleness, no longer
        assert httpx.get(old).status_code == 404
        api.put("/api/v1/functions/hook-lambda", json={"webhook": False})
        assert httpx.get(fn["webhook_url"]).status_code in (201, 404)  # ≤ 1 s staleness
        time.sleep(1.1)
        assert httpx.get(fn["webhook_url"]).status_code == 404
    assert httpx.get(server.url + "/webhook/" + "x" * 32).status_code == 404


def test_anonymous_errors_name_nothing_of_the_function(server, name):
    """409s and build errors reach a webhook caller as a fixed code and message only."""
    with server.client() as api:
        body = {"name": name, "runtime": "wasm", "artifact_base64": w.b64(b"\0asm-not-really")}
        broken = api.post("/api/v1/functions?wait=true", json=body).json()
        assert broken["status"] == "failed", broken
        body = {
            "name": name + "-off",
            "runtime": "wasm",
            "artifact_base64": w.b64(w.wat(w.ECHO_WAT)),
        }
        off = api.post("/api/v1/functions?wait=true", json=body).json()
        api.post("/api/v1/functions/bulk-update", json={"ids": [off["id"]], "status": "offline"})
        owner_view = api.post(f"/api/v1/functions/{name}/invoke", json={}).json()["error"]
    assert name in owner_view["message"] or owner_view["details"]  # the owner still sees why
    for fn, code in ((broken, "build_failed"), (off, "offline")):
        resp = httpx.post(fn["webhook_url"], json={})
        assert resp.status_code == 409, resp.text
        error = resp.json()["error"]
        assert error == {"code": code, "message": "the function cannot serve requests now"}
        assert name not in resp.text and "details" not in error


def test_owner_finds_a_webhook_callers_failure_in_the_logs(server, name):
    """The caller gets a bare 502; the function's log has the error and its traceback,
    as a Lambda function URL's error lands in CloudWatch."""
    code = (
        "def main(event, context):\n"
        "    print('checking order')\n"
        "    raise ValueError('order 42 has no sku')\n"
    )
    with server.client() as api:
        body = {"name": name, "runtime": "python", "code": code}
        fn = api.post("/api/v1/functions?wait=true", json=body).json()
        resp = httpx.post(fn["webhook_url"], json={"order": 42})
        assert resp.status_code == 502 and "sku" not in resp.text
        invocation = resp.headers["X-Nimbus-Invocation-Id"]
        deadline = time.monotonic() + 10
        while True:
            params = {"invocation_id": invocation}
            entries = api.get(f"/api/v1/functions/{name}/logs", params=params).json()["entries"]
            if entries or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    lines = [e["line"] for e in reversed(entries) if e["stream"] == "stderr"]
    assert lines[0] == "checking order"
    assert lines[1] == "[ERROR] ValueError: order 42 has no sku"
    assert '  File "handler.py", line 3, in main' in lines

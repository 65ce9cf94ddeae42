"""A function shapes its webhook reply (Lambda's `{statusCode, headers, body, …}`); a shape
that cannot be sent as HTTP is the function's fault: 502, never a 500 or a broken reply."""

from __future__ import annotations

import orjson
import pytest

from tests.e2e.wasm import b64, constant_wat, wat


def _webhook_of(client, name: str, result: object) -> str:
    output = result if isinstance(result, bytes) else orjson.dumps(result)
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": name, "runtime": "wasm", "artifact_base64": b64(wat(constant_wat(output)))},
        params={"wait": "true"},
    )
    assert resp.status_code == 201, resp.text
    return resp.json["webhook_url"].split("/webhook/", 1)[1]


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 200, "headers": {"x-a": "one\r\nset-cookie: evil=1"}},
        {"statusCode": 200, "headers": {"bad name": "x"}},
        {"statusCode": 200, "headers": {"x-a": "€"}},  # not latin-1
        {"statusCode": 200, "headers": ["x-a", "b"]},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
        {"statusCode": 200, "cookies": "a=b"},
        {"statusCode": 200, "cookies": ["a=b\nc"]},
        # orjson writes 254 levels at most (it reads 1,024)
        b'{"statusCode": 200, "body": ' + b"[" * 300 + b"]" * 300 + b"}",
    ],
    ids=["crlf", "name", "latin1", "list", "base64", "cookie-str", "cookie-crlf", "deep-body"],
)
def test_an_unsendable_shape_is_a_502(client, result):
    key = _webhook_of(client, "shaped", result)
    resp = client.simulate_get(f"/webhook/{key}")
    assert resp.status_code == 502, resp.text
    assert resp.json["error"]["code"] == "invalid_response"
    assert "evil" not in str(resp.headers)
    assert resp.headers["X-Nimbus-Invocation-Id"].startswith("inv_")


def test_a_sendable_shape_is_sent(client):
    result = {"statusCode": 201, "headers": {"X-A": "one", "x-n": 2},
              "body": b64(b"\x00hi"), "isBase64Encoded": True, "cookies": ["a=b"]}  # fmt: skip
    key = _webhook_of(client, "shaped", result)
    resp = client.simulate_get(f"/webhook/{key}")
    assert resp.status_code == 201, resp.text
    assert (resp.headers["x-a"], resp.headers["x-n"]) == ("one", "2")
    assert resp.content == b"\x00hi" and resp.headers["set-cookie"] == "a=b"


def test_a_shape_cannot_widen_a_service_workers_scope(client):
    """A webhook's script with `Service-Worker-Allowed: /` could register a service worker
    over the console's origin and read its requests (their Authorization header)."""
    result = {"statusCode": 200, "headers": {"Service-Worker-Allowed": "/",
              "Content-Type": "text/javascript"}, "body": "self.onfetch = () => {}"}  # fmt: skip
    key = _webhook_of(client, "shaped", result)
    resp = client.simulate_get(f"/webhook/{key}")
    assert resp.status_code == 200 and resp.headers["content-type"] == "text/javascript"
    assert "service-worker-allowed" not in {name.lower() for name in resp.headers}

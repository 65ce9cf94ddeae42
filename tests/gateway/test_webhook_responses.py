"""A function shapes its webhook reply (Lambda's `{statusCode, headers, body, …}`); a shape
that cannot be sent as HTTP is the function's fault: 502, never a 500 or a broken reply.
Every webhook answer is sandboxed: it shares the console's origin, not its powers."""

from __future__ import annotations

import orjson
import pytest

from gateway.api.middleware import SANDBOX
from tests.e2e.wasm import ECHO_WAT, FAIL_WAT, b64, constant_wat, wat

from .conftest import running_platform

PAGE = {"statusCode": 200, "headers": {"content-type": "text/html"},
        "body": "<script>alert(sessionStorage.length)</script>"}  # fmt: skip


def _webhook_of(client, name: str, result: object, source: str | None = None) -> str:
    output = result if isinstance(result, bytes) else orjson.dumps(result)
    module = wat(source or constant_wat(output))
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": name, "runtime": "wasm", "artifact_base64": b64(module)},
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
    assert resp.content == b"\x00hi" and resp.headers["set-cookie"] == f"a=b; Path=/webhook/{key}/"


def test_a_functions_cookies_stay_on_its_own_webhook(client):
    """Every webhook shares the console's origin: a cookie as the function wrote it
    (`Path=/`, a Domain) would reach every other function's webhook, which could also
    overwrite it. Its Path is moved under its own webhook, its Domain dropped."""
    result = {"statusCode": 200, "headers": {"Set-Cookie": "h=1; Path=/; HttpOnly"},
              "cookies": ["a=1; Path=/", "b=2; Path=/api; Secure", "c=3", "d=4; path=x",
                          "e=5; Domain=example.com; SameSite=Lax"]}  # fmt: skip
    key = _webhook_of(client, "cookies", result)
    resp = client.simulate_get(f"/webhook/{key}/deep/page")
    assert resp.status_code == 200, resp.text
    scope = f"/webhook/{key}/"
    paths = {name: cookie.path for name, cookie in resp.cookies.items()}
    assert paths == {"h": scope, "a": scope, "b": scope + "api", "c": scope, "d": scope,
                     "e": scope}  # fmt: skip
    assert all(cookie.domain in (None, "") for cookie in resp.cookies.values())
    assert resp.cookies["h"].http_only and resp.cookies["b"].secure
    assert resp.cookies["e"].same_site == "Lax"


def test_a_shape_cannot_widen_a_service_workers_scope(client):
    """A webhook's script with `Service-Worker-Allowed: /` could register a service worker
    over the console's origin and read its requests (their Authorization header)."""
    result = {"statusCode": 200, "headers": {"Service-Worker-Allowed": "/",
              "Content-Type": "text/javascript"}, "body": "self.onfetch = () => {}"}  # fmt: skip
    key = _webhook_of(client, "shaped", result)
    resp = client.simulate_get(f"/webhook/{key}")
    assert resp.status_code == 200 and resp.headers["content-type"] == "text/javascript"
    assert "service-worker-allowed" not in {name.lower() for name in resp.headers}


def _assert_sandboxed(resp) -> None:
    assert resp.headers["Content-Security-Policy"].split(",")[0] == SANDBOX, resp.headers
    assert "allow-same-origin" not in SANDBOX
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/page", {}, 200),
        ("POST", "", {"json": {"a": 1}}, 200),
        ("HEAD", "", {}, 200),
        ("OPTIONS", "", {}, 200),
        ("POST", "", {"headers": {"X-Nimbus-Invocation-Type": "Event"}}, 202),
        ("POST", "", {"body": b"x" * (6 * 1024 * 1024 + 1)}, 413),
        ("TRACE", "", {}, 405),
    ],
    ids=["page", "json", "head", "options", "async", "too-large", "method"],
)
def test_every_webhook_answer_is_sandboxed(client, method, path, kwargs, status):
    key = _webhook_of(client, "page", PAGE)
    resp = client.simulate_request(method, f"/webhook/{key}{path}", **kwargs)
    assert resp.status_code == status, resp.text
    _assert_sandboxed(resp)


def test_a_failed_function_and_an_unknown_key_are_sandboxed_too(client):
    failing = _webhook_of(client, "fails", b"", source=FAIL_WAT)
    resp = client.simulate_get(f"/webhook/{failing}")
    assert resp.status_code == 502 and resp.json["error"]["code"] == "function_error"
    _assert_sandboxed(resp)
    unsendable = _webhook_of(client, "unsendable", {"statusCode": 200, "cookies": "a=b"})
    resp = client.simulate_get(f"/webhook/{unsendable}")
    assert resp.status_code == 502 and resp.json["error"]["code"] == "invalid_response"
    _assert_sandboxed(resp)
    resp = client.simulate_get("/webhook/" + "a" * 26 + "/deep/path")
    assert resp.status_code == 404
    _assert_sandboxed(resp)


def test_a_rate_limited_webhook_call_is_sandboxed(tmp_path):
    with running_platform(tmp_path, rate_limit_per_webhook="1/minute") as (_, client):
        key = _webhook_of(client, "echo", b"", source=ECHO_WAT)
        assert client.simulate_get(f"/webhook/{key}").status_code == 200
        resp = client.simulate_get(f"/webhook/{key}")
        assert resp.status_code == 429
        _assert_sandboxed(resp)


def test_a_functions_own_policy_is_kept_but_cannot_loosen_the_sandbox(client):
    """Both policies go out in one header (`ours, theirs`); a browser enforces each, so the
    function's `allow-same-origin` gives nothing back. Its nosniff cannot be turned off."""
    theirs = "sandbox allow-scripts allow-same-origin; default-src 'self'"
    result = {"statusCode": 200, "body": "<p>hi</p>", "headers": {
        "Content-Type": "text/html", "Content-Security-Policy": theirs,
        "X-Content-Type-Options": "sniff", "Clear-Site-Data": '"storage", "cookies"'}}  # fmt: skip
    key = _webhook_of(client, "own-policy", result)
    resp = client.simulate_get(f"/webhook/{key}")
    assert resp.status_code == 200 and resp.text == "<p>hi</p>"
    assert resp.headers["Content-Security-Policy"] == f"{SANDBOX}, {theirs}"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    # NOTE: it would wipe the console's storage (its key, its saved events) on this origin
    assert "clear-site-data" not in {name.lower() for name in resp.headers}


@pytest.mark.parametrize("event_type", [None, "Event"])
def test_an_anonymous_413_names_the_limits(client, event_type):
    """A webhook caller got "the request is too large": not the 6 MB, nor the 256 KB of an
    async (`Event`) call, which a body of 300 KB meets."""
    key = _webhook_of(client, "small", {"ok": True})
    size = 300 * 1024 if event_type else 7 * 1024 * 1024
    headers = {"X-Nimbus-Invocation-Type": event_type} if event_type else {}
    resp = client.simulate_post(f"/webhook/{key}", body=b"x" * size, headers=headers)
    assert resp.status_code == 413 and resp.json["error"]["code"] == "too_large"
    assert resp.json["error"]["message"] == (
        "the request body is too large: at most 6 MB, 256 KB with X-Nimbus-Invocation-Type: Event"
    )

"""Versions and rollback through a real 2-worker server, on the local store and SeaweedFS."""

from __future__ import annotations

import time

from tests.e2e import wasm as w
from tests.e2e.test_observability import cold_count, deploy, once


def update(server, name: str, source: str) -> dict:
    resp = once(server, "PUT", f"/api/v1/functions/{name}?wait=true",
                json={"artifact_base64": w.b64(w.wat(source))})  # fmt: skip
    assert resp.status_code == 200, resp.text
    return resp.json()


def invoke(server, name: str):
    return once(server, "POST", f"/api/v1/functions/{name}/invoke", json={})


def test_rollback_is_served_by_every_worker_within_one_second(server, name):
    deploy(server, name, w.constant_wat(b'{"v":1}'))
    assert update(server, name, w.constant_wat(b'{"v":2}'))["active_version"] == 2
    time.sleep(1.1)  # every worker's cache is at most 1 s old
    warm = []
    while cold_count(warm) < 2:  # both workers now hold the record that says 2
        warm.append(invoke(server, name))
        assert len(warm) < 300
    assert {r.json()["v"] for r in warm} == {2}

    resp = once(server, "POST", f"/api/v1/functions/{name}/versions/1/rollback",
                json={"reason": "e2e"})  # fmt: skip
    assert resp.status_code == 200 and resp.json()["active_version"] == 1
    rolled_at = time.monotonic()
    time.sleep(1.0)
    calls = [invoke(server, name) for _ in range(40)]
    assert time.monotonic() - rolled_at < 10
    served = [(c.json()["v"], c.headers["X-Nimbus-Version"], c.headers["X-Nimbus-Cold-Start"])
              for c in calls]  # fmt: skip
    assert [v for v, _, _ in served] == [1] * 40, served
    assert {v for _, v, _ in served} == {"1"}, served
    assert cold_count(calls) == 2, served  # version 1 first ran here, once in each worker
    history = once(server, "GET", f"/api/v1/functions/{name}/history").json()
    assert [(e["action"], e["from_version"], e["to_version"], e["reason"])
            for e in history["entries"]] == [("rollback", 2, 1, "e2e"), ("deploy", 1, 2, ""),
                                             ("deploy", None, 1, "")]  # fmt: skip


def test_rollback_to_a_failed_version_is_409_and_changes_nothing(server, name):
    deploy(server, name, w.constant_wat(b'{"v":1}'))
    resp = once(server, "PUT", f"/api/v1/functions/{name}?wait=true",
                json={"artifact_base64": w.b64(b"\0asm not really")})  # fmt: skip
    assert resp.json()["latest_build"]["status"] == "failed"
    resp = once(server, "POST", f"/api/v1/functions/{name}/versions/2/rollback")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "build_failed"
    assert once(server, "GET", f"/api/v1/functions/{name}").json()["active_version"] == 1
    assert [invoke(server, name).json()["v"] for _ in range(6)] == [1] * 6
    versions = once(server, "GET", f"/api/v1/functions/{name}/versions").json()
    assert [(v["version"], v["status"], v["active"]) for v in versions["versions"]] == [
        (2, "failed", False),
        (1, "ready", True),
    ]
    history = once(server, "GET", f"/api/v1/functions/{name}/history").json()["entries"]
    assert [(e["action"], e["to_version"]) for e in history] == [("deploy", 1)]  # v2 never served


def test_an_unknown_version_is_named_as_the_caller_named_the_function(server, name):
    deploy(server, name, w.constant_wat(b'{"v":1}'))
    for method, path in (
        ("POST", f"/api/v1/functions/{name}:9/invoke"),
        ("POST", f"/api/v1/functions/{name}/invoke?version=9"),
        ("GET", f"/api/v1/functions/{name}/versions/9"),
        ("POST", f"/api/v1/functions/{name}/versions/9/rollback"),
    ):
        resp = once(server, method, path, json={})
        assert resp.status_code == 404, resp.text
        # not the internal id ("version 9 of fn_… not found")
        assert resp.json()["error"]["message"] == f"function {name} has no version 9", path

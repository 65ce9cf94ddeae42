"""A stored record that does not read back is the server's 500, never the caller's 422."""

from __future__ import annotations

import logging
import time

import orjson

from store.functions import build_marker_key, function_key, version_key
from store.invocations import InvocationRepo
from tests.e2e.wasm import ECHO_WAT, b64, wat


def _spoil(platform, key: str, **fields) -> None:
    """Change a record behind Nimbus's back (another version wrote it, or a hand edit)."""
    record = orjson.loads(platform.store.get(key).data)
    platform.store.put(key, orjson.dumps({**record, **fields}))


def test_a_function_record_that_does_not_read_is_a_500_naming_it(platform, client, caplog):
    made = client.simulate_post(
        "/api/v1/functions",
        json={"name": "spoilt", "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))},
        params={"wait": "true"},
    ).json
    key = function_key(made["id"])
    _spoil(platform, key, memory_mb="plenty")

    with caplog.at_level(logging.ERROR, logger="nimbus.store"):
        resp = client.simulate_get("/api/v1/functions/" + made["id"])
    assert resp.status_code == 500, resp.text  # was 422 validation_error "memory_mb: …"
    error = resp.json["error"]
    assert error["code"] == "record_unreadable"
    assert key in error["message"] and "memory_mb" in error["message"]
    assert any(key in r.getMessage() for r in caplog.records)


def test_an_async_record_that_does_not_read_is_a_500(platform, client):
    client.simulate_post(
        "/api/v1/functions",
        json={"name": "later", "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))},
        params={"wait": "true"},
    )
    platform.stop()  # no runner may take the call while its record is spoilt
    accepted = client.simulate_post("/api/v1/functions/later/async", json={}).json
    _spoil(platform, f"invocations/{accepted['invocation_id']}.json", status="lost")
    resp = client.simulate_get(f"/api/v1/invocations/{accepted['invocation_id']}")
    assert (resp.status_code, resp.json["error"]["code"]) == (500, "record_unreadable")


def test_one_unreadable_version_fails_no_listing(platform, client):
    """A listing reads the latest version of a record written before records kept the
    handler: that version unreadable, the listing still answers (that handler unknown)."""
    made = client.simulate_post(
        "/api/v1/functions",
        json={"name": "legacy", "runtime": "python", "code": "def main(e):\n    return e\n"},
    ).json

    def forget(fn):  # as a server before the field wrote it
        fn.handler = None
        return fn

    platform.repo.update_function(made["id"], forget)
    _spoil(platform, version_key(made["id"], 1), memory_mb="plenty")
    resp = client.simulate_get("/api/v1/functions")
    assert resp.status_code == 200, resp.text  # was 500 record_unreadable
    assert [f["handler"] for f in resp.json["functions"]] == [None]


def test_an_unreadable_queued_call_holds_up_no_other(platform, client, caplog):
    """The dispatcher's pass stopped at a record it could not read ('async-dispatch failed'
    and a traceback each pass): the calls queued behind it waited on the next shuffles."""
    fn = client.simulate_post(
        "/api/v1/functions",
        json={"name": "queued", "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))},
        params={"wait": "true"},
    ).json
    platform.store.put("invocations/inv_spoilt.json", b'{"id": "inv_spoilt", "version": "x"}')
    InvocationRepo(platform.store).put_queue_marker(1, "inv_spoilt", fn["id"])  # oldest first
    ids = [
        client.simulate_post("/api/v1/functions/queued/async", json={"n": n}).json["invocation_id"]
        for n in range(10)
    ]
    deadline = time.monotonic() + 20
    for invocation_id in ids:
        path = f"/api/v1/invocations/{invocation_id}"
        while (status := client.simulate_get(path).json["status"]) != "succeeded":
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
    logged = [r.getMessage() for r in caplog.records]
    assert "async-dispatch failed" not in logged
    assert any(m.startswith("async invocation inv_spoilt cannot run") for m in logged)


def test_an_unreadable_queued_build_holds_up_no_other(platform, client):
    """The build queue is taken in key order, and a version that did not read back
    stopped each pass there: no function sorting after it was ever built."""
    platform.store.put(version_key("fn_0000spoilt", 1), b'{"version": "x"}')
    platform.store.put(build_marker_key("fn_0000spoilt", 1), b"")  # first in the queue
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": "after", "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))},
        params={"wait": "true"},
    )
    assert resp.json["status"] == "active", resp.text  # was 'creating' for good


def test_one_unreadable_function_hides_no_other_from_the_listing(platform, client):
    """Listings, the quota and the stats overview read every function record: one that
    did not read back made each of them a 500 (the console's front page with them)."""
    made = [
        client.simulate_post(
            "/api/v1/functions",
            json={"name": name, "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))},
        ).json
        for name in ("fine", "spoilt")
    ]
    _spoil(platform, function_key(made[1]["id"]), memory_mb="plenty")
    for path in ("/api/v1/functions", "/api/v1/quota"):
        resp = client.simulate_get(path)
        assert resp.status_code == 200, (path, resp.text)
    assert [f["name"] for f in client.simulate_get("/api/v1/functions").json["functions"]] == [
        "fine"
    ]
    resp = client.simulate_get(f"/api/v1/functions/{made[1]['id']}")
    assert resp.json["error"]["code"] == "record_unreadable"  # named where it is asked for

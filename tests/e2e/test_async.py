"""Async invocations: durable accept, polling, final states, and crashes that lose nothing."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from store import open_store
from store.invocations import invocation_key
from store.records import Invocation
from tests.e2e import wasm as w


def deploy(api: httpx.Client, name: str, wat: str, **extra) -> dict:
    body = {"name": name, "runtime": "wasm", "artifact_base64": w.b64(w.wat(wat)), **extra}
    fn = api.post("/api/v1/functions?wait=true", json=body).json()
    assert fn["status"] == "active", fn
    return fn


def submit(api: httpx.Client, name: str, event=None) -> str:
    resp = api.post(f"/api/v1/functions/{name}/async", json=event or {})
    assert resp.status_code == 202, resp.text
    assert resp.headers["Location"] == f"/api/v1/invocations/{resp.json()['invocation_id']}"
    return resp.json()["invocation_id"]


def wait_final(api: httpx.Client, invocation_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = api.get(f"/api/v1/invocations/{invocation_id}").json()
        if record["status"] in ("succeeded", "failed", "timed_out"):
            return record
        assert time.monotonic() < deadline, f"never finished: {record}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def fns(server):
    with server.client() as api:
        deploy(api, "async-echo", w.ECHO_WAT)
        deploy(api, "async-fail", w.FAIL_WAT)
        deploy(api, "async-spin", w.SPIN_WAT, timeout_sec=1)
    return server


def test_async_invoke_succeeds_with_the_result(api, fns):
    invocation_id = submit(api, "async-echo", {"n": 7})
    record = wait_final(api, invocation_id)
    assert record["status"] == "succeeded"
    assert record["result"] == {"n": 7}
    assert record["function"]["name"] == "async-echo" and record["version"] == 1
    assert record["attempts"] == 1 and record["duration_ms"] > 0
    assert record["finished_at"] >= record["created_at"]
    assert record["trigger"] == "async"


def test_failing_function_ends_failed_with_the_error_and_no_retry(api, fns):
    record = wait_final(api, submit(api, "async-fail"))
    assert record["status"] == "failed"
    assert record["error"]["code"] == "function_error"
    assert record["error"]["exit_code"] == 3
    assert record["attempts"] == 1


def test_timeout_ends_timed_out(api, fns):
    record = wait_final(api, submit(api, "async-spin"))
    assert record["status"] == "timed_out"
    assert record["error"]["code"] == "timeout"


def test_version_is_fixed_at_accept(api, fns, name):
    deploy(api, name, w.constant_wat(b'{"v": 1}'))
    invocation_id = submit(api, name)
    api.put(f"/api/v1/functions/{name}?wait=true",
            json={"artifact_base64": w.b64(w.wat(w.constant_wat(b'{"v": 2}')))})  # fmt: skip
    record = wait_final(api, invocation_id)
    assert record["version"] == 1 and record["result"] == {"v": 1}


def test_webhook_event_invocation_type_is_async(api, fns):
    url = api.get("/api/v1/functions/async-echo").json()["webhook_url"]
    resp = httpx.post(url + "/x", json={"a": 1}, headers={"X-Nimbus-Invocation-Type": "Event"})
    assert resp.status_code == 202
    record = wait_final(api, resp.json()["invocation_id"])
    assert record["status"] == "succeeded"
    assert record["result"]["rawPath"] == "/x"
    assert record["trigger"] == "webhook"


def test_async_errors(api, fns):
    big = {"x": "a" * (256 * 1024)}
    assert api.post("/api/v1/functions/async-echo/async", json=big).status_code == 413
    assert api.post("/api/v1/functions/nope-nope/async", json={}).status_code == 404
    assert api.get("/api/v1/invocations/inv_nothing").status_code == 404
    resp = api.post("/api/v1/functions/async-echo/async", content=b"{bad",
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 400


def test_a_sync_calls_id_asked_here_says_where_its_record_is(api, fns):
    sync_id = api.post("/api/v1/functions/async-echo/invoke", json={}).headers[
        "X-Nimbus-Invocation-Id"
    ]
    resp = api.get(f"/api/v1/invocations/{sync_id}")
    assert resp.status_code == 404
    message = resp.json()["error"]["message"]
    assert message.startswith(f"invocation {sync_id!r} not found: this route keeps async and")
    assert "GET /api/v1/functions/{name}/invocations" in message and "logs?invocation_id" in message


# -- crashes ------------------------------------------------------------------

CRASH_ENV = {"ASYNC_LEASE_MARGIN_SEC": "1", "ASYNC_POLL_SEC": "0.1", "ASYNC_RETRY_BASE_SEC": "0.2"}


def _submit_batch(server, count: int) -> list[str]:
    with server.client() as api:
        deploy(api, "nap", w.sleep_wat(1.0), timeout_sec=3)
        return [submit(api, "nap", {"i": i}) for i in range(count)]


def _all_final_once(server, ids: list[str]) -> list[dict]:
    with server.client() as api:
        records = [wait_final(api, i, timeout=120) for i in ids]
        time.sleep(1.0)  # a final state never changes afterwards
        assert [api.get(f"/api/v1/invocations/{i}").json() for i in ids] == records
    return records


def _a_worker_running_one(server, ids: list[str]) -> int:
    """The pid of a worker that holds a running invocation's lease (its owner id names
    the pid), so that killing it is sure to cost a call its attempt."""
    store = open_store(str(server.data_dir))
    deadline = time.monotonic() + 30
    while True:
        for i in ids:
            record = Invocation.model_validate_json(store.get(invocation_key(i)).data)
            if record.status == "running" and record.lease_owner:
                pid = int(record.lease_owner.rsplit("-", 2)[1])
                if pid in server.worker_pids():
                    return pid
        assert time.monotonic() < deadline, "no invocation started running"
        time.sleep(0.05)


def test_killing_a_worker_loses_no_accepted_invocation(make_server):
    server = make_server(CRASH_ENV).start()
    ids = _submit_batch(server, 16)
    victim = _a_worker_running_one(server, ids)
    os.kill(victim, signal.SIGKILL)  # gunicorn starts a new worker in its place
    records = _all_final_once(server, ids)
    assert all(r["status"] == "succeeded" for r in records), records
    assert all(r["result"] == {"slept": True} for r in records)
    assert max(r["attempts"] for r in records) >= 2  # some were taken over after the kill


def test_killing_the_whole_server_loses_no_accepted_invocation(make_server):
    server = make_server(CRASH_ENV).start()
    ids = _submit_batch(server, 16)
    time.sleep(0.5)
    server.kill()  # kill -9 master and workers with invocations queued and running
    again = make_server(CRASH_ENV, data_dir=server.data_dir).start()
    records = _all_final_once(again, ids)
    assert all(r["status"] == "succeeded" for r in records), records


def test_sigterm_loses_no_accepted_invocation(make_server):
    server = make_server(CRASH_ENV).start()
    ids = _submit_batch(server, 12)
    time.sleep(0.5)
    assert server.stop() == 0
    again = make_server(CRASH_ENV, data_dir=server.data_dir).start()
    records = _all_final_once(again, ids)
    assert all(r["status"] == "succeeded" for r in records), records


# -- retention ---------------------------------------------------------------------------


def test_finished_records_are_deleted_after_the_retention(make_server):
    server = make_server(
        {"INVOCATION_RETENTION_HOURS": "0.0005", "INVOCATION_SWEEP_INTERVAL_SEC": "0.5"}
    ).start()  # a retention of 1.8 s
    with server.client() as api:
        deploy(api, "kept-briefly", w.ECHO_WAT)
        invocation_id = submit(api, "kept-briefly", {"n": 1})
        assert wait_final(api, invocation_id)["status"] == "succeeded"
        deadline = time.monotonic() + 30
        while api.get(f"/api/v1/invocations/{invocation_id}").status_code == 200:
            assert time.monotonic() < deadline, "the finished record was never deleted"
            time.sleep(0.2)
        assert api.get(f"/api/v1/invocations/{invocation_id}").status_code == 404
        assert api.get("/api/v1/functions/kept-briefly").status_code == 200  # only the record


def test_deleting_a_function_deletes_its_finished_records(api, fns):
    deploy(api, "async-doomed", w.ECHO_WAT)
    invocation_id = submit(api, "async-doomed", {"n": 2})
    assert wait_final(api, invocation_id)["status"] == "succeeded"
    assert api.delete("/api/v1/functions/async-doomed").status_code in (200, 204)
    assert api.get(f"/api/v1/invocations/{invocation_id}").status_code == 404
    kept = submit(api, "async-echo", {"n": 3})  # other functions' records stay
    assert wait_final(api, kept)["status"] == "succeeded"


def test_async_retries_run_a_failing_function_again_as_lambda_does(make_server):
    """`async_retries: 2`: a function error (or a timeout) runs twice more, waiting
    ASYNC_ERROR_RETRY_SEC then twice that, as Lambda's MaximumRetryAttempts does; the
    record says so and the log has every run; then `async_on_failure` gets it, as a
    Lambda on-failure destination does. Without retries the failure is final."""
    server = make_server({"ASYNC_ERROR_RETRY_SEC": "0.3"}).start()
    with server.client() as api:
        deploy(api, "parked", w.ECHO_WAT)  # the on-failure destination: returns its event
        fn = deploy(api, "retried", w.FAIL_WAT, async_retries=2, async_on_failure="parked")
        assert (fn["async_retries"], fn["async_on_failure"]) == (2, "parked")
        started = time.monotonic()
        record = wait_final(api, submit(api, "retried", {"order": 42}))
        took = time.monotonic() - started
        assert record["status"] == "failed" and record["retries"] == 2, record
        assert record["error"]["code"] == "function_error" and record["attempts"] == 1
        assert took >= 0.3 + 0.6, took  # the two waits
        # Then it went to its destination once, in Lambda's destination record.
        sent = wait_final(api, record["id"] + "-failure")
        assert sent["function"]["name"] == "parked" and sent["status"] == "succeeded"
        payload = sent["result"]
        assert payload["requestPayload"] == {"order": 42}
        assert payload["requestContext"]["condition"] == "RetriesExhausted"
        assert payload["requestContext"]["approximateInvokeCount"] == 3
        assert payload["responsePayload"]["errorType"] == "ExitError"
        assert payload["responseContext"]["functionError"] == "Unhandled"
        resp = api.put("/api/v1/functions/retried", json={"async_on_failure": "nowhere"})
        assert resp.status_code == 422 and "no function 'nowhere'" in resp.text
        deadline, ends = time.monotonic() + 10, []
        while len(ends) < 3 and time.monotonic() < deadline:
            params = {"invocation_id": record["id"]}
            entries = api.get("/api/v1/functions/retried/logs", params=params).json()["entries"]
            ends = [e for e in entries if e["line"].startswith("END ")]
            time.sleep(0.2)
        assert len(ends) == 3, ends

        deploy(api, "spun", w.SPIN_WAT, timeout_sec=1, async_retries=1)
        record = wait_final(api, submit(api, "spun"))
        assert (record["status"], record["retries"]) == ("timed_out", 1), record

        api.put("/api/v1/functions/retried", json={"async_retries": 0})
        time.sleep(1.1)  # the record cache's staleness
        record = wait_final(api, submit(api, "retried"))
        assert (record["status"], record["retries"]) == ("failed", 0)
        resp = api.put("/api/v1/functions/retried", json={"async_retries": 3})
        assert resp.status_code == 422 and "async_retries" in resp.text

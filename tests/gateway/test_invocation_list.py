"""`GET /api/v1/functions/{ref}/invocations`: sync, async and webhook calls with their trigger."""

from __future__ import annotations

import time

from tests.e2e.wasm import ECHO_WAT, FAIL_WAT, b64, sleep_wat, wat


def _deploy(client, name: str, source: str, **extra) -> dict:
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": name, "runtime": "wasm", "artifact_base64": b64(wat(source)), **extra},
        params={"wait": "true"},
    )
    assert resp.status_code == 201 and resp.json["status"] == "active", resp.text
    return resp.json


def _wait_final(client, invocation_id: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        record = client.simulate_get(f"/api/v1/invocations/{invocation_id}").json
        if record["status"] not in ("queued", "running"):
            return record
        time.sleep(0.05)
    raise AssertionError(f"{invocation_id} did not finish")


def _list(client, name: str, **params) -> list[dict]:
    resp = client.simulate_get(f"/api/v1/functions/{name}/invocations", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json["invocations"]


def test_every_trigger_is_listed_newest_first(client):
    fn = _deploy(client, "mixed", ECHO_WAT)
    client.simulate_put(
        "/api/v1/functions/mixed",
        json={"artifact_base64": b64(wat(FAIL_WAT))},
        params={"wait": "1"},
    )
    ok = client.simulate_post("/api/v1/functions/mixed:1/invoke", json={"a": 1})
    failed = client.simulate_post("/api/v1/functions/mixed/invoke", json={})
    assert (ok.status_code, failed.status_code) == (200, 500)
    webhook = client.simulate_post("/webhook/" + fn["webhook_url"].rsplit("/", 1)[1], json={})
    accepted = client.simulate_post("/api/v1/functions/mixed:1/async", json={}).json
    _wait_final(client, accepted["invocation_id"])

    listed = _list(client, "mixed")
    assert [i["id"] for i in listed] == [
        accepted["invocation_id"],
        webhook.headers["X-Nimbus-Invocation-Id"],
        failed.headers["X-Nimbus-Invocation-Id"],
        ok.headers["X-Nimbus-Invocation-Id"],
    ]
    assert [i["trigger"] for i in listed] == ["async", "webhook", "api", "api"]
    assert [i["version"] for i in listed] == [1, 2, 2, 1]
    assert [i["status"] for i in listed] == ["succeeded", "failed", "failed", "succeeded"]
    assert listed[2]["error_code"] == "function_error" and listed[3]["error_code"] is None
    assert all(i["duration_ms"] > 0 for i in listed)
    assert listed[0]["created_at"] >= listed[-1]["created_at"]

    assert [i["trigger"] for i in _list(client, "mixed", trigger="webhook")] == ["webhook"]
    assert len(_list(client, "mixed", status="failed")) == 2
    assert _list(client, "mixed", limit=1)[0]["id"] == accepted["invocation_id"]
    since = listed[1]["created_at"]
    assert [i["id"] for i in _list(client, fn["id"], since=since)] == [i["id"] for i in listed[:2]]


def test_each_invocation_says_whether_it_was_a_cold_start(client):
    _deploy(client, "coldish", ECHO_WAT)
    calls = [client.simulate_post("/api/v1/functions/coldish/invoke", json={}) for _ in range(3)]
    said = {c.headers["X-Nimbus-Invocation-Id"]: c.headers["X-Nimbus-Cold-Start"] for c in calls}
    listed = {i["id"]: i["cold_start"] for i in _list(client, "coldish")}
    assert listed == {id_: header == "true" for id_, header in said.items()}
    assert list(said.values()).count("true") == 1, said  # the first call starts the instance


def test_an_unfinished_async_invocation_is_listed_with_its_state(client):
    _deploy(client, "sleepy", sleep_wat(1.5), timeout_sec=5)
    accepted = client.simulate_post("/api/v1/functions/sleepy/async", json={}).json
    listed = _list(client, "sleepy")
    assert [(i["id"], i["trigger"]) for i in listed] == [(accepted["invocation_id"], "async")]
    assert listed[0]["status"] in ("queued", "running") and listed[0]["duration_ms"] is None
    assert listed[0]["cold_start"] is None  # not known until it ran
    record = _wait_final(client, accepted["invocation_id"])
    listed = _list(client, "sleepy")
    assert len(listed) == 1 and listed[0]["status"] == "succeeded"
    # the record gives the listed duration (it gave e.g. 0.5730089997086907)
    assert record["duration_ms"] == listed[0]["duration_ms"] == round(record["duration_ms"], 3)


def test_bad_queries_are_422_and_unknown_functions_404(client):
    _deploy(client, "quiet", ECHO_WAT)
    for params, field in (
        ({"status": "done"}, "status"),
        ({"trigger": "sync"}, "trigger"),
        ({"limit": "0"}, "limit"),
        ({"since": "yesterday"}, "since"),
    ):
        resp = client.simulate_get("/api/v1/functions/quiet/invocations", params=params)
        assert resp.status_code == 422 and resp.json["error"]["details"][0]["field"] == field
    assert client.simulate_get("/api/v1/functions/nobody/invocations").status_code == 404
    assert _list(client, "quiet") == []

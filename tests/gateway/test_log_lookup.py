"""`GET …/logs?invocation_id=`: one call's lines, reading only the log batches near it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from gateway.telemetry import invocations
from gateway.telemetry.logs import UNTIMED_SCAN_BATCHES, entries_for
from gateway.telemetry.recorder import InvocationOutcome
from store.records import sequential_id
from tests.e2e.wasm import ECHO_WAT, b64, wat

HISTORY = 300  # batches, one per 30 minutes back over ~6 days


def _deploy(client, name: str) -> dict:
    resp = client.simulate_post(
        "/api/v1/functions",
        json={"name": name, "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))},
        params={"wait": "true"},
    )
    assert resp.status_code == 201, resp.text
    return resp.json


def _plant_history(platform, function_id: str) -> list[str]:
    """HISTORY batches of one call each, as the recorder writes them: the ids they hold."""
    logs = platform.logs.logs
    ids = []
    now = time.time()
    for n in range(HISTORY):
        started = now - 3600 - n * 1800
        invocation_id = sequential_id.timed("inv_", at=started)
        entries, newest_us = entries_for(
            InvocationOutcome(
                invocation_id=invocation_id,
                function_id=function_id,
                function_name="busy",
                runtime="wasm",
                version=1,
                trigger="api",
                status="succeeded",
                duration_ms=3.0,
                started_at=datetime.fromtimestamp(started, UTC),
                logs=b"old line\n",
            ),
            1024,
        )
        logs.write(function_id, entries, newest_us, "w-old", n)
        ids.append(invocation_id)
    return ids


def _batch_reads(platform, monkeypatch) -> list[str]:
    reads: list[str] = []
    real_get = platform.store.get

    def get(key):
        if key.startswith("logs/invocations/"):
            reads.append(key)
        return real_get(key)

    monkeypatch.setattr(platform.store, "get", get)
    return reads


def _lines(client, name: str, invocation_id: str) -> list[tuple[str, str]]:
    resp = client.simulate_get(
        f"/api/v1/functions/{name}/logs", params={"invocation_id": invocation_id}
    )
    assert resp.status_code == 200, resp.text
    return [(e["stream"], e["invocation_id"]) for e in resp.json["entries"]]


def test_an_unknown_id_reads_no_more_than_the_batches_near_its_time(platform, client, monkeypatch):
    fn = _deploy(client, "busy")
    old = _plant_history(platform, fn["id"])
    call = client.simulate_post("/api/v1/functions/busy/invoke", json={"a": 1})
    real = call.headers["X-Nimbus-Invocation-Id"]
    reads = _batch_reads(platform, monkeypatch)

    assert _lines(client, "busy", sequential_id.timed("inv_")) == []
    assert len(reads) <= 2, len(reads)  # it read all 301 batches

    reads.clear()
    assert _lines(client, "busy", real) == [("platform", real)]
    assert len(reads) == 1

    reads.clear()  # a call of three days ago: the batches of its hour or so
    assert _lines(client, "busy", old[144]) == [("platform", old[144]), ("stderr", old[144])]
    assert len(reads) <= 2, len(reads)

    reads.clear()  # an id that says no time (made before ids did): the newest batches only
    assert _lines(client, "busy", "inv_abcdefgh00000001") == []
    assert len(reads) == UNTIMED_SCAN_BATCHES


def test_an_async_call_is_found_from_its_record_and_another_functions_call_reads_nothing(
    platform, client, monkeypatch
):
    for name in ("busy", "other"):
        _deploy(client, name)
    _plant_history(platform, client.simulate_get("/api/v1/functions/busy").json["id"])
    accepted = client.simulate_post("/api/v1/functions/busy/async", json={}).json
    invocation_id = accepted["invocation_id"]
    deadline = time.monotonic() + 20
    while client.simulate_get(f"/api/v1/invocations/{invocation_id}").json["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reads = _batch_reads(platform, monkeypatch)

    assert _lines(client, "busy", invocation_id) == [("platform", invocation_id)]
    assert len(reads) <= 2, len(reads)

    reads.clear()
    assert _lines(client, "other", invocation_id) == []
    assert reads == []


def test_since_and_limit_still_apply_to_one_calls_lines(platform, client):
    fn = _deploy(client, "busy")
    old = _plant_history(platform, fn["id"])
    resp = client.simulate_get(
        "/api/v1/functions/busy/logs", params={"invocation_id": old[0], "limit": "1"}
    )
    assert [e["stream"] for e in resp.json["entries"]] == ["platform"]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    resp = client.simulate_get(
        "/api/v1/functions/busy/logs", params={"invocation_id": old[0], "since": later}
    )
    assert resp.json["entries"] == []


def test_a_filter_that_matches_little_reads_a_bounded_number_of_batches(
    platform, client, monkeypatch
):
    """`…/invocations?status=timed_out` on a function that never timed out read every log
    batch back to the retention; it stops at SCAN_BATCHES and says how far it looked."""
    fn = _deploy(client, "busy")
    old = _plant_history(platform, fn["id"])  # 300 succeeded calls, 30 minutes apart
    reads = _batch_reads(platform, monkeypatch)
    monkeypatch.setattr(invocations, "SCAN_BATCHES", 100)

    resp = client.simulate_get("/api/v1/functions/busy/invocations", params={"status": "timed_out"})
    assert resp.status_code == 200, resp.text
    assert resp.json["invocations"] == []
    assert len(reads) == 100, len(reads)  # was 300: all of them
    oldest_read = datetime.fromisoformat(resp.json["searched_since"])
    assert oldest_read < datetime.now(UTC) - timedelta(hours=40)  # 100 × 30 min back

    reads.clear()
    resp = client.simulate_get(
        "/api/v1/functions/busy/invocations", params={"trigger": "api", "limit": "3"}
    )
    assert [i["id"] for i in resp.json["invocations"]] == old[:3]
    assert resp.json["searched_since"] is None  # found the newest 3: nothing left unread
    assert len(reads) == 3

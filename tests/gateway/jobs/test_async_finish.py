"""An async invocation's final state is written once, whatever happens after it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.jobs import asyncq
from store import LocalStore, errors
from store.invocations import InvocationRepo
from tests.e2e.wasm import ECHO_WAT, FAIL_WAT, b64, constant_wat, sleep_wat, wat
from tests.gateway.conftest import running_platform


class MarkerDeleteFails(LocalStore):
    """The platform's own local store (same folder), but the first DELETE of a queue
    marker fails as a store that hiccups does (after the final state was written)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failed: list[str] = []

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        if key.startswith("queue/invocations/") and not self.failed:
            self.failed.append(key)
            raise errors.Unavailable("the store did not answer")
        super().delete(key, if_match=if_match)


def test_a_marker_left_by_a_store_hiccup_does_not_run_a_finished_invocation_again(tmp_path):
    with running_platform(tmp_path, async_retry_base_sec=0.05, async_poll_sec=0.05) as (
        platform,
        client,
    ):
        created = client.simulate_post(
            "/api/v1/functions",
            json={"name": "echo", "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))},
            params={"wait": "true"},
        )
        assert created.status_code == 201, created.text
        store = MarkerDeleteFails(tmp_path)
        platform.async_invocations.repo = InvocationRepo(store)

        accepted = client.simulate_post("/api/v1/functions/echo/async", json={"n": 1})
        invocation_id = accepted.json["invocation_id"]
        seen = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            record = client.simulate_get(f"/api/v1/invocations/{invocation_id}").json
            if record["status"] not in ("queued", "running") or seen:
                seen.append((record["status"], record["attempts"]))
            time.sleep(0.02)

    assert store.failed, "the marker's delete never failed"
    # once final, it stays final: no run after it (the bug re-queued it and ran it again)
    assert seen and set(seen) == {("succeeded", 1)}, seen


@pytest.mark.parametrize("depth", [200, 300])
def test_a_result_nested_deeper_than_a_record_holds_is_final_at_once(tmp_path, depth):
    """The result is kept in the invocation's record, which pydantic refuses to write past
    ~255 levels (300: the run was taken for a crash, run again to max_attempts, then 'gave
    up') and to read back past ~200 (200: written, then every read of it failed)."""
    deep = b"[" * depth + b"1" + b"]" * depth
    with running_platform(tmp_path, async_poll_sec=0.05, async_lease_margin_sec=0.5,
                          async_retry_base_sec=0.05) as (_, client):  # fmt: skip
        invocation_id = _deploy_and_submit(client, "deep", constant_wat(deep), timeout_sec=1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            record = client.simulate_get(f"/api/v1/invocations/{invocation_id}").json
            if record["status"] not in ("queued", "running"):
                break
            time.sleep(0.05)
    assert (record["status"], record["attempts"]) == ("failed", 1), record
    assert record["error"]["code"] == "result_too_large"


def _deploy(client, name: str, source: str) -> None:
    created = client.simulate_post(
        "/api/v1/functions",
        json={"name": name, "runtime": "wasm", "artifact_base64": b64(wat(source))},
        params={"wait": "true"},
    )
    assert created.status_code == 201, created.text


class SlowRecordWrites(LocalStore):
    """The platform's own local store, but a new async record takes `delay` seconds to
    write (a loaded disk, an S3 store's slow PUT): its queue marker is there first."""

    def __init__(self, root: Path, delay: float) -> None:
        super().__init__(root)
        self.delay = delay

    def put(self, key: str, data: bytes, **conditions) -> str:
        if key.startswith("invocations/") and conditions.get("create"):
            time.sleep(self.delay)
        return super().put(key, data, **conditions)


def test_an_accepted_call_whose_record_is_slow_to_write_still_runs(tmp_path):
    """The dispatcher dropped a queue marker on its second look without a record: a record
    written more than one poll after its marker (0.25 s here) left the call queued for good,
    though its accept answered 202."""
    with running_platform(tmp_path, async_poll_sec=0.1) as (platform, client):
        _deploy(client, "echo", ECHO_WAT)
        platform.async_invocations.repo = InvocationRepo(SlowRecordWrites(tmp_path, 0.6))
        accepted = client.simulate_post("/api/v1/functions/echo/async", json={"n": 1})
        assert accepted.status_code == 202, accepted.text
        invocation_id = accepted.json["invocation_id"]
        deadline = time.monotonic() + 10
        while (record := client.simulate_get(f"/api/v1/invocations/{invocation_id}").json)[
            "status"
        ] != "succeeded":
            assert time.monotonic() < deadline, record  # stayed queued: its marker was gone
            time.sleep(0.05)


def test_a_marker_whose_record_never_comes_is_dropped_after_the_grace(tmp_path, monkeypatch):
    """An accept that crashed between its marker and its record: dropped, not run, once
    the marker has stayed without a record for _ORPHAN_GRACE_SEC (60 s; 0.5 s here)."""
    monkeypatch.setattr(asyncq, "_ORPHAN_GRACE_SEC", 0.5)
    with running_platform(tmp_path, async_poll_sec=0.05) as (platform, _):
        InvocationRepo(platform.store).put_queue_marker(1, "inv_crashed", "fn_x")
        written = time.monotonic()
        while list(platform.store.list("queue/invocations/")):
            assert time.monotonic() < written + 5, "the orphan marker was never dropped"
            time.sleep(0.02)
        assert time.monotonic() - written >= 0.5


def test_a_function_that_is_its_own_failure_destination_does_not_loop(tmp_path):
    """async_on_failure naming the function itself (or two naming each other): each
    failure record failed in turn and was sent on, '…-failure-failure-…', until the id
    outgrew a store key."""
    with running_platform(tmp_path, async_poll_sec=0.05) as (platform, client):
        _deploy(client, "loops", FAIL_WAT)
        resp = client.simulate_put("/api/v1/functions/loops", json={"async_on_failure": "loops"})
        assert resp.status_code == 200, resp.text
        first = client.simulate_post("/api/v1/functions/loops/async", json={}).json
        time.sleep(3)  # the old code had sent dozens by now
        chain = [
            key for key in platform.store.list("invocations/") if first["invocation_id"] in key
        ]
        assert len(chain) == 1 + asyncq.FAILURE_HOPS, len(chain)


def test_a_call_handed_back_at_shutdown_is_not_counted_here_when_its_guest_ends_later(
    tmp_path,
):
    """A stopping worker hands its running async calls back at once (alongside the HTTP
    drain); a guest that then ended before the worker did was counted in its stats and
    logs, and again by the worker that ran the call once more."""
    with running_platform(tmp_path, async_poll_sec=0.05) as (platform, client):
        invocation_id = _deploy_and_submit(client, "nap", sleep_wat(1.0), timeout_sec=10)
        deadline = time.monotonic() + 10
        while client.simulate_get(f"/api/v1/invocations/{invocation_id}").json["status"] != (
            "running"):  # fmt: skip
            assert time.monotonic() < deadline
            time.sleep(0.02)
        platform.async_invocations.stop(timeout=0.1)  # handed back, its guest still sleeping
        record = client.simulate_get(f"/api/v1/invocations/{invocation_id}").json
        assert (record["status"], record["attempts"]) == ("queued", 0)
        time.sleep(1.5)  # the guest ends here
        assert client.simulate_get("/api/v1/stats").json["total_invocations"] == 0
        logs = client.simulate_get("/api/v1/functions/nap/logs").json["entries"]
        assert [e for e in logs if e["invocation_id"] == invocation_id] == []


def _deploy_and_submit(client, name: str, wat_text: str, *, timeout_sec: int) -> str:
    """A wasm function made of `wat_text`, built, and one async call of it: its id."""
    created = client.simulate_post(
        "/api/v1/functions",
        json={"name": name, "runtime": "wasm", "timeout_sec": timeout_sec,
              "artifact_base64": b64(wat(wat_text))},
        params={"wait": "true"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return client.simulate_post(f"/api/v1/functions/{name}/async", json={}).json["invocation_id"]

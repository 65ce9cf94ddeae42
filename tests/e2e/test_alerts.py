"""Alert rules on real servers, notifying a real receiver on 127.0.0.1.

A function serves, then starts failing (a new version that exits 3), then
serves again; calls run all along. The rule (error rate > 0.5 over 30 s)
must fire within one window of the first failure and resolve once the
errors stop; each change reaches the receiver once, signed with the rule's
secret — with one 2-worker `nimbus serve` on the local store, and with two
replicas (1 worker each, calls spread over both) on one SeaweedFS store.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.e2e import wasm as w
from tests.e2e.conftest import s3_env
from tests.e2e.test_observability import deploy, metric, once, poll
from tests.webhook_receiver import webhook_receiver

WINDOW = 30
SECRET = "e2e-alert-secret-0123456789"


class Caller:
    """Invokes the function ~20 times a second in the background, round-robin over the
    servers; notes each answer."""

    def __init__(self, servers, name: str) -> None:
        self.urls = [f"{s.url}/api/v1/functions/{name}/invoke" for s in servers]
        self.headers = {"Authorization": f"Bearer {servers[0].api_key}"}
        self.answers: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                status = client.post(self.urls[n % len(self.urls)], json={}).status_code
                self.answers.append((time.time(), status))
                time.sleep(0.05)

    def first(self, status: int, after: float) -> float | None:
        return next((t for t, s in self.answers if s == status and t > after), None)


def switch(server, name: str, source: str) -> None:
    resp = once(server, "PUT", f"/api/v1/functions/{name}?wait=true",
                json={"artifact_base64": w.b64(w.wat(source))})  # fmt: skip
    assert resp.status_code == 200 and resp.json()["latest_build"]["status"] == "ready", resp.text


def evaluated_healthy(server, alert_id: str) -> dict | None:
    """The rule's view once a window with calls, all good, was evaluated."""
    view = once(server, "GET", f"/api/v1/alerts/{alert_id}").json()
    return view if view["value"] == 0.0 else None


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def servers(request, make_server) -> list:
    """One 2-worker server on the local store, or two 1-worker replicas on SeaweedFS."""
    env = {"ALERT_WEBHOOK_ALLOW_PRIVATE": "true"}
    if request.param == "local":
        return [make_server(env).start()]
    env.update(s3_env(request.getfixturevalue("e2e_seaweedfs")))
    return [make_server(env, workers=1).start() for _ in range(2)]


def test_an_alert_fires_within_a_window_and_resolves_once_the_errors_stop(servers, name):
    server = servers[0]
    deploy(server, name, w.ECHO_WAT)
    with webhook_receiver() as receiver:
        rule = once(server, "POST", "/api/v1/alerts", json={
            "name": "checkout failing", "function": name, "metric": "error_rate", "op": ">",
            "threshold": 0.5, "window_sec": WINDOW,
            "notify": {"webhook_url": receiver.url, "secret": SECRET}})  # fmt: skip
        assert rule.status_code == 201, rule.text
        alert = rule.json()
        caller = Caller(servers, name)
        caller.thread.start()
        try:
            # a healthy window evaluated first (a new rule is seen within 10 s)
            ok = poll(lambda: evaluated_healthy(server, alert["id"]), timeout=25, every=0.5)
            assert ok and ok["state"] == "ok", ok
            assert receiver.requests == []

            switched = time.time()
            switch(server, name, w.FAIL_WAT)
            firing = receiver.wait_for(1, timeout=WINDOW + 15)
            assert firing, "no notification within one window (and 15 s) of the failures"
            failing_from = caller.first(500, switched)
            fire_latency = firing[0].at - failing_from
            seen = once(server, "GET", f"/api/v1/alerts/{alert['id']}").json()

            switched = time.time()
            switch(server, name, w.ECHO_WAT)
            resolved = receiver.wait_for(2, timeout=WINDOW + 15)
            assert len(resolved) == 2, "not resolved within one window of the errors stopping"
            last_failure = max(t for t, s in caller.answers if s == 500)
            resolve_latency = resolved[1].at - last_failure
            time.sleep(12)  # a second worker must not say it again
        finally:
            caller.stop.set()
            caller.thread.join()
    healthy_from = caller.first(200, switched)
    rates = {s: sum(1 for _, x in caller.answers if x == s) for s in (200, 500)}

    print(f"fire latency {fire_latency:.1f} s, resolve latency {resolve_latency:.1f} s "
          f"(from the last failure; first success after the fix at "
          f"+{healthy_from - last_failure:.1f} s), window {WINDOW} s, answers {rates}, "
          f"values {[r.json['value'] for r in receiver.requests]}")  # fmt: skip
    assert fire_latency <= WINDOW, fire_latency
    # resolved once the window holds at most half errors: up to one more evaluation
    # interval (10 s) when the failing calls ran faster than the healthy ones
    assert resolve_latency <= WINDOW + 10, resolve_latency
    assert [r.json["state"] for r in receiver.requests] == ["firing", "resolved"]
    for sent in receiver.requests:
        assert sent.signed_with(SECRET), sent.headers
        body = sent.json
        assert (body["alert"], body["function"], body["threshold"], body["window_sec"]) == (
            alert["id"], name, 0.5, WINDOW)  # fmt: skip
        assert set(body) >= {"alert", "state", "value", "threshold", "function", "window_sec",
                             "at"}  # fmt: skip
    assert receiver.requests[0].json["value"] > 0.5 >= receiver.requests[1].json["value"]
    assert seen["state"] == "firing" and seen["value"] > 0.5

    view = once(server, "GET", f"/api/v1/alerts/{alert['id']}").json()
    assert view["state"] == "ok" and view["pending_deliveries"] == 0
    history = once(server, "GET", f"/api/v1/alerts/{alert['id']}/history").json()["events"]
    changes = [e["state"] for e in reversed(history) if e["kind"] == "state"]
    assert changes == ["firing", "ok"]
    delivered = [e for e in history if e["kind"] == "delivery"]
    assert [e["outcome"] for e in delivered] == ["delivered", "delivered"]
    assert all(e["status_code"] == 200 for e in delivered)

    texts = [once(s, "GET", "/metrics").text for s in servers]  # summed over replicas
    assert sum(metric(t, "nimbus_alert_deliveries_total", outcome="delivered")
               for t in texts) == 2  # fmt: skip
    assert sum(metric(t, "nimbus_alert_changes_total", state="firing") for t in texts) == 1

"""`X-Nimbus-Log-Type: Tail` → `X-Nimbus-Log-Tail`: the end of this call's log, base64."""

from __future__ import annotations

import base64

import pytest

from tests.e2e.wasm import FAIL_WAT, SPIN_WAT, b64, wat
from tests.gateway.conftest import KEY

TAIL = {"X-Nimbus-Log-Type": "Tail"}
LOGGER = """
def main(event):
    for i in range(event.get("lines", 1)):
        print(f"line {i} of the call {event.get('tag')}")
    return {"ok": True}
"""


def _create(client, name: str, **body) -> dict:
    resp = client.simulate_post(
        "/api/v1/functions", json={"name": name, **body}, params={"wait": "true"}
    )
    assert resp.status_code == 201 and resp.json["status"] == "active", resp.text
    return resp.json


def _tail(resp) -> str:
    return base64.b64decode(resp.headers["X-Nimbus-Log-Tail"]).decode()


@pytest.fixture
def logger(client) -> dict:
    return _create(client, "logger", runtime="python", code=LOGGER)


def test_the_tail_is_this_calls_log_and_the_body_stays_the_result(client, logger):
    resp = client.simulate_post("/api/v1/functions/logger/invoke", json={"tag": "A"}, headers=TAIL)
    assert resp.status_code == 200 and resp.json == {"ok": True}
    lines = _tail(resp).splitlines()
    assert lines[0] == "line 0 of the call A"
    assert lines[-1].startswith("END duration=") and "status=succeeded" in lines[-1]
    assert "trigger=api" in lines[-1]
    # another call's tail has only its own lines
    other = client.simulate_post("/api/v1/functions/logger/invoke", json={"tag": "B"}, headers=TAIL)
    assert "call A" not in _tail(other) and "line 0 of the call B" in _tail(other)


def test_no_tail_unless_asked(client, logger):
    resp = client.simulate_post("/api/v1/functions/logger/invoke", json={"tag": "A"})
    assert "X-Nimbus-Log-Tail" not in resp.headers


def test_the_tail_is_at_most_4_kb_and_keeps_the_end(client, logger):
    resp = client.simulate_post(
        "/api/v1/functions/logger/invoke", json={"tag": "C", "lines": 500}, headers=TAIL
    )
    tail = base64.b64decode(resp.headers["X-Nimbus-Log-Tail"])
    assert 4000 < len(tail) <= 4096
    text = tail.decode()
    assert "line 499 of the call C\n" in text and "line 0 of" not in text
    assert text.splitlines()[-1].startswith("END ")


def test_failed_and_timed_out_calls_carry_their_tail(client):
    _create(client, "fails", runtime="wasm", artifact_base64=b64(wat(FAIL_WAT)))
    resp = client.simulate_post("/api/v1/functions/fails/invoke", json={}, headers=TAIL)
    assert resp.status_code == 500
    assert _tail(resp).splitlines()[0] == "something broke"
    assert "error=function_error" in _tail(resp)

    _create(client, "spins", runtime="wasm", artifact_base64=b64(wat(SPIN_WAT)), timeout_sec=0.5)
    resp = client.simulate_post("/api/v1/functions/spins/invoke", json={}, headers=TAIL)
    assert resp.status_code == 504
    assert "status=timed_out error=timeout" in _tail(resp)


def test_a_webhook_gives_the_tail_only_to_a_caller_with_the_api_key(client, logger):
    path = "/webhook/" + logger["webhook_url"].rsplit("/webhook/", 1)[1]
    anonymous = client.simulate_post(path, json={"tag": "W"}, headers={**TAIL, "Authorization": ""})
    assert anonymous.status_code == 200 and "X-Nimbus-Log-Tail" not in anonymous.headers
    wrong = client.simulate_post(path, json={}, headers={**TAIL, "Authorization": "Bearer nope"})
    assert "X-Nimbus-Log-Tail" not in wrong.headers
    keyed = client.simulate_post(path, json={}, headers={**TAIL, "Authorization": f"Bearer {KEY}"})
    assert keyed.status_code == 200 and "trigger=webhook" in _tail(keyed)


def test_a_key_that_may_not_invoke_gets_no_tail_from_a_webhook(client, logger):
    made = client.simulate_post("/api/v1/keys", json={"name": "reader", "scopes": ["read"]})
    assert made.status_code == 201, made.text
    path = "/webhook/" + logger["webhook_url"].rsplit("/webhook/", 1)[1]
    resp = client.simulate_post(
        path, json={}, headers={**TAIL, "Authorization": f"Bearer {made.json['key']}"}
    )
    assert resp.status_code == 200 and "X-Nimbus-Log-Tail" not in resp.headers

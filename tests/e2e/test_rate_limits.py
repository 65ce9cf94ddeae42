"""Rate limits per API key and per webhook, through a real server (WORKERS=1: limits
are counted per worker)."""

from __future__ import annotations

import httpx

from tests.e2e.wasm import ECHO_WAT, b64, wat


def test_each_key_and_each_webhook_has_its_own_window(make_server):
    server = make_server(
        {"RATE_LIMIT_PER_KEY": "8/minute", "RATE_LIMIT_PER_WEBHOOK": "3/minute"}, workers=1
    ).start()
    with server.client() as admin:
        other = admin.post("/api/v1/keys", json={"name": "other", "scopes": ["read"]}).json()
        body = {"name": "limited", "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))}
        hook = admin.post("/api/v1/functions?wait=true", json=body).json()["webhook_url"]
        statuses = [admin.get("/api/v1/functions").status_code for _ in range(6)]
        refused = admin.get("/api/v1/functions")
    assert statuses == [200] * 6  # 2 of the admin's 8 went to creating above
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    with server.client(key=other["key"]) as reader:  # another key: its own window
        assert reader.get("/api/v1/functions").status_code == 200
    assert [httpx.post(hook, json={}).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert httpx.get(server.url + "/health").status_code == 200  # never limited

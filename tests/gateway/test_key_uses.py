"""A key's last_used_at: noted on the request path, written by the worker's periodic job."""

from __future__ import annotations

import time

from gateway.services.keys import WRITE_USES_EVERY_SEC


def test_a_used_key_shows_when_it_was_last_used(platform, client):
    admin = client
    created = admin.simulate_post("/api/v1/keys", json={"name": "ci", "scopes": ["read"]}).json
    assert created["last_used_at"] is None
    assert "key-last-used" in platform.periodic.names

    used = admin.simulate_get("/api/v1/functions",
                              headers={"Authorization": f"Bearer {created['key']}"})  # fmt: skip
    assert used.status_code == 200
    deadline = time.monotonic() + 2 * WRITE_USES_EVERY_SEC + 2
    while time.monotonic() < deadline:
        listed = {k["id"]: k for k in admin.simulate_get("/api/v1/keys").json["keys"]}
        if listed[created["id"]]["last_used_at"] is not None:
            break
        time.sleep(0.2)
    assert listed[created["id"]]["last_used_at"] is not None

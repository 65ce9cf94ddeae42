"""`nimbus webhook url|rotate`, `update --webhook/--no-webhook` and the `--env`
replacement note, against a real server."""

from __future__ import annotations

import time

import httpx

from tests.e2e import wasm as w
from tests.e2e.test_cli_versions import CACHE_SEC, Nimbus


def test_webhook_url_rotate_off_on_and_env_replacement(make_server, tmp_path):
    server = make_server().start()
    nimbus = Nimbus(server)
    module = tmp_path / "echo.wasm"
    module.write_bytes(w.wat(w.ECHO_WAT))
    created = nimbus.json("deploy", "hooked", str(module), "--env", "A=1", "--env", "B=2")
    assert sorted(created["env_vars"]) == ["A", "B"]

    first = nimbus.json("webhook", "url", "hooked")["webhook_url"]
    assert first and httpx.post(first, json={"hi": 1}).status_code == 200  # no API key
    assert nimbus("webhook", "url", "hooked", output="table").stdout.strip() == first

    second = nimbus.json("webhook", "rotate", "hooked")["webhook_url"]
    assert second != first
    time.sleep(CACHE_SEC)
    assert httpx.post(first, json={}).status_code == 404
    assert httpx.post(second, json={}).status_code == 200

    off = nimbus.json("update", "hooked", "--no-webhook")
    assert off["webhook_url"] is None and off["latest_version"] == 1  # no new version
    time.sleep(CACHE_SEC)
    assert httpx.post(second, json={}).status_code == 404
    assert nimbus("webhook", "url", "hooked", output="table").stdout.strip() == "(off)"
    assert nimbus.json("update", "hooked", "--webhook")["webhook_url"]

    out = nimbus("update", "hooked", "--env", "B=3")
    assert out.exit_code == 0, out.output
    assert "--env replaces every variable: A removed" in out.stderr
    with server.client() as api:
        assert sorted(api.get("/api/v1/functions/hooked").json()["env_vars"]) == ["B"]
    out = nimbus("update", "hooked", "--env", "B=4")
    assert out.exit_code == 0 and "removed" not in out.stderr  # nothing dropped, nothing said
    assert nimbus("webhook", "rotate", "nope").exit_code == 1

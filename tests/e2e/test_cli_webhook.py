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


def test_webhook_url_of_an_alias_as_invoke_names_it(make_server, tmp_path):
    # `alias set --webhook` gives an alias its own URL; `webhook url hooked:live` said
    # "here name the function alone", and nothing printed it but `alias get`
    server = make_server().start()
    nimbus = Nimbus(server)
    module = tmp_path / "echo.wasm"
    module.write_bytes(w.wat(w.ECHO_WAT))
    nimbus.json("deploy", "hooked", str(module))
    own = nimbus.json("alias", "set", "hooked", "live", "1", "--webhook")["webhook_url"]
    shown = nimbus.json("webhook", "url", "hooked:live")
    assert shown == {"name": "hooked:live", "webhook_url": own}
    assert own != nimbus.json("webhook", "url", "hooked")["webhook_url"]
    assert httpx.post(own, json={"via": "alias"}).json()["body"] == '{"via":"alias"}'
    nimbus.json("alias", "set", "hooked", "quiet", "1")
    assert nimbus("webhook", "url", "hooked:quiet", output="table").stdout.strip() == "(off)"
    assert nimbus("webhook", "url", "hooked:nope").exit_code == 1

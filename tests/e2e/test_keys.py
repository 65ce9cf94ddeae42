"""API keys with scopes, through a real server with 2 workers, on both store backends."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.wasm import b64, hello_module


def _as(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def keys(api):
    made = {}
    for scope in ("admin", "deploy", "invoke", "read"):
        resp = api.post("/api/v1/keys", json={"name": f"{scope}-key", "scopes": [scope]})
        assert resp.status_code == 201, resp.text
        made[scope] = resp.json()
    yield made
    for key in made.values():
        api.delete(f"/api/v1/keys/{key['id']}")


def test_a_key_is_shown_once_and_listed_without_its_secret(api, keys):
    created = keys["deploy"]
    assert created["key"].startswith(created["prefix"]) and len(created["key"]) > 40
    listed = {k["id"]: k for k in api.get("/api/v1/keys").json()["keys"]}
    assert listed[created["id"]]["scopes"] == ["deploy"]
    assert created["key"] not in str(listed)
    assert "secret_sha256" not in str(listed)


def test_each_scope_opens_its_routes_only(server, api, keys, name):
    body = {"name": name, "runtime": "wasm", "artifact_base64": b64(hello_module())}
    with _as(server, keys["read"]["key"]) as read:
        assert read.get("/api/v1/functions").status_code == 200
        resp = read.post("/api/v1/functions", json=body)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
        assert read.get("/api/v1/keys").status_code == 403
    with _as(server, keys["deploy"]["key"]) as deploy:
        assert deploy.post("/api/v1/functions?wait=true", json=body).status_code == 201
        assert deploy.get(f"/api/v1/functions/{name}").status_code == 200  # deploy reads too
        assert deploy.post(f"/api/v1/functions/{name}/invoke", json={}).status_code == 403
        assert (
            deploy.post("/api/v1/keys", json={"name": "x", "scopes": ["admin"]}).status_code == 403
        )
    with _as(server, keys["invoke"]["key"]) as invoke:
        assert invoke.post(f"/api/v1/functions/{name}/invoke", json={}).status_code == 200
        accepted = invoke.post(f"/api/v1/functions/{name}/async", json={}).json()
        assert invoke.get(f"/api/v1/invocations/{accepted['invocation_id']}").status_code == 200
        assert invoke.delete(f"/api/v1/functions/{name}").status_code == 403
        assert invoke.get("/api/v1/functions").status_code == 403
    with _as(server, keys["admin"]["key"]) as admin:
        assert admin.get("/api/v1/keys").status_code == 200
        assert admin.delete(f"/api/v1/functions/{name}").status_code == 204


def test_a_revoked_key_stops_on_every_worker_within_a_second(server, api, keys):
    key = keys["read"]
    with _as(server, key["key"]) as read:
        for _ in range(6):  # reach both workers, so both have it cached
            assert read.get("/api/v1/functions").status_code == 200
        assert api.delete(f"/api/v1/keys/{key['id']}").status_code == 204
        time.sleep(1.2)
        assert {read.get("/api/v1/functions").status_code for _ in range(6)} == {401}
    assert api.delete(f"/api/v1/keys/{key['id']}").status_code == 404


def test_forged_and_malformed_keys_are_401(server, keys):
    real = keys["admin"]["key"]
    for forged in (real[:-2] + "xx", real.split(".")[0] + ".", "nk_", "nk_abc.def", real + "x"):
        with _as(server, forged) as client:
            assert client.get("/api/v1/functions").status_code == 401, forged


def test_bad_key_requests_are_422(api):
    assert api.post("/api/v1/keys", json={"name": "x", "scopes": ["root"]}).status_code == 422
    assert api.post("/api/v1/keys", json={"name": "x", "scopes": []}).status_code == 422
    assert api.delete("/api/v1/keys/key_nope").status_code == 404

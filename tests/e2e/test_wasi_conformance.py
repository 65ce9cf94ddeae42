"""An uploaded `wasm` program sees exactly its env_vars (DESIGN.md), through a real server:
no NIMBUS_CONTEXT unless it asks by exporting `nimbus_context_env`. (Programs the
platform compiled still get it: test_runtime_c.py, test_runtime_go.py.)"""

from __future__ import annotations

from tests.e2e import wasm as w
from tests.sandbox.wasi_guests import wasi_guest

ENV = {"QUOTED": 'say "hi"\nnext line', "EMPTY": ""}


def _strings(output: bytes) -> tuple[list[int], list[bytes]]:
    return [int(n) for n in output[:16].split()], output[16:].split(b"\0")[:-1]


def _deploy(api, name: str, guest: str, **fields) -> None:
    body = {"name": name, "runtime": "wasm", "artifact_base64": w.b64(wasi_guest(guest)), **fields}
    resp = api.post("/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text


def test_an_uploaded_program_sees_exactly_its_env_vars(api, name):
    _deploy(api, name, "ENVIRON_REPORT")
    resp = api.post(f"/api/v1/functions/{name}/invoke", json={})
    assert resp.status_code == 200, resp.text
    assert _strings(resp.content) == ([0, 0, 0, 0], [])  # environ_sizes_get: 0 variables

    _deploy(api, f"{name}-env", "ENVIRON_REPORT", env_vars=ENV)
    resp = api.post(f"/api/v1/functions/{name}-env/invoke", json={})
    assert resp.status_code == 200, resp.text
    numbers, strings = _strings(resp.content)
    assert strings == [f"{k}={v}".encode() for k, v in ENV.items()]
    assert numbers[1] == len(ENV)


def test_an_uploaded_program_that_asks_gets_the_context(api, name):
    _deploy(api, name, "ENVIRON_ASKING")
    resp = api.post(f"/api/v1/functions/{name}/invoke", json={})
    assert resp.status_code == 200, resp.text
    _, strings = _strings(resp.content)
    assert [s.split(b"=", 1)[0] for s in strings] == [b"NIMBUS_CONTEXT"]
    assert f'"function_name":"{name}"'.encode() in strings[0]

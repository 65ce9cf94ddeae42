"""Env var values sealed at rest with NIMBUS_ENV_KEYS: the guest sees them, the store never."""

from __future__ import annotations

import pathlib

SECRET = "hunter2-" + "s3cr3t" * 4
CODE = "import os\n\ndef main(event):\n    return {'secret': os.environ.get('SECRET')}\n"


def _stored_text(data_dir: pathlib.Path) -> str:
    return "".join(p.read_text(errors="replace") for p in data_dir.rglob("*.json") if p.is_file())


def test_sealed_values_reach_the_guest_and_never_the_store(make_server, tmp_path):
    data_dir = tmp_path / "data"
    keys = {"NIMBUS_ENV_KEYS": "first-env-key-" + "k" * 30}
    server = make_server(keys, data_dir=data_dir, workers=1).start()
    with server.client() as api:
        body = {"name": "sealed", "runtime": "python", "code": CODE, "env_vars": {"SECRET": SECRET}}
        fn = api.post("/api/v1/functions?wait=true", json=body).json()
        assert fn["status"] == "active", fn
        assert fn["env_vars"] == {"SECRET": "****"}
        assert api.post("/api/v1/functions/sealed/invoke", json={}).json() == {"secret": SECRET}
    assert SECRET not in _stored_text(data_dir) and "nimbus:sealed:v1:" in _stored_text(data_dir)
    server.stop()

    # Without the key: a clear 503, not a guest with garbage in its environment.
    bare = make_server(data_dir=data_dir, workers=1).start()
    with bare.client() as api:
        resp = api.post("/api/v1/functions/sealed/invoke", json={})
        assert resp.status_code == 503 and "NIMBUS_ENV_KEYS" in resp.json()["error"]["message"]
    bare.stop()

    # Rotation: a new key first, the old one still opens what it sealed.
    rotated = {"NIMBUS_ENV_KEYS": "second-env-key-" + "n" * 30 + "," + keys["NIMBUS_ENV_KEYS"]}
    again = make_server(rotated, data_dir=data_dir, workers=1).start()
    with again.client() as api:
        assert api.post("/api/v1/functions/sealed/invoke", json={}).json() == {"secret": SECRET}

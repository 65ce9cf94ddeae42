"""Precompiled artifacts in the store are trusted only with a signature from a secret
kept outside the store: bucket write access alone cannot put native code into workers."""

from __future__ import annotations

import json
import logging

from falcon import testing

from gateway.api.app import create_app
from gateway.platform import Platform, artifact_signing_key
from gateway.settings import Settings
from tests.e2e.wasm import b64, hello_module

KEY = "k" * 40


def _platform(data_dir, store_dir, **settings) -> Platform:
    settings = Settings(data_dir=data_dir, nimbus_store=f"file://{store_dir}",
                        build_poll_sec=0.05, preload_runtimes=False, **settings)  # fmt: skip
    platform = Platform.open(settings)
    platform.start()
    return platform


def _client(platform: Platform, key: str = KEY) -> testing.TestClient:
    return testing.TestClient(create_app(platform, key), headers={"Authorization": f"Bearer {key}"})


def test_a_manifest_not_signed_with_our_secret_is_refused_and_rebuilt(tmp_path, caplog):
    store_dir = tmp_path / "store"
    first = _platform(tmp_path / "a", store_dir, nimbus_api_key=KEY)
    body = {"name": "signed", "runtime": "wasm", "artifact_base64": b64(hello_module())}
    try:
        assert _client(first).simulate_post("/api/v1/functions?wait=true", json=body).json[
            "status"] == "active"  # fmt: skip
    finally:
        first.stop()
    manifests = [k for k in first.store.list("precompiled/") if k.endswith(".json")]
    assert manifests, "the build stored a precompiled artifact"
    for key in manifests:  # what someone with only bucket write access could write
        manifest = json.loads(first.store.get(key).data)
        assert manifest["signature"]
        manifest["signature"] = None
        first.store.put(key, json.dumps(manifest).encode())

    second = _platform(tmp_path / "b", store_dir, nimbus_api_key=KEY)  # no local disk cache
    try:
        with caplog.at_level(logging.WARNING, logger="nimbus.sandbox"):
            resp = _client(second).simulate_post("/api/v1/functions/signed/invoke", json={"n": 1})
        assert resp.status_code == 200, resp.text
        assert "missing or wrong signature" in caplog.text
    finally:
        second.stop()


def test_the_signing_key_comes_from_outside_the_store(tmp_path):
    with_key = Settings(data_dir=tmp_path, nimbus_api_key=KEY)
    other = Settings(data_dir=tmp_path, nimbus_api_key=KEY, nimbus_signing_secret="s" * 40)
    assert artifact_signing_key(with_key) and artifact_signing_key(other)
    assert artifact_signing_key(with_key) != artifact_signing_key(other)
    assert artifact_signing_key(Settings(data_dir=tmp_path / "empty")) is None

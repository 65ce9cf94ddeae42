"""A key's last_used_at: noted on the request path, written by the worker's periodic job."""

from __future__ import annotations

import time

from gateway.services.keys import WRITE_USES_EVERY_SEC, KeyUses
from store import Blob, LocalStore
from store.keys import KeyRepo, key_record
from store.records import ApiKey, KeyScope


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


class RevokedWhileMarking(LocalStore):
    """A real local store where a key is revoked (deleted) right after the job read it:
    the moment between the `key-last-used` job's read and its write."""

    def get(self, key: str) -> Blob:
        blob = super().get(key)
        if key.startswith("keys/"):
            self.delete(key)
        return blob


def test_marking_a_key_used_never_brings_a_revoked_key_back(tmp_path):
    store = RevokedWhileMarking(tmp_path)
    repo = KeyRepo(store)
    key = ApiKey(id="key_" + "a" * 16, name="leaked", scopes=[KeyScope.read],
                 secret_sha256="0" * 64)  # fmt: skip
    repo.create(key)
    uses = KeyUses(repo)
    uses.note(key.id)
    uses.write()
    assert not store.exists(key_record(key.id))  # was written back: the key worked again

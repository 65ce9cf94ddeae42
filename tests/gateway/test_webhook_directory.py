"""The webhook directory answers a flood of one unknown key from memory."""

from __future__ import annotations

import pytest

from gateway.services.deployments import DeploymentCache
from gateway.services.webhooks import WebhookDirectory
from store import LocalStore, errors
from store.functions import FunctionRepo


class CountingStore(LocalStore):
    def __init__(self, root) -> None:
        super().__init__(root)
        self.gets = 0

    def get(self, key):
        self.gets += 1
        return super().get(key)


def test_an_unknown_key_costs_one_store_read_per_ttl(tmp_path):
    store = CountingStore(tmp_path)
    repo = FunctionRepo(store)
    directory = WebhookDirectory(repo, DeploymentCache(repo, max_age=1.0), unknown_ttl_sec=60)
    with pytest.raises(errors.NotFound):
        directory.find("no-such-key-" + "x" * 20)
    per_lookup = store.gets  # the index, and its pre-hash spelling
    for _ in range(50):
        with pytest.raises(errors.NotFound):
            directory.find("no-such-key-" + "x" * 20)
    assert store.gets == per_lookup
    directory.unknown_ttl_sec = 0  # past the TTL: asked again
    for _ in range(2):
        with pytest.raises(errors.NotFound):
            directory.find("another-unknown-key")
    assert store.gets == 3 * per_lookup

"""API keys beyond the first: one record per key, found from the key itself.

    keys/<key id>.json      ApiKey (name, scopes, SHA-256 of the secret, times)

A key reads `nk_<id part>.<secret>`: the id part names its record, so checking
a key is one read (cached by the caller), never a scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from . import errors
from ._base import Store
from .functions import FunctionRepo
from .records import ApiKey

_KEY_ID = re.compile(r"^key_[a-z2-7]{16}\Z")


def key_record(key_id: str) -> str:
    return f"keys/{key_id}.json"


class KeyRepo:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._records = FunctionRepo(store)  # its generic JSON read/write/compare-and-swap

    def create(self, key: ApiKey) -> None:
        self._records.write(key_record(key.id), key, create=True)

    def get(self, key_id: str) -> ApiKey:
        if not _KEY_ID.match(key_id):
            raise errors.NotFound(f"API key {key_id!r} not found")
        try:
            return self._records.read(key_record(key_id), ApiKey)[0]
        except errors.NotFound:
            raise errors.NotFound(f"API key {key_id!r} not found") from None

    def mark_used(self, key_id: str, at: datetime) -> None:
        """Set a key's `last_used_at`, on the record as it is now: a key revoked
        meanwhile stays revoked (NotFound), never written back."""

        def mark(key: ApiKey) -> ApiKey:
            key.last_used_at = at
            return key

        self._records.update(key_record(key_id), ApiKey, mark)

    def list(self) -> Iterator[ApiKey]:
        for name in self.store.list("keys/"):
            try:
                yield self._records.read(name, ApiKey)[0]
            except errors.NotFound:
                continue  # revoked while listing

    def delete(self, key_id: str) -> None:
        self.get(key_id)  # 404 for an unknown id
        self.store.delete(key_record(key_id))

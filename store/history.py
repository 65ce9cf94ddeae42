"""A function's history of what served it: rollbacks, alias changes, canary decisions.

    history/<fn>/<age>-<random>.json    HistoryEntry; <age> = 9999999999999 minus
                                        the entry's Unix ms (13 digits), so a listing
                                        is newest first

Entries are create-only and never change; they go when their function does.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from . import errors
from ._base import Store
from .records import HistoryEntry, parse_record

_AGE_BASE = 10**13 - 1


def history_prefix(function_id: str) -> str:
    return f"history/{function_id}/"


def newest_first_key(prefix: str, at: datetime) -> str:
    """A create-only entry's key under `prefix`: a listing of the prefix is newest first."""
    age = _AGE_BASE - int(at.timestamp() * 1000)
    return f"{prefix}{age:013d}-{secrets.token_hex(4)}.json"


class HistoryRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, function_id: str, entry: HistoryEntry) -> None:
        key = newest_first_key(history_prefix(function_id), entry.at)
        self.store.put(key, entry.model_dump_json().encode(), create=True)

    def page(self, function_id: str, limit: int, offset: int) -> tuple[list[HistoryEntry], int]:
        """Entries newest first, and how many there are."""
        keys = list(self.store.list(history_prefix(function_id)))
        out = []
        for key in keys[offset : offset + limit]:
            try:
                out.append(parse_record(HistoryEntry, self.store.get(key).data, key))
            except errors.NotFound:
                continue  # the function was deleted while we read
        return out, len(keys)

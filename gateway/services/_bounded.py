"""A per-worker map of immutable things made once, bounded, shared by request threads."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most `size` entries; the oldest added goes first.

    Reads take no lock (a dict lookup is atomic under the GIL). Adding takes one:
    evicting with `next(iter(d))` while another thread adds raises "dictionary
    changed size during iteration", and two threads evicting the same oldest key
    made one of them fail with KeyError.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> V:
        with self._lock:
            if key not in self._items:
                while len(self._items) >= self._size:
                    del self._items[next(iter(self._items))]
            self._items[key] = value
        return value

    def __len__(self) -> int:
        return len(self._items)

"""Async invocation records and their queue.

    invocations/<id>.json                       Invocation (event, status, attempts, lease, outcome)
    queue/invocations/<created_ms:013d>.<id>    queue marker (empty), oldest first

The marker is written first, then the record with its event (create-only),
so a crash at any point leaves at worst a marker without a record (dropped
on a later pass), never an accepted invocation no worker will find. The
marker is removed only after the record reaches its final state.

PERF(nimbus): two durable writes per accept; the event rides in the record
(≤ 256 KB) instead of an object of its own, which cost a third fsync.
"""

from __future__ import annotations

from . import errors
from ._base import Store
from .leases import Leases
from .records import Invocation


def invocation_key(invocation_id: str) -> str:
    return f"invocations/{invocation_id}.json"


def marker_key(created_ms: int, invocation_id: str) -> str:
    return f"queue/invocations/{created_ms:013d}.{invocation_id}"


class InvocationRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def accept(self, record: Invocation) -> None:
        """Make an invocation (with its event) durable; when this returns, it will run."""
        created_ms = int(record.created_at.timestamp() * 1000)
        self.store.put(marker_key(created_ms, record.id), b"")
        self.store.put(invocation_key(record.id), record.model_dump_json().encode(), create=True)

    def accept_once(self, record: Invocation, leases: Leases, *, queued_ms: int) -> bool:
        """`accept` for work many workers offer at once (a schedule's tick, whose id
        derives from the tick): the record's create-only write is the claim, so this
        is True for exactly one caller. `queued_ms` must be the same for every caller
        (the tick's time), so all of them write the one marker."""
        self.store.put(marker_key(queued_ms, record.id), b"")
        return leases.claim_once(invocation_key(record.id), record)

    def settle_once(self, record: Invocation, leases: Leases) -> bool:
        """Write a record already final (a tick that could not run), create-only: True
        for exactly one caller. It needs no queue marker."""
        return leases.claim_once(invocation_key(record.id), record)

    def exists(self, invocation_id: str) -> bool:
        return self.store.exists(invocation_key(invocation_id))

    def get(self, invocation_id: str) -> tuple[Invocation, str]:
        try:
            blob = self.store.get(invocation_key(invocation_id))
        except (errors.NotFound, errors.Invalid):
            raise errors.NotFound(f"invocation {invocation_id!r} not found") from None
        return Invocation.model_validate_json(blob.data), blob.etag

    def write(self, record: Invocation, etag: str) -> str:
        """Conditional update: raises Conflict if someone else changed the record."""
        return self.store.put(
            invocation_key(record.id), record.model_dump_json().encode(), if_match=etag
        )

    def queued(self) -> list[tuple[str, str]]:
        """(marker key, invocation id) of every unfinished invocation, oldest first."""
        out = []
        for key in self.store.list("queue/invocations/"):
            _, _, invocation_id = key.rsplit("/", 1)[1].partition(".")
            if invocation_id:
                out.append((key, invocation_id))
        return out

    def drop_marker(self, key: str) -> None:
        self.store.delete(key)

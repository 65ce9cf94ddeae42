"""Async invocation records and their queue.

    invocations/<id>.json                       Invocation (event, status, attempts, lease, outcome)
    queue/invocations/<created_ms:013d>.<id>.<function id>
                                                queue marker (empty), oldest first (markers
                                                written before the function id have none)
    finished/invocations/<function id>/<age>.<id>
                                                finished index (empty), newest first per
                                                function; <age> as in log batch keys

The marker is written first, then the record with its event (create-only),
so a crash at any point leaves at worst a marker without a record (dropped
once it has stayed so for a minute: a slow record write is no crash), never an
accepted invocation no worker will find. The
marker is removed only after the record reaches its final state.

PERF(nimbus): two durable writes per accept; the event rides in the record
(≤ 256 KB) instead of an object of its own, which cost a third fsync.

Retention: the runner writes the finished index entry just before the final
state (off the accept path), so no final record is ever unindexed. A sweep
deletes, from the index keys alone, records finished longer ago than the
retention and those of functions that no longer exist; deleting a function
deletes its finished records at once. A record is deleted only once final.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from . import errors
from ._base import Store
from .leases import Claim, Leases
from .records import Invocation, parse_record

FINISHED_PREFIX = "finished/invocations/"
_AGE_BASE = 10**13 - 1  # Unix ms up to the year 2286


def invocation_key(invocation_id: str) -> str:
    return f"invocations/{invocation_id}.json"


def marker_key(created_ms: int, invocation_id: str, function_id: str) -> str:
    return f"queue/invocations/{created_ms:013d}.{invocation_id}.{function_id}"


class QueueEntry(NamedTuple):
    marker: str
    invocation_id: str
    function_id: str | None  # None in markers written before it was named


def finished_key(function_id: str, finished_ms: int, invocation_id: str) -> str:
    return f"{FINISHED_PREFIX}{function_id}/{_AGE_BASE - finished_ms:013d}.{invocation_id}"


def parse_finished_key(key: str) -> tuple[str, int, str]:
    """(function id, finished Unix ms, invocation id) from an index key."""
    function_id, name = key[len(FINISHED_PREFIX) :].split("/", 1)
    age, _, invocation_id = name.partition(".")
    return function_id, _AGE_BASE - int(age), invocation_id


class InvocationRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def put_queue_marker(self, queued_ms: int, invocation_id: str, function_id: str) -> None:
        """The empty queue entry a dispatcher lists (written before the record it names)."""
        self.store.put(marker_key(queued_ms, invocation_id, function_id), b"")

    def accept(self, record: Invocation) -> None:
        """Make an invocation (with its event) durable; when this returns, it will run."""
        created_ms = int(record.created_at.timestamp() * 1000)
        self.put_queue_marker(created_ms, record.id, record.function_id)
        self.store.put(invocation_key(record.id), record.model_dump_json().encode(), create=True)

    def accept_once(self, record: Invocation, leases: Leases, *, queued_ms: int) -> bool:
        """`accept` for work many workers offer at once (a schedule's tick, whose id
        derives from the tick): the record's create-only write is the claim, so this
        is True for exactly one caller. `queued_ms` must be the same for every caller
        (the tick's time), so all of them write the one marker."""
        self.put_queue_marker(queued_ms, record.id, record.function_id)
        return leases.claim_once(invocation_key(record.id), record)

    def settle_once(self, record: Invocation, leases: Leases) -> bool:
        """Write a record already final (a tick that could not run), create-only: True
        for exactly one caller. It needs no queue marker; its finished index entry
        comes first, as for every final record."""
        self.index_finished(record)
        return leases.claim_once(invocation_key(record.id), record)

    def exists(self, invocation_id: str) -> bool:
        return self.store.exists(invocation_key(invocation_id))

    def get(self, invocation_id: str) -> tuple[Invocation, str]:
        try:
            blob = self.store.get(invocation_key(invocation_id))
        except (errors.NotFound, errors.Invalid):
            raise errors.NotFound(f"invocation {invocation_id!r} not found") from None
        return parse_record(Invocation, blob.data, invocation_key(invocation_id)), blob.etag

    def write(self, record: Invocation, etag: str) -> str:
        """Conditional update: raises Conflict if someone else changed the record."""
        return self.store.put(
            invocation_key(record.id), record.model_dump_json().encode(), if_match=etag
        )

    def queued(self) -> list[tuple[str, str]]:
        """(marker key, invocation id) of every unfinished invocation, oldest first."""
        return [(entry.marker, entry.invocation_id) for entry in self.queue()]

    def queue(self) -> list[QueueEntry]:
        """Every unfinished invocation's marker, oldest first, with its function."""
        out = []
        for key in self.store.list("queue/invocations/"):
            parts = key.rsplit("/", 1)[1].split(".", 2)
            if len(parts) >= 2 and parts[1]:
                out.append(QueueEntry(key, parts[1], parts[2] if len(parts) == 3 else None))
        return out

    def drop_marker(self, key: str) -> None:
        self.store.delete(key)

    def claim(self, leases: Leases, invocation_id: str, **how) -> Claim[Invocation] | None:
        """Claim an invocation to run it (`how`: as for `Leases.claim`); NotFound if
        its record was never written."""
        return leases.claim(invocation_key(invocation_id), Invocation, **how)

    # -- retention -------------------------------------------------------------

    def index_finished(self, record: Invocation) -> None:
        """Call just before writing the final state: the record is then found by retention."""
        finished_ms = int(time.time() * 1000)
        self.store.put(finished_key(record.function_id, finished_ms, record.id), b"")

    def sweep(
        self,
        retention_sec: float,
        function_exists: Callable[[str], bool],
        now: float | None = None,
    ) -> int:
        """Delete records finished over `retention_sec` ago, and the finished records of
        functions that no longer exist; how many records were deleted."""
        cutoff_ms = ((time.time() if now is None else now) - retention_sec) * 1000
        exists: dict[str, bool] = {}
        deleted = 0
        for key in list(self.store.list(FINISHED_PREFIX)):
            try:
                function_id, finished_ms, invocation_id = parse_finished_key(key)
            except ValueError:
                continue
            if function_id not in exists:
                exists[function_id] = function_exists(function_id)
            if finished_ms < cutoff_ms or not exists[function_id]:
                deleted += self._forget(key, invocation_id)
        return deleted

    def delete_finished_of(self, function_id: str) -> int:
        """Delete a (deleted) function's finished records; unfinished ones are left to
        finish and be swept. How many were deleted."""
        deleted = 0
        for key in list(self.store.list(f"{FINISHED_PREFIX}{function_id}/")):
            deleted += self._forget(key, parse_finished_key(key)[2])
        return deleted

    def _forget(self, index_key: str, invocation_id: str) -> int:
        """Delete a final record, then its index entry; 1 if a record went."""
        try:
            record, etag = self.get(invocation_id)
        except errors.NotFound:
            self.store.delete(index_key)  # gone already (or an entry of a lost run)
            return 0
        if not record.final:
            return 0  # a run that lost its lease wrote this entry; the winner will finish
        try:
            self.store.delete(invocation_key(invocation_id), if_match=etag)
        except errors.Conflict:
            return 0
        self.store.delete(index_key)
        return 1

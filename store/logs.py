"""Invocation log batches: where they live and how a key says what is inside.

    logs/invocations/<id>/<age>-<writer>-<seq:08d>.jsonl

One batch of entries a line each. <age> = 9999999999999 minus the newest
entry's Unix ms (13 digits), so a listing is newest first and retention
needs no reads. Callers hold a batch by its opaque `ref`; the layout is this
module's alone (telemetry writes and queries, the function repo deletes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from . import errors
from ._base import Store

_AGE_BASE = 10**13 - 1  # Unix ms up to the year 2286


def invocation_log_key(function_id: str, newest_ms: int, writer: str, seq: int) -> str:
    return f"logs/invocations/{function_id}/{_AGE_BASE - newest_ms:013d}-{writer}-{seq:08d}.jsonl"


def invocation_log_prefix(function_id: str | None = None) -> str:
    return f"logs/invocations/{function_id}/" if function_id else "logs/invocations/"


def parse_invocation_log_key(key: str) -> tuple[str, int]:
    """(function id, newest entry's Unix ms) from a batch key, without reading it."""
    _, _, function_id, name = key.split("/", 3)
    return function_id, _AGE_BASE - int(name[:13])


class LogBatch(NamedTuple):
    function_id: str
    newest_ms: int  # every entry of the batch is at or before this time
    ref: str  # what `read` and `delete` take


class LogBatches:
    """Write, list (newest first), read and delete invocation log batches."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def put(self, function_id: str, newest_ms: int, writer: str, seq: int, data: bytes) -> str:
        key = invocation_log_key(function_id, newest_ms, writer, seq)
        self.store.put(key, data)
        return key

    def of_function(self, function_id: str) -> Iterator[LogBatch]:
        """One function's batches, newest first (from the listing alone)."""
        for key in self.store.list(invocation_log_prefix(function_id)):
            _, newest_ms = parse_invocation_log_key(key)
            yield LogBatch(function_id, newest_ms, key)

    def all(self) -> Iterator[LogBatch]:
        """Every batch of every function; keys that are not batches are skipped."""
        for key in self.store.list(invocation_log_prefix()):
            try:
                function_id, newest_ms = parse_invocation_log_key(key)
            except ValueError:
                continue
            yield LogBatch(function_id, newest_ms, key)

    def read(self, ref: str) -> bytes | None:
        """The batch's bytes, or None when it was swept meanwhile."""
        try:
            return self.store.get(ref).data
        except errors.NotFound:
            return None

    def delete(self, refs: Iterable[str]) -> None:
        """Delete these batches (in one request per 1,000 on S3)."""
        self.store.delete_keys(refs)

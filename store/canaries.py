"""Canary jobs: which alias canaries are progressing, and when each next step is due.

    canaries/<fn>.<alias>.json    CanaryJob (a `Leased` record: one worker decides a step)

The canary's visible state is the alias's `canary` in the function record;
this record only says when to look next and carries the lease, so exactly
one worker of any replica takes each step's decision.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import errors
from ._base import Store
from .records import Leased

PREFIX = "canaries/"


class CanaryJob(Leased):
    function_id: str
    alias: str
    step: int  # the step whose outcome is decided next
    held: int = 0  # intervals that step has been held so far (one decision per interval)
    next_due: float  # Unix seconds


def canary_key(function_id: str, alias: str) -> str:
    return f"{PREFIX}{function_id}.{alias}.json"


class CanaryRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self, job: CanaryJob) -> None:
        self.store.put(canary_key(job.function_id, job.alias), job.model_dump_json().encode())

    def stop(self, function_id: str, alias: str) -> None:
        self.store.delete(canary_key(function_id, alias))

    def drop_claimed(self, key: str, etag: str) -> None:
        """Delete a finished job unless someone changed it since (`key`, `etag` of its claim)."""
        self.store.delete(key, if_match=etag)

    def keys(self) -> Iterator[str]:
        return self.store.list(PREFIX)

    def exists(self, function_id: str, alias: str) -> bool:
        try:
            return self.store.exists(canary_key(function_id, alias))
        except errors.NotFound:
            return False

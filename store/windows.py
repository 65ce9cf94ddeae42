"""Where windowed invocation stats live (all JSON; the records are telemetry's):

    stats/windows/raw/<hour>/<fn>/<minute>-<writer>.json    one worker's 10 s slots
        of one minute of one function (only that worker writes it)
    stats/windows/hour/<hour>/<fn>.json                     the hour rolled up to 1 min
    stats/windows/rolled/<hour>.json                        the hour's roll-up is complete

`<hour>` and `<minute>` are Unix seconds (10 digits) of the period's start.
Reads skip objects deleted between a listing and the read (a roll-up or a
sweep may run on another worker meanwhile).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import errors
from ._base import Store

PREFIX = "stats/windows/"
RAW_PREFIX = PREFIX + "raw/"
HOUR_PREFIX = PREFIX + "hour/"
ROLLED_PREFIX = PREFIX + "rolled/"


def raw_key(hour: int, function_id: str, minute: int, writer: str) -> str:
    return f"{RAW_PREFIX}{hour:010d}/{function_id}/{minute:010d}-{writer}.json"


def raw_prefix(hour: int, function_id: str | None = None) -> str:
    return f"{RAW_PREFIX}{hour:010d}/{function_id}/" if function_id else f"{RAW_PREFIX}{hour:010d}/"


def hour_key(hour: int, function_id: str) -> str:
    return f"{HOUR_PREFIX}{hour:010d}/{function_id}.json"


def hour_prefix(hour: int) -> str:
    return f"{HOUR_PREFIX}{hour:010d}/"


def rolled_key(hour: int) -> str:
    return f"{ROLLED_PREFIX}{hour:010d}.json"


def _hour_of(key: str, prefix: str) -> int | None:
    head = key[len(prefix) :].split("/", 1)[0].removesuffix(".json")
    return int(head) if head.isdigit() else None


class StatsWindows:
    """Raw minutes, rolled-up hours and roll-up markers, as bytes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- raw minutes (each worker its own objects) ---------------------------

    def put_raw(self, hour: int, function_id: str, minute: int, writer: str, data: bytes) -> None:
        self.store.put(raw_key(hour, function_id, minute, writer), data)

    def raw(self, hour: int, function_id: str | None = None) -> Iterator[bytes]:
        """Every worker's raw minutes of `hour` (of one function, or all)."""
        yield from self._read_all(raw_prefix(hour, function_id))

    def raw_hours(self) -> set[int]:
        """Hours that still have raw objects."""
        return {h for k in self.store.list(RAW_PREFIX) if (h := _hour_of(k, RAW_PREFIX))}

    def delete_raw(self, hour: int) -> int:
        return self.store.delete_prefix(raw_prefix(hour))

    # -- rolled-up hours -----------------------------------------------------

    def put_hour(self, hour: int, function_id: str, data: bytes) -> None:
        self.store.put(hour_key(hour, function_id), data)

    def hour(self, hour: int, function_id: str | None = None) -> Iterator[bytes]:
        """The rolled-up objects of `hour` (one function's, or all)."""
        if function_id is None:
            yield from self._read_all(hour_prefix(hour))
            return
        with contextlib.suppress(errors.NotFound):
            yield self.store.get(hour_key(hour, function_id)).data

    def delete_hour(self, hour: int) -> int:
        """The hour's rolled-up objects and its marker."""
        deleted = self.store.delete_prefix(hour_prefix(hour))
        self.store.delete(rolled_key(hour))
        return deleted + 1

    # -- roll-up markers -----------------------------------------------------

    def put_marker(self, hour: int, data: bytes) -> None:
        self.store.put(rolled_key(hour), data)

    def marker(self, hour: int) -> bytes | None:
        try:
            return self.store.get(rolled_key(hour)).data
        except errors.NotFound:
            return None

    def is_rolled(self, hour: int) -> bool:
        return self.store.exists(rolled_key(hour))

    def marked_hours(self) -> list[int]:
        """Hours whose roll-up marker exists, oldest first."""
        keys = self.store.list(ROLLED_PREFIX)
        return [h for k in keys if (h := _hour_of(k, ROLLED_PREFIX)) is not None]

    # -- helpers -------------------------------------------------------------

    def _read_all(self, prefix: str) -> Iterator[bytes]:
        for key in list(self.store.list(prefix)):
            with contextlib.suppress(errors.NotFound):  # deleted while we listed
                yield self.store.get(key).data

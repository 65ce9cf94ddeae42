"""`GET /api/v1/functions/{ref}/invocations`: a function's recent invocations, newest first.

Finished invocations of every trigger come from the outcome batches the
recorder writes (each invocation's END log entry carries its summary), so
listing costs no write on the invoke path and follows log retention.
Staleness: this worker's outcomes are flushed before reading; other
workers' arrive within one flush interval (≤ 0.5 s by default). Async
invocations still queued or running come from the async queue (at most
`QUEUE_READ_MAX` records are read).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from store import errors
from store.functions import FunctionRepo
from store.invocations import InvocationRepo
from store.records import Invocation, InvocationStatus, Trigger

from ..schemas import InvocationList, InvocationListItem
from .logs import InvocationLogs, format_ts, parse_limit, parse_since, ts_micros

QUEUE_READ_MAX = 200
# Log batches one listing reads at most: a filter that matches little (?status=timed_out)
# read every batch back to the retention (~1M GETs on a busy function over 7 days). Past
# it the answer says how far back it looked (`searched_since`).
SCAN_BATCHES = 1000


def _choice(field: str, raw: str | None, enum: type) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in enum.__members__.values():
        raise errors.Invalid.field(field, f"must be one of {', '.join(e.value for e in enum)}")
    return raw


def _pending(record: Invocation) -> dict:
    return {
        "id": record.id,
        "version": record.version,
        "trigger": record.trigger,
        "status": record.status,
        "duration_ms": None,
        "error_code": None,
        "cold_start": None,
        "created_at": format_ts(record.created_at),
    }


class InvocationLister:
    def __init__(
        self,
        repo: FunctionRepo,
        logs: InvocationLogs,
        queue: InvocationRepo,
        flush: Callable[[], None],
    ) -> None:
        self.repo = repo
        self.logs = logs
        self.queue = queue
        self.flush = flush

    def list(
        self,
        ref: str,
        *,
        limit: str | None = None,
        since: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
    ) -> InvocationList:
        count = parse_limit(limit)
        since_us = parse_since(since)
        status = _choice("status", status, InvocationStatus)
        trigger = _choice("trigger", trigger, Trigger)
        fn, _ = self.repo.resolve(ref)

        def wanted(item: dict) -> bool:
            return (
                (status is None or item["status"] == status)
                and (trigger is None or item["trigger"] == trigger)
                and (since_us is None or ts_micros(item["created_at"]) >= since_us)
            )

        found: dict[str, dict] = {}
        if status in (None, InvocationStatus.queued, InvocationStatus.running):
            for item in self._unfinished(fn.id):
                if wanted(item):
                    found[item["id"]] = item  # a retry's running state beats an older outcome
        self.flush()  # this worker's own outcomes first
        newest: list[int] = []
        searched_since, read, last_read_us = None, 0, 0
        for newest_us, key in self.logs.batch_keys(fn.id, since_us):
            if len(newest) >= count and newest_us < newest[count - 1]:
                break  # no older batch holds one of the newest `count`
            if read == SCAN_BATCHES:
                # every call made since the last batch read ended in a batch read
                searched_since = format_ts(datetime.fromtimestamp(last_read_us / 1e6, UTC))
                break
            read, last_read_us = read + 1, newest_us
            for entry in self.logs.read_batch(key):
                item = entry.get("invocation")
                if item is None or item["id"] in found or not wanted(item):
                    continue
                found[item["id"]] = item
                newest.append(ts_micros(item["created_at"]))
            newest.sort(reverse=True)
        items = sorted(found.values(), key=lambda i: i["created_at"], reverse=True)[:count]
        return InvocationList(
            invocations=[InvocationListItem(**item) for item in items],
            searched_since=searched_since,
        )

    def _unfinished(self, function_id: str) -> list[dict]:
        out = []
        for _, invocation_id in self.queue.queued()[:QUEUE_READ_MAX]:
            try:
                record, _ = self.queue.get(invocation_id)
            except errors.NotFound:
                continue  # finished and dropped while we listed
            if record.function_id == function_id and not record.final:
                out.append(_pending(record))
        return out

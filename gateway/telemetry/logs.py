"""Invocation logs: entries made from outcomes, kept in the store in batches, read newest first.

An entry is `{invocation_id, ts, stream, line}`; `stream` is `stderr` (the
function's log), `stdout` (what a failed call wrote to stdout; a call that
succeeded returned it as its result, which is not logged) or `platform`. Each
invocation keeps at most `max_bytes` of its output (stderr first, then
stdout; of a stream cut, its first and last bytes; a `platform` line says what
was dropped) and ends with one
`platform` line: `END duration=3.21ms status=failed error=timeout …`.

The recorder writes one batch object per function per flush
(store/logs.py `LogBatches`). Batches list newest first and carry their
newest entry's time in their name, so a query stops listing at
`since` or once it has `limit` newer entries, and retention deletes expired
batches from the key alone. All lines of one invocation are in one batch.

Retention: one worker at a time (a store hold, taken at most once per
`sweep_every_sec` across all workers) deletes batches whose newest entry
is older than the retention, and batches of functions that no longer exist
(a batch flushed just after its function was deleted).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson

from sandbox import FunctionFailure
from store import Leases, Store, errors
from store.functions import FunctionRepo
from store.invocations import InvocationRepo
from store.leases import LOG_SWEEP
from store.logs import LogBatches
from store.records import id_time

from ..schemas import LogEntry, LogList
from .recorder import InvocationOutcome
from .window_stats import age_seconds, parse_moment

log = logging.getLogger("nimbus.logs")

LINE_MAX_CHARS = 8192
LIMIT_DEFAULT = 100
LIMIT_MAX = 1000
LOG_TAIL_BYTES = 4096  # X-Nimbus-Log-Tail, as Lambda's LogResult
# `?invocation_id=`: how far a call's batch may sit from the times its id or record says
# (hosts' clocks, a flush that waited on a slow store)
SPAN_SLACK_SEC = 300
# …and how many of the newest batches are read for an id that says no time (one made
# before ids carried it)
UNTIMED_SCAN_BATCHES = 200


def format_ts(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds (they order entries); a naive moment is UTC."""
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    # PERF: two per invocation in the recorder's flush; %-formatting the fields is
    # faster than strftime, and than isoformat on a copy without the tzinfo.
    return _TS % (moment.year, moment.month, moment.day, moment.hour, moment.minute,
                  moment.second, moment.microsecond)  # fmt: skip


_TS = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def ts_micros(ts: str) -> int:
    return _micros(datetime.fromisoformat(ts))


# -- entries from an outcome ---------------------------------------------------


def end_line(o: InvocationOutcome) -> str:
    parts = [f"END duration={o.duration_ms:.2f}ms status={o.status}"]
    if o.error_code:
        parts.append(f"error={o.error_code}")
    if o.error_type:
        parts.append(f"type={o.error_type}")
    parts.append(f"version={o.version} trigger={o.trigger}")
    if o.source:
        parts.append(f"source={o.source}")
    if o.cold_start:
        parts.append("cold_start=true")
    return " ".join(parts)


def with_error(logs: bytes, error: FunctionFailure) -> bytes:
    """A call's log with its function error appended as Lambda's runtimes log one:
    `[ERROR] Type: message`, then the stack (without that line again)."""
    head = f"{error.type}: {error.message}" if error.message else error.type
    lines = [f"[ERROR] {head}", *(line for line in error.stack if line != head)]
    if logs and not logs.endswith(b"\n"):
        logs += b"\n"
    return logs + "\n".join(lines).encode() + b"\n"


def log_tail(o: InvocationOutcome, limit: int = LOG_TAIL_BYTES) -> bytes:
    """The end of one call's log as Lambda's `LogType: Tail` gives it: the
    function's stderr, then the platform's END line; at most `limit` bytes."""
    logs = o.logs[-limit:]
    if logs and not logs.endswith(b"\n"):
        logs += b"\n"
    return (logs + end_line(o).encode() + b"\n")[-limit:]


def entries_for(o: InvocationOutcome, max_bytes: int) -> tuple[list[dict], int]:
    """The log entries of one outcome, and the Unix µs of its newest (the END line)."""
    started = o.started_at
    ended = started + timedelta(milliseconds=o.duration_ms)
    ts, end_ts = format_ts(started), format_ts(ended)
    entries: list[dict] = []
    budget = max_bytes
    dropped: list[str] = []
    # A call's output is its result (a handler's return value, a program's stdout), which
    # its caller gets (an async call's record too): logged as well, it was noise, and up
    # to `max_bytes` of log a call; Lambda never logs a result. A failed call's output
    # is kept: nobody else gets what a program wrote before it failed.
    streams = [("stderr", o.logs)]
    if o.status != "succeeded":
        streams.append(("stdout", o.output))
    for stream, data in streams:
        if not data:
            continue
        pieces = [data]
        if len(data) > budget:
            # Its first and its last bytes: a failed call's end (what it logged last, the
            # [ERROR] line and stack) is what its owner reads the log for.
            head = max(budget, 0) // 2
            tail = max(budget, 0) - head
            pieces = [data[:head], data[len(data) - tail :] if tail else b""]
            dropped.append(f"{stream}={len(data) - head - tail}")
        for piece in pieces:
            budget -= len(piece)
            lines = piece.decode("utf-8", "replace").split("\n")
            if lines[-1] == "":
                lines.pop()
            for line in lines:
                line = line.removesuffix("\r")
                if len(line) > LINE_MAX_CHARS:
                    line = line[:LINE_MAX_CHARS] + " …[line truncated]"
                entries.append(
                    {"invocation_id": o.invocation_id, "ts": ts, "stream": stream, "line": line}
                )
    if dropped:
        note = (
            f"log truncated: kept {max_bytes} bytes (the first and the last); "
            f"dropped bytes from the middle: {' '.join(dropped)}"
        )
        entries.append(
            {"invocation_id": o.invocation_id, "ts": end_ts, "stream": "platform", "line": note}
        )
    entries.append(
        {
            "invocation_id": o.invocation_id,
            "ts": end_ts,
            "stream": "platform",
            "line": end_line(o),
            # the invocation list reads this (GET …/invocations); the logs API drops it
            "invocation": {
                "id": o.invocation_id,
                "version": o.version,
                "trigger": o.trigger,
                "status": o.status,
                "duration_ms": round(o.duration_ms, 3),
                "error_code": o.error_code,
                "cold_start": o.cold_start,
                "created_at": ts,
            },
        }
    )
    return entries, _micros(ended)


def encode_batch(entries: Iterable[dict]) -> bytes:
    return b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in entries)


# -- query parameters ----------------------------------------------------------


def parse_since(raw: str | None) -> int | None:
    """`since` as Unix µs: RFC 3339 (no offset means UTC), Unix seconds, or an age before now
    (`15m`, as the stats routes take it). NOTE: RFC 3339 stays exact to the µs (no float):
    `logs --follow` asks again from the last line's own timestamp."""
    if raw is None or raw == "":
        return None
    if age_seconds(raw) is not None:  # checked as the stats routes check it: 1970 to 9999
        return int(parse_moment("since", raw, time.time()) * 1_000_000)
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            raise errors.Invalid.field(
                "since", "must be RFC 3339, non-negative Unix seconds or an age"
            )
        return int(seconds * 1_000_000)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise errors.Invalid.field(
            "since", "use RFC 3339, Unix seconds, or an age such as 15m"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _micros(moment)


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return LIMIT_DEFAULT
    try:
        limit = int(raw)
    except ValueError:
        raise errors.Invalid.field("limit", "must be an integer") from None
    if not 1 <= limit <= LIMIT_MAX:
        raise errors.Invalid.field("limit", f"must be between 1 and {LIMIT_MAX}")
    return limit


class InvocationSpan(NamedTuple):
    """Where one invocation's log batch can be: its newest entry's Unix µs lies in
    [low_us, high_us]; `one_batch` unless it may have run more than once (async)."""

    low_us: int
    high_us: int
    one_batch: bool

    @classmethod
    def around(cls, first: float, last: float, *, one_batch: bool) -> InvocationSpan:
        slack = SPAN_SLACK_SEC
        return cls(int((first - slack) * 1e6), int((last + slack) * 1e6), one_batch)


# -- the store side ------------------------------------------------------------


class InvocationLogs:
    """Batches of log entries in the store: write, query, sweep."""

    def __init__(
        self, store: Store, *, retention_sec: float, sweep_every_sec: float, owner: str
    ) -> None:
        self.batches = LogBatches(store)
        self.functions = FunctionRepo(store)
        self.retention_sec = retention_sec
        self.sweep_every_sec = sweep_every_sec
        self.leases = Leases(store, owner)

    def write(
        self, function_id: str, entries: list[dict], newest_us: int, writer: str, seq: int
    ) -> str:
        # Round up: every entry of the batch is at or before the time in its key.
        newest_ms = -(-newest_us // 1000)
        return self.batches.put(function_id, newest_ms, writer, seq, encode_batch(entries))

    def batch_keys(self, function_id: str, since_us: int | None) -> Iterator[tuple[int, str]]:
        """(newest entry's Unix µs, ref) of each batch, newest first, down to `since`:
        callers read (`read_batch`) only until no older batch can matter to them."""
        for batch in self.batches.of_function(function_id):
            newest_us = batch.newest_ms * 1000
            if since_us is not None and newest_us < since_us:
                return  # this batch and every later one is older than `since`
            yield newest_us, batch.ref

    def read_batch(self, ref: str) -> list[dict]:
        data = self.batches.read(ref)
        if data is None:
            return []  # swept while we listed
        return [orjson.loads(line) for line in data.splitlines()]

    def query(self, function_id: str, *, since_us: int | None, limit: int) -> list[dict]:
        """Entries newest first; reads batches only until no older one can matter."""
        found: list[tuple[int, int, dict]] = []  # (ts µs, position, entry)
        position = 0
        for newest_us, key in self.batch_keys(function_id, since_us):
            if len(found) >= limit and newest_us < found[limit - 1][0]:
                break  # nothing in this or any later batch is among the newest `limit`
            for entry in self.read_batch(key):
                ts_us = ts_micros(entry["ts"])
                if since_us is not None and ts_us < since_us:
                    continue
                position += 1
                found.append((ts_us, position, entry))
            found.sort(key=lambda item: (item[0], item[1]), reverse=True)
            del found[limit:]
        return [entry for _, _, entry in found]

    def of_invocation(
        self, function_id: str, invocation_id: str, between: InvocationSpan | None
    ) -> list[dict]:
        """One invocation's entries, newest first. Only batches whose newest entry falls in
        `between` are read, oldest first (a call's batch is written within a flush of its
        end); with no span known, only the newest `UNTIMED_SCAN_BATCHES`."""
        keys = list(self.batch_keys(function_id, None if between is None else between.low_us))
        if between is None:
            keys = keys[:UNTIMED_SCAN_BATCHES]
        else:
            keys = [k for k in keys if k[0] <= between.high_us][::-1]
        found: list[dict] = []
        for _, key in keys:
            found += (e for e in self.read_batch(key) if e["invocation_id"] == invocation_id)
            if found and (between is None or between.one_batch):
                break  # a call's lines are all in one batch (an async one's per attempt)
        # newest first; lines of one moment last-written first, as `query` orders them
        return sorted(reversed(found), key=lambda e: ts_micros(e["ts"]), reverse=True)

    # -- retention -----------------------------------------------------------

    def maybe_sweep(self) -> int | None:
        """Sweep if no worker has within `sweep_every_sec`; the number deleted, or None."""
        if not self.leases.hold_job(LOG_SWEEP, self.sweep_every_sec):
            return None  # another worker swept (or sweeps) this round
        deleted = self.sweep()
        if deleted:
            log.info("deleted %d expired invocation log batches", deleted)
        return deleted

    def sweep(self, now: float | None = None) -> int:
        """Delete expired batches and batches of deleted functions, from their keys alone."""
        cutoff_ms = ((now or time.time()) - self.retention_sec) * 1000
        exists: dict[str, bool] = {}
        expired = []
        for batch in self.batches.all():
            if batch.function_id not in exists:
                exists[batch.function_id] = self.functions.function_exists(batch.function_id)
            if batch.newest_ms < cutoff_ms or not exists[batch.function_id]:
                expired.append(batch.ref)
        self.batches.delete(expired)
        return len(expired)


class LogReader:
    """`GET …/logs`: validates the query, flushes this worker's pending batch, reads."""

    def __init__(
        self,
        repo: FunctionRepo,
        logs: InvocationLogs,
        flush: Callable[[], None],
        *,
        invocations: InvocationRepo,
        max_timeout_sec: float,
    ) -> None:
        self.repo = repo
        self.logs = logs
        self.flush = flush
        self.invocations = invocations
        self.max_timeout_sec = max_timeout_sec

    def entries(
        self, ref: str, *, since: str | None, limit: str | None, invocation_id: str | None
    ) -> LogList:
        since_us = parse_since(since)
        count = parse_limit(limit)
        fn, _ = self.repo.resolve(ref)
        # NOTE: this worker's own pending outcomes are written first; other
        # workers' reach the store within one flush interval (≤ 0.5 s by default).
        self.flush()
        if invocation_id:
            found = self._of_invocation(fn.id, invocation_id)
            if since_us is not None:
                found = [e for e in found if ts_micros(e["ts"]) >= since_us]
            found = found[:count]
        else:
            found = self.logs.query(fn.id, since_us=since_us, limit=count)
        return LogList(entries=[LogEntry(**e) for e in found])

    def _of_invocation(self, function_id: str, invocation_id: str) -> list[dict]:
        """An async (or scheduled) call's record says when it ran; any other call's id
        says when it was made, and it ended within the longest timeout. NOTE(perf): the
        cost is the batches of that span, never the function's whole history."""
        try:
            record, _ = self.invocations.get(invocation_id)
        except errors.NotFound:
            record = None
        if record is not None:
            if record.function_id != function_id:
                return []  # another function's call
            last = record.finished_at.timestamp() if record.finished_at else time.time()
            span = InvocationSpan.around(record.created_at.timestamp(), last, one_batch=False)
        elif (made := id_time(invocation_id)) is not None:
            span = InvocationSpan.around(made, made + self.max_timeout_sec, one_batch=True)
        else:
            span = None
        return self.logs.of_invocation(function_id, invocation_id, span)

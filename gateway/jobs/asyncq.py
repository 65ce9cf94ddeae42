"""Async invocations: accepted durably, run at least once, exactly one final state.

A dispatcher thread per worker lists the queue (oldest first) and claims
invocations for a bounded pool of runner threads. A claim
(`store.Leases.claim`) is a conditional write of `running` with a lease that
outlasts the function's timeout, so a live run is never taken over; a
worker that dies leaves its lease to run out, and any worker's dispatcher
then claims the invocation again. Platform failures (busy sandbox, store
trouble, an engine outage, a lost worker) are retried with backoff up to
`max_attempts`; the function's own failures (an error, a timeout, memory) are
final unless the function asks for `async_retries`, as Lambda's
MaximumRetryAttempts: then it runs again that many times, `error_retry_sec`
and then twice that later, no platform attempt spent. Finished records are
kept for the retention (`retention_sweep`), then deleted.

Fairness: one flooded function cannot starve the others. The dispatcher takes
the oldest invocation of each function before the second oldest of any; a
function may hold at most `max_queued_per_function` queued invocations
(beyond: 429); and a function at its `max_concurrency` is passed over — its
invocations stay queued, no attempt counted, as Lambda keeps throttled async
events — so the runner threads go to the others.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Literal

import orjson

from store import Claim, LeaseLost, Leases, errors
from store.invocations import InvocationRepo, QueueEntry
from store.records import (
    MAX_JSON_DEPTH,
    Invocation,
    InvocationStatus,
    Trigger,
    nests_deeper_than,
    now,
)

from ..background import BackgroundLoop
from ..limits import ASYNC_EVENT_LIMIT
from ..services.concurrency import ConcurrencyLimitReached, Slot
from ..services.invoke import InvokeService
from .polling import IdlePolling

log = logging.getLogger("nimbus.async")

# How long after an invocation's final write its finisher has to drop its queue marker.
_FINISHER_GRACE_SEC = 10.0
# The longest a dispatcher skips an invocation it found held by another worker.
_RECHECK_SEC = 2.0
_UNREADABLE_RECHECK_SEC = 60.0
# An on-failure destination's own failures are sent on along a chain this far at most.
FAILURE_HOPS = 3
_FAILURE_SUFFIX = "-failure"  # a failure record's id: the failed invocation's, with this
# A marker without its record is an accept that crashed only past this (the record's
# write follows the marker's; a store's timeouts and retries end well before it).
_ORPHAN_GRACE_SEC = 60.0  # a record that does not read back (RecordUnreadable)


class AsyncInvocations:
    def __init__(
        self,
        repo: InvocationRepo,
        invoker: InvokeService,
        leases: Leases,
        *,
        concurrency: int,
        max_queue_depth: int,
        max_queued_per_function: int,
        lease_margin_sec: float,
        poll_sec: float,
        max_attempts: int,
        retry_base_sec: float,
        error_retry_sec: float = 60.0,
        retention_sec: float = 168 * 3600,
        idle_poll_max_sec: float | None = None,
    ) -> None:
        self.repo = repo
        self.invoker = invoker
        self.leases = leases
        self.concurrency = concurrency
        self.max_queue_depth = max_queue_depth
        self.max_queued_per_function = max_queued_per_function
        self.lease_margin_sec = lease_margin_sec
        self.poll_sec = poll_sec
        self.max_attempts = max_attempts
        self.retry_base_sec = retry_base_sec
        self.error_retry_sec = error_retry_sec
        self.retention_sec = retention_sec
        # None: look every poll_sec even while the queue stays empty
        self.idle_poll_max_sec = poll_sec if idle_poll_max_sec is None else idle_poll_max_sec
        self.depth = 0  # queue depth seen by the last dispatcher pass
        self.depth_by_function: Counter[str] = Counter()  # the same, per function id
        self._slots = threading.Semaphore(concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, Claim[Invocation]] = {}
        self._lock = threading.Lock()
        self._polling = IdlePolling(self.poll_sec, self.idle_poll_max_sec)
        self._loop = BackgroundLoop("async-dispatch", self._dispatch_step,
                                    error_wait_sec=self.poll_sec)  # fmt: skip
        self._orphans: dict[str, float] = {}  # invocation id → when first seen without record
        # invocation id → wall time before which this dispatcher does not read it again
        self._busy: dict[str, float] = {}

    # -- accepting -----------------------------------------------------------

    def accept(
        self,
        ref: str,
        event: bytes,
        *,
        version: int | None = None,
        alias: str | None = None,
        trigger: Trigger = Trigger.async_,
    ) -> Invocation:
        """Fix the version now and make the invocation durable before answering 202."""
        if len(event) > ASYNC_EVENT_LIMIT:
            raise errors.TooLarge(
                f"an async event may be {ASYNC_EVENT_LIMIT} bytes; this one is {len(event)}"
            )
        if self.depth >= self.max_queue_depth:
            raise errors.LimitExceeded(
                f"the async queue holds {self.depth} invocations; try again later", retry_after=5
            )
        fn, record = self.invoker.resolve(ref, version, alias)
        queued = self.depth_by_function[fn.id]
        if queued >= self.max_queued_per_function:
            raise errors.LimitExceeded(
                f"function {fn.name} has {queued} async invocations queued; "
                f"the limit is {self.max_queued_per_function}",
                retry_after=5,
                details={"reason": "function_queue_limit",
                         "limit": self.max_queued_per_function},
            )  # fmt: skip
        invocation = Invocation(
            id=self.invoker.new_invocation_id(),
            function_id=fn.id,
            function_name=fn.name,
            version=record.version,
            event=event.decode(),  # valid JSON, so valid UTF-8
            trigger=trigger,
        )
        self.repo.accept(invocation)
        self.depth += 1
        self.depth_by_function[fn.id] += 1
        self._loop.wake()
        return invocation

    def wake(self) -> None:
        """Look at the queue now (a schedule's tick was just accepted here)."""
        self._loop.wake()

    def get(self, invocation_id: str) -> Invocation:
        try:
            return self.repo.get(invocation_id)[0]
        except errors.NotFound:
            # The id a sync call answers (X-Nimbus-Invocation-Id) looks the same: say where
            # that call's record is, not only that there is none here.
            raise errors.NotFound(
                f"invocation {invocation_id!r} not found: this route keeps async and scheduled "
                "invocations; a sync or webhook call is in GET /api/v1/functions/{name}/"
                "invocations and its log in …/logs?invocation_id="
            ) from None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="async")
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Take no new work; let running invocations finish within `timeout` (in all),
        hand back the rest."""
        deadline = time.monotonic() + timeout
        self._loop.stop(timeout)
        if self._pool is not None:
            while self._running and time.monotonic() < deadline:
                time.sleep(0.05)
            with self._lock:
                leftovers = list(self._running.values())
            for claim in leftovers:
                with contextlib.suppress(LeaseLost, errors.NimbusError):  # else it runs out
                    self.leases.finish(claim, _hand_back)
                    # NOTE: its guest may still end before this worker does (the HTTP
                    # drain goes on): the run that counts is the one of the next worker.
                    self.invoker.recorder.disown(claim.record.id)
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- dispatching ---------------------------------------------------------

    def _dispatch_step(self) -> float:
        self.dispatch_once()
        return self._polling.after(empty=self.depth == 0)

    def dispatch_once(self) -> None:
        queue = self.repo.queue()
        if self._orphans:  # forget those whose marker went (dropped by another worker)
            listed = {entry.invocation_id for entry in queue}
            self._orphans = {i: seen for i, seen in self._orphans.items() if i in listed}
        self.depth = len(queue)
        self.depth_by_function = Counter(entry.function_id for entry in queue)
        wall = time.time()
        self._busy = {i: until for i, until in self._busy.items() if until > wall}
        throttled: set[str] = set()
        in_turn = _each_function_in_turn(queue)
        for marker, invocation_id, function_id in _spread_head(in_turn, 2 * self.concurrency):
            if invocation_id in self._running or invocation_id in self._busy:
                continue  # PERF(replicas): held here or elsewhere, or just finished: no GET
            if function_id in throttled:
                continue
            if self._loop.stopping.is_set() or not self._slots.acquire(blocking=False):
                return
            claim = slot = None
            try:
                slot = self._function_slot(function_id)
                if slot is not False:
                    claim = self._claim(marker, invocation_id)
                else:
                    throttled.add(function_id)
            finally:
                if claim is None:
                    self._slots.release()
                    if slot:
                        self.invoker.concurrency.release(slot)
            if claim is not None:
                with self._lock:
                    self._running[invocation_id] = claim
                self._pool.submit(self._run, marker, claim, slot or None)

    def _function_slot(self, function_id: str | None) -> Slot | Literal[False] | None:
        """One of the function's max_concurrency slots (None: it has no cap, or the
        marker names no function), or False when it runs as many as it may."""
        if function_id is None or self.invoker.concurrency is None:
            return None
        try:
            limit = self.invoker.cache.function(function_id).max_concurrency
        except errors.NotFound:
            return None  # the run fails with not_found
        if limit is None:
            return None
        return self.invoker.concurrency.acquire(function_id, limit) or False

    def _claim(self, marker: str, invocation_id: str) -> Claim[Invocation] | None:
        try:
            claim = self.repo.claim(
                self.leases, invocation_id, duration_sec=self._lease_sec,
                ready=partial(self._runnable, marker), begin=_begin,
                max_attempts=self.max_attempts, exhausted=partial(self._give_up, marker),
            )  # fmt: skip
            self._orphans.pop(invocation_id, None)  # its record came (if it was late)
            return claim
        except errors.RecordUnreadable as exc:
            # Passed over for a while (logged each time): it stopped the whole pass, so
            # every call queued behind it waited on the shuffle of the next passes.
            log.error("async invocation %s cannot run: %s", invocation_id, exc.message)
            self._busy[invocation_id] = time.time() + _UNREADABLE_RECHECK_SEC
            return None
        except errors.NotFound:
            # Its accept crashed before the record was written, or is writing it now: the
            # marker is dropped only once it has stayed without a record for a while. (On
            # the second look, as it was, a record written more than one pass after its
            # marker — a slow disk, an S3 PUT — was a 202'd call left queued for good.)
            first_seen = self._orphans.setdefault(invocation_id, time.monotonic())
            if time.monotonic() - first_seen >= _ORPHAN_GRACE_SEC:
                self._orphans.pop(invocation_id, None)
                self.repo.drop_marker(marker)
            return None

    def _runnable(self, marker: str, invocation: Invocation) -> bool:
        """Whether to claim it; if not, until when this worker need not read it again."""
        wall = time.time()
        if invocation.final:
            # NOTE(replicas): its finisher drops the marker right after the final write.
            # Others listing the queue meanwhile leave it alone, or every replica deleted
            # every marker once more (2.35 DELETEs per invocation with 3 replicas, not 1):
            # only a marker left long after is a crash's, for anyone to drop.
            finished = invocation.finished_at
            age = (now() - finished).total_seconds() if finished else _FINISHER_GRACE_SEC
            if age >= _FINISHER_GRACE_SEC:
                self.repo.drop_marker(marker)
            else:
                self._busy[invocation.id] = wall + min(_RECHECK_SEC, _FINISHER_GRACE_SEC - age)
            return False
        # A live lease (another worker runs it) or a retry's backoff: the claim would be
        # refused anyway. Read it again then, but at least every _RECHECK_SEC, since a
        # worker stopping gracefully hands its runs back early.
        later = max(invocation.lease_until or 0.0, invocation.not_before)
        if later > wall:
            self._busy[invocation.id] = min(later, wall + _RECHECK_SEC)
            return False
        return True

    def _lease_sec(self, invocation: Invocation) -> float:
        """Longer than the run may take, so a live run is never taken over."""
        try:
            fn = self.invoker.cache.function(invocation.function_id)
            timeout = self.invoker.cache.version(fn, invocation.version).timeout_sec
        except errors.NotFound:
            timeout = 0  # the run fails at once with not_found
        return timeout + self.lease_margin_sec

    def _give_up(self, marker: str, claim: Claim[Invocation]) -> None:
        self._finish(marker, claim, {
            "status": InvocationStatus.failed,
            "error": {"code": "platform_error",
                      "message": f"gave up after {claim.record.attempts} attempts"},
            "finished_at": now(),
        })  # fmt: skip

    # -- running -------------------------------------------------------------

    def _run(self, marker: str, claim: Claim[Invocation], slot: Slot | None = None) -> None:
        try:
            self._finish(marker, claim, self._execute(claim.record, slot))
        except _Retry as retry:
            self._retry(claim, retry.reason)
        except _RunAgain as again:
            self._run_again(claim, again.outcome)
        except ConcurrencyLimitReached:
            # Its cap was set after this was claimed: wait in the queue, no attempt spent.
            with contextlib.suppress(LeaseLost, errors.NimbusError):  # else it runs out
                self.leases.finish(claim, _hand_back)
        except Exception:
            log.exception("async invocation %s crashed", claim.record.id)
            self._retry(claim, "internal error")
        finally:
            if slot is not None:
                self.invoker.concurrency.release(slot)
            with self._lock:
                self._running.pop(claim.record.id, None)
            self._slots.release()
            self._loop.wake()

    def _execute(self, invocation: Invocation, slot: Slot | None = None) -> dict[str, Any]:
        """Run it; the fields of its final state (raises `_Retry` for a platform failure)."""
        try:
            done = self.invoker.invoke(
                invocation.function_id, invocation.event.encode(), {}, version=invocation.version,
                trigger=invocation.trigger, invocation_id=invocation.id, slot=slot,
                source=invocation.schedule_id,  # a tick's log line names its schedule
            )  # fmt: skip
        except ConcurrencyLimitReached:
            raise
        except (errors.LimitExceeded, errors.Unavailable) as exc:
            raise _Retry(exc.message) from None
        except errors.Timeout as exc:
            outcome = {"status": InvocationStatus.timed_out,
                       "error": {"code": exc.code, "message": exc.message}}  # fmt: skip
        except errors.NimbusError as exc:  # memory, result size, offline, build failed…
            outcome = {"status": InvocationStatus.failed,
                       "error": {"code": exc.code, "message": exc.message}}  # fmt: skip
        else:
            result = done.result
            outcome = {"duration_ms": result.duration_ms}
            if result.error is not None:
                outcome["status"] = InvocationStatus.failed
                outcome["error"] = {
                    "code": "function_error",
                    "type": result.error.type,
                    "message": result.error.message,
                    "stack": result.error.stack,
                    **({"exit_code": result.error.exit_code}
                       if result.error.exit_code is not None else {}),
                }  # fmt: skip
            else:
                value = (
                    orjson.loads(result.output)
                    if result.content_type == "application/json"
                    else result.output.decode(errors="replace")
                )
                if nests_deeper_than(value):  # NOTE: the record could not be written
                    outcome["status"] = InvocationStatus.failed
                    outcome["error"] = {"code": "result_too_large", "message": "the result "
                                        f"nests deeper than {MAX_JSON_DEPTH} levels"}  # fmt: skip
                else:
                    outcome["status"] = InvocationStatus.succeeded
                    outcome["result"] = value
        code = (outcome.get("error") or {}).get("code")
        if code in _FUNCTION_FAILURES and invocation.retries < self._retries_of(invocation):
            raise _RunAgain(outcome)
        outcome["finished_at"] = now()
        return outcome

    def _send_failure(self, invocation: Invocation, outcome: dict[str, Any]) -> None:
        """A failed invocation of a function with an on-failure destination: one async
        invocation of the destination with Lambda's destination record, once (its id
        derives from the failed one's and its write is create-only)."""
        if outcome.get("status") not in (InvocationStatus.failed, InvocationStatus.timed_out):
            return
        if invocation.id.count(_FAILURE_SUFFIX) >= FAILURE_HOPS:
            # a destination that fails on the record it was sent, sending it on: a function
            # that is its own destination (or two that are each other's) looped
            log.warning("invocation %s: not sent on: a failure record goes %d hops at most",
                        invocation.id, FAILURE_HOPS)  # fmt: skip
            return
        try:
            destination_name = self.invoker.cache.function(invocation.function_id).async_on_failure
            if destination_name is None:
                return
            destination, record = self.invoker.resolve(destination_name, None, None)
        except errors.NimbusError as exc:
            log.warning("invocation %s: no on-failure destination: %s", invocation.id, exc)
            return
        event = orjson.dumps(destination_record(invocation, outcome.get("error") or {}))
        if len(event) > ASYNC_EVENT_LIMIT:
            log.warning("invocation %s: its failure record is too large to send", invocation.id)
            return
        sent = Invocation(
            id=f"{invocation.id}{_FAILURE_SUFFIX}",
            function_id=destination.id,
            function_name=destination.name,
            version=record.version,
            event=event.decode(),
        )
        queued_ms = int(invocation.created_at.timestamp() * 1000)
        with contextlib.suppress(errors.NimbusError):
            if self.repo.accept_once(sent, self.leases, queued_ms=queued_ms):
                self._loop.wake()

    def _retries_of(self, invocation: Invocation) -> int:
        try:
            return self.invoker.cache.function(invocation.function_id).async_retries
        except errors.NotFound:
            return 0

    def _finish(self, marker: str, claim: Claim[Invocation], outcome: dict[str, Any]) -> None:
        def apply(invocation: Invocation) -> None:
            for name, value in outcome.items():
                setattr(invocation, name, value)

        self.repo.index_finished(claim.record)  # before the final state: retention finds it
        # before too: a run again after a crash finds it sent (its write is create-only)
        self._send_failure(claim.record, outcome)
        try:
            self.leases.finish(claim, apply)
        except LeaseLost:
            # Our lease was taken over: the other run owns the final state, so
            # this one leaves no trace.
            log.warning("invocation %s was taken over; dropping this result", claim.record.id)
            return
        # NOTE: the final state is written. A marker this fails to drop is dropped by a
        # later pass (_runnable, after _FINISHER_GRACE_SEC); raising here would make
        # `_run` retry it, writing `queued` over the final state and running it again.
        with contextlib.suppress(errors.NimbusError):
            self.repo.drop_marker(marker)

    def _run_again(self, claim: Claim[Invocation], outcome: dict[str, Any]) -> None:
        """Queued again after the function's own failure, which the record shows
        meanwhile; the attempt it took is not a platform attempt."""
        delay = self.error_retry_sec * (2**claim.record.retries)

        def requeue(invocation: Invocation) -> None:
            invocation.status = InvocationStatus.queued
            invocation.not_before = time.time() + delay
            invocation.error = outcome["error"]
            invocation.duration_ms = outcome.get("duration_ms")
            invocation.retries += 1
            invocation.attempts = max(0, invocation.attempts - 1)

        with contextlib.suppress(LeaseLost, errors.NimbusError):  # else its lease runs out
            self.leases.finish(claim, requeue)

    def _retry(self, claim: Claim[Invocation], reason: str) -> None:
        attempts = claim.record.attempts
        backoff = self.retry_base_sec * (2 ** (attempts - 1)) * (1 + random.random())

        def requeue(invocation: Invocation) -> None:
            invocation.status = InvocationStatus.queued
            invocation.not_before = time.time() + backoff
            invocation.error = {"code": "platform_error", "message": reason}

        with contextlib.suppress(LeaseLost, errors.NimbusError):  # else its lease runs out
            self.leases.finish(claim, requeue)

    # -- retention -------------------------------------------------------------

    def retention_sweep(self) -> int:
        """Delete finished records older than the retention, and those of deleted
        functions (run by one worker at a time: PeriodicJobs' hold)."""
        deleted = self.repo.sweep(self.retention_sec, self.invoker.cache.repo.function_exists)
        if deleted:
            log.info("deleted %d finished invocation records", deleted)
        return deleted


def _each_function_in_turn(queue: list[QueueEntry]) -> list[QueueEntry]:
    """The queue reordered so that each function's oldest comes before any function's
    second oldest (then third...): a backlog of one does not delay the others."""
    turn: Counter[str | None] = Counter()
    ranked = []
    for position, entry in enumerate(queue):
        ranked.append((turn[entry.function_id], position, entry))
        turn[entry.function_id] += 1
    return [entry for *_, entry in sorted(ranked, key=lambda r: r[:2])]


def _spread_head(queued: list[QueueEntry], window: int) -> list[QueueEntry]:
    """The queue, in order, but its first `window` in random order.

    PERF(replicas): every worker lists the same queue; taking it strictly in order,
    two replicas' dispatchers woken together claimed the same invocation, and one
    lost (0.87 refused writes and ~2.6 extra reads per invocation with 3 replicas).
    """
    head = queued[:window]
    random.shuffle(head)
    return head + queued[window:]


def _begin(invocation: Invocation) -> None:
    invocation.status = InvocationStatus.running
    invocation.started_at = now()


def destination_record(invocation: Invocation, error: dict) -> dict:
    """What an on-failure destination gets: Lambda's destination record."""
    return {
        "version": "1.0",
        "timestamp": now().isoformat().replace("+00:00", "Z"),
        "requestContext": {
            "requestId": invocation.id,
            "functionArn": invocation.function_name,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invocation.retries + 1,
        },
        "requestPayload": orjson.loads(invocation.event),
        "responseContext": {
            "statusCode": 200,
            "executedVersion": str(invocation.version),
            "functionError": "Unhandled",
        },
        "responsePayload": {
            "errorType": error.get("type") or error.get("code"),
            "errorMessage": error.get("message"),
            "stackTrace": error.get("stack") or [],
        },
    }


# What a function's async_retries cover: its own failures, as Lambda's "function errors".
_FUNCTION_FAILURES = ("function_error", "timeout", "memory_limit_exceeded")


class _RunAgain(Exception):
    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__("run again")
        self.outcome = outcome


def _hand_back(invocation: Invocation) -> None:
    """At shutdown: queued again for any worker, and the attempt was not its fault."""
    invocation.status = InvocationStatus.queued
    invocation.attempts = max(0, invocation.attempts - 1)


class _Retry(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

"""Async invocations: accepted durably, run at least once, exactly one final state.

A dispatcher thread per worker lists the queue (oldest first) and claims
invocations for a bounded pool of runner threads. A claim is a conditional
write of `running` with a lease that outlasts the function's timeout, so a
live run is never taken over; a worker that dies leaves its lease to run
out, and any worker's dispatcher then claims the invocation again.
Platform failures (busy sandbox, store trouble, a lost worker) are retried
with backoff up to `max_attempts`; the function's own failures are final.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson

from store import errors
from store.invocations import InvocationRepo
from store.records import Invocation, InvocationStatus, Trigger, now

from ..limits import ASYNC_EVENT_LIMIT
from ..services.invoke import InvokeService

log = logging.getLogger("nimbus.async")


class AsyncInvocations:
    def __init__(
        self,
        repo: InvocationRepo,
        invoker: InvokeService,
        *,
        concurrency: int,
        max_queue_depth: int,
        lease_margin_sec: float,
        poll_sec: float,
        max_attempts: int,
        retry_base_sec: float,
    ) -> None:
        self.repo = repo
        self.invoker = invoker
        self.concurrency = concurrency
        self.max_queue_depth = max_queue_depth
        self.lease_margin_sec = lease_margin_sec
        self.poll_sec = poll_sec
        self.max_attempts = max_attempts
        self.retry_base_sec = retry_base_sec
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.depth = 0  # queue depth seen by the last dispatcher pass
        self._slots = threading.Semaphore(concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, tuple[Invocation, str]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._orphans: set[str] = set()

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
        self._wake.set()
        return invocation

    def wake(self) -> None:
        """Look at the queue now (a schedule's tick was just accepted here)."""
        self._wake.set()

    def get(self, invocation_id: str) -> Invocation:
        return self.repo.get(invocation_id)[0]

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="async")
        self._thread = threading.Thread(target=self._dispatch_loop, name="async-dispatch",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Take no new work; let running invocations finish, hand back the rest."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            deadline = time.monotonic() + timeout
            while self._running and time.monotonic() < deadline:
                time.sleep(0.05)
            with self._lock:
                leftovers = list(self._running.values())
            for invocation, etag in leftovers:
                self._hand_back(invocation, etag)
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _hand_back(self, invocation: Invocation, etag: str) -> None:
        invocation.status = InvocationStatus.queued
        invocation.lease_owner = invocation.lease_until = None
        invocation.attempts = max(0, invocation.attempts - 1)  # not its fault
        with contextlib.suppress(errors.NimbusError):  # else its lease runs out
            self.repo.write(invocation, etag)

    # -- dispatching ---------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatch_once()
            except Exception:
                log.exception("async dispatcher error")
            self._wake.wait(self.poll_sec)
            self._wake.clear()

    def dispatch_once(self) -> None:
        queued = self.repo.queued()
        self.depth = len(queued)
        for marker, invocation_id in queued:
            if self._stop.is_set() or not self._slots.acquire(blocking=False):
                return
            claimed = None
            try:
                claimed = self._claim(marker, invocation_id)
            finally:
                if claimed is None:
                    self._slots.release()
            if claimed is not None:
                with self._lock:
                    self._running[invocation_id] = claimed
                self._pool.submit(self._run, marker, *claimed)

    def _claim(self, marker: str, invocation_id: str) -> tuple[Invocation, str] | None:
        try:
            invocation, etag = self.repo.get(invocation_id)
        except errors.NotFound:
            # its accept crashed before the record was written: drop on the second look
            if invocation_id in self._orphans:
                self._orphans.discard(invocation_id)
                self.repo.drop_marker(marker)
            else:
                self._orphans.add(invocation_id)
            return None
        if invocation.final:
            self.repo.drop_marker(marker)
            return None
        wall = time.time()
        if invocation.status == InvocationStatus.running and (invocation.lease_until or 0) > wall:
            return None
        if invocation.not_before > wall:
            return None
        if invocation.attempts >= self.max_attempts:
            invocation.status = InvocationStatus.failed
            invocation.error = {
                "code": "platform_error",
                "message": f"gave up after {invocation.attempts} attempts",
            }
            invocation.finished_at = now()
            self._finish(marker, invocation, etag)
            return None
        try:
            fn = self.invoker.cache.function(invocation.function_id)
            timeout = self.invoker.cache.version(fn, invocation.version).timeout_sec
        except errors.NotFound as exc:
            invocation.status = InvocationStatus.failed
            invocation.error = {"code": "not_found", "message": exc.message}
            invocation.finished_at = now()
            self._finish(marker, invocation, etag)
            return None
        invocation.status = InvocationStatus.running
        invocation.attempts += 1
        invocation.lease_owner = self.owner
        invocation.lease_until = wall + timeout + self.lease_margin_sec
        invocation.started_at = now()
        try:
            etag = self.repo.write(invocation, etag)
        except errors.Conflict:
            return None  # another worker claimed it first
        return invocation, etag

    # -- running -------------------------------------------------------------

    def _run(self, marker: str, invocation: Invocation, etag: str) -> None:
        try:
            self._execute(invocation)
            self._finish(marker, invocation, etag)
        except _Retry as retry:
            self._retry(invocation, etag, retry.reason)
        except Exception:
            log.exception("async invocation %s crashed", invocation.id)
            self._retry(invocation, etag, "internal error")
        finally:
            with self._lock:
                self._running.pop(invocation.id, None)
            self._slots.release()
            self._wake.set()

    def _execute(self, invocation: Invocation) -> None:
        try:
            done = self.invoker.invoke(
                invocation.function_id, invocation.event.encode(), {}, version=invocation.version,
                trigger=invocation.trigger, invocation_id=invocation.id,
            )  # fmt: skip
        except (errors.LimitExceeded, errors.Unavailable) as exc:
            raise _Retry(exc.message) from None
        except errors.Timeout as exc:
            invocation.status = InvocationStatus.timed_out
            invocation.error = {"code": exc.code, "message": exc.message}
        except errors.NimbusError as exc:  # memory, result size, offline, build failed…
            invocation.status = InvocationStatus.failed
            invocation.error = {"code": exc.code, "message": exc.message}
        else:
            result = done.result
            invocation.duration_ms = result.duration_ms
            if result.error is not None:
                invocation.status = InvocationStatus.failed
                invocation.error = {
                    "code": "function_error",
                    "type": result.error.type,
                    "message": result.error.message,
                    "stack": result.error.stack,
                    **({"exit_code": result.error.exit_code}
                       if result.error.exit_code is not None else {}),
                }  # fmt: skip
            else:
                invocation.status = InvocationStatus.succeeded
                invocation.result = (
                    orjson.loads(result.output)
                    if result.content_type == "application/json"
                    else result.output.decode(errors="replace")
                )
        invocation.finished_at = now()

    def _finish(self, marker: str, invocation: Invocation, etag: str) -> None:
        invocation.lease_owner = invocation.lease_until = None
        try:
            self.repo.write(invocation, etag)
        except errors.Conflict:
            # Our lease was taken over (or handed back at shutdown): the other
            # run owns the final state, so this one leaves no trace.
            log.warning("invocation %s was taken over; dropping this result", invocation.id)
            return
        self.repo.drop_marker(marker)

    def _retry(self, invocation: Invocation, etag: str, reason: str) -> None:
        backoff = self.retry_base_sec * (2 ** (invocation.attempts - 1)) * (1 + random.random())
        invocation.status = InvocationStatus.queued
        invocation.lease_owner = invocation.lease_until = None
        invocation.not_before = time.time() + backoff
        invocation.error = {"code": "platform_error", "message": reason}
        with contextlib.suppress(errors.NimbusError):  # else its lease runs out
            self.repo.write(invocation, etag)


class _Retry(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

"""The one lease primitive: who works on what, decided by conditional writes.

Three shapes cover every background runner (decision 0007):

- **A lease inside a record** (`Leased` fields: `attempts`, `lease_owner`,
  `lease_until`): a build's version, an async invocation, a workflow step, a
  canary. `claim` reads the record, refuses it while anyone's lease is live,
  and takes it with one `If-Match` write, so of two claimers exactly one
  wins. `renew` extends the lease, `finish` writes the outcome only if the
  record is still as our last write left it; otherwise `LeaseLost`.
- **A standalone lease object** (`hold`): "at most one worker does this
  for a while" — the log sweep, the stats fold, artifact collection.
  Callers outside the store name the job (`hold_job("stats-fold", …)`);
  the store maps the name to its key.
- **Exactly once** (`claim_once`): a create-only write of a key derived from
  the work (a schedule's tick), so one replica of many does it. Only a store
  that refuses a second create-only write can promise this:
  `probe_conditional_writes` checks.

Times are wall-clock Unix seconds (leases are compared across hosts);
keep the workers' clocks in sync to well within a lease's duration.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from . import errors
from ._base import Store
from .records import Hold, parse_record

# Jobs with a hold of their own (`Leases.hold_job`). Periodic jobs held once
# per interval (gateway/jobs/periodic.py) are named by their job names.
LOG_SWEEP = "logs.sweep"
WINDOW_ROLLUP = "stats-windows.rollup"
WINDOW_SWEEP = "stats-windows.sweep"
ARTIFACT_COLLECT = "artifacts.collect"

# Jobs whose holds predate `holds/<job>.json` keep their keys, so a store
# written by an older release is still held by the same object.
_OWN_HOLD_KEYS = {
    LOG_SWEEP: "logs/sweep.json",
    WINDOW_ROLLUP: "stats/windows/rollup-hold.json",
    WINDOW_SWEEP: "stats/windows/sweep-hold.json",
    ARTIFACT_COLLECT: "gc/collect.json",
}
_JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,99}\Z")


def hold_key(job: str) -> str:
    """The key of a job's hold: its own for the jobs above, else `holds/<job>.json`."""
    if not _JOB_NAME.match(job):
        raise ValueError(f"not a job name: {job!r}")
    return _OWN_HOLD_KEYS.get(job, f"holds/{job}.json")


# A record with its lease fields (`records.Leased`) at `.lease`: an
# `Invocation`, a `Version` (its build), any `Leased` subclass.
R = TypeVar("R", bound=BaseModel)


class LeaseLost(Exception):
    """Another worker took the record over (or it changed), or this claim was finished
    already: write nothing more to it."""


@dataclass(eq=False)
class Claim(Generic[R]):
    """A record this worker holds: `record` as last written, `etag` of that write.

    Change the record only inside `Leases.finish` (or between a claim and the
    first `renew`, from the claiming thread); `lost` turns true once a renewal
    found the record changed, `released` once `finish` wrote it: after either,
    `renew` and `finish` raise `LeaseLost`.
    """

    key: str
    record: R
    etag: str
    duration_sec: float
    lost: bool = False
    released: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def default_owner() -> str:
    """A worker's identity in leases: host, pid and a random part (pids are reused)."""
    host = "".join(c if c.isalnum() or c in ".-" else "-" for c in socket.gethostname())
    return f"{host[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Leases:
    """Leases taken by one worker (`owner`) in one store."""

    def __init__(
        self, store: Store, owner: str | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.owner = owner or default_owner()
        self.clock = clock

    # -- a lease inside a record ---------------------------------------------

    def claim(
        self,
        key: str,
        model: type[R],
        *,
        duration_sec: float | Callable[[R], float],
        ready: Callable[[R], bool] = lambda record: True,
        begin: Callable[[R], None] | None = None,
        max_attempts: int | None = None,
        exhausted: Callable[[Claim[R]], None] | None = None,
    ) -> Claim[R] | None:
        """Take the record at `key` for `duration_sec` (or `duration_sec(record)`), or None.

        None when: `ready(record)` is false (finished, waiting out a backoff —
        `ready` may tidy up, e.g. drop a finished record's queue marker), a
        lease on it is live (anyone's, ours too), or another worker's write
        came first. Past `max_attempts` claims the record is not leased but
        handed to `exhausted` as an unleased `Claim` (the runner marks it
        finally failed with `finish`, which writes only if nobody else did
        meanwhile), and None is returned. On success `begin(record)` has set
        the runner's own fields (status, start time) and the claim counted
        one attempt. A missing record raises `errors.NotFound`.
        """
        blob = self.store.get(key)
        record = parse_record(model, blob.data, key)
        if not ready(record):
            return None
        lease, wall = record.lease, self.clock()
        if (lease.lease_until or 0) > wall:
            return None
        if max_attempts is not None and lease.attempts >= max_attempts:
            if exhausted is not None:
                exhausted(Claim(key, record, blob.etag, 0.0))
            return None
        duration = duration_sec(record) if callable(duration_sec) else duration_sec
        if begin is not None:
            begin(record)
        lease.attempts += 1
        lease.lease_owner = self.owner
        lease.lease_until = wall + duration
        try:
            etag = self.store.put(key, record.model_dump_json().encode(), if_match=blob.etag)
        except (errors.Conflict, errors.NotFound):
            return None  # another worker claimed (or removed) it first
        return Claim(key, record, etag, duration)

    def renew(self, claim: Claim[R]) -> None:
        """Extend the lease by its duration from now; `LeaseLost` if it was taken over."""
        with claim._lock:
            self._check_held(claim)
            claim.record.lease.lease_until = self.clock() + claim.duration_sec
            self._write(claim)

    def finish(self, claim: Claim[R], mutate: Callable[[R], None]) -> str:
        """Apply `mutate` (the outcome, or a hand-back), release the lease and write
        the record only if it is still ours; `LeaseLost` otherwise. Returns the etag.

        Once finished the claim is released: a second `finish` (a stopping worker
        handing back a run that just ended) must not write over the outcome."""
        with claim._lock:
            self._check_held(claim)
            mutate(claim.record)
            lease = claim.record.lease
            lease.lease_owner = lease.lease_until = None
            etag = self._write(claim)
            claim.released = True
            return etag

    @staticmethod
    def _check_held(claim: Claim[R]) -> None:
        if claim.lost or claim.released:
            raise LeaseLost(claim.key)

    def _write(self, claim: Claim[R]) -> str:
        try:
            claim.etag = self.store.put(
                claim.key, claim.record.model_dump_json().encode(), if_match=claim.etag
            )
        except (errors.Conflict, errors.NotFound):
            claim.lost = True
            raise LeaseLost(claim.key) from None
        return claim.etag

    @contextlib.contextmanager
    def renewing(
        self, claim: Claim[R], *, also: Callable[[], None] | None = None
    ) -> Iterator[Claim[R]]:
        """Renew the lease every third of its duration while the block runs.

        A renewal that finds the lease taken over sets `claim.lost` and stops
        (the block runs on; its `finish` raises `LeaseLost`). `also` runs after
        each renewal, e.g. to upload a build's log so far; its store errors are
        ignored.
        """
        done = threading.Event()

        def keep() -> None:
            while not done.wait(claim.duration_sec / 3):
                try:
                    self.renew(claim)
                except LeaseLost:
                    return
                except errors.NimbusError:
                    continue  # the store hiccuped: try again before the lease runs out
                if also is not None:
                    with contextlib.suppress(errors.NimbusError):
                        also()

        thread = threading.Thread(target=keep, name=f"lease-{claim.key}", daemon=True)
        thread.start()
        try:
            yield claim
        finally:
            done.set()
            thread.join()

    # -- a standalone lease object --------------------------------------------

    def hold(self, key: str, duration_sec: float) -> bool:
        """Take `key` for `duration_sec` unless a hold on it is live (ours too).

        True means: for that long no other worker's `hold(key, …)` is true —
        "at most one worker does this for a while". A job called every
        interval with `duration_sec` = the interval runs at most once per
        interval across all workers.
        """
        wall = self.clock()
        try:
            blob = self.store.get(key)
        except errors.NotFound:
            etag = None
        else:
            etag = blob.etag
            if Hold.model_validate_json(blob.data).until > wall:
                return False
        mine = Hold(owner=self.owner, until=wall + duration_sec, since=wall)
        try:
            self.store.put(key, mine.model_dump_json().encode(), create=etag is None, if_match=etag)
        except (errors.Conflict, errors.NotFound):
            return False  # another worker took it first
        return True

    def hold_job(self, job: str, duration_sec: float) -> bool:
        """`hold` for the store-wide job named `job` (the store picks its key)."""
        return self.hold(hold_key(job), duration_sec)

    # -- exactly once ----------------------------------------------------------

    def claim_once(self, key: str, body: bytes | BaseModel = b"") -> bool:
        """Create `key` (with `body`) if it does not exist: True for exactly one caller.

        Exact only on a store that enforces create-only writes
        (`probe_conditional_writes`); the key should name the work and its
        moment, e.g. `schedules/ticks/<id>/<tick time>`.
        """
        data = body.model_dump_json().encode() if isinstance(body, BaseModel) else body
        try:
            self.store.put(key, data, create=True)
        except errors.Conflict:
            return False
        return True


PROBE_PREFIX = "probes/conditional-writes/"


def probe_conditional_writes(store: Store) -> bool:
    """True if the store refuses a second create-only write of one key, and a write
    conditional on a stale etag: what `claim`, `hold` and `claim_once` rest on.

    Leaves nothing behind. Store errors other than the expected refusals
    propagate (an unreachable store is not a verdict).
    """
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        first = store.put(key, b"first", create=True)
        try:
            store.put(key, b"second", create=True)
        except errors.Conflict:
            pass
        else:
            return False
        store.put(key, b"third", if_match=first)  # the etag is still current: accepted
        try:
            store.put(key, b"fourth", if_match=first)  # now stale
        except errors.Conflict:
            return True
        return False
    finally:
        store.delete(key)

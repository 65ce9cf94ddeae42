"""The schedule ticker: every tick of every enabled schedule becomes one async invocation,
exactly once however many workers and replicas tick.

Every worker keeps the schedules in memory (reloaded when the store's change
note moves, and fully every `reload_sec`) and a thread that sleeps until the
next tick is due, then hands the due ticks to a small pool. Firing a tick
writes an async invocation whose id derives from (schedule id, tick time),
create-only (`InvocationRepo.accept_once` on `Leases.claim_once`): of all the
workers offering it, exactly one write succeeds, and that worker's async
dispatcher starts it at once. No worker has to be the leader, so a replica
killed mid-way costs no tick: the others offer the same ticks anyway.

Exactness needs a store that refuses a second create-only write. Each worker
probes its store at start; on one that does not enforce it, the ticker
refuses to run (an error in the log, `schedules: refused` in `/ready`).

Ticks missed while no worker ran are replayed only within `misfire_grace_sec`:
a starting worker offers the ticks of that last stretch that nobody fired (a
restart's gap), then goes on from now; older ones are lost, and a tick found
more than `misfire_grace_sec` late (a stalled process) is skipped and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from store import Leases, errors
from store.invocations import InvocationRepo
from store.records import Invocation, InvocationStatus, Schedule, ScheduleRun, Trigger, now
from store.schedules import ScheduleRepo

from ..background import BackgroundLoop, StepFailures
from ..services import cron
from ..services.invoke import InvokeService
from ..services.schedules import ticks_of
from ..services.targets import Target
from ..services.workflows.service import WorkflowService

log = logging.getLogger("nimbus.schedules")

REFUSAL = (
    "refused: the store accepted a second create-only write (If-None-Match: *) of one "
    "key, so it cannot promise one firing per tick; schedules do not run on this server"
)


def tick_invocation_id(schedule_id: str, at: datetime, prefix: str = "inv_") -> str:
    """The one invocation (or, prefix `ex_`, execution) id of a schedule's tick: every
    worker derives the same."""
    return f"{prefix}{schedule_id.removeprefix('sch_')}-{at.astimezone(UTC):%Y%m%d%H%M%S}"


@dataclass
class _Entry:
    schedule: Schedule
    ticks: cron.Ticks
    next_at: datetime

    def same_timing(self, other: Schedule) -> bool:
        old = self.schedule
        return (old.expression, old.timezone, old.anchor) == (
            other.expression,
            other.timezone,
            other.anchor,
        )


class ScheduleTicker:
    def __init__(
        self,
        schedules: ScheduleRepo,
        invocations: InvocationRepo,
        invoker: InvokeService,
        leases: Leases,
        *,
        wake_dispatcher: Callable[[], None],
        workflows: WorkflowService | None = None,
        on_tick: Callable[[str, float | None], None] = lambda outcome, late: None,
        reload_sec: float = 60.0,
        check_sec: float = 1.0,
        misfire_grace_sec: float = 60.0,
        fire_threads: int = 4,
        clock: Callable[[], float] = time.time,
        on_refused: Callable[[], None] = lambda: None,
    ) -> None:
        self.schedules = schedules
        self.invocations = invocations
        self.invoker = invoker
        self.leases = leases
        self.wake_dispatcher = wake_dispatcher
        self.workflows = workflows  # starts a workflow schedule's executions
        # (fired | failed | taken | missed, lateness): failed = fired as a failed invocation
        # (its function offline, building…); taken = another worker fired it
        self.on_tick = on_tick
        self.reload_sec = reload_sec
        self.check_sec = check_sec
        self.misfire_grace_sec = misfire_grace_sec
        self.fire_threads = fire_threads
        self.clock = clock
        self.on_refused = on_refused  # the store failed the probe (after the ticker stops)
        self.state = "starting"  # running | refused | starting (the store did not answer yet)
        self._entries: dict[str, _Entry] = {}
        self._change_tag: str | None = None
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._firing: set[Future] = set()  # ticks being offered now
        self._loop = BackgroundLoop("schedule-ticker", self._tick, error_wait_sec=check_sec)
        self._waiting = StepFailures("schedules wait for the store", log)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.fire_threads, thread_name_prefix="schedule-fire")
        self._loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop ticking; wait up to `timeout` in all for the ticks being offered (a hung
        store's write must not hold the worker's stop: other workers offer the same ticks)."""
        deadline = time.monotonic() + timeout
        self._loop.stop(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                firing = set(self._firing)
            _, late = wait(firing, timeout=max(0.0, deadline - time.monotonic()))
            if late:
                log.warning("stopping: %d schedule tick(s) still being offered", len(late))

    def _tick(self) -> float:
        if self.state != "running":
            self._probe()
        if self.state == "running":
            self.refresh()
            for schedule, at in self.due():
                self._offer(schedule, at)
        return self._sleep_sec()

    def _probe(self) -> None:
        try:
            enforced = self.schedules.conditional_writes_enforced()
        except errors.Unavailable as exc:
            self._waiting.failed(exc)  # said once, not once a second
            return
        except errors.NimbusError as exc:
            log.warning("schedules wait for the store: %s", exc.message)
            return
        self._waiting.succeeded()
        if enforced:
            self.state = "running"
        else:
            self.state = "refused"
            log.error("schedules %s", REFUSAL)
            self._loop.stopping.set()  # nothing more to do in this worker
            self.on_refused()

    def _sleep_sec(self) -> float:
        with self._lock:
            soonest = min((e.next_at for e in self._entries.values()), default=None)
        if soonest is None:
            return self.check_sec
        return max(0.0, min(self.check_sec, soonest.timestamp() - self.clock()))

    # -- what is due -----------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the schedules if any changed (one HEAD), or every `reload_sec` regardless."""
        wall = self.clock()
        tag = self.schedules.change_tag()
        if tag == self._change_tag and wall - self._loaded_at < self.reload_sec:
            return
        loaded = self.schedules.list_all()
        after = datetime.fromtimestamp(wall, UTC)
        with self._lock:
            known = dict(self._entries)
        entries = {}
        for schedule in loaded:
            if not schedule.enabled:
                continue
            old = known.get(schedule.id)
            if old is not None and old.same_timing(schedule):
                old.schedule = schedule  # event, qualifier: take the new ones
                entries[schedule.id] = old
                continue
            try:
                ticks = ticks_of(schedule)
            except errors.Invalid as exc:  # a time zone this machine lacks
                log.error("schedule %s cannot run here: %s", schedule.id, exc.message)
                continue
            start = self._resume_after(schedule, ticks, after) if old is None else after
            entries[schedule.id] = _Entry(schedule, ticks, ticks.next_after(start))
        with self._lock:
            self._entries = entries
        self._change_tag, self._loaded_at = tag, wall

    def _resume_after(self, schedule: Schedule, ticks: cron.Ticks, now_: datetime) -> datetime:
        """Where a schedule this worker was not ticking (it just started) takes up its ticks:
        those of the last `misfire_grace_sec` that nobody fired are offered late, so a
        restart (one replica stopped, then started again) loses no tick that fell in its gap.
        Never one from before the schedule's last change, nor one up to its last run (one
        GET, only when a tick falls in that window)."""
        since = max(now_ - timedelta(seconds=self.misfire_grace_sec), schedule.updated_at)
        if ticks.next_after(since) > now_:
            return now_
        try:
            last = self.schedules.last_run(schedule.id)
        except errors.NimbusError:
            last = None  # offered anyway: a fired tick's invocation id is taken
        return max(since, last.scheduled_at) if last is not None else since

    def due(self) -> list[tuple[Schedule, datetime]]:
        """The ticks due by now, each entry moved on to its next tick; ticks too late
        to fire are skipped (counted)."""
        wall = self.clock()
        out = []
        with self._lock:
            for entry in self._entries.values():
                while entry.next_at.timestamp() <= wall:
                    at = entry.next_at
                    if wall - at.timestamp() > self.misfire_grace_sec:
                        self.on_tick("missed", None)
                        late = datetime.fromtimestamp(wall - self.misfire_grace_sec, UTC)
                        entry.next_at = entry.ticks.next_after(max(at, late))
                        log.warning("schedule %s: ticks from %s to before %s missed (this "
                                    "worker stalled)", entry.schedule.id, at.isoformat(),
                                    entry.next_at.isoformat())  # fmt: skip
                        continue
                    out.append((entry.schedule, at))
                    entry.next_at = entry.ticks.next_after(at)
        return out

    # -- firing one tick --------------------------------------------------------------

    def _offer(self, schedule: Schedule, at: datetime) -> None:
        future = self._pool.submit(self._fire_logged, schedule, at)
        with self._lock:
            self._firing.add(future)
        future.add_done_callback(self._fired)

    def _fired(self, future: Future) -> None:
        with self._lock:
            self._firing.discard(future)

    def _fire_logged(self, schedule: Schedule, at: datetime) -> None:
        try:
            self.fire(schedule, at)
        except errors.NimbusError as exc:
            # The store failed us: other workers offer the same tick.
            log.warning("schedule %s tick %s not offered: %s", schedule.id, at, exc.message)
        except Exception:
            log.exception("schedule %s tick %s crashed", schedule.id, at)

    def fire(self, schedule: Schedule, at: datetime) -> str | None:
        """Offer one tick; the invocation (or execution) id if this worker fired it."""
        if schedule.workflow_id is not None:
            return self._start_execution(schedule, at)
        invocation_id = tick_invocation_id(schedule.id, at)
        if self.invocations.exists(invocation_id):
            self.on_tick("taken", None)
            return None  # another worker fired it already: no writes
        record = Invocation(
            id=invocation_id,
            function_id=schedule.function_id,
            function_name="",
            version=0,
            event=schedule.event,
            trigger=Trigger.schedule,
            schedule_id=schedule.id,
            scheduled_at=at,
        )
        try:
            fn = self.invoker.cache.function(schedule.function_id)
        except errors.NotFound:
            return None  # the function is gone; its schedules go with it
        record.function_name = fn.name
        try:
            _, version = self.invoker.resolve(self._target(schedule))
        except errors.NimbusError as exc:  # offline, still building, no such alias…
            record.version = fn.active_version or fn.latest_version
            record.status = InvocationStatus.failed
            record.error = {"code": exc.code, "message": exc.message}
            record.created_at = record.finished_at = now()
            fired = self.invocations.settle_once(record, self.leases)
        else:
            record.version = version.version
            record.created_at = now()
            queued_ms = int(at.timestamp() * 1000)
            fired = self.invocations.accept_once(record, self.leases, queued_ms=queued_ms)
            if fired:
                self.wake_dispatcher()
        if not fired:
            self.on_tick("taken", None)
            return None
        late = (record.created_at - at).total_seconds()
        self.on_tick("fired" if record.status == InvocationStatus.queued else "failed", late)
        self.schedules.record_run(ScheduleRun(scheduled_at=at, invocation_id=invocation_id),
                                  schedule.id)  # fmt: skip
        return invocation_id

    def _start_execution(self, schedule: Schedule, at: datetime) -> str | None:
        execution_id = tick_invocation_id(schedule.id, at, prefix="ex_")
        if self.workflows is None:
            return None
        if self.workflows.repo.execution_exists(execution_id):
            self.on_tick("taken", None)
            return None
        try:
            self.workflows.start(schedule.workflow_id, schedule.event.encode(),
                                 execution_id=execution_id, started_at=at)  # fmt: skip
        except errors.Conflict:
            self.on_tick("taken", None)
            return None
        except errors.NotFound:
            return None  # the workflow is gone; its schedules go with it
        self.on_tick("fired", (now() - at).total_seconds())
        self.schedules.record_run(ScheduleRun(scheduled_at=at, invocation_id=execution_id),
                                  schedule.id)  # fmt: skip
        return execution_id

    def _target(self, schedule: Schedule) -> Target:
        qualifier = schedule.qualifier
        if qualifier is None:
            return Target(schedule.function_id)
        if qualifier.isdigit():
            return Target(schedule.function_id, version=int(qualifier))
        return Target(schedule.function_id, alias=qualifier)

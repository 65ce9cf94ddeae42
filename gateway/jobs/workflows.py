"""The durable workflow runner: any worker continues any execution.

An execution is claimed under the record's lease (`store.leases`) by one
worker's driver thread, which walks its branches with the pure step
functions (`services/workflows/machine.py`) and writes the record after
every transition, before the next step starts. Task invocations run in a
bounded pool and report back to the driver; the driver alone writes.

- A crash loses at most the step in flight: the lease runs out, a scan on
  any worker claims the execution again, and a Task that was running is
  started again (at-least-once; its history shows a second TaskStarted).
- A `Wait` holds no thread: when every branch sleeps, the driver releases
  the execution with its due time in the record and in its queue marker's
  key, and a periodic scan claims it again when it is due.
- Parallel branches and Map items are branches of one record, run
  concurrently, bounded by `MaxConcurrency` and the worker's task pool.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from store import errors
from store.leases import Claim, LeaseLost, Leases
from store.records import (
    MAX_JSON_DEPTH,
    Branch,
    BranchPhase,
    Execution,
    ExecutionStatus,
    HistoryEvent,
    Trigger,
    nests_deeper_than,
    now,
)
from store.workflows import WorkflowRepo

from ..services.invoke import InvokeService
from ..services.workflows import machine as steps
from ..services.workflows.definition import Machine, Map, Parallel
from ..services.workflows.errors import DATA_LIMIT, RUNTIME, TIMEOUT
from ..services.workflows.service import WorkflowService

log = logging.getLogger("nimbus.workflows")

# A marker without its record is a start that crashed only past this (the record's write
# follows the marker's; a store's timeouts and retries end well before it).
ORPHAN_GRACE_SEC = 60.0
MAX_HISTORY = 25_000  # events per execution, as Step Functions (WORKFLOW_MAX_HISTORY_EVENTS)
TAIL_BYTES = 64 * 1024  # history carried in the record before a page is sealed early
_WAKE = object()  # put in a driver's queue to make it look at the runner's state


@dataclass
class _Flight:
    """A Task running in the pool for one branch."""

    token: int
    deadline: float | None  # the state's TimeoutSeconds, as a wall time
    future: Future


class WorkflowRunner:
    def __init__(
        self,
        repo: WorkflowRepo,
        service: WorkflowService,
        invoker: InvokeService,
        leases: Leases,
        *,
        concurrency: int,
        task_concurrency: int,
        lease_sec: float,
        max_attempts: int,
        max_history: int = MAX_HISTORY,
    ) -> None:
        self.repo = repo
        self.service = service
        self.invoker = invoker
        self.leases = leases
        self.concurrency = concurrency
        self.lease_sec = lease_sec
        self.max_attempts = max_attempts
        self.max_history = max_history
        self.task_concurrency = task_concurrency
        self._slots = threading.Semaphore(concurrency)
        self._drivers: ThreadPoolExecutor | None = None
        self._tasks: ThreadPoolExecutor | None = None
        self._held: set[str] = set()
        self._drives: set[_Drive] = set()
        self._leased_elsewhere: dict[str, float] = {}  # execution id → its lease's end
        self.hand_back_at = float("inf")  # monotonic: when stopping drivers give up on Tasks
        self._orphans: dict[str, float] = {}  # execution id → when first seen without record
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tokens = iter(range(1, 1 << 62))

    # -- finding work --------------------------------------------------------------

    def scan(self) -> None:
        """Claim every due execution this worker has room for (a periodic job)."""
        if self._drivers is None:
            return
        wall = time.time()
        # PERF(nimbus): an execution another worker holds is not read again before its
        # lease ends (one GET per scan per running execution per worker, otherwise).
        self._leased_elsewhere = {
            k: until for k, until in self._leased_elsewhere.items() if until > wall
        }
        for marker, execution_id in self.repo.due(wall):
            if self._stop.is_set():
                return
            if execution_id not in self._leased_elsewhere:
                self.adopt(marker, execution_id)

    def wake(self, execution: Execution) -> None:
        """A new execution: claim it now, off the request thread (else a scan will)."""
        if self._drivers is not None and not self._stop.is_set() and execution.marker:
            self._drivers.submit(self.adopt, execution.marker, execution.id)

    def adopt(self, marker: str, execution_id: str) -> bool:
        """Try to claim one execution and drive it in this worker."""
        with self._lock:
            if execution_id in self._held or not self._slots.acquire(blocking=False):
                return False
            self._held.add(execution_id)
        claim = None
        try:
            claim = self._claim(marker, execution_id)
        except errors.NimbusError as exc:
            log.warning("claiming execution %s: %s", execution_id, exc)
        finally:
            if claim is None:
                self._release_slot(execution_id)
        if claim is None:
            return False
        self._drivers.submit(self._drive_safely, claim)
        return True

    def _release_slot(self, execution_id: str) -> None:
        with self._lock:
            self._held.discard(execution_id)
        self._slots.release()

    def _claim(self, marker: str, execution_id: str) -> Claim[Execution] | None:
        def ready(execution: Execution) -> bool:
            if execution.final or execution.marker != marker:
                self.repo.drop_marker(marker)  # finished, or a marker left by a move
                return False
            if (execution.lease_until or 0) > time.time():
                self._leased_elsewhere[execution_id] = execution.lease_until
            return execution.due <= time.time()

        try:
            return self.repo.claim_execution(
                self.leases,
                execution_id,
                duration_sec=self.lease_sec,
                ready=ready,
                max_attempts=self.max_attempts,
                exhausted=self._give_up,
            )
        except errors.NotFound:
            # Its start crashed before the record was written, or is writing it now: the
            # marker goes only once it has stayed without a record for a while (on the
            # second look, as it was, a record slower to write than two scans lost its
            # marker, and with it any recovery of the execution after a crash).
            first_seen = self._orphans.setdefault(execution_id, time.monotonic())
            if time.monotonic() - first_seen >= ORPHAN_GRACE_SEC:
                self._orphans.pop(execution_id, None)  # adopt runs in several threads
                self.repo.drop_marker(marker)
            return None

    def _give_up(self, claim: Claim[Execution]) -> None:
        """Claimed too often without a clean release: its runners keep dying on it."""
        attempts = claim.record.attempts
        with contextlib.suppress(LeaseLost):
            _Drive(self, claim).end(
                ExecutionStatus.failed,
                error=RUNTIME,
                cause=f"the execution's runner stopped {attempts} times without finishing a step",
            )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Make the thread pools: in the worker, after the fork."""
        self._drivers = ThreadPoolExecutor(self.concurrency, thread_name_prefix="workflow")
        self._tasks = ThreadPoolExecutor(self.task_concurrency, thread_name_prefix="workflow-task")

    def stop(self, timeout: float = 5.0) -> None:
        """Claim nothing new; let Tasks in flight finish for most of `timeout`, then hand
        every execution back (released at once, so another worker need not wait out a lease)."""
        deadline = time.monotonic() + timeout
        self.hand_back_at = deadline - min(1.0, timeout / 4)
        self._stop.set()
        with self._lock:
            drives = list(self._drives)
        for drive in drives:
            drive.results.put(_WAKE)
        while self._held and time.monotonic() < deadline:
            time.sleep(0.05)
        for pool in (self._drivers, self._tasks):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _drive_safely(self, claim: Claim[Execution]) -> None:
        drive = _Drive(self, claim)
        with self._lock:
            self._drives.add(drive)
        try:
            drive.run()
        except LeaseLost:
            log.info("execution %s was taken over or stopped", claim.record.id)
        except Exception:
            log.exception("execution %s: driver crashed; its lease will run out", claim.record.id)
        finally:
            with self._lock:
                self._drives.discard(drive)
            self._release_slot(claim.record.id)

    # -- invoking a Task (in the task pool) ------------------------------------------------

    def invoke(self, execution_id: str, state: str, invoke: steps.Invoke) -> tuple:
        """("ok", output, invocation id) or ("error", name, cause, invocation id)."""
        invocation_id = self.invoker.new_invocation_id()
        context = {"execution_id": execution_id, "workflow_state": state}
        try:
            done = self.invoker.invoke(
                invoke.resource,
                orjson.dumps(invoke.payload),
                context,
                trigger=Trigger.workflow,
                invocation_id=invocation_id,
                source=execution_id,  # the function's logs name the execution
            )
        except errors.Timeout as exc:
            return ("error", TIMEOUT, exc.message, invocation_id)
        except errors.NimbusError as exc:
            return ("error", _platform_error(exc.code), exc.message, invocation_id)
        result = done.result
        if result.error is not None:
            return (
                "error",
                result.error.type or "States.TaskFailed",
                result.error.message,
                invocation_id,
            )
        if result.content_type != "application/json":
            return ("ok", result.output.decode(errors="replace"), invocation_id)
        output = orjson.loads(result.output)
        if nests_deeper_than(output):  # NOTE: orjson writes 254 levels at most (reads 1,024)
            cause = f"the result nests deeper than {MAX_JSON_DEPTH} levels"
            return ("error", DATA_LIMIT, cause, invocation_id)
        return ("ok", output, invocation_id)


def _platform_error(code: str) -> str:
    """`memory_limit_exceeded` → `Nimbus.MemoryLimitExceeded`: a name Retry/Catch can match."""
    return "Nimbus." + "".join(part.capitalize() for part in code.split("_"))


class _Drive:
    """One claimed execution, driven until it ends, sleeps, or its lease is lost."""

    def __init__(self, runner: WorkflowRunner, claim: Claim[Execution]) -> None:
        self.runner = runner
        self.claim = claim
        self.ex = claim.record
        self.results: queue.Queue = queue.Queue()
        self.flights: dict[int, _Flight] = {}
        self._machines: dict[str, Machine] | None = None
        self._dirty = False  # events since the last write
        self._tail_bytes = 0  # roughly, the history tail's JSON since the last seal

    # -- the loop --------------------------------------------------------------------

    def run(self) -> None:
        ex = self.ex
        self.event(
            "ExecutionClaimed" if ex.history_count > 1 else "ExecutionRunning",
            details={"owner": self.runner.leases.owner, "attempt": ex.attempts},
        )
        self.commit()
        while not self.ex.final:
            if ex.deadline is not None and time.time() >= ex.deadline:
                self.end(
                    ExecutionStatus.timed_out,
                    error=TIMEOUT,
                    cause="the execution ran past the definition's TimeoutSeconds",
                )
                return
            if self.runner.stopping:  # no new steps; Tasks in flight may still finish
                if not self.flights or time.monotonic() >= self.runner.hand_back_at:
                    return self.hand_back()
                self.await_task()
                continue
            branch = self._runnable()
            if branch is not None:
                self.step(branch)
                self.commit()
                continue
            if not self.flights:
                return self.sleep()
            self.await_task()

    def _runnable(self) -> Branch | None:
        wall = time.time()
        for branch in self.ex.branches.values():
            if not branch.started:
                continue
            if branch.phase == BranchPhase.enter:
                return branch
            if branch.phase == BranchPhase.sleep and (branch.due or 0) <= wall:
                return branch
            if branch.phase == BranchPhase.task and branch.id not in self.flights:
                return branch  # in flight when a runner died: run it again
        return None

    def await_task(self) -> None:
        wall = time.time()
        wake = [wall + self.runner.lease_sec / 3]
        wake += [
            b.due
            for b in self.ex.branches.values()
            if b.phase == BranchPhase.sleep and b.due is not None
        ]
        wake += [f.deadline for f in self.flights.values() if f.deadline is not None]
        if self.ex.deadline is not None:
            wake.append(self.ex.deadline)
        if self.runner.stopping:
            wake.append(wall + max(0.0, self.runner.hand_back_at - time.monotonic()))
        try:
            item = self.results.get(timeout=max(0.0, min(wake) - wall))
            if item is _WAKE:
                return
            branch_id, token, outcome = item
        except queue.Empty:
            self._time_out_tasks()
            if not self._dirty:
                self.runner.leases.renew(self.claim)  # nothing happened: keep the lease
            return
        flight = self.flights.get(branch_id)
        if flight is None or flight.token != token or branch_id not in self.ex.branches:
            return  # timed out, or its branch ended meanwhile
        del self.flights[branch_id]
        self.task_done(self.ex.branches[branch_id], outcome)

    def _time_out_tasks(self) -> None:
        wall = time.time()
        for branch_id, flight in list(self.flights.items()):
            if flight.deadline is not None and flight.deadline <= wall:
                del self.flights[branch_id]
                self.task_done(
                    self.ex.branches[branch_id],
                    ("error", TIMEOUT, "the Task ran past its TimeoutSeconds", None),
                )

    # -- one step of one branch ----------------------------------------------------------

    def machine(self, branch: Branch) -> Machine:
        if self._machines is None:
            root = self.runner.service.machine(self.ex.workflow_id, self.ex.workflow_version)
            self._machines = {m.where: m for m in _machines(root)}
        return self._machines[branch.machine]

    def context(self, branch: Branch) -> dict:
        ex = self.ex
        execution = {
            "Execution": {
                "Id": ex.id,
                "Input": ex.input,
                "StartTime": _rfc3339(ex.started_at),
                "Name": ex.id,
            },
            "StateMachine": {
                "Id": ex.workflow_id,
                "Name": ex.workflow_name,
                "Version": ex.workflow_version,
            },
        }
        retries = sum(branch.retries.values())
        item = tuple(branch.item) if branch.item is not None else None
        return steps.context_for(
            execution, branch.state, _rfc3339(branch.entered_at), retries, item
        )

    def step(self, branch: Branch) -> None:
        machine = self.machine(branch)
        name = branch.state
        state_type = machine.states[name].Type
        if branch.phase == BranchPhase.task:  # in flight when a runner died: run it again
            return self.launch(branch, machine, resumed=True)
        if branch.phase == BranchPhase.sleep and branch.resume == "wait":
            self.event("WaitStateExited", branch, {"output": branch.carry})
            return self.apply(branch, steps.after_wait(machine, name, branch.carry), exited=False)
        retrying = branch.phase == BranchPhase.sleep  # a Retry's backoff is over
        if not retrying:
            branch.entered_at = now()
            self.event(f"{state_type}StateEntered", branch, {"input": branch.input})
        outcome = steps.enter(machine, name, branch.input, self.context(branch))
        self.apply(branch, outcome)

    def apply(self, branch: Branch, outcome, *, exited: bool = True) -> None:
        """Write down what a step decided; start the effect only after the write."""
        machine = self.machine(branch)
        state_type = machine.states[branch.state].Type
        if isinstance(outcome, steps.Goto):
            if exited and state_type not in ("Fail",):
                self.event(f"{state_type}StateExited", branch, {"output": outcome.output})
            if outcome.next is None:
                branch.phase, branch.output = BranchPhase.done, outcome.output
                self.branch_ended(branch)
            else:
                branch.state, branch.input = outcome.next, outcome.output
                branch.phase, branch.retries, branch.task_starts = BranchPhase.enter, {}, 0
            self.commit()
        elif isinstance(outcome, steps.Stop):
            branch.phase, branch.error, branch.cause = (
                BranchPhase.failed,
                outcome.error,
                outcome.cause,
            )
            self.branch_ended(branch)
            self.commit()
        elif isinstance(outcome, steps.Invoke):
            branch.phase = BranchPhase.task
            self.event(
                "TaskScheduled",
                branch,
                {"resource": outcome.resource, "parameters": outcome.payload},
            )
            self.launch(branch, machine, outcome)
        elif isinstance(outcome, steps.Sleep):
            branch.phase, branch.due, branch.carry = BranchPhase.sleep, outcome.until, outcome.carry
            branch.resume = "wait"
            self.event("WaitScheduled", branch, {"until": outcome.until})
            self.commit()
        elif isinstance(outcome, steps.Fork):
            self.fork(branch, outcome, state_type)
            self.commit()
        elif isinstance(outcome, steps.RetryLater):
            attempt = branch.retries.get(outcome.retrier, 0) + 1
            branch.retries[outcome.retrier] = attempt
            branch.phase, branch.due, branch.resume = (
                BranchPhase.sleep,
                time.time() + outcome.delay_sec,
                "enter",
            )
            self.event(
                "RetryScheduled",
                branch,
                {"retrier": outcome.retrier, "attempt": attempt, "delay_sec": outcome.delay_sec},
            )
            self.commit()

    def launch(
        self,
        branch: Branch,
        machine: Machine,
        invoke: steps.Invoke | None = None,
        *,
        resumed: bool = False,
    ) -> None:
        """Start a Task once its TaskStarted event is durable."""
        if invoke is None:  # resumed after a crash: work out the same call again
            invoke = steps.enter(machine, branch.state, branch.input, self.context(branch))
            if not isinstance(invoke, steps.Invoke):
                return self.apply(branch, invoke)
        branch.task_starts += 1
        self.event("TaskStarted", branch, {"attempt": branch.task_starts, "resumed": resumed})
        self.commit()
        token = next(self.runner._tokens)
        deadline = time.time() + invoke.timeout_sec if invoke.timeout_sec else None
        future = self.runner._tasks.submit(self.runner.invoke, self.ex.id, branch.state, invoke)
        self.flights[branch.id] = _Flight(token, deadline, future)
        future.add_done_callback(
            lambda f, b=branch.id, t=token: self.results.put((b, t, _result_of(f)))
        )

    def task_done(self, branch: Branch, outcome: tuple) -> None:
        machine = self.machine(branch)
        if outcome[0] == "ok":
            _, output, invocation_id = outcome
            self.event("TaskSucceeded", branch, {"output": output, "invocation_id": invocation_id})
            self.apply(
                branch,
                steps.complete(machine, branch.state, branch.input, output, self.context(branch)),
            )
            return
        _, error, cause, invocation_id = outcome
        kind = "TaskTimedOut" if error == TIMEOUT else "TaskFailed"
        self.event(kind, branch, {"error": error, "cause": cause, "invocation_id": invocation_id})
        self.failed(branch, error, cause)

    def failed(self, branch: Branch, error: str, cause: str) -> None:
        """A Task, Parallel or Map failed: its Retry and Catch decide."""
        machine = self.machine(branch)
        outcome = steps.on_error(machine, branch.state, branch.input, error, cause, branch.retries)
        if isinstance(outcome, steps.Goto):
            self.event("CaughtError", branch, {"error": error, "next": outcome.next})
            self.apply(branch, outcome, exited=True)
        else:
            self.apply(branch, outcome)

    # -- Parallel and Map --------------------------------------------------------------

    def fork(self, branch: Branch, fork: steps.Fork, state_type: str) -> None:
        ex = self.ex
        branch.phase, branch.children = BranchPhase.fork, []
        branch.max_concurrency = fork.max_concurrency
        is_map = isinstance(self.machine(branch).states[branch.state], Map)
        for index, (machine, data) in enumerate(zip(fork.machines, fork.inputs, strict=True)):
            child = Branch(
                id=ex.next_branch,
                parent=branch.id,
                index=index,
                machine=machine.where,
                state=machine.start_at,
                input=data,
                item=[index, data] if is_map else None,
                started=fork.max_concurrency == 0 or index < fork.max_concurrency,
            )
            ex.next_branch += 1
            ex.branches[child.id] = child
            branch.children.append(child.id)
        self.event(f"{state_type}StateStarted", branch, {"length": len(fork.inputs)})
        if not fork.inputs:  # an empty Map ends at once
            self.apply(
                branch,
                steps.complete(
                    self.machine(branch), branch.state, branch.input, [], self.context(branch)
                ),
            )

    def branch_ended(self, branch: Branch) -> None:
        ex = self.ex
        if branch.parent is None:
            if branch.phase == BranchPhase.done:
                self.end(ExecutionStatus.succeeded, output=branch.output)
            else:
                self.end(ExecutionStatus.failed, error=branch.error, cause=branch.cause)
            return
        parent = ex.branches[branch.parent]
        label = "MapIteration" if branch.item is not None else "ParallelBranch"
        if branch.phase == BranchPhase.failed:
            self.event(f"{label}Failed", branch, {"index": branch.index, "error": branch.error})
            self._drop_children(parent)
            self.failed(parent, branch.error or "States.BranchFailed", branch.cause or "")
            return
        self.event(f"{label}Succeeded", branch, {"index": branch.index})
        children = [ex.branches[c] for c in parent.children]
        waiting = [c for c in children if not c.started]
        if waiting:
            waiting[0].started = True
        if all(c.phase == BranchPhase.done for c in children):
            outputs = [c.output for c in sorted(children, key=lambda c: c.index)]
            self._drop_children(parent)
            state_type = self.machine(parent).states[parent.state].Type
            self.event(f"{state_type}StateSucceeded", parent)
            self.apply(
                parent,
                steps.complete(
                    self.machine(parent), parent.state, parent.input, outputs, self.context(parent)
                ),
            )

    def _drop_children(self, parent: Branch) -> None:
        for child_id in parent.children:
            child = self.ex.branches.pop(child_id, None)
            self.flights.pop(child_id, None)
            if child is not None:
                self._drop_children(child)
        parent.children = []

    # -- writing ---------------------------------------------------------------------

    def event(self, kind: str, branch: Branch | None = None, details: dict | None = None) -> None:
        """Every transition adds an event, so an event marks the record as needing a write."""
        self._dirty = True
        self._tail_bytes += len(orjson.dumps(details)) if details else 0
        ex = self.ex
        ex.history_count += 1
        ex.history_tail.append(
            HistoryEvent(
                id=ex.history_count,
                type=kind,
                details=details or {},
                state=branch.state if branch is not None else None,
                branch=branch.id if branch is not None else None,
            )
        )

    def _seal(self) -> None:
        """PERF(nimbus): every write carries the history tail, so a tail of large events
        (a Map's inputs and outputs) is sealed into a page early instead of rewritten."""
        if self.runner.repo.seal_history(self.ex, whole_tail=self._tail_bytes > TAIL_BYTES):
            self._tail_bytes = 0

    def commit(self) -> None:
        """One transition, durable before the next step: the record's conditional write."""
        if self.ex.final or not self._dirty:
            return
        if self.ex.history_count > self.runner.max_history:
            self.end(
                ExecutionStatus.failed,
                error=RUNTIME,
                cause=f"the history passed {self.runner.max_history} events",
            )
            return
        self._seal()
        self.runner.leases.renew(self.claim)
        self._dirty = False

    def end(
        self,
        status: ExecutionStatus,
        *,
        output: Any = None,
        error: str | None = None,
        cause: str | None = None,
    ) -> None:
        """The execution's one final state, written with the lease released."""
        ex = self.ex
        ex.status, ex.output, ex.error, ex.cause = status, output, error, cause
        ex.stopped_at = now()
        kind = {
            "succeeded": "ExecutionSucceeded",
            "failed": "ExecutionFailed",
            "timed_out": "ExecutionTimedOut",
        }[status.value]
        details = (
            {"output": output}
            if status == ExecutionStatus.succeeded
            else {"error": error, "cause": cause}
        )
        self.event(kind, None, details)
        marker, ex.marker = ex.marker, None
        ex.branches = {}
        self._seal()
        self.runner.leases.finish(self.claim, lambda record: None)
        self._dirty = False
        self.runner.repo.drop_marker(marker)

    def sleep(self) -> None:
        """Every branch sleeps: release the execution until the first one wakes."""
        dues = [
            b.due
            for b in self.ex.branches.values()
            if b.phase == BranchPhase.sleep and b.due is not None
        ]
        if not dues:  # nothing to run and nothing to wait for: a bug; look again later
            log.error("execution %s has no branch to run", self.ex.id)
        if self.ex.deadline is not None:
            dues.append(self.ex.deadline)  # the execution's own timeout ends a sleep too
        self._release(min(dues, default=time.time() + self.runner.lease_sec))

    def hand_back(self) -> None:
        """This worker is stopping: let another take the execution at once."""
        for branch_id in list(self.flights):
            self.flights.pop(branch_id)  # its Task runs again where the execution goes next
        self._release(time.time())

    def _release(self, due: float) -> None:
        ex = self.ex
        old = self.runner.repo.move_marker(ex, due)
        ex.due = due
        self._seal()

        def release(record: Execution) -> None:
            record.attempts = 0  # a clean release: no runner died on it

        self.runner.leases.finish(self.claim, release)
        self._dirty = False
        self.runner.repo.drop_marker(old)


def _result_of(future: Future) -> tuple:
    try:
        return future.result()
    except Exception as exc:  # a bug or a store failure while invoking: a named error
        log.exception("workflow task crashed")
        return ("error", "States.TaskFailed", f"internal error: {exc}", None)


def _machines(machine: Machine):
    yield machine
    for state in machine.states.values():
        if isinstance(state, Parallel):
            for branch in state.branches:
                yield from _machines(branch)
        elif isinstance(state, Map):
            yield from _machines(state.processor)


def _rfc3339(value) -> str:
    return value.isoformat().replace("+00:00", "Z")

"""Native functions: Linux x86-64 binaries in Docker containers, warm between calls.

One `NativeExecutor` per worker process (made after the fork, like the
wasmtime engine). Each function version gets its own containers — never
shared across functions — started on its first call in this worker and
kept warm: the agent inside (PID 1, sandbox/agent/agent.c) runs the binary
once per call in a fresh process, kills whatever it left behind and empties
/tmp before the next. A warm call is a round trip over a unix socket; only a
cold call talks to the engine. Idle containers are removed after
`idle_sec`; a container found dead (the engine restarted, someone removed
it) is replaced on the next call.

Every container: network mode none, read-only root, a small /tmp tmpfs,
memory = the function's memory_mb, a pids limit, all capabilities dropped,
no-new-privileges, user 65534, and the binary bind-mounted read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from store import Store, errors

from . import _docker_agent as agent
from ._docker_agent import AgentChannel, AgentGone, AgentListener, AgentReply, AgentSilent
from ._docker_config import NativeConfig
from ._docker_engine import ContainerSpec, Engine, EngineBusy, unavailable
from ._limits import ConcurrencyGate
from ._module import context_json
from ._outcome import (
    FAILED,
    MEMORY,
    OK,
    TIMEOUT,
    TOO_LARGE,
    Outcome,
    exit_failure,
    reported_failure,
    to_result,
    truncation_note,
)
from ._types import LOG_LIMIT_BYTES, RESULT_LIMIT_BYTES, Deployment, FunctionFailure, InvokeResult
from ._worker import deployment_key

log = logging.getLogger("nimbus.sandbox.native")


@dataclass(eq=False)
class WarmContainer:
    id: str
    name: str
    key: tuple
    channel: AgentChannel
    last_used: float
    calls: int = 0


class WarmPool:
    """Idle containers by deployment; the most recently used is handed out first."""

    def __init__(self, per_key: int, total: int) -> None:
        self._per_key = per_key
        self._total = total
        self._lock = threading.Lock()
        self._idle: OrderedDict[tuple, list[WarmContainer]] = OrderedDict()
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    def take(self, key: tuple) -> WarmContainer | None:
        with self._lock:
            idle = self._idle.get(key)
            if not idle:
                return None
            self._count -= 1
            found = idle.pop()
            if not idle:
                del self._idle[key]
            return found

    def has(self, key: tuple) -> bool:
        with self._lock:
            return bool(self._idle.get(key))

    def give_back(self, container: WarmContainer) -> list[WarmContainer]:
        """Keep `container` idle; what no longer fits is returned, for removal."""
        evicted: list[WarmContainer] = []
        with self._lock:
            idle = self._idle.setdefault(container.key, [])
            self._idle.move_to_end(container.key)
            if len(idle) >= self._per_key:
                evicted.append(container)
            else:
                idle.append(container)
                self._count += 1
            while self._count > self._total:
                key, oldest = next(iter(self._idle.items()))
                evicted.append(oldest.pop(0))
                self._count -= 1
                if not oldest:
                    del self._idle[key]
        return evicted

    def expired(self, cutoff: float) -> list[WarmContainer]:
        """Take out every container last used before `cutoff`."""
        out: list[WarmContainer] = []
        with self._lock:
            for key in list(self._idle):
                idle = self._idle[key]
                keep = [c for c in idle if c.last_used >= cutoff]
                out.extend(c for c in idle if c.last_used < cutoff)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
            self._count -= len(out)
        return out

    def drain(self) -> list[WarmContainer]:
        with self._lock:
            out = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
            self._count = 0
        return out


class BinaryCache:
    """Function binaries on local disk, by sha256, read-only: what containers bind-mount."""

    def __init__(self, store: Store, directory: Path) -> None:
        self._store = store
        self._dir = directory
        self._known: set[str] = set()

    def path(self, dep: Deployment) -> Path:
        sha = dep.artifact_sha256
        path = self._dir / sha
        if sha in self._known or path.exists():
            self._known.add(sha)
            return path
        self._dir.mkdir(parents=True, exist_ok=True)
        tmp = self._dir / f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            self._store.get_file(dep.artifact_key, tmp)
            digest = hashlib.sha256()
            with open(tmp, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != sha:
                raise errors.Invalid(
                    f"the stored binary {dep.artifact_key} does not match its sha256"
                )
            os.chmod(tmp, 0o555)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._known.add(sha)
        return path


class NativeExecutor:
    """Runs native deployments for one worker process."""

    def __init__(self, store: Store, config: NativeConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        self.engine = Engine(config)
        self._binaries = BinaryCache(store, config.work_dir / "bin")
        self._run_dir = config.work_dir / "run"
        self._pool = WarmPool(config.max_idle_per_function, config.max_idle_total)
        self._owner = f"{socket.gethostname()}:{self.pid}"
        self._nonce = secrets.token_hex(3)
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._busy = 0
        self._started = 0
        self._removals: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    # -- public -----------------------------------------------------------------

    def prepare(self, dep: Deployment) -> None:
        """Start one warm container for `dep` unless one is idle already."""
        key = deployment_key(dep)
        if not self._pool.has(key):
            self._keep(self._start(dep, key))

    def invoke(
        self, dep: Deployment, event: bytes, context: dict, gate: ConcurrencyGate
    ) -> InvokeResult:
        gate.acquire(dep.memory_mb, dep.function_id)
        try:
            return self._invoke(dep, event, context_json(dep, context))
        finally:
            gate.release(dep.memory_mb, dep.function_id)

    def stats(self) -> dict[str, int]:
        return {
            "native_idle": self._pool.count,
            "native_busy": self._busy,
            "native_started": self._started,
        }

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._reaper is not None:
            self._reaper.join(5)
        for container in self._pool.drain():
            container.channel.close()  # the agent exits; the engine removes its container
        self._remove_pending()
        self.engine.close()

    # -- one call -----------------------------------------------------------------

    def _invoke(self, dep: Deployment, event: bytes, context: bytes) -> InvokeResult:
        began = time.perf_counter()
        key = deployment_key(dep)
        container, cold = self._acquire(dep, key)
        init_ms = (time.perf_counter() - began) * 1000 if cold else 0.0
        with self._lock:
            self._busy += 1
        try:
            try:
                reply = self._call(container, dep, event, context)
            except AgentGone:
                self._discard(container)
                if cold:
                    raise unavailable("the function's container died while starting") from None
                # A warm container that died under us (the engine restarted): the
                # function has no side effects outside its container, so run it
                # once more in a fresh one.
                log.warning("native container %s died during a call; retrying", container.name)
                container, cold = self._start(dep, key), True
                init_ms = (time.perf_counter() - began) * 1000
                try:
                    reply = self._call(container, dep, event, context)
                except AgentGone:
                    self._discard(container)
                    raise unavailable("the function's container died during the call") from None
        except AgentSilent:
            self._discard(container)
            outcome = Outcome(TIMEOUT, duration_ms=(time.perf_counter() - began) * 1000)
            return to_result(dep, outcome, cold, init_ms)
        finally:
            with self._lock:
                self._busy -= 1
        if reply.dirty or reply.status == agent.SPAWN_FAILED:
            self._discard(container)
        else:
            self._keep(container)
        return to_result(dep, _outcome(reply, container.channel), cold, init_ms)

    def _call(
        self, container: WarmContainer, dep: Deployment, event: bytes, context: bytes
    ) -> AgentReply:
        reply = container.channel.call(
            event,
            context,
            timeout_sec=dep.timeout_sec,
            out_limit=RESULT_LIMIT_BYTES,
            log_limit=LOG_LIMIT_BYTES,
            grace_sec=self.config.grace_sec,
        )
        container.calls += 1
        return reply

    # -- containers ---------------------------------------------------------------

    def _acquire(self, dep: Deployment, key: tuple) -> tuple[WarmContainer, bool]:
        while (container := self._pool.take(key)) is not None:
            if container.channel.alive():
                return container, False
            log.info("native container %s is gone; replacing it", container.name)
            self._discard(container)
        return self._start(dep, key), True

    def _start(self, dep: Deployment, key: tuple) -> WarmContainer:
        """A new container for `dep`, its agent configured. A start the engine was too
        slow or too busy for is tried once more in a fresh container: on a loaded
        host the second try usually gets through, and a 503 costs the caller more."""
        try:
            return self._start_once(dep, key)
        except EngineBusy as exc:
            log.warning("native container start failed (%s); trying once more", exc)
        return self._start_once(dep, key)

    def _start_once(self, dep: Deployment, key: tuple) -> WarmContainer:
        binary = self._binaries.path(dep)
        name = f"nimbus-{dep.function_name[:40]}-v{dep.version}-{self._nonce}-{next(self._serial)}"
        token = secrets.token_hex(16)
        self._run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        listener = AgentListener(self._run_dir / name)
        try:
            try:
                container_id = self.engine.run(
                    ContainerSpec(
                        name=name,
                        binary=binary,
                        socket_dir=listener.directory,
                        token=token,
                        memory_mb=dep.memory_mb,
                        labels={
                            "nimbus.function": dep.function_id,
                            "nimbus.version": str(dep.version),
                            "nimbus.owner": self._owner,
                        },
                    )
                )
            except EngineBusy:
                self._remove_later(name)  # the engine may have made it after all
                raise
            try:
                channel = listener.accept(token, self.config.start_timeout_sec)
                channel.configure(dep.function_name, dep.env_vars)
            except (AgentSilent, AgentGone) as exc:
                self._remove_later(container_id)
                raise EngineBusy(
                    f"the function's container did not start its agent: {exc}"
                ) from None
        finally:
            listener.close()
        with self._lock:
            self._started += 1
        self._ensure_reaper()
        return WarmContainer(container_id, name, key, channel, time.monotonic())

    def _keep(self, container: WarmContainer) -> None:
        container.last_used = time.monotonic()
        for evicted in self._pool.give_back(container):
            self._discard(evicted)

    def _discard(self, container: WarmContainer) -> None:
        """Close the agent's connection (it exits) and have the reaper remove the container."""
        container.channel.close()
        self._remove_later(container.id)

    def _remove_later(self, container: str) -> None:
        """Have the reaper remove a container (by id or name), off the caller's path."""
        self._ensure_reaper()
        with self._lock:
            self._removals.append(container)
        self._wake.set()

    def _ensure_reaper(self) -> None:
        if self._reaper is not None:
            return
        with self._lock:
            if self._reaper is None:
                self._reaper = threading.Thread(
                    target=self._reap_loop, name="nimbus-native-reaper", daemon=True
                )
                self._reaper.start()

    def _reap_loop(self) -> None:
        every = min(5.0, max(0.2, self.config.idle_sec / 4))
        while not self._stop.is_set():
            self._wake.wait(every)
            self._wake.clear()
            for container in self._pool.expired(time.monotonic() - self.config.idle_sec):
                log.debug("native container %s idle; removing it", container.name)
                self._discard(container)
            self._remove_pending()

    def _remove_pending(self) -> None:
        with self._lock:
            pending, self._removals = self._removals, []
        for container_id in pending:
            self.engine.remove(container_id)


def _outcome(reply: AgentReply, channel: AgentChannel) -> Outcome:
    logs = reply.stderr
    if reply.log_dropped:
        logs += truncation_note(reply.log_dropped)
    base = {"logs": logs, "duration_ms": reply.elapsed_ms}
    status, code = reply.status, reply.code
    if status == agent.EXITED:
        if code == 0:
            return Outcome(OK, output=reply.stdout, **base)
        reported = reported_failure(reply.stderr)  # the handler glue's error record
        if reported is None:
            return Outcome(FAILED, output=reply.stdout, failure=exit_failure(code), **base)
        failure, before = reported
        note = truncation_note(reply.log_dropped) if reply.log_dropped else b""
        base["logs"] = before + note
        return Outcome(FAILED, output=reply.stdout, failure=failure, **base)
    if status == agent.SIGNALED:
        if code == signal.SIGKILL and not channel.oom_detection:
            return Outcome(MEMORY, **base)  # no OOM counter to tell: the likeliest cause
        return Outcome(FAILED, output=reply.stdout, failure=_signal_failure(code), **base)
    if status == agent.TIMED_OUT:
        return Outcome(TIMEOUT, **base)
    if status == agent.TOO_LARGE:
        return Outcome(TOO_LARGE, **base)
    if status == agent.MEMORY:
        return Outcome(MEMORY, **base)
    if status == agent.SPAWN_FAILED:
        failure = FunctionFailure(
            type="SpawnError", message=f"could not start the function: {os.strerror(code)}"
        )
        return Outcome(FAILED, failure=failure, **base)
    raise AgentGone(f"unknown status {status} from the agent")


def _signal_failure(number: int) -> FunctionFailure:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return FunctionFailure(type="Signal", message=f"function killed by {name} (signal {number})")


class NativeExecutors:
    """The `Sandbox`'s handle on native execution: one executor per process, made
    on first use (after gunicorn's fork) and never used across a fork."""

    def __init__(self, store: Store, config: NativeConfig | None) -> None:
        self._store = store
        self._config = config
        self._lock = threading.Lock()
        self._executor: NativeExecutor | None = None

    def get(self) -> NativeExecutor:
        if self._config is None:
            raise unavailable("native functions need a container engine; none is configured")
        executor = self._executor
        if executor is not None and executor.pid == os.getpid():
            return executor
        with self._lock:
            if self._executor is None or self._executor.pid != os.getpid():
                self._executor = NativeExecutor(self._store, self._config)
            return self._executor

    def invoke(
        self, dep: Deployment, event: bytes, context: dict, gate: ConcurrencyGate
    ) -> InvokeResult:
        return self.get().invoke(dep, event, context, gate)

    def prepare(self, dep: Deployment) -> None:
        self.get().prepare(dep)

    def stats(self) -> dict[str, int]:
        executor = self._executor
        if executor is None or executor.pid != os.getpid():
            return {"native_idle": 0, "native_busy": 0, "native_started": 0}
        return executor.stats()

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None and executor.pid == os.getpid():
            executor.close()

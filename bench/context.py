"""What every comparison gets: the run's parameters, a scratch folder and shared servers."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from .baseline import BaselineServer
from .servers import NimbusServer
from .wasm import b64, echo_module


@dataclass(frozen=True)
class Params:
    """How long and how often to measure. `--quick` must stay under 2 minutes in all."""

    wrk_duration_s: float
    wrk_warmup_s: float
    http_reps: int
    http_connections: tuple[int, ...]
    inproc_reps: int
    inproc_calls: int
    cold_reps: int
    profile_s: float
    # runtime-load (every runtime's hello + transform vs the echo) and store-backends
    load_duration_s: float
    load_warmup_s: float
    load_reps: int
    load_connections: tuple[int, ...]
    store_reps: int
    # runtime-cold-start and runtimes (issue 8 item 2, issue 6's Python/JS rows)
    runtime_cold_reps: int
    runtime_deploy_reps: int
    runtime_calls: int  # invocations after the first, in each fresh worker

    # density and scale-from-zero (issue 8 items 5 and 6)
    density_counts: tuple[tuple[str, tuple[int, ...]], ...]  # runtime -> function counts
    density_wrk_s: int  # each round-robin load (wrk takes whole seconds)
    density_reps: int  # N-function and 1-function loads, alternating
    density_connections: int
    scale_reps: int  # starts of each server kind
    # pooling (issue 19): the allocators side by side at 16 connections
    pool_duration_s: float
    pool_reps: int
    # replicas (issue 18): 3 replicas vs 1 on one SeaweedFS store
    replicas_reps: int
    replicas_idle_s: float  # no traffic: the background runners' polling alone
    replicas_settle_s: float  # before the idle window: empty queues' polls back off (≤ 5 s)
    replicas_invocations: int  # one async burst per side and repetition
    replicas_backlog: int  # a deep async queue, listed as a dispatcher pass lists it

    @classmethod
    def quick(cls) -> Params:
        return cls(
            wrk_duration_s=3,
            wrk_warmup_s=1,
            http_reps=2,
            http_connections=(1, 16),
            inproc_reps=3,
            inproc_calls=300,
            cold_reps=3,
            profile_s=5,
            load_duration_s=1,
            load_warmup_s=0,  # the check request warms one worker; the smoke needs no more
            load_reps=1,
            load_connections=(16,),
            store_reps=2,
            runtime_cold_reps=1,  # a smoke: one fresh worker per row
            runtime_deploy_reps=1,
            runtime_calls=20,
            density_counts=(("python", (10,)),),
            density_wrk_s=1,
            density_reps=1,
            density_connections=8,
            scale_reps=1,  # one start of each kind: a smoke, not a median
            pool_duration_s=1,
            pool_reps=1,
            replicas_reps=1,
            replicas_idle_s=2,
            replicas_settle_s=1,
            replicas_invocations=60,
            replicas_backlog=1100,  # two LIST pages
        )

    @classmethod
    def full(cls) -> Params:
        return cls(
            # NOTE: http-invoke and async-invoke both run 2 × reps × connections
            # wrk runs of this length: 3 × 6 s keeps them near 80 s each.
            wrk_duration_s=6,
            wrk_warmup_s=2,
            http_reps=3,
            http_connections=(1, 16),
            inproc_reps=7,
            inproc_calls=2000,
            cold_reps=12,
            profile_s=10,
            load_duration_s=2,
            load_warmup_s=1,
            load_reps=3,
            load_connections=(1, 16),
            store_reps=5,
            runtime_cold_reps=3,
            runtime_deploy_reps=2,
            runtime_calls=100,
            density_counts=(
                ("python", (10, 100)),
                # NOTE: 1000 JS functions deploy in ~50 s here; 1000 Python ones take
                # ~125 s (0.12 s each) and would break the 4-minute budget.
                ("javascript", (10, 100, 1000)),
                # C reaches 1000 (~80 s of deploys here): the compiled-module case
                # of LOADED_ARTIFACTS (round-robin over more than it reloads from disk).
                ("c", (10, 100, 1000)),
                ("rust", (10,)),
                # NOTE: each distinct Go module is precompiled at deploy (~7-15 s here):
                # 3 take ~30 s; 100 would take 12-25 minutes.
                ("go", (3,)),
            ),
            density_wrk_s=2,
            density_reps=2,
            density_connections=8,
            scale_reps=5,
            pool_duration_s=4,
            pool_reps=3,
            replicas_reps=3,
            replicas_idle_s=10,
            replicas_settle_s=8,
            replicas_invocations=400,
            replicas_backlog=5000,
        )


class BenchContext:
    """Shared by the comparisons of one run; servers start on first use and stop at close."""

    ECHO_FUNCTION = "bench-echo"

    def __init__(self, *, quick: bool, workdir: Path, results_dir: Path) -> None:
        self.quick = quick
        self.params = Params.quick() if quick else Params.full()
        self.workdir = workdir
        self.results_dir = results_dir
        self.log_dir = workdir / "logs"
        self.profiles: dict[str, str] = {}  # comparison key -> profile path (relative)
        self._stack = contextlib.ExitStack()
        self._baseline: BaselineServer | None = None
        self._defaults_echo: BaselineServer | None = None
        self._nimbus: NimbusServer | None = None
        self._deployed: set[str] = set()
        self._starts = 0

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def baseline(self) -> BaselineServer:
        if self._baseline is None:
            server = BaselineServer(self.log_dir)
            self._stack.callback(server.stop)
            self._baseline = server.start()
        return self._baseline

    def defaults_echo(self) -> BaselineServer:
        """The same echo under gunicorn's own defaults (one sync worker)."""
        if self._defaults_echo is None:
            server = BaselineServer(self.log_dir, name="echo-gunicorn-defaults",
                                    ECHO_GUNICORN_DEFAULTS="1")  # fmt: skip
            self._stack.callback(server.stop)
            self._defaults_echo = server.start()
        return self._defaults_echo

    def nimbus(self) -> NimbusServer:
        if self._nimbus is None:
            self._starts += 1  # a new data dir each time: nothing carries over
            server = NimbusServer(
                self.scratch(f"nimbus-data-{self._starts}"),
                self.log_dir,
                # The async flood measures the accept path: one function may fill the
                # whole queue here (the default per-function share is 1,000).
                ASYNC_MAX_QUEUED_PER_FUNCTION="10000",
            )
            self._stack.callback(server.stop)
            self._nimbus = server.start()
        return self._nimbus

    def deployed(self, name: str, wasm: bytes) -> str:
        """Deploy `wasm` as function `name` on the shared Nimbus server (once)."""
        if name not in self._deployed:
            self.nimbus().deploy_wasm(name, b64(wasm))
            self._deployed.add(name)
        return name

    def echo_function(self) -> str:
        return self.deployed(self.ECHO_FUNCTION, echo_module())

    def stop_servers(self) -> None:
        self._stack.close()
        self._stack = contextlib.ExitStack()
        self._baseline = self._defaults_echo = self._nimbus = None
        self._deployed.clear()

    def close(self) -> None:
        self.stop_servers()

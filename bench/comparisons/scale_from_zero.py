"""Scale from zero: `nimbus serve` process start → first successful invoke.

The functions are deployed once (artifact and precompiled artifact in the
store); every repetition then starts a new `nimbus serve` on that store with
its local data cache emptied — what a replica scaled up from zero finds —
and POSTs the invoke until it answers 200. The reference is the bare Falcon
echo under the same gunicorn settings: process start → first 200 from its
echo. The three starts (WASM echo, Python function, bare echo) rotate their
order every repetition.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from .. import start_profile
from ..baseline import BaselineServer
from ..context import BenchContext
from ..model import Comparison, Result, Side, Target
from ..servers import NimbusServer, ServerProcess
from ..wasm import EVENT, b64, echo_module

TARGET = Target("<=", 1000, on="a")  # issue 8: start → first successful invoke ≤ 1 s
START_TIMEOUT_S = 60
POLL_S = 0.005
PY_HANDLER = "def main(event):\n    return event\n"
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class StartTiming:
    """Milliseconds from the process start to each step a replica scaled from zero goes through."""

    listening_ms: float  # the master accepts TCP connections
    ready_ms: float  # its readiness path answered 200 (polled every 0.1 s: coarse)
    first_ok_ms: float  # our first request answered 200


def _wait_listening(port: int, started: float, stop: threading.Event) -> float | None:
    while not stop.is_set() and time.perf_counter() - started < START_TIMEOUT_S:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return (time.perf_counter() - started) * 1000
        time.sleep(POLL_S)
    return None


def _start_to_first_ok(
    server: ServerProcess,
    url: str,
    headers: dict[str, str],
    stop_server: Callable[[ServerProcess], None] = ServerProcess.stop,
) -> StartTiming:
    """Start `server` and POST the event to `url` until it answers 200; then stop it."""
    marks: dict[str, float | None] = {}
    stop = threading.Event()
    started = time.perf_counter()

    def start() -> None:
        # The server's own start() waits for its readiness path; we time our own
        # request beside it, which is what a caller scaled up from zero sees.
        server.start(timeout=START_TIMEOUT_S)
        marks["ready"] = (time.perf_counter() - started) * 1000

    def listen() -> None:
        marks["listening"] = _wait_listening(server.port, started, stop)

    threads = [threading.Thread(target=start), threading.Thread(target=listen)]
    for thread in threads:
        thread.start()
    try:
        first_ok = _poll_until_ok(server, url, headers, started)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        stop_server(server)
    return StartTiming(marks.get("listening") or 0.0, marks.get("ready") or 0.0, first_ok)


def _poll_until_ok(
    server: ServerProcess, url: str, headers: dict[str, str], started: float
) -> float:
    with httpx.Client(timeout=START_TIMEOUT_S) as client:
        while time.perf_counter() - started < START_TIMEOUT_S:
            try:
                resp = client.post(url, content=EVENT, headers={**headers, **JSON})
                if resp.status_code == 200:
                    return (time.perf_counter() - started) * 1000
            except httpx.TransportError:
                pass  # not listening yet
            if server.proc is not None and server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited during its start")
            time.sleep(POLL_S)
    raise RuntimeError(f"{url} gave no 200 within {START_TIMEOUT_S}s of the start")


def _deploy_once(ctx: BenchContext, data_dir: Path) -> None:
    server = NimbusServer(data_dir, ctx.log_dir).start()
    try:
        server.deploy_wasm("zero-echo", b64(echo_module()))
        with server.client(timeout=600) as api:
            resp = api.post("/api/v1/functions", params={"wait": "true"},
                            json={"name": "zero-python", "runtime": "python",
                                  "code": PY_HANDLER})  # fmt: skip
        if resp.status_code != 201 or resp.json().get("status") != "active":
            raise RuntimeError(f"deploying zero-python: {resp.status_code} {resp.text[:800]}")
    finally:
        server.stop()


def run(ctx: BenchContext) -> list[Result]:
    data_dir = ctx.scratch("scale-from-zero")
    _deploy_once(ctx, data_dir)

    def nimbus_start(function: str) -> Callable[[], StartTiming]:
        def start() -> StartTiming:
            shutil.rmtree(data_dir / "cache", ignore_errors=True)  # a fresh data cache
            server = NimbusServer(data_dir, ctx.log_dir)
            auth = {"Authorization": f"Bearer {server.api_key}"}
            return _start_to_first_ok(server, server.invoke_url(function), auth)

        return start

    def profile(function: str) -> str:
        """Where one more start goes, under py-spy (full mode, missed target only)."""
        shutil.rmtree(data_dir / "cache", ignore_errors=True)
        server = NimbusServer(data_dir, ctx.log_dir)
        url, auth = server.invoke_url(function), {"Authorization": f"Bearer {server.api_key}"}
        out = ctx.scratch("scale-from-zero-profile") / f"{function}.folded"
        return start_profile.profile_note(server, out, lambda spy: _start_to_first_ok(
            spy, url, auth, stop_server=start_profile.stop_profiled).first_ok_ms)  # fmt: skip

    def echo_start() -> StartTiming:
        server = BaselineServer(ctx.log_dir)
        return _start_to_first_ok(server, server.echo_url, {})

    starts = {"wasm": nimbus_start("zero-echo"), "python": nimbus_start("zero-python"),
              "echo": echo_start}  # fmt: skip
    timings: dict[str, list[StartTiming]] = {name: [] for name in starts}
    order = list(starts)
    for rep in range(ctx.params.scale_reps):
        shift = rep % len(order)
        for name in order[shift:] + order[:shift]:
            timings[name].append(starts[name]())

    echo = Side("bare Falcon echo: start → first 200", [t.first_ok_ms for t in timings["echo"]])
    rows = {"wasm": ("WASM module", "echo.wasm"), "python": ("Python function", "python")}
    results = [
        Result(
            key=f"scale-from-zero-{name}",
            title=f"Scale from zero: nimbus serve start → first invoke ({what})",
            unit="ms",
            higher_is_better=False,
            a=Side(
                f"Nimbus: start → first 200 invoke ({label})",
                [t.first_ok_ms for t in timings[name]],
            ),
            b=echo,
            target=TARGET,
            notes=[
                "precompiled artifact in the store, local data cache emptied before each start",
                f"Nimbus {_breakdown(timings[name])}",
                f"bare echo {_breakdown(timings['echo'])}",
            ],
            details={side: [asdict(t) for t in timings[side]] for side in (name, "echo")},
        )
        for name, (what, label) in rows.items()
    ]
    for result, function in zip(results, ("zero-echo", "zero-python"), strict=True):
        if not ctx.quick and result.target_met is False:
            result.notes.append(profile(function))
    return results


def _breakdown(timings: list[StartTiming]) -> str:
    def median(field: str) -> float:
        return statistics.median(getattr(t, field) for t in timings)

    listening, ready, first = (median(f) for f in ("listening_ms", "ready_ms", "first_ok_ms"))
    return (
        f"(medians): listening at {listening:.0f} ms, readiness 200 at {ready:.0f} ms, "
        f"first 200 at {first:.0f} ms"
    )


COMPARISON = Comparison(
    key="scale-from-zero",
    title="Scale from zero: server start → first successful invoke vs the bare echo",
    run=run,
    uses_servers=False,  # starts and stops its own servers, one per repetition
)

"""Soak: a steady load at 80 % of what the server just showed it can take, for a while.

Nothing may fail, and after a warm-up the workers may not keep growing. `make test` runs
60 seconds; `make soak` runs 10 minutes (NIMBUS_SOAK_SECONDS).

What "growing" means. Under load a worker's resident memory and open fds swing with the
calls in flight and the used instances its pre-warm thread has not closed yet, each with a
few MiB and its descriptors: the stdlib mount and its log, one pipe that its stdout and
stderr both write to, whose read end sits in the epoll set of the worker's one drainer
thread (C, in liblane.so; it and its epoll and wake fds are made with the first log and
kept) until the instance is closed (docs/decisions/0020-component-logs-past-the-cap.md).
Measured when those logs were memfds (Python hello, 2 workers, ~100 calls/s for 300 s,
sampled every 0.25 s): one worker's fds went 25 → 97 → 28 within ten seconds, its RSS
98 → 240 → 99 MiB, while the floor under those swings stayed flat (RSS 94–106 MiB, fds
25–30) over 23,000 calls. A sample taken under load at each end (the first version of this
test) compared two random points of that swing: its "+12.7 % RSS, fds 58 → 73" was that,
not a leak. So each end is measured quiet: the load pauses, the calls in flight end, the
pre-warm thread closes what was used (and with it each pipe), and then the workers are
sampled; a leak of anything per call shows there at once at these rates. With the pipes
(60 s, 5,276 calls at 103/s after warm-up): 60 fds over both workers at each end, RSS
460 → 477 MiB (+3.6 %; the bound is 5 %).

Threads belong to pools that start them lazily up to their bounds and keep them: gunicorn's
request threads (THREADS; its executor starts a new one when a request arrives before the
thread that just answered is back in the pool, so it creeps up to its bound over minutes
even at a constant load), the sandbox's guest threads (the most calls ever at once) and the
periodic jobs' executor (the most jobs ever at once, first runs 30–60 s after start; here
upkeep runs every 5 s, so its jobs run a dozen times a minute within the soak). So threads
are counted by name (py-spy): outside those pools none may appear, and each pool stays
within its bound. py-spy sees Python's threads only: the log drainer and other native
threads are in the `threads` total printed (49 over both workers, 43 of them Python's, at
each end of that run), not in the check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import NimbusProcess

SOAK_SECONDS = float(os.environ.get("NIMBUS_SOAK_SECONDS", "60"))
FLAT_OUT_SECONDS = 5.0
WARM_UP_SECONDS = min(20.0, SOAK_SECONDS / 3)
CONNECTIONS = 8
THREADS = 17  # per worker: gunicorn's request threads (the default for MAX_CONCURRENT 10)
SOURCE = 'def main(event):\n    return {"hello": event.get("name", "world")}\n'
# Pools of threads started lazily and kept, with their bounds per worker.
POOLS = {"ThreadPoolExecutor": THREADS, "nimbus-guest": THREADS, "periodic-job": 16}


def _footprint(pids: list[int]) -> dict[str, int]:
    """Resident KiB, open fds and threads summed over the workers."""
    rss = fds = threads = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss += int(fields["VmRSS"].split()[0])
        threads += int(fields["Threads"])
        fds += len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_kib": rss, "fds": fds, "threads": threads}


def _thread_kinds(pid: int) -> Counter:
    """A worker's threads by name with the pool index cut off (`nimbus-guest-3` ->
    `nimbus-guest`, `ThreadPoolExecutor-1_4` -> `ThreadPoolExecutor`)."""
    spy = Path(sys.executable).parent / "py-spy"
    out = subprocess.run([str(spy), "dump", "--json", "--nonblocking", "--pid", str(pid)],
                         capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    names = [t["thread_name"] or "?" for t in json.loads(out.stdout)]
    return Counter(re.sub(r"(-\d+)?([-_]\d+)?$", "", name) for name in names)


def _quiet_footprint(load: Load, pids: list[int]) -> dict:
    """Pause the load, let the workers settle, measure them, resume."""
    load.pause()
    time.sleep(2.0)  # used instances closed, outcomes flushed
    samples = []
    for _ in range(4):
        samples.append(_footprint(pids))
        time.sleep(0.25)
    kinds = [_thread_kinds(pid) for pid in pids]
    load.resume()
    return {
        "rss_kib": min(s["rss_kib"] for s in samples),
        "fds": min(s["fds"] for s in samples),
        "threads": max(s["threads"] for s in samples),
        "kinds": kinds,
    }


class Load:
    """CONNECTIONS kept-alive clients invoking back to back, paced to a total rate once
    `pace(rate)` is called; the same connections throughout."""

    def __init__(self, server: NimbusProcess) -> None:
        self.server = server
        self.rate: float | None = None
        self.outcomes: Counter = Counter()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._go = threading.Event()
        self._go.set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(CONNECTIONS)]

    def _client(self) -> None:
        next_at = None
        with self.server.client(timeout=30) as api:
            while not self._stop.is_set():
                if not self._go.is_set():
                    self._go.wait()
                    next_at = None  # no burst to catch up after a pause
                    continue
                with self._lock:
                    self._in_flight += 1
                try:
                    resp = api.post("/api/v1/functions/soak/invoke", json={"name": "soak"})
                    outcome = resp.status_code if resp.json() == {"hello": "soak"} else "wrong"
                except (httpx.HTTPError, ValueError) as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    self._in_flight -= 1
                    self.outcomes[outcome] += 1
                if self.rate:
                    now = time.monotonic()
                    next_at = (next_at or now) + CONNECTIONS / self.rate
                    time.sleep(max(0.0, next_at - now))

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def pace(self, rate: float) -> None:
        self.rate = rate

    def pause(self) -> None:
        """No new calls; returns when the calls in flight have ended."""
        self._go.clear()
        while self._in_flight:
            time.sleep(0.01)

    def resume(self) -> None:
        self._go.set()

    def stop(self) -> Counter:
        self._stop.set()
        self._go.set()
        for t in self._threads:
            t.join()
        return self.outcomes


@pytest.mark.timeout(SOAK_SECONDS + 180)
def test_a_steady_load_fails_nothing_and_the_workers_do_not_grow(tmp_path):
    env = {"UPKEEP_INTERVAL_SEC": "5", "THREADS": str(THREADS)}
    server = NimbusProcess(tmp_path / "data", env).start()
    load = Load(server)
    try:
        with server.client() as api:
            body = {"name": "soak", "runtime": "python", "code": SOURCE}
            assert api.post("/api/v1/functions?wait=true", json=body).status_code == 201
        pids = server.worker_pids()

        started = time.monotonic()
        load.start()
        time.sleep(FLAT_OUT_SECONDS)
        flat_out = dict(load.outcomes)
        rate = 0.8 * flat_out.get(200, 0) / FLAT_OUT_SECONDS
        load.pace(rate)
        paced_from = sum(load.outcomes.values())

        time.sleep(max(0.0, started + WARM_UP_SECONDS - time.monotonic()))
        warm = _quiet_footprint(load, pids)
        time.sleep(max(0.0, started + SOAK_SECONDS - time.monotonic()))
        end = _quiet_footprint(load, pids)
        outcomes = load.stop()
        paced = sum(outcomes.values()) - paced_from
        print(f"flat out {flat_out}, then {rate:.0f}/s: {paced} calls; warm {warm}, end {end}")

        assert set(outcomes) == {200}, f"failed calls (flat out {flat_out}, then {rate:.0f}/s)"
        soaked = time.monotonic() - started - FLAT_OUT_SECONDS
        assert paced >= 0.5 * rate * soaked, (paced, rate)  # the load really ran
        assert server.worker_pids() == pids  # no worker died or was replaced
        assert end["rss_kib"] <= warm["rss_kib"] * 1.05, (warm, end)
        assert end["fds"] <= warm["fds"], (warm, end)
        for before, after in zip(warm["kinds"], end["kinds"], strict=True):
            for kind, count in after.items():
                bound = POOLS.get(kind, before[kind])  # outside the pools: none new
                assert count <= bound, (kind, before, after)
    finally:
        load.stop()
        server.stop()

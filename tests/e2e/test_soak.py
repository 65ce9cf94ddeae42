"""Soak: a steady load at 80 % of what the server just showed it can take, for a while.

Nothing may fail, and after a warm-up the workers may not keep growing: resident memory within
5 %, no more open file descriptors or threads at the end than at the end of the warm-up (a leak
of any of them per call shows up within a minute at these rates). `make test` runs 60 seconds;
`make soak` runs 10 minutes (NIMBUS_SOAK_SECONDS)."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import NimbusProcess

SOAK_SECONDS = float(os.environ.get("NIMBUS_SOAK_SECONDS", "60"))
WARM_UP_SECONDS = min(20.0, SOAK_SECONDS / 3)
CONNECTIONS = 8
SOURCE = 'def main(event):\n    return {"hello": event.get("name", "world")}\n'


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


class Load:
    """CONNECTIONS kept-alive clients invoking back to back, optionally paced to a total rate."""

    def __init__(self, server: NimbusProcess, rate: float | None = None) -> None:
        self.server, self.rate = server, rate
        self.outcomes: Counter = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _client(self) -> None:
        interval = CONNECTIONS / self.rate if self.rate else 0.0
        next_at = time.monotonic()
        with self.server.client(timeout=30) as api:
            while not self._stop.is_set():
                try:
                    resp = api.post("/api/v1/functions/soak/invoke", json={"name": "soak"})
                    outcome = resp.status_code if resp.json() == {"hello": "soak"} else "wrong"
                except (httpx.HTTPError, ValueError) as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    self.outcomes[outcome] += 1
                if interval:
                    next_at += interval
                    time.sleep(max(0.0, next_at - time.monotonic()))

    def run(self, seconds: float, at_marks: dict[float, callable] | None = None) -> Counter:
        threads = [threading.Thread(target=self._client) for _ in range(CONNECTIONS)]
        for t in threads:
            t.start()
        start = time.monotonic()
        for mark, action in sorted((at_marks or {}).items()):
            time.sleep(max(0.0, start + mark - time.monotonic()))
            action()
        time.sleep(max(0.0, start + seconds - time.monotonic()))
        self._stop.set()
        for t in threads:
            t.join()
        return self.outcomes


# Not in `make test` yet: its first runs (Python hello, 2 workers, 80 % of ~150 req/s) failed
# nothing but grew the workers' RSS 12.7 % and open fds 58 -> 73 in the 40 s after warm-up.
# Whether that is a leak or pools still filling is the open question of the hardening issue.
@pytest.mark.skipif("NIMBUS_SOAK_SECONDS" not in os.environ, reason="make soak runs it")
@pytest.mark.timeout(SOAK_SECONDS + 180)
def test_a_steady_load_fails_nothing_and_the_workers_do_not_grow(tmp_path):
    server = NimbusProcess(tmp_path / "data").start()
    try:
        with server.client() as api:
            body = {"name": "soak", "runtime": "python", "code": SOURCE}
            assert api.post("/api/v1/functions?wait=true", json=body).status_code == 201

        flat_out = Load(server).run(5)
        assert set(flat_out) == {200}, flat_out
        rate = 0.8 * flat_out[200] / 5

        samples: dict[str, dict[str, int]] = {}
        pids = server.worker_pids()
        outcomes = Load(server, rate).run(
            SOAK_SECONDS,
            {
                WARM_UP_SECONDS: lambda: samples.__setitem__("warm", _footprint(pids)),
                SOAK_SECONDS - 0.5: lambda: samples.__setitem__("end", _footprint(pids)),
            },
        )
        assert set(outcomes) == {200}, f"failed calls at {rate:.0f}/s: {outcomes}"
        assert sum(outcomes.values()) >= 0.5 * rate * SOAK_SECONDS  # the load really ran
        assert server.worker_pids() == pids  # no worker died or was replaced
        warm, end = samples["warm"], samples["end"]
        assert end["rss_kib"] <= warm["rss_kib"] * 1.05, (warm, end)
        assert end["fds"] <= warm["fds"], (warm, end)
        assert end["threads"] <= warm["threads"], (warm, end)
    finally:
        server.stop()

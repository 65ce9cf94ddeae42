"""A worker that stops under load (16 connections, kept alive): replaced gracefully
(SIGTERM to it, as when it holds too many stuck guests) not one request fails;
killed with -9, at most the requests it held fail (≤ its THREADS), and the
server answers again at once from its other worker and the replacement."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.e2e import wasm as w

CONNECTIONS = 16
THREADS = 24  # per worker: every connection may be in one worker while the other drains


def _load(server, stop: threading.Event) -> Counter:
    """16 clients, each on its own kept-alive connection, invoking back to back."""

    def client(_):
        outcomes: Counter = Counter()
        with server.client(timeout=30) as api:
            while not stop.is_set():
                try:
                    resp = api.post("/api/v1/functions/echo/invoke", json={"n": 1})
                    outcomes[resp.status_code] += 1
                except httpx.HTTPError as exc:
                    outcomes[type(exc).__name__] += 1
        return outcomes

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        return sum(pool.map(client, range(CONNECTIONS)), Counter())


def _serve_echo(make_server):
    env = {"THREADS": str(THREADS), "MAX_CONCURRENT": str(CONNECTIONS)}
    server = make_server(env, workers=2).start()
    with server.client() as api:
        body = {"name": "echo", "runtime": "wasm", "artifact_base64": w.b64(w.wat(w.ECHO_WAT))}
        assert api.post("/api/v1/functions?wait=true", json=body).status_code == 201
    return server


def _under_load(server, fault) -> Counter:
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(_load, server, stop)
        time.sleep(1.0)
        fault()
        time.sleep(3.0)  # the fault lands and the master replaces the worker
        stop.set()
        return load.result()


def test_a_worker_replaced_under_load_fails_no_request(make_server):
    server = _serve_echo(make_server)
    victim = server.worker_pids()[0]
    outcomes = _under_load(server, lambda: os.kill(victim, signal.SIGTERM))
    assert set(outcomes) == {200}, outcomes
    assert outcomes[200] > 100
    pids = server.worker_pids()
    assert victim not in pids and len(pids) == 2  # drained, exited, replaced


def test_a_worker_killed_under_load_fails_at_most_what_it_held(make_server):
    server = _serve_echo(make_server)
    victim = server.worker_pids()[0]
    outcomes = _under_load(server, lambda: os.kill(victim, signal.SIGKILL))
    failed = sum(n for outcome, n in outcomes.items() if outcome != 200)
    assert failed <= THREADS, outcomes
    assert outcomes[200] > 100
    with server.client() as api:  # and everything answers afterwards
        answers = [api.post("/api/v1/functions/echo/invoke", json={}) for _ in range(20)]
    assert {a.status_code for a in answers} == {200}

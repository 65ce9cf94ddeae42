"""The store goes away under load and comes back on the same address (SeaweedFS killed and
restarted with its data): deployed functions keep answering from the workers' caches, what
needs the store answers 503 `unavailable` at once (never a hang, never a 500), nothing that
was accepted or answered is lost, and the server recovers by itself.

The store can also hang (SeaweedFS paused with SIGSTOP: connections are accepted, nothing is
answered): then deployed functions still answer within the quick revalidation timeout, and
what needs the store answers 503 within the store's timeouts (`StoreTimeouts`), not minutes."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from store import StoreTimeouts, errors, open_store
from tests.e2e import wasm as w
from tests.e2e.conftest import s3_env
from tests.s3servers import seaweedfs_process

OUTAGE_SECONDS = 6.0
CLIENTS = 4
SLOWEST_ANSWER_SEC = 5.0  # no request waits on the dead store longer than this


@pytest.fixture
def weed(tmp_path):
    with seaweedfs_process(tmp_path / "weed") as weed:
        yield weed


@pytest.fixture
def weed_apart(tmp_path):
    """SeaweedFS whose volume server can be taken away alone (`stop_volume`)."""
    with seaweedfs_process(tmp_path / "weed", volume_apart=True) as weed:
        yield weed


class Invoker:
    """CLIENTS kept-alive clients invoking `echo`, ~20 calls/s each, noting every answer."""

    def __init__(self, server) -> None:
        self.server = server
        self.answers: list[tuple[float, int | str, str | None, float]] = []  # at, status, id, took
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def _client(self) -> None:
        with self.server.client(timeout=30) as api:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    resp = api.post("/api/v1/functions/echo/invoke", json={"n": 1})
                    outcome = resp.status_code
                    if outcome == 200 and resp.json() != {"n": 1}:
                        outcome = "wrong"
                    elif outcome != 200:
                        outcome = f"{outcome} {resp.json()['error']['code']}"
                    invocation = resp.headers.get("X-Nimbus-Invocation-Id")
                except (httpx.HTTPError, ValueError) as exc:
                    outcome, invocation = type(exc).__name__, None
                self.answers.append((started, outcome, invocation, time.monotonic() - started))
                time.sleep(0.05)

    def __enter__(self) -> Invoker:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def _timed(call) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    resp = call()
    return resp, time.monotonic() - started


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def _assert_counted(api: httpx.Client, total: int) -> None:
    """The stats count exactly `total` calls, soon (workers write what they kept late)."""

    def counted():
        stats = api.get("/api/v1/stats").json()
        return stats if stats["total_invocations"] >= total else None

    stats = _until(counted, 30, f"{total} calls counted")
    assert stats["total_invocations"] == total


def _assert_refused(health, during, *, ready_within: float, refused_within: float) -> float:
    """/health answers, /ready says the store is unreachable, and each call that needs the
    store is a 503 `unavailable` with Retry-After, all within their bounds. /ready's time."""
    assert health.status_code == 200
    during = dict(during)
    ready, ready_took = during.pop("ready")
    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable",
                                                       "store": "unreachable"})  # fmt: skip
    assert ready_took < ready_within, ready_took
    for what, (resp, took) in during.items():
        assert resp.status_code == 503, (what, resp.status_code, resp.text)
        assert resp.json()["error"]["code"] == "unavailable", (what, resp.text)
        assert "Retry-After" in resp.headers, what
        assert took < refused_within, (what, took)
    return ready_took


@pytest.mark.timeout(180)
def test_a_store_outage_keeps_functions_serving_and_loses_nothing(weed, make_server):
    server = make_server(s3_env(weed.server)).start()
    echo = {"name": "echo", "runtime": "wasm", "artifact_base64": w.b64(w.wat(w.ECHO_WAT))}
    with server.client(timeout=30) as api:
        assert api.post("/api/v1/functions?wait=true", json=echo).status_code == 201
        accepted = api.post("/api/v1/functions/echo/async", json={"before": 1})
        assert accepted.status_code == 202, accepted.text
        before = accepted.json()["invocation_id"]

        with Invoker(server) as load:
            time.sleep(2.0)
            down_at = time.monotonic()
            weed.stop()
            time.sleep(1.0)  # every worker's cache is past its 1 s staleness now

            # What needs the store says so at once, with the documented code.
            during = {
                "ready": _timed(lambda: api.get("/ready")),
                "create": _timed(lambda: api.post("/api/v1/functions", json={**echo,
                                                                             "name": "late"})),
                "async": _timed(lambda: api.post("/api/v1/functions/echo/async", json={})),
                "get": _timed(lambda: api.get("/api/v1/functions/other")),
            }  # fmt: skip
            health = api.get("/health")
            time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
            weed.start()
            up_at = time.monotonic()
            _until(lambda: api.get("/ready").status_code == 200, 30, "/ready answers 200")
            ready_after = time.monotonic() - up_at
            time.sleep(2.0)

        _assert_refused(health, during, ready_within=SLOWEST_ANSWER_SEC,
                        refused_within=SLOWEST_ANSWER_SEC)  # fmt: skip

        # Deployed functions kept serving through the outage, and nothing hung.
        outcomes = Counter(outcome for _, outcome, _, _ in load.answers)
        assert set(outcomes) == {200}, outcomes
        in_outage = [a for a in load.answers if down_at <= a[0] <= down_at + OUTAGE_SECONDS]
        assert len(in_outage) >= CLIENTS * OUTAGE_SECONDS * 2, len(in_outage)  # it really ran
        slowest = max(took for _, _, _, took in load.answers)
        assert slowest < SLOWEST_ANSWER_SEC, slowest

        # Recovered by itself: writes work again, the async call accepted before ran once.
        assert ready_after < 10, ready_after
        again = api.post("/api/v1/functions?wait=true", json={**echo, "name": "after"})
        assert again.status_code == 201, again.text
        assert api.post("/api/v1/functions/after/invoke", json={"a": 1}).json() == {"a": 1}
        assert api.get("/api/v1/functions/late").status_code == 404  # refused, not half-made

        def finished():
            record = api.get(f"/api/v1/invocations/{before}").json()
            return record if record["status"] == "succeeded" else None

        done = _until(finished, 30, "the async call accepted before the outage succeeds")
        assert done["result"] == {"before": 1} and done["attempts"] >= 1

        # Nothing answered is lost: the calls answered while the store was away are counted
        # once it is back (the workers kept their outcomes and wrote them late).
        _assert_counted(api, len(load.answers) + 2)  # + the async call and the one to `after`
        refused_in = [round(took, 3) for what, (_, took) in during.items() if what != "ready"]
        print(f"outage {OUTAGE_SECONDS:.0f} s: {len(in_outage)} calls answered 200 meanwhile, "
              f"slowest call {slowest:.2f} s, 503s in {refused_in} s, "
              f"ready {ready_after:.2f} s after the store came back")  # fmt: skip


# The server runs with the default timeouts: a call that needs a hung store gives up after
# about StoreTimeouts().worst_case_sec (2 × (10 + 1) + 1 = 23 s), a revalidation on the
# invoke path after one quick attempt (1.5 s).
API_BOUND_SEC = StoreTimeouts().worst_case_sec + 5.0
INVOKE_BOUND_SEC = 2 * StoreTimeouts().quick_sec + 2.0
# Once a worker saw the store time out, its calls get one quick try each (a PUT also waits
# up to 1 s for `100 Continue`).
LATER_BOUND_SEC = StoreTimeouts().quick_sec + 1.0 + 2.5
HANG_SECONDS = 8.0  # at least; the store stays paused until the calls above have answered
THREAD_GROWTH_BOUND = 9 + 4  # the upkeep jobs (platform.recurring_jobs) + concurrent API calls


@pytest.mark.timeout(240)
def test_a_hung_store_keeps_functions_serving_and_refuses_within_bounds(weed, make_server):
    # Upkeep jobs fall due every second, so during the hang each is due ~25 times.
    server = make_server({**s3_env(weed.server), "UPKEEP_INTERVAL_SEC": "1"}).start()
    echo = {"name": "echo", "runtime": "wasm", "artifact_base64": w.b64(w.wat(w.ECHO_WAT))}

    def threads() -> dict[int, int]:
        return {pid: len(os.listdir(f"/proc/{pid}/task")) for pid in server.worker_pids()}

    def timed_call(method: str, path: str, **kw) -> tuple[httpx.Response, float]:
        with server.client(timeout=120) as api:
            return _timed(lambda: api.request(method, path, **kw))

    def needing_the_store(pool: ThreadPoolExecutor, name: str) -> dict:
        """/ready, a create of `name`, an async accept and a read, at once: their answers."""
        calls = {
            "ready": pool.submit(timed_call, "GET", "/ready"),
            "create": pool.submit(timed_call, "POST", "/api/v1/functions",
                                  json={**echo, "name": name}),
            "async": pool.submit(timed_call, "POST", "/api/v1/functions/echo/async", json={}),
            "get": pool.submit(timed_call, "GET", "/api/v1/functions/other"),
        }  # fmt: skip
        return {what: call.result() for what, call in calls.items()}

    with server.client(timeout=30) as api:
        assert api.post("/api/v1/functions?wait=true", json=echo).status_code == 201
        accepted = api.post("/api/v1/functions/echo/async", json={"before": 1})
        assert accepted.status_code == 202, accepted.text
        before = accepted.json()["invocation_id"]

        with Invoker(server) as load, ThreadPoolExecutor(4) as pool:
            time.sleep(2.0)
            threads_before = threads()
            paused_at = time.monotonic()
            weed.pause()
            try:
                time.sleep(1.5)  # every worker's cache is past its 1 s staleness now
                during = needing_the_store(pool, "late")
                # The workers have seen the store time out by now: one quick try each.
                later = needing_the_store(pool, "later")
                health = api.get("/health")
                time.sleep(max(0.0, paused_at + HANG_SECONDS - time.monotonic()))
                threads_hung = threads()
            finally:
                weed.resume()
            resumed_at = time.monotonic()
            _until(lambda: api.get("/ready").status_code == 200, 30, "/ready answers 200")
            ready_after = time.monotonic() - resumed_at
            time.sleep(2.0)

        # /ready asks the store the quick way; the rest wait out the store's timeouts.
        ready_took = _assert_refused(health, during, ready_within=INVOKE_BOUND_SEC,
                                     refused_within=API_BOUND_SEC)  # fmt: skip
        _assert_refused(health, later, ready_within=INVOKE_BOUND_SEC,
                        refused_within=LATER_BOUND_SEC)  # fmt: skip

        # Deployed functions kept serving through the hang, each call within the bound.
        outcomes = Counter(outcome for _, outcome, _, _ in load.answers)
        assert set(outcomes) == {200}, outcomes
        hung_for = resumed_at - paused_at
        in_hang = [a for a in load.answers if paused_at <= a[0] <= resumed_at]
        assert len(in_hang) >= CLIENTS * hung_for * 2, len(in_hang)  # it really ran
        slowest = max(took for _, _, _, took in in_hang)
        assert slowest < INVOKE_BOUND_SEC, slowest

        # Nothing piled up on the hung store: a job still running when due again is skipped,
        # so each worker has at most a thread per upkeep job more (and the 4 API calls').
        assert set(threads_hung) == set(threads_before), (threads_before, threads_hung)
        for pid, count in threads_hung.items():
            assert count <= threads_before[pid] + THREAD_GROWTH_BOUND, (
                threads_before,
                threads_hung,
            )

        # Awake again: nothing refused was half-made (the name is free, nothing stuck),
        # the async call accepted before ran, and every answered call is counted.
        assert ready_after < 10, ready_after
        assert api.get("/api/v1/functions/late").status_code == 404
        assert api.get("/api/v1/functions/later").status_code == 404
        again = api.post("/api/v1/functions?wait=true", json={**echo, "name": "late"})
        assert again.status_code == 201, again.text
        assert api.post("/api/v1/functions/late/invoke", json={"a": 1}).json() == {"a": 1}

        def finished():
            record = api.get(f"/api/v1/invocations/{before}").json()
            return record if record["status"] == "succeeded" else None

        done = _until(finished, 30, "the async call accepted before the hang succeeds")
        assert done["result"] == {"before": 1}
        functions = {f["name"] for f in api.get("/api/v1/functions").json()["functions"]}
        assert functions == {"echo", "late"}, functions

        _assert_counted(api, len(load.answers) + 2)  # + the async call and the one to `late`
        refused_in = {what: round(took, 2) for what, (_, took) in during.items()
                      if what != "ready"}  # fmt: skip
        later_in = {what: round(took, 2) for what, (_, took) in later.items()}
        p99 = sorted(took for *_, took in in_hang)[int(len(in_hang) * 0.99)]
        print(f"hang {hung_for:.1f} s: {len(in_hang)} calls answered 200 meanwhile, "
              f"p99 {p99:.2f} s, slowest {slowest:.2f} s; /ready 503 in {ready_took:.2f} s; "
              f"503s in {refused_in} s, then {later_in} s; "
              f"ready {ready_after:.2f} s after SIGCONT; "
              f"threads {threads_before} -> {threads_hung}")  # fmt: skip


@pytest.mark.timeout(180)
def test_ready_says_ready_only_once_the_store_reads_objects(weed_apart, make_server, monkeypatch):
    """A store can answer before it reads: SeaweedFS with its volume server away answers
    HeadBucket, HEAD and listings while every object GET is a 500, as a restarted `weed mini`
    does until its volume server's heartbeat reaches the master (seen: 4 s). /ready is 503
    meanwhile, and once it says 200 a deploy and an invoke succeed at once."""
    env = s3_env(weed_apart.server)
    server = make_server(env).start()
    for var, value in weed_apart.server.env().items():  # boto3 reads them from there
        monkeypatch.setenv(var, value)
    store = open_store(env["NIMBUS_STORE"], endpoint_url=weed_apart.server.endpoint_url)
    echo = {"name": "echo", "runtime": "wasm", "artifact_base64": w.b64(w.wat(w.ECHO_WAT))}
    with server.client(timeout=30) as api, contextlib.closing(store):
        assert api.post("/api/v1/functions?wait=true", json=echo).status_code == 201
        assert api.post("/api/v1/functions/echo/invoke", json={"n": 1}).json() == {"n": 1}
        kept = list(store.list(""))
        assert kept

        weed_apart.stop_volume()
        store.ping()  # it answers (HeadBucket: all /ready asked before) ...
        for key in kept:  # ... but reads none of the objects it holds (some hang: quick)
            with pytest.raises(errors.Unavailable):
                store.get(key, quick=True)
        for _ in range(4):  # each worker
            ready = api.get("/ready")
            assert (ready.status_code, ready.json()) == (503, {"status": "unavailable",
                                                               "store": "unreachable"})  # fmt: skip
        assert api.get("/health").status_code == 200

        weed_apart.start_volume()
        started = time.monotonic()
        _until(lambda: api.get("/ready").status_code == 200, 30, "/ready answers 200")
        ready_after = time.monotonic() - started
        # At once, with no wait of the test's own: what /ready promises.
        again = api.post("/api/v1/functions?wait=true", json={**echo, "name": "after"})
        assert again.status_code == 201, again.text
        assert api.post("/api/v1/functions/after/invoke", json={"a": 1}).json() == {"a": 1}
        assert api.get("/api/v1/functions/echo").status_code == 200
        print(f"ready {ready_after:.2f} s after the volume server started")

"""Alert evaluation on real windowed stats, delivered to a real HTTP receiver on 127.0.0.1.

The clock is moved by hand (evaluator and leases share it); stats are written
with the workers' own `WindowBook`, read with the evaluator's `WindowQuery`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from gateway.jobs.alerts import RECHECK_SEC, AlertEvaluator
from gateway.schemas import AlertCreate
from gateway.services.alert_conditions import advance, eval_every, metric_value
from gateway.services.alert_webhook import AlertWebhook
from gateway.services.alerts import AlertService
from gateway.services.env_crypto import EnvCipher
from gateway.services.outbound import OutboundClient
from gateway.telemetry.recorder import THROTTLED, InvocationOutcome
from gateway.telemetry.window_query import WindowQuery
from gateway.telemetry.windows import Window, WindowBook
from store import LocalStore, errors
from store.alerts import AlertMetric, AlertRepo, AlertRule, AlertState, Notify
from store.functions import FunctionRepo
from store.leases import Leases
from store.records import Function
from tests.webhook_receiver import webhook_receiver

T0 = 1_700_000_000  # a 10 s (and 60 s) boundary
SECRET = "a-test-secret-of-some-length"
SETTLE = 1.5


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + SETTLE + 0.1)


@pytest.fixture
def service(store) -> AlertService:
    repo = FunctionRepo(store)
    repo.create_function(Function(id="fn_aaaaaaaaaaaaaaaa", name="checkout", runtime="wasm"))
    return AlertService(AlertRepo(store), repo, webhook(), allow_private=True)


def webhook() -> AlertWebhook:
    return AlertWebhook(OutboundClient(allow_private=True, timeout_sec=5), EnvCipher([]))


def evaluator(store, clock, owner: str, **kw) -> AlertEvaluator:
    return AlertEvaluator(AlertRepo(store), Leases(store, owner, clock=clock), WindowQuery(store),
                          webhook(), settle_sec=SETTLE, clock=clock, **kw)  # fmt: skip


def calls(store, start: float, end: float, *, failing: bool, every: float = 1.0) -> None:
    """One call per `every` seconds in [start, end), all failing or all succeeding.

    Each batch is written as another worker's (a worker's minute object holds its
    running totals, so one book per batch keeps earlier batches)."""
    book = WindowBook(store, f"w{start}-{end}")
    t, outcomes = start, []
    while t < end:
        outcomes.append(InvocationOutcome(
            invocation_id=f"i{t}", function_id="fn_aaaaaaaaaaaaaaaa", function_name="checkout",
            runtime="wasm", version=1, trigger="api",
            status="failed" if failing else "succeeded",
            error_code="function_error" if failing else None, duration_ms=5.0,
            started_at=datetime.fromtimestamp(t, UTC)))  # fmt: skip
        t += every
    book.add_all(outcomes)
    book.save()


def rule(service, url: str, **kw) -> str:
    body = {"name": "checkout errors", "function": "checkout", "metric": "error_rate",
            "op": ">", "threshold": 0.5, "window_sec": 30,
            "notify": {"webhook_url": url, "secret": SECRET}, **kw}  # fmt: skip
    return service.create(AlertCreate.model_validate(body), actor="test").id


# -- the conditions alone --------------------------------------------------------------


def _rule(**kw) -> AlertRule:
    base = {"id": "alr_aaaaaaaaaaaaaaaa", "name": "r", "function_id": None,
            "metric": "error_rate", "op": ">", "threshold": 0.5, "window_sec": 30,
            "notify": Notify(webhook_url="http://x", secret="s")}  # fmt: skip
    return AlertRule(**{**base, **kw})


@pytest.mark.parametrize(("op", "value", "fires"), [
    (">", 0.6, True), (">", 0.5, False), (">=", 0.5, True), ("<", 0.4, True),
    ("<", 0.5, False), ("<=", 0.5, True), (">", None, False), ("<", None, False),
])  # fmt: skip
def test_each_op_against_the_threshold(op, value, fires):
    r = _rule(op=op)
    change = advance(r, value, T0)
    assert (r.state == AlertState.firing) is fires
    assert (change is not None and change.notify == "firing") is fires


def test_for_sec_holds_a_breach_pending_until_it_lasted_that_long():
    r = _rule(for_sec=20)
    first = advance(r, 0.9, T0)
    assert (first.previous, first.state, first.notify) == ("ok", "pending", None)
    assert r.since == datetime.fromtimestamp(T0, UTC)
    assert advance(r, 0.9, T0 + 10) is None and r.state == "pending"  # 10 s of 20
    fired = advance(r, 0.8, T0 + 20)
    assert (fired.previous, fired.state, fired.notify) == ("pending", "firing", "firing")
    assert r.value == 0.8 and r.evaluated_until == T0 + 20
    assert advance(r, 0.9, T0 + 30) is None  # firing stays firing, said once
    resolved = advance(r, 0.1, T0 + 40)
    assert (resolved.state, resolved.notify) == ("ok", "resolved")


def test_a_firing_rule_repeats_its_notification_every_repeat_sec():
    r = _rule(repeat_sec=60)
    assert advance(r, 0.9, T0).notify == "firing"
    repeats = [t for t in range(T0 + 10, T0 + 200, 10) if (c := advance(r, 0.9, t)) and c.notify]
    assert repeats == [T0 + 60, T0 + 120, T0 + 180]
    assert advance(r, 0.1, T0 + 200).notify == "resolved"
    assert advance(r, 0.9, T0 + 210).notify == "firing"  # a new firing: counted afresh
    assert advance(r, 0.9, T0 + 260) is None and advance(r, 0.9, T0 + 270).notify == "firing"
    quiet = _rule()  # without repeat_sec: once per change
    advance(quiet, 0.9, T0)
    assert all(advance(quiet, 0.9, T0 + 10 * n) is None for n in range(1, 100))


def test_a_pending_breach_that_ends_early_is_dropped_silently():
    r = _rule(for_sec=60)
    advance(r, 0.9, T0)
    dropped = advance(r, 0.0, T0 + 10)
    assert (dropped.previous, dropped.state, dropped.notify) == ("pending", "ok", None)
    again = advance(r, 0.9, T0 + 20)
    assert again.state == "pending" and r.pending_since == T0 + 20  # counted afresh


def test_metric_values_and_no_data():
    empty = Window()
    assert metric_value(empty, AlertMetric.error_rate) is None
    assert metric_value(empty, AlertMetric.p99_ms) is None
    assert metric_value(empty, AlertMetric.invocations) == 0.0  # "invocations < 1" can fire
    w = Window(invocations=4, failed=1, timed_out=1, throttled=3, cold_starts=2)
    assert metric_value(w, AlertMetric.error_rate) == 0.5  # timeouts count as errors
    assert metric_value(w, AlertMetric.throttles) == 3.0
    assert metric_value(w, AlertMetric.cold_starts) == 2.0


def test_evaluation_interval_is_a_sixth_of_the_window_between_10_s_and_a_minute():
    assert [eval_every(w) for w in (10, 30, 60, 120, 300, 3600, 86400)] == [
        10, 10, 10, 20, 50, 60, 60]  # fmt: skip


# -- evaluated by the job, delivered over HTTP -------------------------------------------


def test_a_failing_function_fires_with_a_signed_payload_and_resolves(store, clock, service):
    with webhook_receiver() as receiver:
        alert_id = rule(service, receiver.url)
        job = evaluator(store, clock, "worker-a")
        calls(store, T0 - 30, T0, failing=False)
        assert job.scan() == 1 and receiver.requests == []
        assert service.get(alert_id).state == "ok" and service.get(alert_id).value == 0.0

        calls(store, T0, T0 + 10, failing=True, every=0.25)  # 40 failing vs 20 good
        clock.now += 10
        assert job.scan() == 1
        (firing,) = receiver.wait_for(1)
        assert firing.signed_with(SECRET) and not firing.signed_with("another secret")
        assert firing.path == "/hooks/nimbus"
        assert firing.headers["content-type"] == "application/json"
        assert firing.headers["x-nimbus-event"] == "alert.firing"
        body = firing.json
        assert body["delivery"] == firing.headers["x-nimbus-delivery"]
        assert {k: body[k] for k in ("alert", "state", "threshold", "function", "window_sec",
                                     "at")} == {
            "alert": alert_id, "state": "firing", "threshold": 0.5, "function": "checkout",
            "window_sec": 30, "at": "2023-11-14T22:13:30Z"}  # fmt: skip
        assert body["value"] == pytest.approx(40 / 60)
        view = service.get(alert_id)
        assert (view.state, view.pending_deliveries) == ("firing", 0)
        assert view.since == datetime.fromtimestamp(T0 + 10, UTC)

        clock.now += 10  # still failing within the window: no second notification
        assert job.scan() == 1 and len(receiver.requests) == 1

        calls(store, T0 + 10, T0 + 50, failing=False, every=0.1)
        clock.now += 30
        job.scan()
        resolved = receiver.wait_for(2)[1]
        assert resolved.json["state"] == "resolved" and resolved.signed_with(SECRET)
        assert resolved.json["value"] == 0.0
        assert service.get(alert_id).state == "ok"
        history = service.history(alert_id, limit=50, offset=0).events
        kinds = [(e.kind, e.state, e.outcome) for e in reversed(history)]
        assert kinds == [
            ("change", "created", None),
            ("state", "firing", None), ("delivery", "firing", "delivered"),
            ("state", "ok", None), ("delivery", "resolved", "delivered"),
        ]  # fmt: skip


def test_nothing_is_evaluated_before_the_window_has_settled(store, clock, service):
    with webhook_receiver() as receiver:
        rule(service, receiver.url)
        job = evaluator(store, clock, "worker-a")
        calls(store, T0 - 10, T0, failing=True)
        clock.now = T0 + SETTLE - 0.2  # the slot [T0-10, T0) may still be written to
        job.scan()
        assert receiver.requests == []
        clock.now = T0 + SETTLE + 0.01
        job.scan()
        assert len(receiver.wait_for(1)) == 1


def test_workers_racing_on_every_window_notify_each_change_once(store, clock, service):
    """Three workers (own lease owners) scan at the same instants: one evaluates each window."""
    with webhook_receiver() as receiver:
        rule(service, receiver.url, window_sec=10)
        workers = [evaluator(store, clock, f"worker-{i}") for i in range(3)]
        pattern = [True, True, False, True, False, False, True, False]  # failing windows
        for n, failing in enumerate(pattern):
            calls(store, T0 + 10 * n, T0 + 10 * (n + 1), failing=failing)
            clock.now = T0 + 10 * (n + 1) + SETTLE + 0.1
            start = threading.Barrier(3)
            threads = [threading.Thread(target=_scan_after, args=(start, w)) for w in workers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        states = [r.json["state"] for r in receiver.wait_for(6, timeout=5)]
        assert states == ["firing", "resolved", "firing", "resolved", "firing", "resolved"]
        deliveries = [r.headers["x-nimbus-delivery"] for r in receiver.requests]
        assert len(set(deliveries)) == len(deliveries) == 6


def _scan_after(start: threading.Barrier, job: AlertEvaluator) -> None:
    start.wait()
    job.scan()


def test_a_failed_delivery_is_retried_with_backoff(store, clock, service):
    with webhook_receiver(statuses=[500, 503]) as receiver:
        alert_id = rule(service, receiver.url)
        job = evaluator(store, clock, "worker-a", retry_base_sec=2.0)
        calls(store, T0 - 30, T0, failing=True)
        job.scan()
        assert len(receiver.requests) == 1 and service.get(alert_id).pending_deliveries == 1
        job.scan()
        assert len(receiver.requests) == 1  # backing off (2–3 s)
        clock.now += 3.01
        job.scan()
        assert len(receiver.requests) == 2
        clock.now += 6.01  # 4–6 s
        job.scan()
        sent = receiver.wait_for(3)
        assert len(sent) == 3 and len({r.body for r in sent}) == 1  # the same body each time
        assert all(r.signed_with(SECRET) for r in sent)
        assert service.get(alert_id).pending_deliveries == 0
        attempts = [(e.attempt, e.outcome, e.status_code) for e in
                    reversed(service.history(alert_id, limit=10, offset=0).events)
                    if e.kind == "delivery"]  # fmt: skip
        assert attempts == [(1, "retrying", 500), (2, "retrying", 503), (3, "delivered", 200)]


def test_a_delivery_owed_by_a_worker_that_died_is_sent_by_another(store, clock, service):
    class Died(BaseException):
        """The worker's process ends between writing the change and the POST."""

    class DyingClient(OutboundClient):
        def post(self, url, body, headers):
            raise Died

    with webhook_receiver() as receiver:
        alert_id = rule(service, receiver.url)
        doomed = evaluator(store, clock, "worker-a")
        doomed.webhook.outbound = DyingClient(allow_private=True)
        calls(store, T0 - 30, T0 + 70, failing=True)  # still failing when the lease runs out
        with pytest.raises(Died):
            doomed.scan()
        assert service.get(alert_id).state == "firing"  # written before the POST
        survivor = evaluator(store, clock, "worker-b")
        survivor.scan()
        assert receiver.requests == []  # worker-a's lease is still live
        clock.now += 61  # the lease ran out
        survivor.scan()
        (sent,) = receiver.wait_for(1)
        assert sent.json["state"] == "firing" and sent.signed_with(SECRET)
        by = {e.by for e in service.history(alert_id, limit=10, offset=0).events
              if e.kind == "delivery"}  # fmt: skip
        assert by == {"worker-b"}


def test_disabled_rules_are_not_evaluated_and_enabling_resumes(store, clock, service):
    with webhook_receiver() as receiver:
        alert_id = rule(service, receiver.url, enabled=False)
        job = evaluator(store, clock, "worker-a")
        calls(store, T0 - 30, T0, failing=True)
        assert job.scan() == 0 and receiver.requests == []
        service.set_enabled(alert_id, True, actor="test")
        clock.now += RECHECK_SEC  # a worker re-reads a disabled rule this often
        assert job.scan() == 1 and len(receiver.wait_for(1)) == 1


def test_throttles_of_every_function_when_no_function_is_named(store, clock, service):
    with webhook_receiver() as receiver:
        rule(service, receiver.url, function=None, metric="throttles", op=">=", threshold=3)
        book = WindowBook(store, "w2")
        book.add_all([InvocationOutcome(
            invocation_id=f"t{i}", function_id=f"fn_{'b' * 15}{i}", function_name="x",
            runtime="wasm", version=1, trigger="api", status=THROTTLED,
            started_at=datetime.fromtimestamp(T0 - 5, UTC)) for i in range(3)])  # fmt: skip
        book.save()
        evaluator(store, clock, "worker-a").scan()
        (sent,) = receiver.wait_for(1)
        assert (sent.json["value"], sent.json["function"]) == (3.0, None)


def test_scans_read_the_store_only_when_a_rule_is_due(tmp_path, clock):
    """A worker scans every second; it lists rules every RECHECK_SEC and reads a rule once
    per evaluation (every 10 s for a 30 s window), not once per scan."""

    class Counting(LocalStore):
        lists = gets = 0

        def list(self, prefix: str = ""):
            if prefix.startswith("alerts/rules"):
                type(self).lists += 1
            return super().list(prefix)

        def get(self, key: str):
            if key.startswith("alerts/rules"):
                type(self).gets += 1
            return super().get(key)

    store = Counting(tmp_path / "counted")
    repo = FunctionRepo(store)
    repo.create_function(Function(id="fn_aaaaaaaaaaaaaaaa", name="checkout", runtime="wasm"))
    service = AlertService(AlertRepo(store), repo, webhook(), allow_private=True)
    rule(service, "http://127.0.0.1:9/unused")
    job = evaluator(store, clock, "worker-a")
    Counting.lists = Counting.gets = 0
    evaluated = 0
    for _ in range(60):  # a minute of scans
        evaluated += job.scan()
        clock.now += 1
    assert evaluated == 6  # one per 10 s boundary
    assert Counting.lists == 6  # once per RECHECK_SEC
    assert Counting.gets <= 2 * evaluated, Counting.gets  # the claim's read (+ a look)


def test_a_store_error_while_evaluating_releases_the_rule_for_the_next_scan(store, clock, service):
    class Flaky(WindowQuery):
        failures = 1

        def totals(self, *args, **kwargs):
            if Flaky.failures:
                Flaky.failures -= 1
                raise errors.Unavailable("the store answered 503")
            return super().totals(*args, **kwargs)

    with webhook_receiver() as receiver:
        alert_id = rule(service, receiver.url)
        job = evaluator(store, clock, "worker-a")
        job.query = Flaky(store)
        calls(store, T0 - 30, T0, failing=True)
        assert job.scan() == 0 and receiver.requests == []
        assert service.get(alert_id).evaluated_until is None
        clock.now += 1  # the next scan, not the lease's 60 s later
        assert job.scan() == 1 and len(receiver.wait_for(1)) == 1


def test_repeats_are_delivered_without_a_state_change(store, clock, service):
    with webhook_receiver() as receiver:
        alert_id = rule(service, receiver.url, repeat_sec=60)
        job = evaluator(store, clock, "worker-a")
        calls(store, T0 - 30, T0 + 70, failing=True)
        for _ in range(8):  # windows ending T0 … T0+70
            job.scan()
            clock.now += 10
        sent = receiver.wait_for(2)
        assert [r.json["state"] for r in sent] == ["firing", "firing"]
        assert sent[1].json["delivery"] != sent[0].json["delivery"]
        events = service.history(alert_id, limit=20, offset=0).events
        assert [e.state for e in events if e.kind == "state"] == ["firing"]


@pytest.mark.parametrize("end", [T0, T0 + 10, T0 + 20])  # T0 % 30 == 20: every phase
def test_the_window_is_exactly_window_sec_before_its_end(store, clock, service, end):
    with webhook_receiver() as receiver:
        alert_id = rule(service, receiver.url, window_sec=30)
        calls(store, end - 60, end - 30, failing=True)  # just before the window
        calls(store, end - 30, end, failing=False, every=3.0)  # 10 good calls in it
        calls(store, end, end + 10, failing=True)  # just after
        clock.now = end + SETTLE + 0.1
        evaluator(store, clock, "worker-a").scan()
        view = service.get(alert_id)
        assert view.evaluated_until == datetime.fromtimestamp(end, UTC)
        assert (view.value, view.state) == (0.0, "ok")


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(store, clock, service):
    with webhook_receiver(delay_sec=1.0) as receiver:
        alert_id = rule(service, receiver.url)
        job = evaluator(store, clock, "worker-a")
        job.webhook.outbound = OutboundClient(allow_private=True, timeout_sec=0.3)
        calls(store, T0 - 30, T0, failing=True)
        job.scan()
        (attempt,) = [e for e in service.history(alert_id, limit=10, offset=0).events
                      if e.kind == "delivery"]  # fmt: skip
        assert (attempt.outcome, attempt.status_code) == ("retrying", None)
        assert attempt.error.startswith("ReadTimeout")
        assert service.get(alert_id).pending_deliveries == 1
        assert len(receiver.wait_for(1)) == 1  # it did arrive: why receivers should dedupe

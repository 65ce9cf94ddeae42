"""Logs, stats and metrics without a server: entries, queries, retention, folding, flushing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.flusher import OutcomeFlusher
from gateway.telemetry.logs import InvocationLogs, entries_for, parse_limit, parse_since
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.recorder import InvocationOutcome
from gateway.telemetry.stats import FoldedStats, InvocationTotals, StatsBook, WorkerStats
from store import LocalStore, errors
from store.functions import STATS_TOTAL_KEY, function_key, stats_worker_key

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def outcome(n: int = 0, **kw) -> InvocationOutcome:
    fields = {
        "invocation_id": f"inv_{n}",
        "function_id": "fn_a",
        "function_name": "a",
        "runtime": "wasm",
        "version": 1,
        "trigger": "sync",
        "status": "succeeded",
        "duration_ms": 2.0,
        "started_at": T0 + timedelta(seconds=n),
        **kw,
    }
    return InvocationOutcome(**fields)


class CountingStore(LocalStore):
    """A real local store that counts reads and can refuse writes under a prefix."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.gets: list[str] = []
        self.refuse: str | None = None

    def get(self, key):
        self.gets.append(key)
        return super().get(key)

    def put(self, key, data, **kw):
        if self.refuse and key.startswith(self.refuse):
            raise errors.Unavailable("refused for the test")
        return super().put(key, data, **kw)


@pytest.fixture
def store(tmp_path) -> CountingStore:
    return CountingStore(tmp_path / "store")


# -- entries ----------------------------------------------------------------------


def test_entries_split_lines_and_end_with_the_platform_line():
    o = outcome(logs=b"one\r\ntwo\n\nthree", output=b'{"ok": 1}\n', cold_start=True)
    entries, newest_us = entries_for(o, 1024)
    assert [(e["stream"], e["line"]) for e in entries] == [
        ("stderr", "one"),
        ("stderr", "two"),
        ("stderr", ""),
        ("stderr", "three"),
        ("platform", "END duration=2.00ms status=succeeded version=1 trigger=sync cold_start=true"),
    ]  # no stdout line: the result went to the caller (it was logged too)
    assert entries[0]["ts"] == "2030-01-02T03:04:05.000000Z"
    assert entries[-1]["ts"] == "2030-01-02T03:04:05.002000Z"
    assert newest_us == int((T0 + timedelta(milliseconds=2)).timestamp() * 1e6)
    assert {e["invocation_id"] for e in entries} == {"inv_0"}


def test_a_failed_call_keeps_what_it_wrote_to_stdout():
    o = outcome(logs=b"oops\n", output=b"partial\n", status="failed", error_code="function_error")
    entries, _ = entries_for(o, 1024)
    assert [(e["stream"], e["line"]) for e in entries][:2] == [
        ("stderr", "oops"),
        ("stdout", "partial"),
    ]


def test_entries_keep_at_most_the_budget_stderr_first():
    o = outcome(logs=b"e" * 60 + b"\n", output=b"o" * 100, status="timed_out", error_code="timeout")
    entries, _ = entries_for(o, 80)
    lines = [(e["stream"], e["line"]) for e in entries]
    assert lines[0] == ("stderr", "e" * 60)
    assert lines[1:3] == [("stdout", "o" * 9), ("stdout", "o" * 10)]  # 80 - 61: its ends
    assert lines[3] == (
        "platform",
        "log truncated: kept 80 bytes (the first and the last); "
        "dropped bytes from the middle: stdout=81",
    )
    assert lines[4][1].startswith("END duration=2.00ms status=timed_out error=timeout")


def test_a_chatty_call_that_failed_keeps_its_error_in_the_log():
    """Its [ERROR] line comes last: the kept head alone lost it past the budget."""
    logs = b"".join(b"line %d\n" % n for n in range(20_000)) + b"[ERROR] ValueError: why\n"
    o = outcome(logs=logs, status="failed", error_code="function_error")
    lines = [e["line"] for e in entries_for(o, 64 * 1024)[0]]
    assert lines[0] == "line 0" and lines[-3] == "[ERROR] ValueError: why"
    assert lines[-2].startswith("log truncated: kept 65536 bytes")


def test_a_huge_line_is_cut():
    (line, _end), _ = entries_for(outcome(logs=b"x" * 20000), 1 << 20)
    assert len(line["line"]) < 8300 and line["line"].endswith("…[line truncated]")


def test_query_parameters():
    assert parse_limit(None) == 100 and parse_limit("1000") == 1000
    for bad in ("0", "1001", "x", "1.5"):
        with pytest.raises(errors.Invalid):
            parse_limit(bad)
    assert parse_since(None) is None
    assert parse_since("1700000000.5") == 1_700_000_000_500_000
    assert parse_since("2030-01-02T03:04:05Z") == int(T0.timestamp() * 1e6)
    assert parse_since("2030-01-02T04:04:05+01:00") == int(T0.timestamp() * 1e6)
    assert parse_since("2030-01-02T03:04:05") == int(T0.timestamp() * 1e6)  # no offset: UTC
    for bad in ("yesterday", "-1", "nan", "inf", "2030-13-01", "9" * 400 + "d", "99999999999d"):
        with pytest.raises(errors.Invalid):  # an age of 1e400 days was an OverflowError: 500
            parse_since(bad)


# -- batches: query and retention ----------------------------------------------------------


def _write(logs: InvocationLogs, outcomes: list[InvocationOutcome], seq: int) -> None:
    entries, newest = [], 0
    for o in outcomes:
        more, end = entries_for(o, 1024)
        entries += more
        newest = max(newest, end)
    logs.write("fn_a", entries, newest, "w1", seq)


def test_query_is_newest_first_and_stops_reading_early(store):
    logs = InvocationLogs(store, retention_sec=3600, sweep_every_sec=60, owner="me")
    for batch in range(10):  # 10 batches of 3 invocations, one stderr line each
        _write(logs, [outcome(batch * 3 + i, logs=b"hi\n") for i in range(3)], batch)
    store.gets.clear()
    newest = logs.query("fn_a", since_us=None, limit=4)
    assert [(e["invocation_id"], e["stream"]) for e in newest] == [
        ("inv_29", "platform"),
        ("inv_29", "stderr"),
        ("inv_28", "platform"),
        ("inv_28", "stderr"),
    ]
    assert len(store.gets) == 1  # the newest batch held all four

    since = int((T0 + timedelta(seconds=25)).timestamp() * 1e6)
    found = logs.query("fn_a", since_us=since, limit=1000)
    assert {e["invocation_id"] for e in found} == {f"inv_{n}" for n in range(25, 30)}
    stamps = [e["ts"] for e in found]
    assert stamps == sorted(stamps, reverse=True)

    store.gets.clear()
    one = logs.of_invocation("fn_a", "inv_13", None)  # an id that says no time
    assert [e["stream"] for e in one] == ["platform", "stderr"]
    assert len(store.gets) == 6  # batches 9 … 4, then it stops
    assert logs.query("fn_b", since_us=None, limit=10) == []


def test_sweep_deletes_expired_batches_and_those_of_deleted_functions(store):
    store.put(function_key("fn_a"), b"{}")
    logs = InvocationLogs(store, retention_sec=60, sweep_every_sec=3600, owner="me")
    old_us = int((time.time() - 120) * 1e6)
    fresh_us = int(time.time() * 1e6)
    logs.write("fn_a", [{"x": 1}], old_us, "w", 1)
    kept = logs.write("fn_a", [{"x": 2}], fresh_us, "w", 2)
    logs.write("fn_gone", [{"x": 3}], fresh_us, "w", 3)
    store.gets.clear()
    assert logs.maybe_sweep() == 2
    assert not [k for k in store.gets if k.startswith("logs/invocations/")]  # keys alone
    assert list(store.list("logs/invocations/")) == [kept]
    other = InvocationLogs(store, retention_sec=60, sweep_every_sec=3600, owner="other")
    assert other.maybe_sweep() is None  # the lease says someone swept within the hour


# -- stats ------------------------------------------------------------------------------


def test_totals_merge():
    a, b = InvocationTotals(), InvocationTotals()
    a.add(outcome(duration_ms=5.0))
    a.add(
        outcome(
            status="failed", error_code="function_error", error_type="ExitError", duration_ms=1.0
        )
    )
    b.add(
        outcome(
            status="timed_out",
            error_code="timeout",
            duration_ms=900.0,
            runtime="go",
            trigger="async",
            cold_start=True,
        )
    )
    a.merge(b)
    assert (a.all.total, a.all.succeeded, a.all.failed, a.all.timed_out) == (3, 1, 1, 1)
    assert (a.all.duration_min_ms, a.all.duration_max_ms, a.all.duration_sum_ms) == (1, 900, 906)
    assert a.by_error_type == {"function_error": 1, "timeout": 1}
    assert a.by_function_error_type == {"ExitError": 1}
    assert a.by_trigger == {"sync": 2, "async": 1}
    assert a.by_runtime["go"].cold_starts == 1 and a.by_runtime["wasm"].total == 2
    a.merge(InvocationTotals())  # an empty tally changes nothing
    assert a.all.duration_min_ms == 1


def book(store, writer: str, fold_after: float = 600) -> StatsBook:
    return StatsBook(store, writer, heartbeat_sec=fold_after / 4, fold_after_sec=fold_after)


def test_books_sum_across_workers_and_fold_when_they_stop(store):
    one, two = book(store, "one"), book(store, "two")
    for n in range(3):
        one.add_all([outcome(n)])
    two.add_all([outcome(9, status="failed", error_code="timeout")])
    assert one.save() and two.save()
    assert not one.save()  # nothing new, heartbeat not due
    assert one.totals().all.total == 4
    one.retire()
    assert list(store.list("stats/workers/")) == [stats_worker_key("two")]
    totals = two.totals()
    assert (totals.all.total, totals.by_error_type) == (4, {"timeout": 1})


def test_a_killed_workers_stats_are_folded_once(store):
    dead = book(store, "dead", fold_after=0.05)
    dead.add_all([outcome()])
    dead.save()
    alive = book(store, "alive", fold_after=0.05)
    time.sleep(0.1)
    assert alive.fold_stale() == 1
    assert alive.fold_stale() == 0
    assert alive.totals().all.total == 1
    assert list(store.list("stats/workers/")) == []


def test_a_fold_interrupted_after_the_total_is_neither_lost_nor_doubled(store):
    dead = book(store, "dead", fold_after=0.05)
    dead.add_all([outcome()])
    dead.save()
    # What a folder leaves when it dies between steps (2) and (3):
    record = WorkerStats.model_validate_json(store.get(stats_worker_key("dead")).data)
    record.folding = True
    store.put(stats_worker_key("dead"), record.model_dump_json().encode())
    total = FoldedStats(totals=record.totals, folded={"dead": datetime.now(UTC)})
    store.put(STATS_TOTAL_KEY, total.model_dump_json().encode())
    reader = book(store, "reader")
    assert reader.totals().all.total == 1  # the object is skipped: the total holds it
    assert reader.fold_stale() == 1  # a marked object is folded at once, not added again
    assert reader.totals().all.total == 1
    assert list(store.list("stats/workers/")) == []


def test_a_stalled_worker_whose_stats_were_folded_carries_on_under_a_new_id(store):
    slow = book(store, "slow", fold_after=0.05)
    slow.add_all([outcome(1)])
    slow.save()
    time.sleep(0.1)
    book(store, "other", fold_after=0.05).fold_stale()
    slow.add_all([outcome(2)])
    slow.save()
    assert slow.writer == "slow.1"
    assert slow.totals().all.total == 2  # one in the total, one in the new object


class AnswerLostStore(CountingStore):
    """Writes under `lose` land, but the caller hears nothing (a store that hung)."""

    lose: str | None = None

    def put(self, key, data, **kw):
        etag = super().put(key, data, **kw)
        if self.lose and key.startswith(self.lose):
            raise errors.Unavailable("timed out (the write landed)")
        return etag


def test_stats_whose_write_landed_unanswered_are_counted_once(tmp_path):
    store = AnswerLostStore(tmp_path / "store")
    worker = book(store, "w")
    worker.add_all([outcome(1)])
    worker.save()
    store.lose = "stats/workers/"
    for n in (2, 3):  # two writes in a row time out, and both land
        worker.add_all([outcome(n)])
        with pytest.raises(errors.Unavailable):
            worker.save()
    store.lose = None
    worker.add_all([outcome(4)])
    assert worker.save()  # If-Match fails on the landed write: it is adopted, not a fold
    assert worker.writer == "w"
    assert worker.totals().all.total == 4
    assert list(store.list("stats/workers/")) == [stats_worker_key("w")]


# -- metrics and the flusher -----------------------------------------------------------------


def _sample(text: str, name: str, **labels) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_in_one_process():
    metrics = Metrics()
    metrics.observe_invocations([outcome(cold_start=True), outcome(duration_ms=3)])
    metrics.observe_invocations([outcome(status="failed", error_code="timeout", duration_ms=2e3)])
    metrics.observe_build("wasm", "ready", 1.5)
    metrics.sample_sandbox({"running": 2, "cache_hits": 5, "cache_misses": 1})
    metrics.sample_sandbox({"running": 0, "cache_hits": 7, "cache_misses": 1})
    metrics.set_async_queue_depth(12)
    text = metrics.render()[0].decode()
    assert _sample(text, "nimbus_invocations_total", status="failed", error_code="timeout") == 1
    assert _sample(text, "nimbus_invocations_total", function="a", status="succeeded") == 2
    assert _sample(text, "nimbus_invocations_total", function="a") == 3
    assert _sample(text, "nimbus_cold_starts_total") == 1
    assert _sample(text, "nimbus_invocation_duration_seconds_bucket", le="1.0") == 2
    assert _sample(text, "nimbus_build_duration_seconds_count", runtime="wasm") == 1
    assert _sample(text, "nimbus_artifact_cache_hits_total") == 7
    assert _sample(text, "nimbus_artifact_cache_misses_total") == 1
    assert _sample(text, "nimbus_sandbox_running") == 0
    assert _sample(text, "nimbus_async_queue_depth") == 12
    assert metrics.value("nimbus_async_queue_depth") == 12


def test_every_outcome_a_tick_or_alert_counter_may_count_is_a_series_from_the_start():
    """A series born at 1 loses that 1 to rate()/increase(): the first missed tick, the
    first failed alert delivery went unseen by any rule over these counters."""
    text = Metrics().render()[0].decode()
    series = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    for name, label, values in (
        ("nimbus_schedule_ticks_total", "outcome", ("fired", "failed", "taken", "missed")),
        ("nimbus_alert_changes_total", "state", ("ok", "pending", "firing")),
        ("nimbus_alert_deliveries_total", "outcome", ("delivered", "retrying", "failed",
                                                       "dropped")),
    ):  # fmt: skip
        for value in values:
            assert (name, ((label, value),), 0.0) in series, (name, value)


def test_flusher_batches_per_function_and_retries_refused_batches(store):
    logs = InvocationLogs(store, retention_sec=3600, sweep_every_sec=3600, owner="w")
    stats = book(store, "w")
    flusher = OutcomeFlusher(logs, stats, Metrics(), lambda: None, writer="w")
    for n in range(5):
        flusher.record(outcome(n, function_id="fn_a" if n % 2 else "fn_b", logs=b"x\n"))
    store.refuse = "logs/"
    flusher.flush()
    assert list(store.list("logs/invocations/")) == []
    assert stats.totals().all.total == 5  # stats do not wait for the logs
    store.refuse = None
    flusher.flush()
    keys = list(store.list("logs/invocations/"))
    assert [k.split("/")[2] for k in keys] == ["fn_a", "fn_b"]
    assert len(logs.query("fn_b", since_us=None, limit=100)) == 3 * 2


def test_a_scrape_during_a_flush_sees_the_cache_loads_of_the_calls_it_counts(store):
    """The sandbox counts a cold load before the call's outcome is recorded. A scrape taken
    while a flush writes its logs once saw the calls counted and their cache misses not yet
    (the gauges were refreshed after the store writes): an e2e run read 2 misses for 4 cold
    starts."""
    metrics = Metrics()
    sandbox = {"cache_hits": 0, "cache_misses": 0}
    scraped: list[str] = []

    class ScrapedMidWrite(InvocationLogs):
        def write(self, *args, **kw):
            scraped.append(metrics.render()[0].decode())
            return super().write(*args, **kw)

    logs = ScrapedMidWrite(store, retention_sec=3600, sweep_every_sec=3600, owner="w")
    flusher = OutcomeFlusher(
        logs, book(store, "w"), metrics, lambda: metrics.sample_sandbox(sandbox), writer="w"
    )
    sandbox["cache_misses"] += 1  # the call's cold load, then its outcome
    flusher.record(outcome(cold_start=True, logs=b"x\n"))
    flusher.flush()
    assert _sample(scraped[0], "nimbus_invocations_total") == 1
    assert _sample(scraped[0], "nimbus_artifact_cache_misses_total") == 1


def test_a_store_that_refuses_the_flushes_is_one_warning_and_one_recovery_line(store, caplog):
    """Before, every flush (twice a second) logged 'stats of … not written' and a line per
    log batch: 47 such lines in 25 s of a server with a wrong S3 secret."""
    logs = InvocationLogs(store, retention_sec=3600, sweep_every_sec=3600, owner="w")
    flusher = OutcomeFlusher(logs, book(store, "w"), Metrics(), lambda: None, writer="w")
    store.refuse = ("logs/", "stats/")  # every write a flush makes
    with caplog.at_level("INFO", logger="nimbus.recorder"):
        for n in range(10):
            flusher.record(outcome(n, logs=b"x\n"))
            flusher.flush()
        store.refuse = None
        flusher.flush()
        flusher.flush()
    said = [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records]
    assert sorted(said) == [
        ("INFO", "writing log batches of w"),
        ("INFO", "writing stats of w"),
        ("WARNING", "writing log batches of w"),
        ("WARNING", "writing stats of w"),
    ], said
    assert all(r.exc_info is None for r in caplog.records)
    assert len(logs.query("fn_a", since_us=None, limit=100)) == 10 * 2  # nothing lost


def test_record_costs_next_to_nothing(store):
    logs = InvocationLogs(store, retention_sec=3600, sweep_every_sec=3600, owner="w")
    flusher = OutcomeFlusher(
        logs, book(store, "w"), Metrics(), lambda: None, writer="w", batch_max=10**9
    )
    o = outcome()
    started = time.perf_counter()
    for _ in range(100_000):
        flusher.record(o)
    per_call_us = (time.perf_counter() - started) / 100_000 * 1e6
    assert per_call_us < 5, per_call_us  # an append; measured ~0.1 µs


def test_guest_chosen_error_types_cannot_grow_the_stats_without_bound():
    totals, other = InvocationTotals(), InvocationTotals()
    for i in range(5000):  # a guest inventing a new error type on every call
        totals.add(outcome(i, status="failed", error_code="function_error",
                           error_type=f"Err{i}-" + "x" * 500))  # fmt: skip
    for _ in range(3):
        other.add(outcome(status="failed", error_code="function_error", error_type="ValueError"))
    totals.merge(other)
    counts = totals.by_function_error_type
    assert len(counts) <= 50 and all(len(name) <= 64 for name in counts)
    assert sum(counts.values()) == 5003  # nothing lost: the rest counts as "other"
    assert counts["ValueError"] == 3 and counts["other"] >= 4950

"""Windowed stats without a server: histogram, per-worker windows, queries, roll-up, retention."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import partial

import pytest

from gateway.telemetry import histogram
from gateway.telemetry.recorder import InvocationOutcome
from gateway.telemetry.window_query import WindowQuery
from gateway.telemetry.window_rollup import WindowRollup
from gateway.telemetry.window_stats import (
    WindowStatsService,
    default_step,
    parse_moment,
    parse_step,
    window_view,
)
from gateway.telemetry.windows import WindowBook
from store import LocalStore, errors
from store.functions import FunctionRepo
from store.records import Function
from store.windows import RAW_PREFIX, rolled_key

# an hour boundary, so tests know which hour objects they touch
T0 = datetime(2030, 1, 2, 3, 0, 0, tzinfo=UTC)
H0 = int(T0.timestamp())


def outcome(at: float, *, version: int = 1, function_id: str = "fn_a", **kw) -> InvocationOutcome:
    fields = {
        "invocation_id": "inv",
        "function_id": function_id,
        "function_name": function_id[3:],
        "runtime": "wasm",
        "version": version,
        "trigger": "sync",
        "status": "succeeded",
        "duration_ms": 2.0,
        "started_at": datetime.fromtimestamp(H0 + at, UTC),
        **kw,
    }
    return InvocationOutcome(**fields)


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def always(key: str, seconds: float) -> bool:
    return True


# -- the histogram -------------------------------------------------------------------


def test_histogram_buckets_cover_every_duration_within_ten_percent():
    for ms in (0.001, 0.01, 0.0101, 0.5, 1.0, 2.0, 33.3, 999.0, 60_000.0, 300_000.0):
        b = histogram.bucket_of(ms)
        assert histogram.lower_ms(b) < ms <= histogram.upper_ms(b) or (b == 0 and ms <= 0.01)
        assert histogram.upper_ms(b) <= max(ms, 0.01) * histogram.GROWTH + 1e-12
    assert histogram.bucket_of(300_000) < 200  # sparse, but bounded


def test_merged_histograms_give_the_quantiles_of_all_values():
    rng = random.Random(7)
    values = [rng.lognormvariate(1.5, 1.0) for _ in range(5000)]
    parts: list[dict[int, int]] = [{}, {}, {}]
    for i, ms in enumerate(values):
        histogram.add(parts[i % 3], ms)
    merged: dict[int, int] = {}
    for part in parts:
        histogram.merge(merged, part)
    exact = sorted(values)
    for q in (0.5, 0.95, 0.99):
        truth = exact[int(q * len(exact) + 0.999999) - 1]
        got = histogram.quantile(merged, q)
        assert truth <= got <= truth * histogram.GROWTH * 1.000001
    assert histogram.quantile({}, 0.5) is None


# -- writing and reading -------------------------------------------------------------


def test_two_workers_windows_add_up_exactly_per_version_and_step(store):
    a, b = WindowBook(store, "worker-a"), WindowBook(store, "worker-b")
    a.add_all(
        [
            outcome(1),
            outcome(5, version=2),
            outcome(12, status="failed", error_code="function_error"),
        ]
    )
    b.add_all([outcome(3), outcome(14, status="timed_out", error_code="timeout",
                                    duration_ms=3_000.0),
               outcome(15, status="throttled", error_code="too_many_requests")])  # fmt: skip
    assert a.save() == 1 and b.save() == 1
    series = WindowQuery(store).series(H0, H0 + 30, 10, function_id="fn_a")
    assert [p.total.invocations for p in series.points] == [3, 2, 0]
    assert series.total.invocations == 5 and series.total.throttled == 1
    assert series.total.errors == 2 and series.total.error_codes == {
        "function_error": 1,
        "timeout": 1,
    }  # a throttled call is only counted as throttled
    assert series.by_version[1].invocations == 4 and series.by_version[2].invocations == 1
    assert series.total.duration_max_ms == 3_000.0
    only_two = WindowQuery(store).series(H0, H0 + 30, 10, function_id="fn_a", version=2)
    assert only_two.total.invocations == 1 and set(only_two.by_version) == {2}


def test_an_outcome_counts_in_the_slot_it_ended_in(store):
    book = WindowBook(store, "w")
    book.add_all([outcome(8, duration_ms=3000.0)])  # started at 8 s, ended at 11 s
    book.save()
    series = WindowQuery(store).series(H0, H0 + 20, 10, function_id="fn_a")
    assert [p.total.invocations for p in series.points] == [0, 1]


def test_a_minute_is_rewritten_with_the_running_totals(store):
    book = WindowBook(store, "w")
    book.add_all([outcome(1)])
    book.save()
    book.add_all([outcome(2), outcome(3)])
    assert book.save() == 1
    assert WindowQuery(store).totals("fn_a", H0, H0 + 60).invocations == 3
    assert book.save() == 0  # nothing new: no write


def test_a_refused_write_is_kept_and_written_next_time(store, monkeypatch):
    book = WindowBook(store, "w")
    book.add_all([outcome(1)])
    real_put = store.put

    def refuse(*args, **kwargs):
        raise errors.Unavailable("refused for the test")

    monkeypatch.setattr(store, "put", refuse)
    with pytest.raises(errors.Unavailable):
        book.save()
    monkeypatch.setattr(store, "put", real_put)
    assert book.save() == 1
    assert WindowQuery(store).totals("fn_a", H0, H0 + 60).invocations == 1


def test_the_query_flushes_the_callers_worker_first(store):
    book = WindowBook(store, "w")
    pending = [outcome(1)]

    def flush() -> None:
        book.add_all(pending)
        book.save()
        pending.clear()

    assert WindowQuery(store, flush).totals("fn_a", H0, H0 + 60).invocations == 1


def test_ranges_and_steps_are_checked():
    query = WindowQuery(LocalStore.__new__(LocalStore))
    for since, until, step, field in (
        (H0, H0 + 60, 15, "step"),
        (H0, H0 + 60, 0, "step"),
        (H0 + 60, H0, 10, "since"),
        (H0, H0 + 86400, 10, "step"),  # 8640 points
    ):
        with pytest.raises(errors.Invalid) as caught:
            query.series(since, until, step)
        assert caught.value.details[0]["field"] == field


def test_query_parameters_parse_ages_timestamps_and_units():
    now = 1_900_000_000.0
    assert parse_moment("since", "15m", now) == now - 900
    assert parse_moment("since", "1700000000", now) == 1_700_000_000
    assert parse_moment("since", "2030-01-02T03:00:00Z", now) == H0
    assert parse_moment("since", None, now) is None
    with pytest.raises(errors.Invalid):
        parse_moment("since", "yesterday", now)
    assert parse_step("1m", 0, 1) == 60 and parse_step("30", 0, 1) == 30
    with pytest.raises(errors.Invalid):
        parse_step("soon", 0, 1)
    assert default_step(3600) == 60 and default_step(600) == 10 and default_step(86400) == 1440


def test_moments_and_steps_out_of_range_are_422_naming_the_field(store):
    """`float()` takes nan, inf and 1e400, and a moment past 9999 has no datetime: each
    reached the view and made a 500."""
    repo = FunctionRepo(store)
    repo.create_function(Function(id="fn_a", name="alpha", runtime="wasm"))
    service = WindowStatsService(repo, WindowQuery(store), staleness_sec=0.5)
    for query, field in (
        ({"since": "nan"}, "since"),
        ({"since": "-inf"}, "since"),
        ({"since": "9" * 400 + "d"}, "since"),
        ({"until": "nan"}, "until"),
        ({"until": "1e15"}, "until"),  # the year 31,690,708
        ({"since": "0001-01-01T00:00:00Z"}, "since"),
        ({"step": "inf"}, "step"),
        ({"step": "nan"}, "step"),
    ):
        for view in (service.platform_stats, partial(service.function_stats, "alpha")):
            with pytest.raises(errors.Invalid) as caught:
                view(**query)
            assert caught.value.details[0]["field"] == field, query


def test_platform_view_names_each_function(store, tmp_path):
    repo = FunctionRepo(store)
    repo.create_function(Function(id="fn_a", name="alpha", runtime="wasm"))
    book = WindowBook(store, "w")
    book.add_all([outcome(1), outcome(2, function_id="fn_gone")])
    book.save()
    service = WindowStatsService(repo, WindowQuery(store), staleness_sec=0.5)
    view = service.platform_stats(since=str(H0), until=str(H0 + 60), step="60")
    assert view.totals.invocations == 2
    assert set(view.by_function) == {"alpha", "fn_gone"}
    assert view.by_version == {} and len(view.series) == 1
    one = service.function_stats("alpha", since=str(H0), until=str(H0 + 60), step="10s")
    assert one.totals.invocations == 1 and len(one.series) == 6
    assert one.by_version["1"].duration_ms.p50 == 2.0  # capped at the largest value seen
    assert window_view(book._minutes[("fn_a", H0)][H0][1]).error_rate == 0.0


# -- roll-up and retention -----------------------------------------------------------


def test_a_rolled_up_hour_answers_whole_minute_steps_with_the_same_numbers(store):
    for writer in ("a", "b"):
        book = WindowBook(store, writer)
        book.add_all([outcome(t, version=1 + t % 2, duration_ms=t) for t in range(0, 3600, 7)])
        book.save()
    before = WindowQuery(store).series(H0, H0 + 3600, 300, function_id="fn_a")
    rollup = WindowRollup(store, always, grace_sec=300, raw_retention_sec=3 * 3600)
    rollup.roll(now=H0 + 3600 + 299)
    assert not store.exists(rolled_key(H0))  # not past the grace yet
    assert rollup.roll(now=H0 + 3600 + 300) == 1
    assert store.exists(rolled_key(H0))
    after = WindowQuery(store).series(H0, H0 + 3600, 300, function_id="fn_a")
    assert after.resolution == 60 and before.resolution == 10
    assert [p.total for p in after.points] == [p.total for p in before.points]
    assert after.by_version == before.by_version
    # a 10 s step still reads the raw windows
    assert WindowQuery(store).series(H0, H0 + 600, 10, function_id="fn_a").resolution == 10


def test_retention_deletes_raw_then_rolled_hours(store):
    book = WindowBook(store, "a")
    book.add_all([outcome(1)])
    book.save()
    rollup = WindowRollup(store, always, grace_sec=300, raw_retention_sec=2 * 3600,
                          retention_sec=86400)  # fmt: skip
    assert rollup.sweep(now=H0 + 3600 + 400) == 0  # rolled (a stray hour), nothing deleted
    assert store.exists(rolled_key(H0))
    assert rollup.sweep(now=H0 + 3 * 3600 + 1) == 1  # the raw object
    assert not list(store.list(RAW_PREFIX))
    minute_steps = WindowQuery(store).series(H0, H0 + 3600, 60, function_id="fn_a")
    assert minute_steps.total.invocations == 1  # still there, from the roll-up
    assert rollup.sweep(now=H0 + 3600 + 86401) == 2  # the hour object and its marker
    assert not list(store.list("stats/windows/"))


def test_upkeep_runs_only_with_the_hold(store):
    book = WindowBook(store, "a")
    book.add_all([outcome(1)])
    book.save()
    held: list[str] = []
    refused = WindowRollup(store, lambda key, s: held.append(key) or False, grace_sec=0)
    assert refused.upkeep() == (0, 0) and len(held) == 2
    WindowRollup(store, always, grace_sec=0).upkeep()
    assert list(store.list("stats/windows/rolled/"))


def test_a_range_longer_than_the_retention_is_422_before_any_hour_is_read(platform, client):
    """Each hour of a range is read from the store: `since=0` read ~490,000 of them for one
    request. Past STATS_RETENTION_DAYS (30) nothing is kept to read."""
    platform.repo.create_function(Function(id="fn_a", name="alpha", runtime="wasm"))
    for path in ("/api/v1/stats", "/api/v1/functions/alpha/stats"):
        resp = client.simulate_get(path, params={"since": "400d"})
        assert resp.status_code == 422, resp.text
        assert resp.json["error"]["details"][0]["field"] == "since"
    assert client.simulate_get("/api/v1/stats", params={"since": "20d"}).status_code == 200

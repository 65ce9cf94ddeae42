"""The schedule ticker in-process: several tickers (workers) on one store, a clock we move.

Real processes and SeaweedFS are in tests/e2e/test_schedules.py; here each
rule is pinned with exact instants.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.jobs.schedules import ScheduleTicker, tick_invocation_id
from gateway.platform import Platform
from gateway.schemas import (
    FunctionCreate,
    FunctionUpdate,
    ScheduleCreate,
    ScheduleUpdate,
    WorkflowCreate,
)
from gateway.settings import Settings
from store import Leases, LocalStore, Store, errors
from store.invocations import InvocationRepo
from store.schedules import ScheduleRepo
from tests.e2e.wasm import b64, constant_wat, wat

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def platform(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, nimbus_api_key="k", preload_runtimes=False,
                        schedules_enabled=False, build_poll_sec=0.05)  # fmt: skip
    platform = Platform.open(settings)
    platform.start()
    yield platform
    platform.stop()


def _function(platform: Platform, name: str, output: bytes = b'{"ok": true}') -> str:
    body = FunctionCreate(name=name, runtime="wasm", artifact_base64=b64(wat(constant_wat(output))))
    fn, version = platform.functions.create(body)
    platform.functions.wait_for_build(fn.id, version, 30)
    return fn.id


def _early_in_a_second() -> None:
    """Wait, if need be, until at least half of the current second is left. A rate is
    anchored on the whole second it was made in, and the tests then start their ticker on
    the real clock a moment later: if that moment straddles a whole second, one more tick
    is due than the test expects (seen once in 2,432 tests under load)."""
    into = time.time() % 1.0
    if into > 0.5:
        time.sleep(1.0 - into + 0.001)


def _ticker(platform: Platform, clock: Clock, store: Store | None = None, **kw) -> ScheduleTicker:
    store = store or platform.store
    return ScheduleTicker(ScheduleRepo(store), InvocationRepo(store), platform.invocations,
                          Leases(store), wake_dispatcher=lambda: None, clock=clock,
                          **kw)  # fmt: skip


def _schedule(platform: Platform, fn: str, expression: str, **fields) -> str:
    if expression.startswith("rate("):
        _early_in_a_second()
    return platform.schedules.create(fn, ScheduleCreate(expression=expression, **fields)).id


def test_of_many_workers_offering_a_tick_exactly_one_fires_it(platform):
    fn = _function(platform, "ticked")
    sid = _schedule(platform, fn, "*/10 * * * * *", event={"n": 1})
    clock = Clock(START + 5)
    tickers = [_ticker(platform, clock) for _ in range(6)]
    for ticker in tickers:
        ticker.refresh()
    clock.at = START + 10.2
    fired: list[str | None] = []
    start = threading.Barrier(len(tickers))

    def offer(ticker: ScheduleTicker) -> None:
        [(schedule, at)] = ticker.due()
        start.wait()
        fired.append(ticker.fire(schedule, at))

    threads = [threading.Thread(target=offer, args=(t,)) for t in tickers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    at = datetime.fromtimestamp(START + 10, UTC)
    assert [f for f in fired if f] == [tick_invocation_id(sid, at)]
    record = platform.async_invocations.get(tick_invocation_id(sid, at))
    assert (record.trigger, record.schedule_id, record.scheduled_at) == ("schedule", sid, at)
    assert record.event == '{"n":1}' and record.version == 1 and record.function_name == "ticked"
    markers = [k for k in platform.store.list("queue/invocations/") if record.id in k]
    assert len(markers) <= 1  # one marker, at the tick's instant (or already dropped)
    view = platform.schedules.get(fn, sid)
    assert view.last_run_at == at and view.last_invocation_id == record.id


def test_the_fired_tick_runs_as_an_async_invocation(platform):
    fn = _function(platform, "runs", b'{"ran": "yes"}')
    sid = _schedule(platform, fn, "rate(1 second)")
    ticker = _ticker(platform, Clock(time.time()))
    ticker.refresh()
    ticker.clock.at += 1.0
    [(schedule, at)] = ticker.due()
    invocation_id = ticker.fire(schedule, at)
    platform.async_invocations.wake()
    deadline = time.monotonic() + 20
    while platform.async_invocations.get(invocation_id).status in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    done = platform.async_invocations.get(invocation_id)
    assert done.status == "succeeded", done.error
    assert done.result == {"ran": "yes"}
    assert done.schedule_id == sid


def test_a_starting_worker_replays_no_tick_older_than_the_grace(platform):
    fn = _function(platform, "late")
    _schedule(platform, fn, "rate(1 minute)")
    created = platform.schedules.list(fn).schedules[0].created_at.replace(microsecond=0)
    clock = Clock(created.timestamp() + 3600 + 5)  # an hour of ticks passed with no worker
    ticker = _ticker(platform, clock)
    ticker.refresh()
    # only the tick of the last SCHEDULE_MISFIRE_GRACE_SEC (60 s) is offered, late
    assert [at for _, at in ticker.due()] == [created + timedelta(seconds=3600)]
    clock.at += 60
    due = ticker.due()
    assert [at for _, at in due] == [created + timedelta(seconds=3660)]


def test_a_restarted_server_fires_the_ticks_of_its_gap_once(platform):
    """One replica stopped and started again (an upgrade): the ticks that fell while it was
    down are fired late, once, none it fired before the stop again, nothing older."""
    fn = _function(platform, "restarted")
    sid = _schedule(platform, fn, "rate(10 seconds)")
    created = platform.schedules.get(fn, sid).created_at.timestamp()
    clock = Clock(created + 1)
    before = _ticker(platform, clock)
    before.refresh()
    clock.at = created + 21
    due = before.due()
    first = due[0][1]
    assert [at - first for _, at in due] == [timedelta(0), timedelta(seconds=10)]
    assert all(before.fire(schedule, at) for schedule, at in due)

    clock.at = first.timestamp() + 34  # down for 23 s: ticks +20 s and +30 s fell in it
    after = _ticker(platform, clock)
    after.refresh()
    due = after.due()
    assert [at - first for _, at in due] == [timedelta(seconds=20), timedelta(seconds=30)]
    assert all(after.fire(schedule, at) for schedule, at in due)
    clock.at = first.timestamp() + 40.1
    [(schedule, at)] = after.due()
    assert at - first == timedelta(seconds=40) and after.fire(schedule, at)

    again = _ticker(platform, clock)  # another worker starting now: nothing is left
    again.refresh()
    assert again.due() == []
    ticks = [k for k in platform.store.list("invocations/") if sid.removeprefix("sch_") in k]
    assert len(ticks) == 5  # first … first + 40 s, each once


def test_a_stalled_worker_skips_ticks_later_than_the_grace(platform):
    fn = _function(platform, "stalled")
    _schedule(platform, fn, "*/10 * * * * *")
    outcomes: list[str] = []
    clock = Clock(START + 1)
    ticker = _ticker(platform, clock, misfire_grace_sec=15,
                     on_tick=lambda outcome, late: outcomes.append(outcome))  # fmt: skip
    ticker.refresh()
    clock.at = START + 42  # ticks :10 :20 (too late) and :30 :40 (within 15 s)
    due = [at.second for _, at in ticker.due()]
    assert due == [30, 40] and outcomes == ["missed"]  # one stretch of missed ticks


def test_ticks_follow_the_cron_expression_in_its_time_zone_across_dst(platform):
    fn = _function(platform, "berlin")
    _schedule(platform, fn, "30 2 * * *", timezone="Europe/Berlin")
    clock = Clock(datetime(2026, 3, 28, 12, tzinfo=UTC).timestamp())
    ticker = _ticker(platform, clock, misfire_grace_sec=86400 * 3)
    ticker.refresh()
    clock.at = datetime(2026, 3, 30, 12, tzinfo=UTC).timestamp()
    assert [at.isoformat() for _, at in ticker.due()] == [
        "2026-03-29T01:00:00+00:00",  # 02:30 did not exist: right after the jump, 03:00 CEST
        "2026-03-30T00:30:00+00:00",  # 02:30 CEST
    ]


def test_a_pinned_version_runs_that_version(platform):
    fn = _function(platform, "pinned", b'{"v": 1}')
    platform.functions.update(fn, FunctionUpdate(artifact_base64=b64(wat(constant_wat(b"2")))))
    sid = _schedule(platform, fn, "rate(1 second)", qualifier="1")
    ticker = _ticker(platform, Clock(time.time()))
    ticker.refresh()
    ticker.clock.at += 1
    [(schedule, at)] = ticker.due()
    record = platform.async_invocations.get(ticker.fire(schedule, at))
    assert record.version == 1 and record.schedule_id == sid


def test_a_tick_of_an_offline_function_is_a_failed_invocation(platform):
    fn = _function(platform, "resting")
    _schedule(platform, fn, "rate(1 second)")
    platform.functions.update(fn, FunctionUpdate(status="offline"))
    platform.invocations.cache.function(fn, fresh=True)
    outcomes: list[str] = []
    ticker = _ticker(platform, Clock(time.time()),
                     on_tick=lambda outcome, late: outcomes.append(outcome))  # fmt: skip
    ticker.refresh()
    ticker.clock.at += 1
    [(schedule, at)] = ticker.due()
    record = platform.async_invocations.get(ticker.fire(schedule, at))
    assert record.status == "failed" and record.error["code"] == "offline"
    assert outcomes == ["failed"]


def test_deleted_and_disabled_schedules_stop_ticking(platform):
    fn = _function(platform, "stopping")
    keep = _schedule(platform, fn, "rate(1 second)")
    gone = _schedule(platform, fn, "rate(1 second)")
    clock = Clock(time.time())
    ticker = _ticker(platform, clock)
    ticker.refresh()
    platform.schedules.delete(fn, gone)
    platform.schedules.update(fn, keep, ScheduleUpdate(enabled=False))
    ticker.refresh()  # the change note moved: reloaded at once
    clock.at += 5
    assert ticker.due() == []


class IgnoresCreateOnly(LocalStore):
    """A store that, like some S3-compatible servers, accepts If-None-Match and ignores it."""

    def put(self, key, data, *, create=False, if_match=None):
        return super().put(key, data, if_match=if_match)


def test_a_store_that_ignores_create_only_writes_is_refused_loudly(platform, tmp_path, caplog):
    liar = IgnoresCreateOnly(tmp_path / "liar")
    ticker = _ticker(platform, Clock(time.time()), store=liar)
    with caplog.at_level(logging.ERROR, logger="nimbus.schedules"):
        ticker.start()
        deadline = time.monotonic() + 5
        while ticker.state == "starting" and time.monotonic() < deadline:
            time.sleep(0.01)
        ticker.stop()
    assert ticker.state == "refused"
    assert any("If-None-Match" in r.getMessage() for r in caplog.records)
    assert list(liar.list("probes/")) == []  # the probe leaves nothing behind


def test_an_alias_qualifier_is_resolved_at_each_tick(platform):
    fn = _function(platform, "aliased", b'{"v": 1}')
    _, two = platform.functions.update(
        fn, FunctionUpdate(artifact_base64=b64(wat(constant_wat(b"2"))))
    )
    platform.functions.wait_for_build(fn, two, 30)
    points = {"prod": 1}
    platform.invocations.resolve_alias = lambda function, alias: points[alias]
    _schedule(platform, fn, "rate(1 second)", qualifier="prod")
    ticker = _ticker(platform, Clock(time.time()))
    ticker.refresh()
    versions = []
    for moved_to in (1, 2):
        points["prod"] = moved_to
        ticker.clock.at += 1
        [(schedule, at)] = ticker.due()
        record = platform.async_invocations.get(ticker.fire(schedule, at))
        assert record.error is None
        versions.append(record.version)
    assert versions == [1, 2]


def test_a_workflow_schedule_starts_one_execution_per_tick(platform):
    definition = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
    wf = platform.workflows.create(WorkflowCreate(name="nightly", definition=definition)).id
    every_second = ScheduleCreate(expression="rate(1 second)", event={"night": 1})
    sid = platform.schedules.create(wf, every_second, "workflow").id
    clock = Clock(time.time())
    tickers = [_ticker(platform, clock, workflows=platform.workflows) for _ in range(4)]
    for ticker in tickers:
        ticker.refresh()
    clock.at += 1
    offers = [ticker.due() for ticker in tickers]
    fired = [t.fire(*offer[0]) for t, offer in zip(tickers, offers, strict=True)]
    [execution_id] = [f for f in fired if f]
    at = offers[0][0][1]
    assert execution_id == tick_invocation_id(sid, at, prefix="ex_")
    assert platform.workflows.executions(wf).total == 1  # one index entry, not one per offer
    deadline = time.monotonic() + 20
    while (done := platform.workflows.execution(execution_id)).status == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert done.status == "succeeded" and done.output == {"night": 1}
    assert platform.schedules.get(wf, sid, "workflow").last_invocation_id == execution_id
    with pytest.raises(errors.Invalid, match="latest version"):
        platform.schedules.create(wf, ScheduleCreate(expression="@daily", qualifier="1"),
                                  "workflow")  # fmt: skip
    platform.workflows.delete(wf)
    assert list(platform.store.list(f"schedules/by-function/{wf}/")) == []


def test_an_unreadable_schedule_stops_no_other(platform):
    """The ticker loads every schedule at once: one record that did not read back failed
    the load, and no schedule of the platform ticked."""
    fn = _function(platform, "ticking")
    sid = _schedule(platform, fn, "*/10 * * * * *")
    platform.store.put("schedules/by-function/fn_0spoilt/sch_spoilt.json", b'{"id": 1}')
    clock = Clock(START + 5)
    ticker = _ticker(platform, clock)
    ticker.refresh()
    clock.at = START + 10.2
    assert [schedule.id for schedule, _ in ticker.due()] == [sid]


class HungInvocationWrites(LocalStore):
    """A real local store whose invocation writes hang until released (a store that stopped
    answering mid-write)."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.entered = threading.Event()
        self.release = threading.Event()

    def put(self, key, data, **kw):
        if key.startswith("invocations/"):
            self.entered.set()
            self.release.wait(30)
        return super().put(key, data, **kw)


def test_a_tick_stuck_on_a_hung_store_does_not_hold_the_workers_stop(platform, caplog):
    """The ticker's stop waited for its pool with no bound: a tick whose write hung held a
    worker's stop as long as the store's timeouts, past its share of the graceful budget."""
    fn = _function(platform, "stuck")
    _schedule(platform, fn, "rate(1 second)")
    hung = HungInvocationWrites(platform.settings.data_dir)
    ticker = _ticker(platform, Clock(time.time()), store=hung)
    ticker.start()
    try:
        ticker.clock.at += 1.0
        assert hung.entered.wait(20), "the tick was never offered"
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="nimbus"):
            ticker.stop(timeout=0.5)
        # old: until the write returned (30 s here); generous for a loaded machine
        assert time.monotonic() - began < 15
        assert "1 schedule tick(s) still being offered" in caplog.text
    finally:
        hung.release.set()

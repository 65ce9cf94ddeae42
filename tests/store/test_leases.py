"""The lease primitive (`store.leases`), on every backend (see conftest.py).

Races run on `cas_store` only (local files, SeaweedFS): moto checks
conditions without a lock, so two racing conditional writes can both pass
there (conftest.py says more).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from store import Claim, LeaseLost, Leases, LocalStore, Store, errors, probe_conditional_writes
from store.records import Leased

KEY = "jobs/job-1.json"


class Job(Leased):
    status: str = "queued"
    result: str | None = None
    started: int = 0


class Nested(BaseModel):
    """A record whose lease is in a part of it, as a version's is in its build."""

    name: str
    job: Job

    @property
    def lease(self) -> Leased:
        return self.job


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _put(store: Store, record: BaseModel, key: str = KEY) -> str:
    return store.put(key, record.model_dump_json().encode())


def _read(store: Store, key: str = KEY) -> Job:
    return Job.model_validate_json(store.get(key).data)


def _queued(job: Job) -> bool:
    return job.status in ("queued", "running")


def _begin(job: Job) -> None:
    job.status = "running"
    job.started += 1


def _claim(leases: Leases, **kwargs) -> Claim[Job] | None:
    kwargs.setdefault("duration_sec", 30)
    return leases.claim(KEY, Job, ready=_queued, begin=_begin, **kwargs)


def _done(job: Job) -> None:
    job.status = "done"
    job.result = "ok"


# -- a lease inside a record ---------------------------------------------------


def test_claim_takes_the_record_and_counts_the_attempt(store: Store, clock: Clock) -> None:
    _put(store, Job())
    leases = Leases(store, "worker-a", clock=clock)
    claim = _claim(leases)
    assert claim is not None
    stored = _read(store)
    assert (stored.status, stored.started, stored.attempts) == ("running", 1, 1)
    assert stored.lease_owner == "worker-a"
    assert stored.lease_until == clock.now + 30
    assert claim.etag == store.head(KEY)
    assert claim.record == stored


def test_a_live_lease_refuses_every_claimer(store: Store, clock: Clock) -> None:
    _put(store, Job())
    a, b = Leases(store, "a", clock=clock), Leases(store, "b", clock=clock)
    assert _claim(a) is not None
    etag = store.head(KEY)
    clock.now += 29
    assert _claim(b) is None
    assert _claim(a) is None  # ours, but already running
    assert store.head(KEY) == etag  # refusals write nothing


def test_takeover_after_expiry_and_the_loser_cannot_finish(store: Store, clock: Clock) -> None:
    _put(store, Job())
    a, b = Leases(store, "a", clock=clock), Leases(store, "b", clock=clock)
    first = _claim(a)
    clock.now += 31  # a died (or stalled) past its lease
    second = _claim(b)
    assert first is not None and second is not None
    assert (second.record.attempts, second.record.lease_owner) == (2, "b")
    with pytest.raises(LeaseLost):
        a.finish(first, _done)
    with pytest.raises(LeaseLost):
        a.renew(first)
    assert first.lost
    stored = _read(store)
    assert (stored.status, stored.result, stored.lease_owner) == ("running", None, "b")
    b.finish(second, _done)
    stored = _read(store)
    assert (stored.status, stored.result, stored.attempts) == ("done", "ok", 2)


def test_renew_extends_and_finish_releases(store: Store, clock: Clock) -> None:
    _put(store, Job())
    a, b = Leases(store, "a", clock=clock), Leases(store, "b", clock=clock)
    claim = _claim(a, duration_sec=10)
    assert claim is not None
    clock.now += 8
    a.renew(claim)
    assert _read(store).lease_until == clock.now + 10
    clock.now += 8  # past the first lease, within the renewed one
    assert _claim(b) is None
    etag = a.finish(claim, _done)
    stored = _read(store)
    assert etag == store.head(KEY)
    assert (stored.status, stored.lease_owner, stored.lease_until) == ("done", None, None)
    assert _claim(b) is None  # finished: `ready` says no
    assert _read(store).attempts == 1


def test_finish_can_hand_the_record_back(store: Store, clock: Clock) -> None:
    _put(store, Job())
    a, b = Leases(store, "a", clock=clock), Leases(store, "b", clock=clock)
    claim = _claim(a)
    assert claim is not None

    def hand_back(job: Job) -> None:
        job.status = "queued"
        job.attempts -= 1  # not the job's fault

    a.finish(claim, hand_back)
    again = _claim(b)  # no waiting for the lease to run out
    assert again is not None and again.record.attempts == 1


def test_a_finished_claim_writes_nothing_more(store: Store, clock: Clock) -> None:
    """After `finish` the lease is released: a late hand-back (a stopping worker's) or
    renewal of the same claim must not write over the outcome or lease the record again."""
    _put(store, Job())
    leases = Leases(store, "a", clock=clock)
    claim = _claim(leases)
    assert claim is not None
    etag = leases.finish(claim, _done)

    def hand_back(job: Job) -> None:
        job.status = "queued"

    with pytest.raises(LeaseLost):
        leases.finish(claim, hand_back)
    with pytest.raises(LeaseLost):
        leases.renew(claim)
    stored = _read(store)
    assert store.head(KEY) == etag
    assert (stored.status, stored.lease_owner, stored.lease_until) == ("done", None, None)


def test_a_change_by_anyone_loses_the_lease(store: Store, clock: Clock) -> None:
    _put(store, Job())
    leases = Leases(store, "a", clock=clock)
    claim = _claim(leases)
    assert claim is not None
    store.put(KEY, Job(status="cancelled").model_dump_json().encode())
    with pytest.raises(LeaseLost):
        leases.finish(claim, _done)
    assert _read(store).status == "cancelled"


def test_finish_after_the_record_was_deleted_is_lease_lost(store: Store, clock: Clock) -> None:
    _put(store, Job())
    leases = Leases(store, "a", clock=clock)
    claim = _claim(leases)
    assert claim is not None
    store.delete(KEY)
    with pytest.raises(LeaseLost):
        leases.finish(claim, _done)
    assert not store.exists(KEY)  # not written back


def test_max_attempts_hands_the_record_to_exhausted(store: Store, clock: Clock) -> None:
    _put(store, Job())
    leases = Leases(store, "a", clock=clock)
    handed: list[Claim[Job]] = []

    def give_up(claim: Claim[Job]) -> None:
        handed.append(claim)

        def failed(job: Job) -> None:
            job.status = "failed"
            job.result = f"gave up after {job.attempts} attempts"

        leases.finish(claim, failed)

    for _ in range(2):
        assert _claim(leases, max_attempts=2, exhausted=give_up) is not None
        clock.now += 31  # each attempt dies
    assert _claim(leases, max_attempts=2, exhausted=give_up) is None
    assert len(handed) == 1
    stored = _read(store)
    assert (stored.status, stored.result, stored.attempts) == (
        "failed",
        "gave up after 2 attempts",
        2,
    )
    assert stored.lease_owner is None
    assert _claim(leases, max_attempts=2, exhausted=give_up) is None
    assert len(handed) == 1  # final now: never handed over twice


def test_exhausted_loses_to_a_concurrent_write(store: Store, clock: Clock) -> None:
    _put(store, Job(attempts=3))
    leases = Leases(store, "a", clock=clock)

    def give_up(claim: Claim[Job]) -> None:
        store.put(KEY, Job(status="done", attempts=3).model_dump_json().encode())  # someone else
        with pytest.raises(LeaseLost):
            leases.finish(claim, _done)

    assert _claim(leases, max_attempts=3, exhausted=give_up) is None
    assert _read(store).status == "done"


def test_ready_false_writes_nothing(store: Store, clock: Clock) -> None:
    etag = _put(store, Job(status="done"))
    assert _claim(Leases(store, "a", clock=clock)) is None
    assert store.head(KEY) == etag


def test_duration_from_the_record(store: Store, clock: Clock) -> None:
    _put(store, Job(started=7))
    claim = Leases(store, "a", clock=clock).claim(
        KEY, Job, duration_sec=lambda job: job.started * 10.0
    )
    assert claim is not None and claim.duration_sec == 70
    assert _read(store).lease_until == clock.now + 70


def test_claim_of_a_missing_record_is_not_found(store: Store) -> None:
    with pytest.raises(errors.NotFound):
        _claim(Leases(store, "a"))


def test_a_lease_inside_a_part_of_the_record(store: Store, clock: Clock) -> None:
    _put(store, Nested(name="v1", job=Job()))
    leases = Leases(store, "a", clock=clock)
    claim = leases.claim(KEY, Nested, duration_sec=5)
    assert claim is not None
    stored = Nested.model_validate_json(store.get(KEY).data)
    assert (stored.job.lease_owner, stored.job.attempts) == ("a", 1)
    assert leases.claim(KEY, Nested, duration_sec=5) is None

    def done(record: Nested) -> None:
        record.job.status = "done"

    leases.finish(claim, done)
    stored = Nested.model_validate_json(store.get(KEY).data)
    assert (stored.job.status, stored.job.lease_owner, stored.name) == ("done", None, "v1")


def test_renewing_keeps_a_lease_past_its_duration(store: Store) -> None:
    _put(store, Job())
    a, b = Leases(store, "a"), Leases(store, "b")
    # NOTE: renewed every third of the duration, so a lease lapses when one renewal write
    # takes over 2/3 of it: 0.6 s left 0.4 s, which a loaded SeaweedFS or moto can take
    # (forced: with every write 0.45 s slower, b took it on 2 of 3 stores). 1.5 s leaves 1 s.
    claim = _claim(a, duration_sec=1.5)
    assert claim is not None
    ticks = []
    with a.renewing(claim, also=lambda: ticks.append(1)):
        time.sleep(3.75)  # 2.5 durations: without renewals b would take it
        assert _claim(b, duration_sec=1.5) is None
    assert len(ticks) >= 2
    a.finish(claim, _done)
    assert _read(store).status == "done"


def test_renewing_notices_a_takeover(store: Store) -> None:
    _put(store, Job())
    a = Leases(store, "a")
    claim = _claim(a, duration_sec=0.3)
    assert claim is not None
    with a.renewing(claim):
        store.put(KEY, Job(status="running", lease_owner="b").model_dump_json().encode())
        deadline = time.monotonic() + 5
        while not claim.lost and time.monotonic() < deadline:
            time.sleep(0.02)
    assert claim.lost
    with pytest.raises(LeaseLost):
        a.finish(claim, _done)
    assert _read(store).lease_owner == "b"


def _race(count: int, target) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        results[i] = target(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_racing_claimers_exactly_one_wins(cas_store: Store) -> None:
    for round_ in range(3):
        key = f"jobs/race-{round_}.json"
        _put(cas_store, Job(), key)
        won = _race(
            2, lambda i, key=key: Leases(cas_store, f"w{i}").claim(key, Job, duration_sec=30)
        )
        winners = [claim for claim in won if claim is not None]
        assert len(winners) == 1
        stored = _read(cas_store, key)
        assert (stored.lease_owner, stored.attempts) == (winners[0].record.lease_owner, 1)


def test_racing_takeover_of_an_expired_lease_has_one_winner(cas_store: Store) -> None:
    _put(cas_store, Job(status="running", attempts=1, lease_owner="dead", lease_until=1.0))
    won = _race(4, lambda i: Leases(cas_store, f"w{i}").claim(KEY, Job, duration_sec=30))
    assert sum(claim is not None for claim in won) == 1
    assert _read(cas_store).attempts == 2


# -- a standalone lease object ---------------------------------------------------


def test_hold_at_most_one_worker_per_period(store: Store, clock: Clock) -> None:
    a, b = Leases(store, "a", clock=clock), Leases(store, "b", clock=clock)
    assert a.hold("upkeep/sweep.json", 60)
    assert not b.hold("upkeep/sweep.json", 60)
    assert not a.hold("upkeep/sweep.json", 60)  # ours: once per period
    clock.now += 61
    assert b.hold("upkeep/sweep.json", 60)
    assert not a.hold("upkeep/sweep.json", 60)
    assert a.hold("upkeep/other.json", 60)  # keys are independent


def test_a_job_is_held_by_name_at_the_key_existing_stores_have(store: Store, clock: Clock) -> None:
    from store.leases import ARTIFACT_COLLECT, LOG_SWEEP, WINDOW_ROLLUP, WINDOW_SWEEP

    a, b = Leases(store, "a", clock=clock), Leases(store, "b", clock=clock)
    for job in (LOG_SWEEP, WINDOW_ROLLUP, WINDOW_SWEEP, ARTIFACT_COLLECT, "stats-fold"):
        assert a.hold_job(job, 60)
        assert not b.hold_job(job, 60)
    # The keys of releases before named holds: a hold they left is still live.
    assert sorted(store.list("")) == [
        "gc/collect.json",
        "holds/stats-fold.json",
        "logs/sweep.json",
        "stats/windows/rollup-hold.json",
        "stats/windows/sweep-hold.json",
    ]
    assert not b.hold("logs/sweep.json", 60)
    for bad in ("", "../keys/x", "a/b", "Upper"):
        with pytest.raises(ValueError):
            a.hold_job(bad, 60)


def test_racing_holders_exactly_one_wins(cas_store: Store) -> None:
    held = _race(4, lambda i: Leases(cas_store, f"w{i}").hold("upkeep/fold.json", 60))
    assert held.count(True) == 1


# -- exactly once ------------------------------------------------------------------


def test_claim_once(store: Store) -> None:
    a, b = Leases(store, "a"), Leases(store, "b")
    tick = "schedules/ticks/sch_1/2026-12-05T09:00:00Z"
    assert a.claim_once(tick, Job(status="fired"))
    assert not b.claim_once(tick)
    assert not a.claim_once(tick)
    assert _read(store, tick).status == "fired"
    assert b.claim_once("schedules/ticks/sch_1/2026-12-05T09:01:00Z", b"raw")


def test_racing_claim_once_exactly_one_wins(cas_store: Store) -> None:
    won = _race(4, lambda i: Leases(cas_store, f"w{i}").claim_once("ticks/t-1", f"{i}".encode()))
    assert won.count(True) == 1
    assert cas_store.get("ticks/t-1").data == str(won.index(True)).encode()


# -- the probe -------------------------------------------------------------------


def test_probe_finds_conditional_writes_and_leaves_nothing(store: Store) -> None:
    assert probe_conditional_writes(store)
    assert list(store.list("probes/")) == []


class _CarelessStore(LocalStore):
    """A store that accepts every write unconditionally (as some S3 servers do)."""

    def put(self, key: str, data: bytes, *, create: bool = False, if_match=None) -> str:
        return super().put(key, data)


class _CreateOnlyStore(LocalStore):
    """Refuses a second create but ignores If-Match."""

    def put(self, key: str, data: bytes, *, create: bool = False, if_match=None) -> str:
        return super().put(key, data, create=create)


def test_probe_refuses_a_store_without_conditional_writes(tmp_path: Path) -> None:
    careless = _CarelessStore(tmp_path / "careless")
    assert not probe_conditional_writes(careless)
    assert not probe_conditional_writes(_CreateOnlyStore(tmp_path / "create-only"))
    assert list(careless.list("probes/")) == []

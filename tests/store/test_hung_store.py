"""A store that hangs (SeaweedFS stopped with SIGSTOP: connections are accepted, nothing is
answered) costs the first call its configured timeouts and the calls after it one quick try
each, never boto3's default minutes, and the store answers again, with what it held, once
it wakes."""

from __future__ import annotations

import time

import pytest

from store import StoreTimeouts, check_reads, errors
from tests.s3servers import seaweedfs_process

pytestmark = pytest.mark.s3

TIMEOUTS = StoreTimeouts(connect_sec=1.0, read_sec=1.0, attempts=2, quick_sec=0.5)
SLACK_SEC = 2.5  # scheduling on a loaded machine


@pytest.fixture
def weed(tmp_path, monkeypatch):
    with seaweedfs_process(tmp_path / "weed") as weed:
        for var, value in weed.server.env().items():
            monkeypatch.setenv(var, value)
        yield weed


def _fails_within(call) -> float:
    started = time.monotonic()
    with pytest.raises(errors.Unavailable):
        call()
    return time.monotonic() - started


@pytest.mark.timeout(90)
def test_a_hung_store_fails_each_call_within_its_timeouts_and_answers_when_it_wakes(weed):
    from store._s3 import S3Store

    store = S3Store("hung", "p", endpoint_url=weed.server.endpoint_url,
                    region=weed.server.region, timeouts=TIMEOUTS)  # fmt: skip
    try:
        store.ping()
        etag = store.put("kept", b"before")
        assert store.head("kept", quick=True) == etag  # the pool holds kept-alive connections

        weed.pause()
        try:
            # A quick call's timeout alone does not make the store look hung ...
            quick = {
                "quick head": _fails_within(lambda: store.head("kept", quick=True)),
                "quick get": _fails_within(lambda: store.get("kept", quick=True)),
                "ping": _fails_within(store.ping),
                "check_reads": _fails_within(lambda: check_reads(store)),
            }
            # ... so the first full call waits out its attempts (the store may be slow) ...
            full = {"get": _fails_within(lambda: store.get("kept"))}
            # ... and the calls after it get one quick try each while the store stays hung.
            after = {
                "head": _fails_within(lambda: store.head("kept")),
                "put": _fails_within(lambda: store.put("new", b"x", create=True)),
                "list": _fails_within(lambda: list(store.list(""))),
                "get again": _fails_within(lambda: store.get("kept")),
            }
        finally:
            weed.resume()

        for what, took in quick.items():  # one attempt
            assert took < TIMEOUTS.quick_sec + SLACK_SEC, (what, took)
        for what, took in full.items():
            assert took >= TIMEOUTS.attempts * TIMEOUTS.read_sec, (what, took)
            assert took < TIMEOUTS.worst_case_sec + SLACK_SEC, (what, took)
        for what, took in after.items():  # a PUT also waits up to 1 s for `100 Continue`
            assert took < TIMEOUTS.quick_sec + 1.0 + SLACK_SEC, (what, took)

        # Awake again: the same client answers, and what was stored before is intact.
        assert store.get("kept").data == b"before"
        assert store.head("kept", quick=True) == etag
        store.ping()
        check_reads(store)
        waited = {what: round(took, 2) for what, took in {**quick, **full, **after}.items()}
        print(f"hung store: {waited} s")
    finally:
        store.close()

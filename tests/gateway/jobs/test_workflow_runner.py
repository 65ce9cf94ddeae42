"""The workflow runner's recovery paths on a real local store: what a crash leaves behind."""

from __future__ import annotations

import time

import pytest

from gateway.jobs import workflows
from gateway.platform import Platform
from gateway.settings import Settings
from store.records import Branch, Execution, ExecutionStatus
from store.workflows import QUEUE_PREFIX, queue_marker_key


@pytest.fixture
def platform(tmp_path):
    # No periodic scan: each test calls scan() itself.
    settings = Settings(
        data_dir=tmp_path,
        nimbus_api_key="k" * 32,
        preload_runtimes=False,
        workflow_scan_sec=3600,
        workflow_max_attempts=3,
    )
    platform = Platform.open(settings)
    platform.start()
    yield platform
    platform.stop()


def markers(platform) -> list[str]:
    return list(platform.store.list(QUEUE_PREFIX))


def execution(**fields) -> Execution:
    return Execution(
        id=fields.pop("id", "ex_test"),
        workflow_id="wf_x",
        workflow_name="x",
        workflow_version=1,
        due=time.time() - 1,
        branches={0: Branch(id=0, state="A", input={})},
        **fields,
    )


def test_a_marker_whose_record_never_appeared_is_dropped_after_the_grace(platform, monkeypatch):
    monkeypatch.setattr(workflows, "ORPHAN_GRACE_SEC", 0.5)
    platform.store.put(queue_marker_key(time.time() - 1, "ex_ghost"), b"")
    for _ in range(3):  # looks in quick succession (it was dropped on the second)
        platform.workflow_runner.scan()
        assert len(markers(platform)) == 1  # its start may still be writing the record
    time.sleep(0.6)
    platform.workflow_runner.scan()
    assert markers(platform) == []


def test_a_finished_execution_loses_its_leftover_marker(platform):
    repo = platform.workflow_runner.repo
    repo.start(execution(status=ExecutionStatus.succeeded))  # as if its runner died after
    platform.workflow_runner.scan()
    assert markers(platform) == []
    assert repo.execution("ex_test")[0].status == ExecutionStatus.succeeded


def test_an_execution_whose_runners_keep_dying_fails_with_a_runtime_error(platform):
    repo = platform.workflow_runner.repo
    repo.start(execution(attempts=3, lease_owner="dead-worker", lease_until=time.time() - 1))
    platform.workflow_runner.scan()
    record = repo.execution("ex_test")[0]
    assert (record.status, record.error) == (ExecutionStatus.failed, "States.Runtime")
    assert "3 times" in record.cause
    assert markers(platform) == []
    assert repo.history(record)[-1].type == "ExecutionFailed"


def test_a_live_lease_is_left_alone(platform):
    repo = platform.workflow_runner.repo
    repo.start(execution(lease_owner="other-worker", lease_until=time.time() + 60))
    platform.workflow_runner.scan()
    record = repo.execution("ex_test")[0]
    assert (record.status, record.lease_owner) == (ExecutionStatus.running, "other-worker")
    assert len(markers(platform)) == 1


def test_an_execution_leased_elsewhere_is_not_read_again_until_its_lease_ends(platform):
    repo = platform.workflow_runner.repo
    repo.start(execution(lease_owner="other-worker", lease_until=time.time() + 60))
    reads = []
    get = platform.store.get
    platform.store.get = lambda key: reads.append(key) or get(key)
    for _ in range(3):
        platform.workflow_runner.scan()
    assert reads == ["executions/ex_test.json"]

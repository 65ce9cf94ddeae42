"""Retention of finished invocation records (store/invocations.py), on every backend."""

from __future__ import annotations

import time

from store import Store
from store.functions import FunctionRepo
from store.invocations import InvocationRepo
from store.records import Function, Invocation, InvocationStatus, now

HOUR = 3600.0


def _accept(repo: InvocationRepo, invocation_id: str, function_id: str = "fn_a") -> Invocation:
    record = Invocation(
        id=invocation_id, function_id=function_id, function_name="a", version=1, event="{}"
    )
    repo.accept(record)
    return record


def _finish(repo: InvocationRepo, record: Invocation) -> None:
    """What the async runner does: the index entry, then the final state."""
    current, etag = repo.get(record.id)
    repo.index_finished(current)
    current.status = InvocationStatus.succeeded
    current.finished_at = now()
    repo.write(current, etag)


def _ids(store: Store) -> set[str]:
    return {key.split("/")[1].removesuffix(".json") for key in store.list("invocations/")}


def test_finished_records_go_after_the_retention(store: Store) -> None:
    repo = InvocationRepo(store)
    for n in range(3):
        _finish(repo, _accept(repo, f"inv_{n}"))
    running = _accept(repo, "inv_running")
    exists = lambda function_id: True  # noqa: E731
    assert repo.sweep(HOUR, exists) == 0  # all finished just now
    assert _ids(store) == {"inv_0", "inv_1", "inv_2", "inv_running"}

    assert repo.sweep(HOUR, exists, now=time.time() + HOUR + 5) == 3
    assert _ids(store) == {"inv_running"}  # never an unfinished one
    assert list(store.list("finished/")) == []
    assert repo.get(running.id)[0].status == InvocationStatus.queued


def test_a_short_retention(store: Store) -> None:
    repo = InvocationRepo(store)
    _finish(repo, _accept(repo, "inv_old"))
    time.sleep(1.2)
    _finish(repo, _accept(repo, "inv_new"))
    assert repo.sweep(1.0, lambda function_id: True) == 1
    assert _ids(store) == {"inv_new"}


def test_records_of_deleted_functions_go_at_the_next_sweep(store: Store) -> None:
    repo = InvocationRepo(store)
    _finish(repo, _accept(repo, "inv_kept", "fn_kept"))
    _finish(repo, _accept(repo, "inv_gone", "fn_gone"))
    assert repo.sweep(HOUR, lambda function_id: function_id == "fn_kept") == 1
    assert _ids(store) == {"inv_kept"}


def test_an_entry_of_a_run_that_lost_its_lease_keeps_the_record(store: Store) -> None:
    repo = InvocationRepo(store)
    record = _accept(repo, "inv_retried")
    repo.index_finished(record)  # written, then the final write lost its lease
    assert repo.sweep(0.0, lambda function_id: False, now=time.time() + 1) == 0
    assert _ids(store) == {"inv_retried"}
    _finish(repo, record)  # the winner finishes it
    assert repo.sweep(0.0, lambda function_id: False, now=time.time() + 1) == 1
    assert _ids(store) == set() and list(store.list("finished/")) == []


def test_deleting_a_function_deletes_its_finished_records(store: Store) -> None:
    functions, repo = FunctionRepo(store), InvocationRepo(store)
    fn = Function(id="fn_del", name="del", runtime="c")
    functions.create_function(fn)
    _finish(repo, _accept(repo, "inv_1", fn.id))
    _finish(repo, _accept(repo, "inv_other", "fn_other"))
    functions.delete_function(fn)
    assert _ids(store) == {"inv_other"}
    assert [key.split("/")[2] for key in store.list("finished/")] == ["fn_other"]

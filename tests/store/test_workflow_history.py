"""Execution history: the record's tail sealed into pages, read back in order."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from store import LocalStore, errors
from store.records import Execution, ExecutionStatus, HistoryEvent
from store.workflows import HISTORY_PAGE, WorkflowRepo, history_page_key

_events = TypeAdapter(list[HistoryEvent])


def record(events: int) -> Execution:
    execution = Execution(id="ex_h", workflow_id="wf_h", workflow_name="h", workflow_version=1)
    execution.history_tail = [
        HistoryEvent(id=i + 1, type="PassStateEntered") for i in range(events)
    ]
    return execution


def test_full_pages_are_sealed_and_read_back_in_order(tmp_path):
    repo = WorkflowRepo(LocalStore(tmp_path))
    execution = record(2 * HISTORY_PAGE + 7)
    assert repo.seal_history(execution)
    assert (execution.history_pages, len(execution.history_tail)) == (2, 7)
    assert len(execution.history_page_tokens) == 2
    assert repo.store.exists(history_page_key("ex_h", 1, execution.history_page_tokens[1]))
    assert [e.id for e in repo.history(execution)] == list(range(1, 2 * HISTORY_PAGE + 8))
    assert not repo.seal_history(execution)  # nothing full left


def test_pages_sealed_by_an_older_nimbus_read_back_before_new_ones(tmp_path):
    """Before tokens a page's key was its number alone: an execution running across the
    upgrade reads those first, then the pages sealed since."""
    repo = WorkflowRepo(LocalStore(tmp_path))
    execution = record(2 * HISTORY_PAGE + 3)
    for number in range(2):  # as the old seal wrote them
        page = execution.history_tail[number * HISTORY_PAGE : (number + 1) * HISTORY_PAGE]
        repo.store.put(history_page_key("ex_h", number), _events.dump_json(page))
    old = execution.model_dump(exclude={"history_page_tokens"})
    old.update(history_pages=2, history_tail=old["history_tail"][2 * HISTORY_PAGE :])
    execution = Execution.model_validate(old)  # an old record: no tokens
    execution.history_tail += [HistoryEvent(id=i, type="PassStateEntered") for i in range(204, 304)]
    assert repo.seal_history(execution)
    assert (execution.history_pages, len(execution.history_page_tokens)) == (3, 1)
    assert [e.id for e in repo.history(execution)] == list(range(1, 304))


def test_a_large_tail_is_sealed_whole(tmp_path):
    repo = WorkflowRepo(LocalStore(tmp_path))
    execution = record(3)
    assert repo.seal_history(execution, whole_tail=True)
    assert (execution.history_pages, execution.history_tail) == (1, [])
    assert [e.id for e in repo.history(execution)] == [1, 2, 3]


# -- two writers sealing the same page ------------------------------------------------------
#
# Every transition is a compare-and-swap of the record; a page sealed on the way is written
# before it. A writer whose swap then loses (a runner whose execution was stopped meanwhile,
# a stop that raced a step) must not have replaced the page the winner's record names.


def _started(store, events: int) -> WorkflowRepo:
    repo = WorkflowRepo(store)
    execution = record(events)
    execution.history_count = events
    repo.start(execution)
    return repo


def _writer(repo: WorkflowRepo, kind: str, meanwhile=None):
    """`update_execution` adding one event; `meanwhile` runs once, between this writer's
    read of the record and its seal (before=True) or after its seal (before=False)."""
    calls = []

    def mutate(execution: Execution) -> bool:
        if execution.final:
            return False
        execution.history_count += 1
        execution.history_tail.append(HistoryEvent(id=execution.history_count, type=kind))
        if kind == "ExecutionAborted":
            execution.status = ExecutionStatus.aborted
        first = not calls
        calls.append(1)
        if first and meanwhile is not None:
            meanwhile()  # the other writer's whole transition lands here
        repo.seal_history(execution)
        return True

    return lambda: repo.update_execution("ex_h", mutate)


def _history(repo: WorkflowRepo) -> list[tuple[int, str]]:
    execution, _ = repo.execution("ex_h")
    return [(e.id, e.type) for e in repo.history(execution)]


def test_a_stop_landing_between_a_steps_read_and_its_seal_keeps_its_event(cas_store):
    """The step reads the record, the stop commits (sealing page 0 with its
    ExecutionAborted), then the step seals page 0 too and loses its swap: the page the
    stopped record names must still hold the ExecutionAborted, not the step's event."""
    repo = _started(cas_store, HISTORY_PAGE - 1)
    stop = _writer(repo, "ExecutionAborted")
    step = _writer(repo, "TaskStateEntered", meanwhile=stop)
    step()
    history = _history(repo)
    assert len(history) == HISTORY_PAGE
    assert history[-1] == (HISTORY_PAGE, "ExecutionAborted")
    assert "TaskStateEntered" not in {kind for _, kind in history}


def test_a_step_committing_between_a_stops_read_and_its_retry_keeps_its_event(cas_store):
    """The stop reads the record, the step commits page 0, the stop seals page 0 with its
    own events, loses its swap and retries on the step's record: the step's event stays,
    and the ExecutionAborted is there once, after it."""
    repo = _started(cas_store, HISTORY_PAGE - 1)
    step = _writer(repo, "TaskStateEntered")
    stop = _writer(repo, "ExecutionAborted", meanwhile=step)
    stop()
    history = _history(repo)
    assert history[HISTORY_PAGE - 1 :] == [
        (HISTORY_PAGE, "TaskStateEntered"),
        (HISTORY_PAGE + 1, "ExecutionAborted"),
    ]
    assert [i for i, _ in history] == list(range(1, HISTORY_PAGE + 2))


# -- a rolling update: an older replica rewrites the record -----------------------------------


def _as_an_older_nimbus_writes_it(repo: WorkflowRepo, execution: Execution) -> Execution:
    """What a replica from before page tokens does with the record: it drops the field it
    does not know when it rewrites it, and seals its next page under the bare number."""
    old = execution.model_dump(exclude={"history_page_tokens"})
    number = old["history_pages"]
    tail = old["history_tail"]
    page, old["history_tail"] = _events.validate_python(tail[:HISTORY_PAGE]), tail[HISTORY_PAGE:]
    repo.store.put(history_page_key(execution.id, number), _events.dump_json(page))
    old["history_pages"] = number + 1
    return Execution.model_validate(old)  # the tokens are gone


def test_history_reads_back_after_an_older_replica_dropped_the_page_tokens(cas_store):
    """README: replicas are replaced one at a time, so an execution can be stepped by a new
    replica (pages sealed under tokens) and then by an old one, which rewrites the record
    without them. Its history answered 404 from then on (every sealed page looked for
    under its bare number); each such page is found by its number, and new ones still seal."""
    repo = WorkflowRepo(cas_store)
    execution = record(3 * HISTORY_PAGE + 5)
    execution.history_tail = execution.history_tail[: 2 * HISTORY_PAGE + 5]
    assert repo.seal_history(execution)  # a new replica: pages 0 and 1 under tokens
    execution.history_tail += [HistoryEvent(id=i, type="PassStateEntered") for i in range(206, 306)]
    execution = _as_an_older_nimbus_writes_it(repo, execution)  # page 2 bare, tokens dropped
    assert (execution.history_pages, execution.history_page_tokens) == (3, [])
    assert [e.id for e in repo.history(execution)] == list(range(1, 306))
    execution.history_tail += [HistoryEvent(id=i, type="PassStateEntered") for i in range(306, 406)]
    assert repo.seal_history(execution)  # a new replica again: page 3 under a token
    assert [e.id for e in repo.history(execution)] == list(range(1, 406))


def test_a_page_the_record_cannot_tell_apart_is_refused_not_guessed(cas_store):
    """Tokens dropped and two pages under one number (a race's loser left one): which is
    the record's own is not known any more, so the history is unreadable, not made up."""
    repo = WorkflowRepo(cas_store)
    execution = record(HISTORY_PAGE)
    assert repo.seal_history(execution)
    repo.store.put(history_page_key("ex_h", 0, "0123456789ab"), b"[]")  # a loser's page
    execution.history_page_tokens = []
    with pytest.raises(errors.RecordUnreadable, match="one of 2 unnamed pages"):
        repo.history(execution)

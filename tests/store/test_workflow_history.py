"""Execution history: the record's tail sealed into pages, read back in order."""

from __future__ import annotations

from store import LocalStore
from store.records import Execution, HistoryEvent
from store.workflows import HISTORY_PAGE, WorkflowRepo, history_page_key


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
    assert repo.store.exists(history_page_key("ex_h", 1))
    assert [e.id for e in repo.history(execution)] == list(range(1, 2 * HISTORY_PAGE + 8))
    assert not repo.seal_history(execution)  # nothing full left


def test_a_large_tail_is_sealed_whole(tmp_path):
    repo = WorkflowRepo(LocalStore(tmp_path))
    execution = record(3)
    assert repo.seal_history(execution, whole_tail=True)
    assert (execution.history_pages, execution.history_tail) == (1, [])
    assert [e.id for e in repo.history(execution)] == [1, 2, 3]

"""What one workflow transition costs the store: requests and milliseconds.

    .venv/bin/python -m bench.workflow_transitions [--states 50] [--tasks 10] [--no-s3]

Runs a chain of Pass states and a chain of Task states (a Python `add`) on
an in-process platform, on the local store and on SeaweedFS over real HTTP,
and counts the store calls made by the runner's driver threads (the Task
invocations' own reads go through the invoke path's caches and are counted
apart). Prints a Markdown table; docs/decisions/0010 quotes a run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from gateway.platform import Platform
from gateway.schemas import FunctionCreate, WorkflowCreate
from gateway.settings import Settings

METHODS = ("get", "head", "put", "delete", "list")


class StoreCounter:
    """Counts (and times) store calls per thread family while installed."""

    def __init__(self, store) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.seconds: Counter[str] = Counter()
        self._lock = threading.Lock()
        for name in METHODS:
            setattr(store, name, self._wrap(name, getattr(store, name)))

    def _wrap(self, name: str, method):
        def counted(*args, **kwargs):
            family = threading.current_thread().name.rsplit("_", 1)[0]
            started = time.perf_counter()
            try:
                result = method(*args, **kwargs)
                if name == "list":
                    result = list(result)  # the listing's requests happen while iterating
                return result
            finally:
                with self._lock:
                    self.calls[(family, name)] += 1
                    self.seconds[family] += time.perf_counter() - started

        return counted

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.seconds.clear()


def chain(kind: str, count: int) -> dict:
    states = {}
    for i in range(count):
        state = (
            {"Type": "Pass"}
            if kind == "Pass"
            else {"Type": "Task", "Resource": "add", "Parameters": {"a.$": "$.sum", "b": 1}}
        )
        state.update({"End": True} if i == count - 1 else {"Next": f"S{i + 1}"})
        states[f"S{i}"] = state
    return {"StartAt": "S0", "States": states}


def measure(platform: Platform, counter: StoreCounter, name: str, transitions: int) -> dict:
    counter.reset()
    started = time.perf_counter()
    execution = platform.workflows.start(name, b'{"sum": 0}')
    while platform.workflows.execution(execution.id).status == "running":
        time.sleep(0.01)
    wall = time.perf_counter() - started
    assert platform.workflows.execution(execution.id).status == "succeeded"
    driver = {m: counter.calls[("workflow", m)] for m in METHODS}
    requests = sum(driver.values())
    return {
        "transitions": transitions,
        "requests": requests,
        "per_transition": requests / transitions,
        "by_method": {m: n for m, n in driver.items() if n},
        "store_ms_per_transition": counter.seconds["workflow"] * 1000 / transitions,
        "wall_ms_per_state": wall * 1000 / transitions,
    }


def run_backend(label: str, settings: Settings, states: int, tasks: int) -> list[dict]:
    platform = Platform.open(settings)
    counter = StoreCounter(platform.store)
    platform.start()
    try:
        platform.functions.create(
            FunctionCreate(
                name="add",
                runtime="python",
                code="def main(event):\n    return {'sum': event['a'] + event['b']}\n",
            )
        )
        deadline = time.monotonic() + 120
        while platform.functions.get("add").status != "active":
            assert time.monotonic() < deadline, "the add function did not build"
            time.sleep(0.1)
        rows = []
        for kind, count in (("Pass", states), ("Task", tasks)):
            name = f"{kind.lower()}-chain"
            platform.workflows.create(WorkflowCreate(name=name, definition=chain(kind, count)))
            measure(platform, counter, name, count)  # warm: the compiled definition, caches
            rows.append({"backend": label, "kind": kind, **measure(platform, counter, name, count)})
        return rows
    finally:
        platform.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--states", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--no-s3", action="store_true")
    args = parser.parse_args()
    common = {
        "preload_runtimes": False,
        "workflow_scan_sec": 0.2,
        "build_poll_sec": 0.05,
        "nimbus_api_key": "bench-" + uuid.uuid4().hex,
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        local = Settings(data_dir=Path(tmp) / "local", **common)
        rows += run_backend("local", local, args.states, args.tasks)
        if not args.no_s3:
            from tests.s3servers import seaweedfs_server

            with seaweedfs_server(Path(tmp) / "seaweedfs") as server:
                os.environ.update(server.env())  # boto3 reads the keys from the environment
                s3 = Settings(
                    data_dir=Path(tmp) / "s3",
                    nimbus_store="s3://bench/workflows",
                    s3_endpoint_url=server.endpoint_url,
                    aws_region=server.region,
                    **common,
                )
                rows += run_backend("s3 (SeaweedFS)", s3, args.states, args.tasks)
    print(
        "| store | states | transitions | store requests / transition | by method | "
        "store ms / transition | wall ms / state |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['kind']} | {r['transitions']} | {r['per_transition']:.2f} "
            f"| {r['by_method']} | {r['store_ms_per_transition']:.2f} "
            f"| {r['wall_ms_per_state']:.1f} |"
        )


if __name__ == "__main__":
    main()

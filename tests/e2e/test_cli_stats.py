"""`nimbus stats` (one function, or the platform) and `nimbus quota` against a real server."""

from __future__ import annotations

import re
import time

from tests.e2e import wasm as w
from tests.e2e.test_cli_versions import Nimbus
from tests.e2e.test_observability import deploy


def test_platform_stats_by_function_and_the_quota(make_server):
    server = make_server().start()
    nimbus = Nimbus(server)
    deploy(server, "steady", w.constant_wat(b'{"ok":true}'))
    deploy(server, "broken", w.FAIL_WAT)
    for _ in range(3):
        assert nimbus("invoke", "steady").exit_code == 0
    assert nimbus("invoke", "broken").exit_code == 3

    deadline = time.monotonic() + 5  # outcomes reach the stats within the flush interval
    while True:
        view = nimbus.json("stats", "--since", "10m")
        if view["totals"]["invocations"] >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    calls = {name: (w["invocations"], w["errors"]) for name, w in view["by_function"].items()}
    assert calls == {"steady": (3, 0), "broken": (1, 1)}
    assert view["function"] is None and view["totals"]["errors"] == 1
    table = nimbus("stats", output="table").output
    assert "FUNCTION" in table and "steady" in table and "broken" in table and "all" in table
    assert "calls served by other workers show within 0.5 s" in table  # "others' calls"
    one = nimbus.json("stats", "steady", "--version", "1")
    assert one["totals"]["invocations"] == 3
    assert nimbus("stats", "--version", "1").exit_code == 2  # a version needs a function

    quota = nimbus.json("quota")
    assert quota["usage"]["functions"] == 2
    table = nimbus("quota", output="table").output
    assert f"2 of {quota['limits']['max_functions']}" in table and "memory_mb" in table
    assert "source 524,288, binary 52,428,800 bytes" in table  # not "5.24288e+07"
    assert re.search(r"memory_mb min\s+32 for go, python, javascript", table)  # not only 16

"""The sandbox's instance pool through a real server: a full pool is a 429, then service."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

BUSY_PYTHON = """
import time

def main(event, context):
    end = time.monotonic() + event["seconds"]
    while time.monotonic() < end:
        pass
    return {"busy_for": event["seconds"]}
"""


def test_a_pool_of_two_answers_a_third_concurrent_call_with_429(make_server):
    # Room for three running guests, but slots in the pool for two.
    server = make_server({"POOL_INSTANCES": "2", "MAX_CONCURRENT": "3"}, workers=1).start()
    with server.client(timeout=60) as api:
        body = {"name": "busy", "runtime": "python", "code": BUSY_PYTHON}
        resp = api.post("/api/v1/functions?wait=true", json=body)
        assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text
        barrier = threading.Barrier(3)

        def call(_):
            barrier.wait()
            return api.post("/api/v1/functions/busy/invoke", json={"seconds": 1.5})

        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(call, range(3)))
        assert sorted(a.status_code for a in answers) == [200, 200, 429], [a.text for a in answers]
        busy = next(a for a in answers if a.status_code == 429)
        assert busy.json()["error"]["code"] == "too_many_requests"
        assert int(busy.headers["Retry-After"]) >= 1
        # The worker kept serving: the two slots came back.
        again = api.post("/api/v1/functions/busy/invoke", json={"seconds": 0})
        assert again.status_code == 200 and again.json() == {"busy_for": 0}

"""Knative's split (deploy/k8s/knative): replicas that serve with BUILD_CONCURRENCY=0
build nothing; a worker replica on the same store builds what they accept."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import s3_env
from tests.e2e.wasm import b64, constant_wat, wat

pytestmark = pytest.mark.s3

QUICK = {"WORKERS": "1", "PRELOAD_RUNTIMES": "false", "PREWARM_PER_FUNCTION": "0",
         "BUILD_POLL_SEC": "0.2", "IDLE_POLL_MAX_SEC": "0.5"}  # fmt: skip


def test_a_replica_without_builders_serves_what_a_worker_replica_built(e2e_seaweedfs, make_server):
    env = s3_env(e2e_seaweedfs)
    serving = make_server({**env, **QUICK, "BUILD_CONCURRENCY": "0"}).start()
    with serving.client() as api:
        body = {"name": "built-elsewhere", "runtime": "wasm",
                "artifact_base64": b64(wat(constant_wat(b'{"built": "elsewhere"}')))}  # fmt: skip
        created = api.post("/api/v1/functions", json=body)
        assert created.status_code == 201, created.text
        time.sleep(2)  # ten build polls: nobody here takes the build
        record = api.get("/api/v1/functions/built-elsewhere").json()
        assert record["status"] == "creating" and record["latest_build"]["status"] == "queued"
        assert api.post("/api/v1/functions/built-elsewhere/invoke", json={}).status_code == 409

        make_server({**env, **QUICK}).start()  # the worker: builds on
        deadline = time.monotonic() + 20
        while (record := api.get("/api/v1/functions/built-elsewhere").json())["status"] != (
            "active"
        ):
            assert time.monotonic() < deadline, record
            time.sleep(0.2)
        invoked = api.post("/api/v1/functions/built-elsewhere/invoke", json={})
        assert invoked.status_code == 200 and invoked.json() == {"built": "elsewhere"}

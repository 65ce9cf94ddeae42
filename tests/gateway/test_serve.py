"""`nimbus serve`'s worker set-up, in-process (real servers: tests/e2e)."""

from __future__ import annotations

import gc

from gateway.serve import NimbusServer
from gateway.settings import Settings


def test_a_ready_worker_has_frozen_its_startup_objects(tmp_path):
    """Full garbage collections in a loaded worker never walk the app and platform
    made at start (they held the GIL 72-326 ms each; 0.3 ms frozen)."""
    made_at_start = [{"cycle": None}]
    made_at_start[0]["cycle"] = made_at_start
    settings = Settings(data_dir=tmp_path / "data", nimbus_api_key="k" * 40)
    server = NimbusServer(settings, None)  # metrics in-process
    try:
        app = server.load()
        assert gc.get_freeze_count() > 0
        scanned = {id(o) for o in gc.get_objects()}
        assert id(made_at_start) not in scanned and id(app) not in scanned
        later = [{}]
        assert id(later) in {id(o) for o in gc.get_objects()}  # what calls make still is
    finally:
        gc.unfreeze()
        if server.platform is not None:
            server.platform.stop()

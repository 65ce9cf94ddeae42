"""`nimbus serve`'s worker set-up, in-process (real servers: tests/e2e)."""

from __future__ import annotations

import gc
import logging
import os
import re

from gunicorn.config import Config

from gateway.serve import NimbusServer, ServerLog, configure_logging
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


def test_gunicorns_lines_and_nimbus_lines_share_one_format(capfd):
    """gunicorn wrote `[2026-12-06 05:30:10 +0000] [17631] [INFO] Booting worker …` among
    `2026-12-06 05:32:14,213 INFO nimbus.alerts [22101] …` (local time, no zone): one log,
    two formats, and boto3's INFO line per worker."""
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        configure_logging("info")
        gunicorn_log = ServerLog(Config())
        gunicorn_log.info("Booting worker with pid: %s", 17631)
        logging.getLogger("nimbus.alerts").warning("alert alr_x delivery failed")
        logging.getLogger("botocore.credentials").info("Found credentials in environment")
    finally:
        root.handlers[:], _ = kept
        root.setLevel(kept[1])
    lines = capfd.readouterr().err.splitlines()
    line = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING) [\w.]+ \[\d+\] .+"
    assert len(lines) == 2 and all(re.fullmatch(line, text) for text in lines), lines
    pid = os.getpid()
    assert lines[0].endswith(f"INFO gunicorn.error [{pid}] Booting worker with pid: 17631")
    assert "WARNING nimbus.alerts" in lines[1]

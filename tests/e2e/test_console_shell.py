"""The console's shell through a real server when its build changes under it."""

from __future__ import annotations

import os
import re
import shutil

import httpx

from tests.e2e.server import REPO


def test_a_console_rebuilt_under_a_running_server_is_served_at_once(make_server, tmp_path):
    built = tmp_path / "static"
    shutil.copytree(REPO / "console" / "static", built)
    server = make_server({"CONSOLE_DIR": str(built)}).start()
    shells = [httpx.get(server.url + "/") for _ in range(8)]  # each worker reads it
    first = shells[0]
    assert first.status_code == 200
    entry = re.search(r'/assets/([^"]+\.js)', first.text).group(1)
    # A rebuild (`make install` while `make run` serves): new hashed entry, old one gone.
    shell = (built / "index.html").read_text().replace(entry, "entry-NEW.js")
    (built / "assets" / "entry-NEW.js").write_bytes((built / "assets" / entry).read_bytes())
    (built / "assets" / entry).unlink()
    (built / "index.html").write_text(shell)
    stat = (built / "index.html").stat()
    os.utime(built / "index.html", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    for _ in range(8):  # every worker, not only one that had not read it yet
        again = httpx.get(server.url + "/")
        assert "/assets/entry-NEW.js" in again.text and entry not in again.text
    assert httpx.get(server.url + "/assets/entry-NEW.js").status_code == 200
